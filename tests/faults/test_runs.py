"""The fault suite, part 3: whole runs that race, get killed, fail, or fill the disk.

These run the real `claimdiff` command in subprocesses. None of them depends on timing: a run
killed at any moment must leave a complete run or one that every reader refuses, whenever the
kill lands; two runs started together must end with one run, whichever wins.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from claimdiff.errors import ClaimHeldError
from claimdiff.io.claims import CLAIM_NAME, OutputClaim, read_claim
from claimdiff.synth.render import png_bytes
from tests.conftest import diff, gold

CLAIMDIFF = [sys.executable, "-m", "claimdiff.cli"]


def _manifest(folder: Path, rows: int) -> Path:
    (folder / "img").mkdir(parents=True, exist_ok=True)
    for i in range(4):
        (folder / "img" / f"{i}.png").write_bytes(
            png_bytes(Image.new("RGB", (16, 16), (40 * i, 20, 200))))
    label = gold(diff("animal", "A cat.", "A dog.", "reference", ("object_hallucination", 3)))
    manifest = folder / "m.jsonl"
    with manifest.open("w") as handle:
        for i in range(rows):
            handle.write(json.dumps({"image": f"img/{i % 4}.png", "reference": "A dog.",
                                     "caption": f"A cat number {i}.", "gold": label}) + "\n")
    return manifest


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLAIMDIFF, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


@pytest.mark.slow
def test_two_runs_into_one_output_end_with_one_whole_run(tmp_path: Path):
    manifest = _manifest(tmp_path, 400)
    out = tmp_path / "out"
    runs = [subprocess.Popen([*CLAIMDIFF, "judge", "--manifest", str(manifest), "--output",
                              str(out), "--run-id", f"run-{i}"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for i in range(2)]
    results = []
    for run in runs:
        _, err = run.communicate(timeout=600)
        results.append((run.returncode, err))
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "is in use by run" in loser or "already holds a run" in loser
    winner = f"run-{[code for code, _ in results].index(0)}"
    saved = json.loads((out / "run.json").read_text())
    assert saved["run_id"] == winner
    assert saved["accounting"]["balanced"]
    assert saved["accounting"]["rows_in"] == 400
    assert not (out / CLAIM_NAME).exists()


@pytest.mark.parametrize("url", ["file", "memory"])
def test_exclusive_claims_under_contention(tmp_path: Path, url: str):
    output = str(tmp_path / "out") if url == "file" else f"memory://claims-{os.getpid()}/out"
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
    holder = read_claim(output)
    assert holder is not None
    assert holder.run_id == winners[0]
    assert all(f"in use by run {winners[0]}" in message for message in refused)


def test_exclusive_claims_on_an_s3_compatible_store(s3_bucket: str):
    output = f"s3://{s3_bucket}/runs/r1"
    first = OutputClaim.acquire(output, "first", heartbeat_s=None)
    with pytest.raises(ClaimHeldError, match="is in use by run first"):
        OutputClaim.acquire(output, "second", heartbeat_s=None)
    first.release()
    OutputClaim.acquire(output, "second", heartbeat_s=None).release()


@pytest.mark.slow
@pytest.mark.parametrize("after_s", [0.5, 4.0])
def test_a_killed_run_is_complete_or_refused_by_every_reader(tmp_path: Path, after_s: float):
    manifest = _manifest(tmp_path, 1500)
    out = tmp_path / "out"
    process = subprocess.Popen([*CLAIMDIFF, "judge", "--manifest", str(manifest), "--output",
                                str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(after_s)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    complete = (out / "run.json").exists()
    for reader in (["show", str(out)], ["eval", "--run", str(out), "--gold", str(manifest)],
                   ["report", str(out), "--no-html"]):
        result = _cli(*reader)
        if complete:
            assert result.returncode in (0, 4), (reader, result.stderr)
        else:
            assert result.returncode == 5, (reader, result.stdout, result.stderr)
            assert result.stderr.strip().count("\n") == 0, result.stderr
            assert "holds no finished run" in result.stderr or "does not exist" in (
                result.stderr)
    # the claim a killed run leaves is named stale, and taken over only when asked
    rerun = _cli("judge", "--manifest", str(manifest), "--output", str(out), "--overwrite")
    if (out / CLAIM_NAME).exists() and rerun.returncode == 2:
        assert "looks stale" in rerun.stderr
        assert "--take-over" in rerun.stderr
        rerun = _cli("judge", "--manifest", str(manifest), "--output", str(out),
                     "--overwrite", "--take-over")
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads((out / "run.json").read_text())["accounting"]["balanced"]
    assert not list(out.glob("*/beam-temp-*"))


def test_staging_folders_are_removed_on_overwrite_success_and_failure(tmp_path: Path):
    manifest = _manifest(tmp_path, 3)
    out = tmp_path / "out"
    (out / "differences" / "beam-temp-part-leftover").mkdir(parents=True)
    (out / "differences" / "beam-temp-part-leftover" / "x.parquet").write_bytes(b"x")
    ok = _cli("judge", "--manifest", str(manifest), "--output", str(out), "--overwrite")
    assert ok.returncode == 0, ok.stderr
    assert not list(out.glob("*/beam-temp-*"))
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    failed = _cli("judge", "--manifest", str(manifest), "--output", str(out), "--overwrite",
                  "--judge", "transformers", "--model", str(broken))
    assert failed.returncode == 3, failed.stderr
    # Beam's own error line may come first; the command ends with one line that names it
    assert failed.stderr.strip().splitlines()[-1].startswith("claimdiff: error: the pipeline")
    assert not list(out.glob("*/beam-temp-*"))
    assert not (out / "run.json").exists()
    assert not (out / CLAIM_NAME).exists()
    assert _cli("show", str(out)).returncode == 5


def _can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.slow
def test_a_full_disk_is_a_clear_error_with_its_own_exit_code(tmp_path: Path):
    if not _can_mount_tmpfs():
        if os.environ.get("CI"):
            pytest.fail("cannot mount a small tmpfs (unshare --user --mount) on this CI machine")
        pytest.skip("cannot mount a small tmpfs here (unshare --user --mount)")
    manifest = _manifest(tmp_path, 600)
    small = tmp_path / "small"
    small.mkdir()
    script = (f"mount -t tmpfs -o size=96k tmpfs {small} && exec {' '.join(CLAIMDIFF)} judge "
              f"--manifest {manifest} --output {small}/out --set run.num_shards=1")
    result = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                             script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 6, (result.returncode, result.stdout, result.stderr)
    # Beam's own error line may come first; the command ends with one line that names it
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("claimdiff: error: no space left on the filesystem of"), last
    assert "Traceback" not in result.stderr
