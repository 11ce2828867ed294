"""`run.json`: provenance and the accounting of every input row."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class FailureReason(BaseModel):
    """One kind of failure of a run, with how often it happened and one message as it was."""

    stage: str
    error_class: str
    reason: str = Field(description="the message with its row-specific parts (paths, numbers, "
                        "quoted values) replaced by placeholders, so alike failures group")
    count: int
    example: str = Field(description="one message of this kind, as written")


class Accounting(BaseModel):
    """Where every input row went. `rows_in == rows_judged + rows_failed` must hold."""

    rows_in: int = Field(description="manifest rows read, malformed ones included")
    rows_judged: int = Field(description="rows with an ok reward row")
    rows_failed: int = Field(description="rows in failures/")
    rewards_failed: int = Field(description="reward rows with status failed (null rewards)")
    differences: int
    failures_by_stage: dict[str, int]
    failures_by_reason: dict[str, int]
    duplicate_rows: int = Field(
        default=0, description="input rows (manifest, row index) accounted for more than once")
    failed_rewards_without_failure: int = Field(
        default=0, description="failed reward rows with no failure row for the same input row")
    failures_without_reward: int = Field(
        default=0, description="failure rows of validated input rows with no null reward row")
    balanced: bool = Field(description="rows_in == rows_judged + rows_failed, no input row is "
                           "accounted for twice, and every failed reward row has its failure row")
    top_failure_reasons: list[FailureReason] = Field(
        default_factory=list, description="the most common kinds of failure, most common first")

    @property
    def failure_share(self) -> float:
        return self.rows_failed / self.rows_in if self.rows_in else 0.0


class ShardFile(BaseModel):
    """One Parquet file a run wrote, as `run.json` lists it."""

    name: str
    rows: int


class RunManifest(BaseModel):
    """Everything needed to tell what a run did and to reproduce it."""

    run_id: str
    status: str = Field(description="ok | failure_threshold_exceeded | accounting_mismatch")
    manifest: str
    output: str
    started_at: str
    finished_at: str
    duration_s: float
    code_version: str
    judge_backend: str
    judge_model: str
    prompt_name: str
    prompt_version: str
    decoding: dict[str, Any]
    config: dict[str, Any]
    config_sha256: str
    pipeline_options: dict[str, Any]
    timings: dict[str, float]
    counters: dict[str, int]
    judge_stats: dict[str, float | None] = Field(
        default_factory=dict,
        description="prefix-cache hits, two-pass disagreements and position-swap consistency, "
        "where the backend or the configuration provides them")
    distributions: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Beam distributions: count, sum, min, max, mean")
    accounting: Accounting
    failure_share: float
    max_failure_share: float
    judge_model_sha256: str | None = Field(
        default=None, description="content digest of the local model folder the judge "
        "loaded (`sha256:...`), the judge's identity in cache keys; null for hub ids and "
        "remote endpoints, named by judge_model")
    reused_from: list[str] = Field(
        default_factory=list, description="run folders whose kept answers this run reused by "
        "cache key (--reuse, and its own folder for --resume); counters judge/reused and "
        "judge/to_judge say how many rows each way")
    files: dict[str, list[ShardFile]] = Field(
        default_factory=dict, description="every shard the run wrote, per dataset: readers read "
        "exactly these (runs written before this field: whatever shards are there)")
