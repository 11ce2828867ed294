"""Whole runs on a real S3-compatible server (moto on loopback, `s3_server` in conftest): the
manifest and its images in a bucket, the shards written back to it, the same tables as a local
run, the claim and the commit as on a local disk, and no credential anywhere."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import s3fs

from claimdiff.cli import EXIT_OK, EXIT_USAGE, main
from claimdiff.exit_codes import UNREADABLE
from claimdiff.io.claims import CLAIM_NAME, OutputClaim
from claimdiff.io.storage import ENDPOINT_ENV, missing_filesystem
from claimdiff.synth.sample import write_sample

SECRET = "moto-accepts-any-secret-Zq81xV"  # distinctive: searched for in every output
PATH_COLUMNS = ("manifest", "image_uri", "run_id")


def _fs() -> s3fs.S3FileSystem:
    s3fs.S3FileSystem.clear_instance_cache()  # the endpoint and keys come from the environment
    return s3fs.S3FileSystem()


def _upload(tmp_path: Path, bucket: str) -> tuple[str, str]:
    """A sample corpus (with broken rows: a missing image, a truncated one, a bad row), locally
    and in the bucket; the two manifest URIs."""
    manifest = write_sample(str(tmp_path / "data"), images=3, actors=2, seed=3)
    _fs().put(str(tmp_path / "data"), f"{bucket}/corpus", recursive=True)
    return manifest, f"s3://{bucket}/corpus/manifest.jsonl"


def _table(output: str, dataset: str, corpus: str = "") -> list[dict[str, Any]]:
    """A dataset's rows, without the columns that name where the run read and wrote, and with
    the corpus folder in messages written `<corpus>`."""
    fs = _fs() if output.startswith("s3://") else None
    rows: list[dict[str, Any]] = []
    folder = output.removeprefix("s3://") + f"/{dataset}"
    paths = sorted(fs.glob(f"{folder}/part-*.parquet")) if fs else sorted(
        str(p) for p in Path(folder).glob("part-*.parquet"))
    for path in paths:
        if fs:
            with fs.open(path, "rb") as handle:
                rows += pq.read_table(handle).to_pylist()
        else:
            rows += pq.read_table(path).to_pylist()
    for row in rows:
        for column in PATH_COLUMNS:
            row.pop(column, None)
    text = [json.dumps(row, sort_keys=True, default=str) for row in rows]
    return [json.loads(t) for t in sorted(t.replace(corpus, "<corpus>") if corpus else t
                                          for t in text)]


def _judge(manifest: str, output: str, *extra: str) -> int:
    return main(["judge", "--manifest", manifest, "--output", output, "--run-id", "r",
                 "--set", "run.max_failure_share=0.9", *extra])


@pytest.fixture
def secret_env(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    return s3_server


@pytest.mark.slow
def test_a_run_on_a_bucket_equals_the_local_run(tmp_path: Path, s3_bucket: str, secret_env: str,
                                                capsys: pytest.CaptureFixture[str],
                                                caplog: pytest.LogCaptureFixture):
    local_manifest, remote_manifest = _upload(tmp_path, s3_bucket)
    remote = f"s3://{s3_bucket}/runs/r1"
    caplog.set_level(logging.INFO)
    # the secret also typed as a Beam option: run.json records the options, never their secrets
    assert _judge(remote_manifest, remote, "--s3_access_key_id=testing",
                  f"--s3_secret_access_key={SECRET}") == EXIT_OK
    assert _judge(local_manifest, str(tmp_path / "local")) == EXIT_OK

    fs = _fs()
    written = sorted(p.removeprefix(f"{s3_bucket}/runs/r1/") for p in fs.find(remote[5:]))
    kept = [p for p in written if p.startswith("answers/")]
    assert kept, "the answers the run kept, for --reuse and --resume, are on the bucket too"
    assert all(re.fullmatch(r"answers/answers-[0-9a-f]{32}\.parquet", p) for p in kept), kept
    assert [p for p in written if p not in kept] == [
        "README.md", "differences/part-00000-of-00001.parquet",
        "failures/part-00000-of-00001.parquet", "rewards/part-00000-of-00001.parquet",
        "run.json"]  # no claim, no temp
    for dataset in ("differences", "rewards", "failures"):
        # the same rows; failure messages name the image URIs each run read
        remote_rows = _table(remote, dataset, f"s3://{s3_bucket}/corpus")
        assert remote_rows, dataset
        assert remote_rows == _table(str(tmp_path / "local"), dataset, str(tmp_path / "data"))
    run = json.loads(fs.cat_file(f"{remote[5:]}/run.json"))
    assert run["accounting"]["balanced"]
    assert run["accounting"]["rows_in"] == 3 * 2 + 3
    assert run["manifest"] == remote_manifest
    assert run["pipeline_options"]["s3_secret_access_key"] == "<redacted>"
    # the readers read the bucket too
    assert main(["show", remote]) == EXIT_OK

    # a rerun on the bucket reuses the answers kept there: not one judge call
    rerun = f"s3://{s3_bucket}/runs/r2"
    assert _judge(remote_manifest, rerun, "--reuse", remote) == EXIT_OK
    again = json.loads(fs.cat_file(f"{rerun[5:]}/run.json"))
    assert again["counters"]["claimdiff.judge/reused"] == run["accounting"]["rows_judged"]
    assert again["counters"].get("claimdiff.judge/to_judge", 0) == 0
    assert again["reused_from"] == [remote]
    assert _table(rerun, "rewards") == _table(remote, "rewards")

    everything = json.dumps(run) + capsys.readouterr().out + caplog.text
    for dataset in ("differences", "rewards", "failures"):
        everything += json.dumps(_table(remote, dataset), default=str)
    assert SECRET not in everything


@pytest.mark.slow
def test_beams_endpoint_option_reaches_fsspec_too(tmp_path: Path, s3_bucket: str, s3_server: str,
                                                  monkeypatch: pytest.MonkeyPatch):
    _, remote_manifest = _upload(tmp_path, s3_bucket)
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # only the option names the store now
    monkeypatch.delenv(ENDPOINT_ENV, raising=False)
    remote = f"s3://{s3_bucket}/runs/endpoint"
    assert _judge(remote_manifest, remote, f"--s3_endpoint_url={s3_server}") == EXIT_OK
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    assert _fs().exists(f"{remote[5:]}/run.json")


def test_a_held_claim_on_a_bucket_refuses_a_second_run(tmp_path: Path, s3_bucket: str,
                                                       capsys: pytest.CaptureFixture[str]):
    _, remote_manifest = _upload(tmp_path, s3_bucket)
    remote = f"s3://{s3_bucket}/runs/held"
    with OutputClaim.acquire(remote, "other-run", heartbeat_s=None):
        assert _judge(remote_manifest, remote) == EXIT_USAGE
        assert "in use by run other-run" in capsys.readouterr().err
        assert not _fs().exists(f"{remote[5:]}/rewards")
        assert _fs().exists(f"{remote[5:]}/{CLAIM_NAME}")


@pytest.mark.slow
def test_a_bucket_folder_without_run_json_is_refused_until_committed(
        tmp_path: Path, s3_bucket: str, capsys: pytest.CaptureFixture[str]):
    _, remote_manifest = _upload(tmp_path, s3_bucket)
    remote = f"s3://{s3_bucket}/runs/commit"
    assert _judge(remote_manifest, remote) == EXIT_OK
    fs = _fs()
    fs.rm_file(f"{remote[5:]}/run.json")  # what a run killed before its commit leaves
    assert main(["show", remote]) == UNREADABLE
    assert "holds no finished run" in capsys.readouterr().err
    assert _judge(remote_manifest, remote) == EXIT_USAGE  # an incomplete run is not mixed in
    assert "incomplete run" in capsys.readouterr().err
    assert _judge(remote_manifest, remote, "--overwrite") == EXIT_OK
    assert main(["show", remote]) == EXIT_OK


def test_a_scheme_without_its_filesystem_names_the_extra():
    error = missing_filesystem("gs://b/m.jsonl", ImportError("No module named 'gcsfs'"))
    assert "pip install 'claimdiff[gcp]'" in str(error)
    error = missing_filesystem("https://h/m.jsonl", ImportError("aiohttp"))
    assert "claimdiff[http]" in str(error)


def test_a_manifest_and_its_images_over_http(tmp_path: Path):
    """fsspec's HTTP filesystem (claimdiff[http]) reads the manifest; claimdiff's own vetted
    client fetches the images it names, relative URLs resolved against the manifest's."""
    from tests.pipeline_support import run
    from tests.support.http_servers import body, serve

    manifest = Path(write_sample(str(tmp_path / "data"), images=2, actors=2, seed=1,
                                 broken=False))
    routes = {"/data/manifest.jsonl": body(manifest.read_bytes(), content_type="text/plain")}
    for image in (manifest.parent / "images").iterdir():
        routes[f"/data/images/{image.name}"] = body(image.read_bytes())
    with serve(routes) as base:
        result = run(f"{base}/data/manifest.jsonl", tmp_path / "out",
                     {"images.allowed_schemes": ["http"], "images.allowed_hosts": ["127.0.0.1"]})
    assert result.status == "ok"
    assert result.accounting.rows_judged == 2 * 2


def test_the_claim_on_a_bucket_is_a_conditional_put_under_contention(
        s3_bucket: str, caplog: pytest.LogCaptureFixture):
    import threading

    from claimdiff.errors import ClaimHeldError

    fs = _fs()
    fs.pipe_file(f"{s3_bucket}/probe", b"1", mode="create")
    with pytest.raises(FileExistsError):  # the store itself refuses: If-None-Match: *
        fs.pipe_file(f"{s3_bucket}/probe", b"2", mode="create")
    output = f"s3://{s3_bucket}/runs/contended"
    winners: list[str] = []
    refused: list[str] = []
    barrier = threading.Barrier(8)

    def contend(i: int) -> None:
        barrier.wait()
        try:
            claim = OutputClaim.acquire(output, f"run-{i}", heartbeat_s=None)
        except ClaimHeldError as exc:
            refused.append(str(exc))
        else:
            winners.append(claim.info.run_id)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    assert len(refused) == 7
    assert "cannot create files exclusively" not in caplog.text
