"""The exit status of every `claimdiff` command, in one place (README: Failure handling).

- 0: ok.
- 1: `judge`: the run finished, but its failure share passed `run.max_failure_share` or its
  accounting did not balance (both written to `run.json`).
- 2: a usage or configuration error, or a refusal, found before anything ran.
- 3: the pipeline itself failed (no `run.json`: the run is incomplete).
- 4: `report`: the run breached at least one expectation.
- 5: a run folder cannot be read: incomplete (no `run.json`: killed, or still running) or
  corrupt.
- 6: the output's filesystem is full (or over quota).
- 7: `judge`: the run stopped early, its failure share over `run.max_failure_share` after
  `run.early_stop_min_rows` rows (no `run.json`; `--resume` finishes it once fixed).
"""

OK = 0
RUN_FAILED = 1
USAGE = 2
PIPELINE_FAILED = 3
BREACHED = 4
UNREADABLE = 5
NO_SPACE = 6
EARLY_STOPPED = 7
