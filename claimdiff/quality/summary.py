"""A plain-text summary of a run: where rows went, outcomes, and mean rewards per group."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any, cast

from claimdiff.io.datasets import read_columns
from claimdiff.pipelines import outputs


def _mean(values: list[float]) -> str:
    return f"{sum(values) / len(values):.3f}" if values else "-"


def _stat(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:g}" if float(value).is_integer() else f"{value:.3f}"


def _group_of(row: dict[str, Any], by: str) -> str:
    if by in row:
        return str(row[by])
    metadata = json.loads(row.get("metadata") or "{}")
    return str(metadata.get(by, "?"))


def summarise(output: str, *, by: str = "actor_id", examples: int = 3) -> str:
    """Accounting, outcome counts, mean rewards per `by` (a column or a metadata key), examples."""
    run = outputs.read_run_manifest(output)
    rewards = read_columns(
        output, outputs.REWARDS,
        ["actor_id", "sample_id", "status", "rewards", "stats", "metadata"])
    differences = read_columns(
        output, outputs.DIFFERENCES,
        ["actor_id", "aspect", "actor_claim", "reference_claim", "judgment", "outcomes",
         "actor_error_type", "actor_severity"])
    acc = run.accounting
    outcomes: Counter[str] = Counter()
    for listed in differences["outcomes"]:
        outcomes.update(cast(list[str], listed))
    lines = [
        f"run {run.run_id} ({run.status}), judge {run.judge_model}, prompt {run.prompt_version}",
        f"rows in {acc.rows_in} = judged {acc.rows_judged} + failed {acc.rows_failed}"
        f"  {acc.failures_by_stage or ''}",
        "",
        "outcomes: " + ", ".join(f"{name} {count}" for name, count in sorted(outcomes.items())),
    ]
    if run.judge_stats:
        lines.append("judge stats: " + ", ".join(
            f"{name} {_stat(value)}" for name, value in run.judge_stats.items()))
    lines.append("")

    rows = [dict(zip(rewards, values, strict=True)) for values in zip(*rewards.values(),
                                                                      strict=True)]
    presets: list[str] = []
    groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row["status"] != "ok":
            continue
        group = groups[_group_of(row, by)]
        for value in row["rewards"]:
            if value["name"] not in presets:
                presets.append(value["name"])
            if value["value"] is not None:  # a preset with nothing to score on this row
                group[value["name"]].append(value["value"])
        group["hallucinations"].append(row["stats"]["n_actor_hallucination"])
        group["omissions"].append(row["stats"]["n_actor_omission"])
    columns = [*presets, "hallucinations", "omissions"]
    width = max([len(by), *(len(g) for g in groups)]) + 2
    lines.append(f"{by:<{width}}{'rows':>6}" + "".join(f"{c:>15}" for c in columns))
    for name in sorted(groups):
        group = groups[name]
        count = len(group["hallucinations"])
        lines.append(f"{name:<{width}}{count:>6}" + "".join(
            f"{_mean(group[c]):>15}" for c in columns))

    if examples and differences["aspect"]:
        lines += ["", "example differences:"]
        for index in range(min(examples, len(differences["aspect"]))):
            lines.append(
                f"  [{differences['actor_id'][index]}] {differences['aspect'][index]}: actor "
                f"{differences['actor_claim'][index]!r} vs reference "
                f"{differences['reference_claim'][index]!r} -> {differences['judgment'][index]}"
                f" {differences['outcomes'][index]}"
                + (f" {differences['actor_error_type'][index]} (severity "
                   f"{differences['actor_severity'][index]})"
                   if differences["actor_error_type"][index] else ""))
    return "\n".join(lines)
