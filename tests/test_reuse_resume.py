"""Incremental and resumable runs: answers kept as the run goes, reused by content key.

A rerun over an unchanged corpus makes no judge call; a changed prompt, decoding parameter or
caption is judged again, exactly where it changed; a run killed midway is finished by
`--resume` without judging again what it kept; a broken judge stops the run early."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from claimdiff.cli import main
from claimdiff.errors import ConfigError, EarlyStopError, IncompleteRunError
from claimdiff.io.datasets import read_run_manifest
from claimdiff.judges.answers import answer_files, read_answer_file, read_answers, write_answers
from claimdiff.judges.judge_setup import JudgeSetup
from claimdiff.synth import write_synthetic
from tests.pipeline_support import read, run
from tests.support.judging import LoggedLabels
from tests.support.judging import first_pass_requests as calls

REPO = Path(__file__).parents[1]
REUSED, TO_JUDGE = "claimdiff.judge/reused", "claimdiff.judge/to_judge"
DECODED, NOT_DECODED = "claimdiff.images/images_loaded", "claimdiff.images/images_not_decoded"
# what a reused row may differ in from the same row judged afresh
RUN_SPECIFIC = ("run_id", "judged_in")


def factory(log: Path) -> Any:
    def build(setup: JudgeSetup) -> LoggedLabels:
        return LoggedLabels(log)

    return build


def comparable(output: Path, dataset: str = "rewards") -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in RUN_SPECIFIC}
            for row in read(output, dataset)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(write_synthetic(str(tmp_path_factory.mktemp("corpus") / "data"), n=4, seed=3))


def rows_of(manifest: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in manifest.read_text().splitlines()]


def test_a_rerun_of_an_unchanged_corpus_makes_no_judge_call(corpus: Path,
                                                            tmp_path: Path) -> None:
    first_log, again_log = tmp_path / "first.log", tmp_path / "again.log"
    first = run(corpus, tmp_path / "first", backend_factory=factory(first_log))
    rows = first.accounting.rows_judged
    assert first.status == "ok"
    assert calls(first_log) == rows
    assert first.counters.get(REUSED, 0) == 0
    assert len(read_answers([str(tmp_path / "first")])) == rows

    again = run(corpus, tmp_path / "again", backend_factory=factory(again_log),
                reuse=(str(tmp_path / "first"),))
    assert again.status == "ok"
    assert calls(again_log) == 0
    assert again.counters[REUSED] == rows
    assert again.counters.get(TO_JUDGE, 0) == 0
    # read and hashed for the key, never decoded: no row of them goes to the judge
    assert again.counters.get(DECODED, 0) == 0
    assert again.counters[NOT_DECODED] == first.counters[DECODED] == len(
        {r["image"] for r in rows_of(corpus)})
    assert again.reused_from == [str(tmp_path / "first")]
    assert comparable(tmp_path / "again") == comparable(tmp_path / "first")
    assert comparable(tmp_path / "again", "differences") == comparable(
        tmp_path / "first", "differences")
    assert {r["judged_in"] for r in read(tmp_path / "again", "rewards")} == {first.run_id}
    # the new run keeps the answers it reused: it can be reused in turn
    assert read_answers([str(tmp_path / "again")]).keys() == read_answers(
        [str(tmp_path / "first")]).keys()


@pytest.mark.parametrize(("name", "overrides"), [
    ("prompt", {"judge.mode": "two_pass"}),
    ("decoding parameter", {"judge.max_new_tokens": 1234}),
])
def test_a_changed_judge_is_judged_again(corpus: Path, tmp_path: Path, name: str,
                                         overrides: dict[str, Any]) -> None:
    first = run(corpus, tmp_path / "first", backend_factory=factory(tmp_path / "first.log"))
    log = tmp_path / "changed.log"
    changed = run(corpus, tmp_path / "changed", overrides, backend_factory=factory(log),
                  reuse=(str(tmp_path / "first"),))
    assert changed.status == "ok", name
    assert calls(log) == first.accounting.rows_judged, name
    assert changed.counters.get(REUSED, 0) == 0, name


def test_only_the_changed_rows_are_judged_again(corpus: Path, tmp_path: Path) -> None:
    run(corpus, tmp_path / "first", backend_factory=factory(tmp_path / "first.log"))
    rows = rows_of(corpus)
    rows[0]["caption"] += " A second sentence."
    rows[2]["reference"] += " Also a cloud."
    rows.append(dict(rows[1], caption="A caption never judged before."))
    edited = corpus.parent / "edited.jsonl"
    edited.write_text("".join(json.dumps(r) + "\n" for r in rows))
    log = tmp_path / "edited.log"
    result = run(edited, tmp_path / "edited", backend_factory=factory(log),
                 reuse=(str(tmp_path / "first"),))
    assert calls(log) == 3
    assert result.counters[REUSED] == len(rows) - 3
    assert result.accounting.rows_judged == len(rows)
    # only the images with a row to judge are decoded
    changed = {rows[0]["image"], rows[2]["image"], rows[1]["image"]}
    assert result.counters[DECODED] == len(changed)
    assert result.counters.get(NOT_DECODED, 0) == len({r["image"] for r in rows}) - len(changed)


def _tamper_one_answer(run_folder: Path, answer: str) -> None:
    """Replace the first kept answer of `run_folder` with `answer` (same key)."""
    pairs = [pair for uri in answer_files([str(run_folder)]) for pair in read_answer_file(uri)]
    for old in (run_folder / "answers").iterdir():
        old.unlink()
    write_answers(str(run_folder), [(pairs[0][0], answer), *pairs[1:]])


@pytest.mark.parametrize("answer", [
    "not json at all",
    json.dumps({"judged_in": "r"}),  # no output
    json.dumps({"judged_in": "r", "attempts": 1,
                "output": {"differences": [{"judgment": "maybe"}]}}),  # not a judge output
    "[]",
])
def test_a_kept_answer_that_is_no_longer_an_answer_is_judged_again(
        corpus: Path, tmp_path: Path, answer: str) -> None:
    first = run(corpus, tmp_path / "first", backend_factory=factory(tmp_path / "first.log"))
    _tamper_one_answer(tmp_path / "first", answer)
    log = tmp_path / "again.log"
    again = run(corpus, tmp_path / "again", backend_factory=factory(log),
                reuse=(str(tmp_path / "first"),))
    assert again.status == "ok"
    assert again.counters["claimdiff.judge/answers_unreadable"] == 1
    assert calls(log) == 1
    assert again.counters[REUSED] == first.accounting.rows_judged - 1
    assert comparable(tmp_path / "again") == comparable(tmp_path / "first")


def test_an_image_over_a_lowered_bound_fails_even_with_answers_to_reuse(
        corpus: Path, tmp_path: Path) -> None:
    first = run(corpus, tmp_path / "first", backend_factory=factory(tmp_path / "first.log"))
    log = tmp_path / "again.log"
    again = run(corpus, tmp_path / "again", {"images.max_decode_pixels": 16,
                                             "run.max_failure_share": 1.0},
                backend_factory=factory(log), reuse=(str(tmp_path / "first"),))
    assert calls(log) == 0
    assert again.counters.get(REUSED, 0) == 0
    failures = read(tmp_path / "again", "failures")
    assert len(failures) == first.accounting.rows_judged
    assert {f["stage"] for f in failures} == {"load_image"}
    assert all("max_decode_pixels=16" in f["message"] for f in failures)


def test_reuse_refuses_what_is_not_a_run(corpus: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no answers/ there"):
        run(corpus, tmp_path / "out", reuse=(str(tmp_path / "empty"),))
    assert not (tmp_path / "out").exists(), "refused before anything was claimed or written"


KILLER = """
import os, signal, sys
from pathlib import Path
from claimdiff.judges.backends.labels import LabelsBackend
from tests.pipeline_support import run

LOG, AFTER = Path(sys.argv[3]), int(sys.argv[4])

class KilledAfter:
    model_id = "labels"
    def __init__(self):
        self._labels = LabelsBackend()
    def judge(self, requests, decoding):
        done = len(LOG.read_text().split()) if LOG.exists() else 0
        if done >= AFTER:
            os.kill(os.getpid(), signal.SIGKILL)  # no finaliser, no flush: a machine lost
        with LOG.open("a") as handle:  # LoggedLabels' log: a line of roles per call
            handle.write(" ".join(str(r.role) for r in requests) + "\\n")
        return self._labels.judge(requests, decoding)

run(sys.argv[1], sys.argv[2], {"judge.max_batch_size": 2, "judge.min_batch_size": 2,
                               "run.persist_every": 1},
    backend_factory=lambda setup: KilledAfter())
"""


def test_a_killed_run_is_resumed_without_judging_again_what_it_kept(
        corpus: Path, tmp_path: Path) -> None:
    output, killed_log = tmp_path / "run", tmp_path / "killed.log"
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLER), str(corpus),
                           str(output), str(killed_log), "6"],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == -9, done.stderr
    kept = read_answers([str(output)])
    assert 0 < len(kept) <= calls(killed_log) == 6
    with pytest.raises(IncompleteRunError):
        read_run_manifest(str(output))
    # the same command again is refused, and says how to go on
    with pytest.raises(ConfigError, match="--resume finishes the run it left"):
        run(corpus, output)
    with pytest.raises(ConfigError, match="pass --resume to finish it"):
        run(corpus, output, take_over=True)

    resumed_log = tmp_path / "resumed.log"
    resumed = run(corpus, output, backend_factory=factory(resumed_log), resume=True)
    assert resumed.status == "ok"
    total = resumed.accounting.rows_judged
    assert resumed.counters[REUSED] == len(kept)
    assert calls(resumed_log) == total - len(kept)
    run(corpus, tmp_path / "fresh", backend_factory=factory(tmp_path / "fresh.log"))
    assert comparable(output) == comparable(tmp_path / "fresh")
    with pytest.raises(ConfigError, match="nothing to resume"):
        run(corpus, output, resume=True)


def test_a_run_cannot_reuse_the_output_it_replaces(corpus: Path, tmp_path: Path) -> None:
    run(corpus, tmp_path / "run")
    for spelled in (str(tmp_path / "run"), str(tmp_path / "run") + "/"):
        with pytest.raises(ConfigError, match="is the --output itself"):
            run(corpus, tmp_path / "run", overwrite=True, reuse=(spelled,))
    assert read_run_manifest(str(tmp_path / "run")).status == "ok"  # left as it was


def test_resume_and_overwrite_exclude_each_other(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pass one of them"):
        run(corpus, tmp_path / "out", resume=True, overwrite=True)


def test_a_broken_judge_stops_the_run_early(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    # the labels judge without gold labels answers nothing: every row fails at the judge
    manifest = Path(write_synthetic(str(tmp_path / "data"), n=6, seed=1))
    rows = rows_of(manifest)
    for row in rows:
        row.pop("gold", None)
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(EarlyStopError, match=r"of the first 5 rows failed"):
        run(manifest, tmp_path / "run", {"run.early_stop_min_rows": 5})
    with pytest.raises(IncompleteRunError):
        read_run_manifest(str(tmp_path / "run"))
    code = main(["judge", "--manifest", str(manifest), "--output", str(tmp_path / "cli"),
                 "--set", "run.early_stop_min_rows=5"])
    assert code == 7
    assert "claimdiff early stop:" in capsys.readouterr().err
