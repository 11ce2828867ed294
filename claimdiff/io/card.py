"""A Hugging Face dataset card (`README.md`) in every run folder, and loading its tables.

The card's YAML header declares one `configs:` entry per table the run wrote (`differences`,
`rewards`, `failures`, and `pairs` where a pairs export sits in the run folder), each listing
exactly the shards `run.json` lists, with paths relative to the folder. So
`datasets.load_dataset(run_dir, "rewards")` reads the run as the run itself accounted for it,
wherever the folder has been copied, and never a leftover shard.

An empty table (a clean run's `failures/`) is one typed Parquet file with no rows. `datasets`
5.2 refuses to build a split with no rows ("Instruction "train" corresponds to no data!",
huggingface/datasets PR #8401, still open): `load_table` loads every table like
`load_dataset` and gives an empty table its empty split, typed from the shard's own schema.
"""

from __future__ import annotations

import json
import os
from typing import Any

import yaml

from claimdiff.io.fs import filesystem, join
from claimdiff.schemas.run import RunManifest

CARD_NAME = "README.md"
# tables in the order a reader meets them; a table is in the card when the run folder has it
TABLES = ("rewards", "differences", "failures", "pairs")
SPLIT = "train"
_ABOUT = {
    "rewards": "one row per (sample, actor caption): statistics and every configured reward "
               "(null with a reason where the row failed)",
    "differences": "one row per claim difference the judge found, decided against the image",
    "failures": "one row per input that could not be processed: stage, error class, message",
    "pairs": "DPO preference pairs (TRL's conversational format)",
}


def table_files(output: str, run: RunManifest) -> dict[str, list[str]]:
    """Each table's shard paths relative to the run folder: `run.json`'s listing where the run
    wrote the table, the folder's shards for a later export (`pairs/`)."""
    fs, root = filesystem(output)
    found: dict[str, list[str]] = {}
    for table in TABLES:
        if table in run.files:
            found[table] = [f"{table}/{shard.name}" for shard in run.files[table]]
            continue
        shards = sorted(fs.glob(join(root, table, "part-*.parquet")))
        if shards and _made_after(fs, join(root, f"{table}.json"), run):
            found[table] = [f"{table}/{path.rsplit('/', 1)[-1]}" for path in shards]
    return {table: files for table, files in found.items() if files}


def _made_after(fs: Any, summary: str, run: RunManifest) -> bool:
    """Whether an export's summary says it was made from this run (after it finished): a rerun
    with --overwrite must not list the previous run's pairs as its own."""
    from datetime import datetime

    try:
        created = json.loads(fs.cat_file(summary))["created_at"]
        made = datetime.fromisoformat(str(created))
        finished = datetime.fromisoformat(run.finished_at).replace(microsecond=0)
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return False
    return made >= finished


def render_card(output: str, run: RunManifest) -> str:
    files = table_files(output, run)
    header: dict[str, Any] = {
        "configs": [{"config_name": table, "data_files": [{"split": SPLIT, "path": paths}],
                     **({"default": True} if table == "rewards" else {})}
                    for table, paths in files.items()],
        "tags": ["claimdiff", "caption-evaluation", "reward-modeling"],
    }
    rows = {table: sum(s.rows for s in run.files.get(table, [])) for table in files}
    acc = run.accounting
    lines = [
        "---", yaml.safe_dump(header, sort_keys=False).rstrip(), "---", "",
        f"# claimdiff run {run.run_id}", "",
        f"Status **{run.status}**: {acc.rows_in} input rows, {acc.rows_judged} judged, "
        f"{acc.rows_failed} failed (failure share {run.failure_share:.3f}). Judge "
        f"`{run.judge_model}` ({run.judge_backend}), prompt {run.prompt_name} "
        f"{run.prompt_version}, claimdiff {run.code_version}. Provenance and the full "
        "accounting are in `run.json`.", "",
        "| table | rows | what |", "|---|---|---|",
        *(f"| `{table}` | {rows.get(table, '')} | {_ABOUT[table]} |" for table in files), "",
        "```python",
        "from datasets import load_dataset",
        'rewards = load_dataset("path/to/this/run", "rewards")["train"]',
        "# an empty table (a clean run's failures) with datasets <= 5.2:",
        "from claimdiff.io.card import load_table",
        'failures = load_table("path/to/this/run", "failures")',
        "```", "",
    ]
    return "\n".join(lines)


def write_card(output: str, run: RunManifest) -> None:
    """Write the run folder's card (one PUT on an object store, like `run.json`)."""
    fs, root = filesystem(output)
    fs.pipe_file(join(root, CARD_NAME), render_card(output, run).encode())


def load_table(run_dir: str, table: str, **kwargs: Any) -> Any:
    """`datasets.load_dataset(run_dir, table)[SPLIT]`, and an empty table's empty split.

    `datasets` caches a folder's tables under the folder's *name* (its cache key does not
    change when the shards are rewritten), so after a rerun into the same folder a plain
    `load_dataset` gives the earlier run's rows. Here the cache is kept per run id instead.
    """
    import datasets
    import pyarrow.parquet as pq

    from claimdiff.io.datasets import read_run_manifest

    run = read_run_manifest(run_dir)
    kwargs.setdefault("cache_dir", os.path.join(datasets.config.HF_DATASETS_CACHE, "claimdiff",
                                                run.run_id))
    files = table_files(run_dir, run).get(table)
    if files is None:
        raise ValueError(f"{run_dir} has no table {table!r}")
    fs, root = filesystem(run_dir)
    empty = True
    for path in files:
        with fs.open(join(root, path), "rb") as handle:
            parquet = pq.ParquetFile(handle)
            schema = parquet.schema_arrow
            empty = empty and parquet.metadata.num_rows == 0
    if not empty:
        return datasets.load_dataset(run_dir, table, split=SPLIT, **kwargs)
    return datasets.Dataset(datasets.table.InMemoryTable(schema.empty_table()),
                            split=datasets.Split(SPLIT))
