"""A `latest` pointer: one small JSON file naming the newest complete, ok run.

Downstream jobs (training, reports, a scheduler's next step) should not guess which run folder
is finished. `claimdiff judge --latest URI` writes `URI` after the run has committed its
`run.json`, and only when the run's status is `ok`: so the pointer never names a run that is
still running, was killed, or breached its thresholds. The write is atomic: a temporary file
renamed over the old pointer on a local disk, one PUT on an object store (a reader sees the old
pointer or the new one, never half of one).

The pointer also carries the sha256 of the `run.json` it points to, so a reader can tell that
the folder was not replaced after the pointer was written (`resolve_latest` checks it). With
several schedulers publishing to one pointer, the last run to finish wins; a run never moves
the pointer back to a run that finished earlier than the one it names.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from claimdiff.errors import IncompleteRunError
from claimdiff.io.datasets import RUN_MANIFEST
from claimdiff.io.fs import filesystem, join, write_whole
from claimdiff.schemas.run import RunManifest


def _run_json_sha256(output: str) -> str:
    fs, root = filesystem(output)
    return hashlib.sha256(fs.cat_file(join(root, RUN_MANIFEST))).hexdigest()


def read_pointer(pointer: str) -> dict[str, Any] | None:
    fs, path = filesystem(pointer)
    try:
        raw: Any = json.loads(fs.cat_file(path))
    except (FileNotFoundError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def publish_latest(pointer: str, run: RunManifest) -> bool:
    """Point `pointer` at `run` (committed, status ok); False when it was left alone."""
    if run.status != "ok":
        return False
    current = read_pointer(pointer)
    if current is not None and str(current.get("finished_at", "")) > run.finished_at:
        return False  # a later run already published
    body = {"run_id": run.run_id, "output": run.output, "status": run.status,
            "finished_at": run.finished_at, "run_json_sha256": _run_json_sha256(run.output),
            "rows_in": run.accounting.rows_in, "rows_judged": run.accounting.rows_judged,
            "rows_failed": run.accounting.rows_failed}
    data = json.dumps(body, indent=2).encode() + b"\n"
    fs, path = filesystem(pointer)
    write_whole(fs, path, data)
    return True


def resolve_latest(pointer: str) -> str:
    """The run folder the pointer names, checked to still hold the run it was written for."""
    current = read_pointer(pointer)
    if current is None or "output" not in current:
        raise IncompleteRunError(f"{pointer} is not a latest-run pointer (missing or unreadable)")
    output = str(current["output"])
    try:
        digest = _run_json_sha256(output)
    except FileNotFoundError:
        raise IncompleteRunError(
            f"{pointer} names {output}, which holds no finished run any more") from None
    if digest != current.get("run_json_sha256"):
        raise IncompleteRunError(
            f"{pointer} names {output}, whose run.json changed after the pointer was written "
            "(the folder was rerun or replaced)")
    return output
