"""The `latest` pointer names only complete, ok runs, and tells a reader when the folder it
names was replaced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from claimdiff.cli import EXIT_OK, EXIT_RUN_FAILED, main
from claimdiff.errors import IncompleteRunError
from claimdiff.io.datasets import read_run_manifest
from claimdiff.io.latest import publish_latest, read_pointer, resolve_latest
from claimdiff.synth.sample import write_sample


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("latest")
    return {"clean": write_sample(str(root / "clean"), images=2, actors=2, seed=4, broken=False),
            "broken": write_sample(str(root / "broken"), images=2, actors=2, seed=4)}


def _judge(manifest: str, output: Path, *extra: str) -> int:
    return main(["judge", "--manifest", manifest, "--output", str(output), *extra])


def test_only_ok_committed_runs_are_published(manifests: dict[str, str], tmp_path: Path):
    pointer = tmp_path / "pointers" / "latest.json"
    assert _judge(manifests["clean"], tmp_path / "a", "--latest", str(pointer)) == EXIT_OK
    assert resolve_latest(str(pointer)) == str(tmp_path / "a")
    body = json.loads(pointer.read_text())
    assert body["rows_in"] == body["rows_judged"] == 4
    assert sorted(p.name for p in pointer.parent.iterdir()) == ["latest.json"]  # no temp left
    # a run over its failure threshold commits, but is not what downstream jobs should read
    assert _judge(manifests["broken"], tmp_path / "b", "--latest", str(pointer)) == (
        EXIT_RUN_FAILED)
    assert resolve_latest(str(pointer)) == str(tmp_path / "a")
    # the next ok run moves it
    assert _judge(manifests["clean"], tmp_path / "c", "--latest", str(pointer)) == EXIT_OK
    assert resolve_latest(str(pointer)) == str(tmp_path / "c")
    # an earlier run publishing late never moves it back
    assert not publish_latest(str(pointer), read_run_manifest(str(tmp_path / "a")))
    assert resolve_latest(str(pointer)) == str(tmp_path / "c")


def test_a_replaced_folder_is_named_not_read(manifests: dict[str, str], tmp_path: Path):
    pointer = tmp_path / "latest.json"
    assert _judge(manifests["clean"], tmp_path / "a", "--latest", str(pointer)) == EXIT_OK
    assert _judge(manifests["clean"], tmp_path / "a", "--overwrite") == EXIT_OK
    with pytest.raises(IncompleteRunError, match="changed after the pointer was written"):
        resolve_latest(str(pointer))
    (tmp_path / "a" / "run.json").unlink()
    with pytest.raises(IncompleteRunError, match="holds no finished run"):
        resolve_latest(str(pointer))
    with pytest.raises(IncompleteRunError, match="not a latest-run pointer"):
        resolve_latest(str(tmp_path / "nothing.json"))


def test_a_pointer_on_a_bucket(manifests: dict[str, str], tmp_path: Path, s3_bucket: str):
    pointer = f"s3://{s3_bucket}/pointers/latest.json"
    assert _judge(manifests["clean"], tmp_path / "a", "--latest", pointer) == EXIT_OK
    assert read_pointer(pointer)["output"] == str(tmp_path / "a")
    assert resolve_latest(pointer) == str(tmp_path / "a")
