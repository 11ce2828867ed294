"""The fault suite, part 2: inputs that would lose or poison a whole run are refused before it
starts, with exit 2 and one line naming the problem, and nothing is written."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from claimdiff.cli import main
from claimdiff.io.claims import CLAIM_NAME, ClaimInfo
from claimdiff.synth.render import png_bytes
from tests.conftest import diff, gold

ROW = {"image": "img/a.png", "reference": "A dog.", "caption": "A cat.",
       "gold": gold(diff("animal", "A cat.", "A dog.", "reference", ("object_hallucination", 3)))}
ALIAS_BOMB = "".join(
    [f"l{i}: &l{i} [{', '.join(['*l' + str(i - 1)] * 9)}]\n" for i in range(1, 9)]).replace(
    "l1: &l1 [*l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0]", "l1: &l1 [x, x, x, x, x, x, x, x, x]")


@dataclass(frozen=True)
class Refusal:
    setup: Callable[[Path], list[str]]  # builds the inputs, returns the command's arguments
    says: str


def _data(tmp: Path) -> Path:
    (tmp / "img").mkdir(exist_ok=True)
    (tmp / "img" / "a.png").write_bytes(png_bytes(Image.new("RGB", (8, 8))))
    manifest = tmp / "m.jsonl"
    manifest.write_text(json.dumps(ROW) + "\n")
    return manifest


def judge(tmp: Path, *extra: str, manifest: Path | None = None,
          output: Path | str | None = None) -> list[str]:
    return ["judge", "--manifest", str(manifest or _data(tmp)), "--output",
            str(output or tmp / "out"), *extra]


def with_config(text: str) -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        (tmp / "c.yaml").write_text(text)
        return judge(tmp, "--config", str(tmp / "c.yaml"))
    return setup


def manifest_dir(tmp: Path) -> list[str]:
    (tmp / "m.jsonl").mkdir()
    return judge(tmp, manifest=tmp / "m.jsonl")


def repeated_header(tmp: Path) -> list[str]:
    (tmp / "m.csv").write_text("image,caption,caption\na.png,x,y\n")
    return judge(tmp, manifest=tmp / "m.csv")


def corrupt_parquet(tmp: Path) -> list[str]:
    pq.write_table(pa.Table.from_pylist([{"image": "a", "reference": "b", "caption": "c"}]),
                   tmp / "m.parquet")
    data = (tmp / "m.parquet").read_bytes()
    (tmp / "m.parquet").write_bytes(data[:-8])
    return judge(tmp, manifest=tmp / "m.parquet")


def output_is_file(tmp: Path) -> list[str]:
    (tmp / "out").write_text("not a folder")
    return judge(tmp)


def output_in_file(tmp: Path) -> list[str]:
    (tmp / "file").write_text("x")
    return judge(tmp, output=tmp / "file" / "out")


def live_claim(tmp: Path) -> list[str]:
    (tmp / "out").mkdir()
    now = time.time() - 120
    info = ClaimInfo(run_id="other-run", host=socket.gethostname(), pid=os.getpid(),
                     started_at=now, heartbeat_at=now)
    (tmp / "out" / CLAIM_NAME).write_bytes(info.to_json())
    return judge(tmp)


REFUSALS: dict[str, Refusal] = {
    "manifest-is-a-directory": Refusal(manifest_dir, "is a directory"),
    "manifest-missing": Refusal(lambda t: judge(t, manifest=t / "nope.jsonl"),
                                "manifest not found"),
    "csv-header-repeats": Refusal(repeated_header, "repeats the column name(s) ['caption']"),
    "parquet-corrupt": Refusal(corrupt_parquet, "not a readable Parquet file"),
    "output-is-a-file": Refusal(output_is_file, "is a file, not a folder"),
    "output-inside-a-file": Refusal(output_in_file, "inside a file"),
    "output-not-writable": Refusal(lambda t: judge(t, output="/proc/claimdiff-out"),
                                   "not writable"),
    "output-claimed-by-a-live-run": Refusal(live_claim, "is in use by run other-run (pid"),
    "yaml-alias-bomb": Refusal(with_config(ALIAS_BOMB), "alias bomb"),
    "yaml-repeated-key": Refusal(with_config("judge: {}\njudge: {}\n"), "given twice"),
    "yaml-too-deep": Refusal(with_config("a: " + "[" * 5000 + "]" * 5000 + "\n"),
                             "nested"),
    "yaml-not-a-mapping": Refusal(with_config("- a\n- b\n"), "must be a YAML mapping"),
    "config-unknown-key": Refusal(with_config("judge:\n  modle: x\n"),
                                  "unknown key judge.modle (did you mean judge.mode or "
                                  "judge.model?)"),
    "set-unknown-key": Refusal(lambda t: judge(t, "--set", "judge.max_batch_sise=4"),
                               "did you mean judge.max_batch_size"),
    "set-unknown-section": Refusal(lambda t: judge(t, "--set", "judgee.model=x"),
                                   "unknown key judgee (did you mean judge?)"),
    "weights-not-positive": Refusal(with_config("severity:\n  weights: {1: 1, 2: 0, 3: 1}\n"),
                                    "must all be positive"),
    "timeout-infinite": Refusal(lambda t: judge(t, "--set", "judge.openai.timeout_s=.inf"),
                                "finite number"),
    "timeout-zero": Refusal(lambda t: judge(t, "--set", "judge.openai.timeout_s=0"),
                            "greater than 0"),
    "bool-for-a-number": Refusal(lambda t: judge(t, "--set", "judge.max_batch_size=true"),
                                 "valid integer"),
    "string-for-a-number": Refusal(lambda t: judge(t, "--set", "run.max_failure_share='0.5'"),
                                   "valid number"),
    "bool-for-a-severity": Refusal(lambda t: judge(t, "--set", "severity.default=true"),
                                   "integer 1, 2 or 3"),
    "api-key-in-server-args": Refusal(
        lambda t: judge(t, "--set", "judge.openai.server_args=['--api-key=sk-1234567890']"),
        "must not carry --api-key"),
    "api-key-in-server-args-abbreviated": Refusal(
        lambda t: judge(t, "--set", "judge.openai.server_args=['--api_k', 'sk-1234567890']"),
        "must not carry --api-key"),
    "typed-secret-not-echoed": Refusal(
        lambda t: judge(t, "--set", "judge.openai.base_url=http://me:hunter2@h/v1",
                        "--set", "judge.openai.timeout_s=nope"), "valid number"),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_refused_before_the_run_with_exit_2_and_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str):
    refusal = REFUSALS[name]
    args = refusal.setup(tmp_path)
    started = time.monotonic()
    code = main(args)
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.count("\n") == 0, err
    assert err.startswith("claimdiff: error: "), err
    assert refusal.says in err, err
    assert "hunter2" not in err
    assert "sk-1234567890" not in err
    assert "errors.pydantic.dev" not in err
    assert elapsed < 10, f"refusing took {elapsed:.1f} s"  # well under a second unloaded
    out = tmp_path / "out"
    if out.is_dir():
        assert not (out / "run.json").exists()
        assert sorted(p.name for p in out.iterdir()) in ([], [CLAIM_NAME])


def test_an_empty_section_is_an_empty_section(tmp_path: Path):
    (tmp_path / "c.yaml").write_text("judge:\n  # nothing here yet\nrun:\n")
    assert main([*judge(tmp_path), "--config", str(tmp_path / "c.yaml")]) == 0
