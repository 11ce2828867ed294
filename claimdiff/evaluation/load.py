"""Read a judge run's output folder and a gold manifest into comparable rows.

Gold labels go through the pipeline's own `derive` (outcome table, taxonomy, severity rule), so
gold and predicted rows are `DifferenceRow`s built by the same code and differ only in what the
judge said. The run's configuration (from its `run.json`) is used by default, so a run with a
custom taxonomy or severity rule is scored against gold derived under the same rules.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from claimdiff.config import ClaimdiffConfig
from claimdiff.errors import ConfigError, JudgeOutputError, RowError
from claimdiff.io.datasets import has_dataset, read_rows, read_run_manifest
from claimdiff.io.manifest import expand_manifests, iter_manifest, validate_row
from claimdiff.judges.formats.json_answer import parse_judge_output
from claimdiff.rewards.stats import Provenance, derive
from claimdiff.rewards.taxonomy import TypeMapper
from claimdiff.schemas.judge import JudgeOutput
from claimdiff.schemas.rows import (
    DecodingParams,
    DifferenceRow,
    InputRow,
    RewardRow,
    RewardStats,
)

ModelT = TypeVar("ModelT", bound=BaseModel)
MAX_PROBLEMS = 20  # problem messages kept in the report; the counts cover the rest

GOLD_RUN_ID = "gold"


def resolve_config(run_output: str, config: ClaimdiffConfig | None
                   ) -> tuple[ClaimdiffConfig, str]:
    """The configuration to derive gold with, and where it came from.

    The run must be committed (`IncompleteRunError` otherwise): an unfinished run is never
    scored as if it were a whole one.
    """
    run = read_run_manifest(run_output)
    if config is not None:
        return config, "argument"
    try:
        # JSON mode: run.json holds the configuration as JSON (mapping keys are text there)
        return ClaimdiffConfig.model_validate_json(json.dumps(run.config or {})), "run.json"
    except ValidationError as exc:
        raise ConfigError(
            f"the configuration in {run_output}/run.json does not validate ({exc.error_count()} "
            "errors); pass a config explicitly") from exc


def read_dataset(run_output: str, name: str, model: type[ModelT]) -> list[ModelT]:
    """Every row of one Parquet dataset folder of a run (all shards, sorted)."""
    if not has_dataset(run_output, name):
        raise ConfigError(f"{run_output} has no {name}/ folder: not a claimdiff judge output")
    return read_rows(run_output, name, model)


@dataclass(frozen=True)
class RunOutput:
    """The rows of one judge run."""

    rewards: list[RewardRow]
    differences: list[DifferenceRow]


def load_run(run_output: str) -> RunOutput:
    return RunOutput(rewards=read_dataset(run_output, "rewards", RewardRow),
                  differences=read_dataset(run_output, "differences", DifferenceRow))


@dataclass(frozen=True)
class GoldItem:
    """One gold-labelled manifest row, derived with the pipeline's rules."""

    row: InputRow
    differences: tuple[DifferenceRow, ...]
    stats: RewardStats
    metadata: dict[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        return self.row.sample_id, self.row.actor_id


@dataclass
class GoldSet:
    items: list[GoldItem] = field(default_factory=list)
    rows: int = 0
    invalid_rows: int = 0
    unlabelled: int = 0
    label_errors: int = 0
    problems: list[str] = field(default_factory=list)

    def problem(self, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(message)


def gold_decoding(config: ClaimdiffConfig) -> DecodingParams:
    """Decoding params for gold rows, which no judge decoded: the configured ones stand in.

    Built by the pipeline's own function so the model's fields are always complete.
    """
    from claimdiff.judges.judge_setup import decoding_params

    return decoding_params(config.judge, config.images.max_side)


def derive_gold(row: InputRow, output: JudgeOutput, config: ClaimdiffConfig,
                mapper: TypeMapper, decoding: DecodingParams | None = None
                ) -> tuple[list[DifferenceRow], RewardStats]:
    """Gold difference rows and statistics of one row, exactly as the pipeline derives them."""
    provenance = Provenance(
        run_id=GOLD_RUN_ID, image_sha256="", judge_model=GOLD_RUN_ID,
        prompt_version=GOLD_RUN_ID, decoding=decoding or gold_decoding(config), cache_key="",
        attempts=0)
    return derive(row, output, provenance, config, mapper)


def load_gold(gold_manifest: str, config: ClaimdiffConfig) -> GoldSet:
    """Every usable gold row of a manifest (URI or glob); the rest are counted with a reason."""
    allowed: Sequence[str] = config.images.allowed_schemes
    mapper = TypeMapper(config.taxonomy)
    decoding = gold_decoding(config)
    gold = GoldSet()
    for manifest in expand_manifests(gold_manifest, allowed):
        for index, record in iter_manifest(manifest):
            gold.rows += 1
            where = f"{manifest}#{index}"
            try:
                if isinstance(record, RowError):
                    raise record
                row = validate_row(record, manifest=manifest, row_index=index,
                                   allowed_schemes=allowed)
            except RowError as exc:
                gold.invalid_rows += 1
                gold.problem(f"{where}: invalid row: {exc}")
                continue
            if row.gold is None:
                gold.unlabelled += 1
                continue
            try:
                # the labels judge's JSON parser, so gold reads exactly as a `labels` run reads it
                output = parse_judge_output(row.gold)
                differences, stats = derive_gold(row, output, config, mapper, decoding)
            except (JudgeOutputError, ValueError, KeyError) as exc:
                # derive's own ValueError/KeyError are what the Derive stage turns into failures
                gold.label_errors += 1
                gold.problem(f"{where}: gold is not a valid judge output: "
                             f"{str(exc).splitlines()[0]}")
                continue
            metadata = json.loads(row.metadata) if row.metadata else {}
            gold.items.append(GoldItem(row, tuple(differences), stats, metadata))
    return gold
