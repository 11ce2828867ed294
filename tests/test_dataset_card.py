"""Every run folder is a Hugging Face dataset: its README.md card lets the real `datasets`
library load each table, and a clean run's empty failures/ loads as an empty split."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from claimdiff.io.card import CARD_NAME, load_table
from claimdiff.safe_yaml import load_yaml
from claimdiff.synth.sample import write_sample
from tests.pipeline_support import read, run

datasets = pytest.importorskip("datasets")  # the train extra


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("card")
    broken = write_sample(str(root / "broken"), images=3, actors=2, seed=2)
    clean = write_sample(str(root / "clean"), images=2, actors=2, seed=2, broken=False)
    run(broken, root / "run-broken", {"run.max_failure_share": 0.9})
    run(clean, root / "run-clean")
    return {"broken": root / "run-broken", "clean": root / "run-clean"}


@pytest.fixture(autouse=True)
def offline_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `datasets` reads its environment once, at import: set its config itself, or the tests
    # share (and are fooled by) ~/.cache/huggingface, which keys a folder by its name
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf")


def test_the_card_lists_exactly_the_committed_shards(runs: dict[str, Path]):
    text = (runs["broken"] / CARD_NAME).read_text()
    header = load_yaml(text.split("---\n")[1], what="card")
    configs = {c["config_name"]: c for c in header["configs"]}
    assert list(configs) == ["rewards", "differences", "failures"]
    assert configs["rewards"]["default"] is True
    for table, config in configs.items():
        [files] = config["data_files"]
        assert files["split"] == "train"
        assert files["path"] == sorted(f"{table}/{p.name}"
                                       for p in (runs["broken"] / table).glob("part-*"))
    assert str(runs["broken"].parent) not in text  # nothing names the machine it was made on


@pytest.mark.parametrize("table", ["rewards", "differences", "failures"])
def test_datasets_loads_every_table_as_written(runs: dict[str, Path], table: str):
    loaded = datasets.load_dataset(str(runs["broken"]), table, split="train")
    assert loaded.num_rows > 0
    written = read(runs["broken"], table)
    assert loaded.num_rows == len(written)
    assert sorted(loaded.column_names) == sorted(written[0])
    key = "row_index"
    assert sorted(loaded[key]) == sorted(r[key] for r in written)
    assert load_table(str(runs["broken"]), table).num_rows == len(written)


def test_an_empty_table_loads_as_an_empty_typed_split(runs: dict[str, Path]):
    shard = next((runs["clean"] / "failures").glob("part-*.parquet"))
    assert pq.ParquetFile(shard).metadata.num_rows == 0
    failures = load_table(str(runs["clean"]), "failures")
    assert failures.num_rows == 0
    assert failures.split == "train"
    assert set(failures.column_names) == set(pq.read_schema(shard).names)
    assert load_table(str(runs["clean"]), "rewards").num_rows == 2 * 2


def test_a_moved_run_folder_still_loads(runs: dict[str, Path], tmp_path: Path):
    moved = tmp_path / "elsewhere"
    shutil.copytree(runs["broken"], moved)
    shutil.rmtree(runs["broken"] / "rewards", ignore_errors=False)
    try:
        assert load_table(str(moved), "rewards").num_rows == len(read(moved, "rewards"))
    finally:
        shutil.copytree(moved / "rewards", runs["broken"] / "rewards")


def _leaves(schema) -> list[str]:
    import pyarrow as pa

    names = []

    def walk(field: pa.Field) -> None:
        names.append(field.name)
        kind = field.type
        if pa.types.is_struct(kind):
            for i in range(kind.num_fields):
                walk(kind.field(i))
        elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
            walk(kind.value_field)
        elif pa.types.is_map(kind):
            walk(kind.item_field)

    for field in schema:
        walk(field)
    return names


def test_the_schema_command_prints_every_nested_field(capsys: pytest.CaptureFixture[str]):
    from claimdiff.cli import EXIT_OK, main
    from claimdiff.config import ClaimdiffConfig
    from claimdiff.schemas.arrow import arrow_schema
    from claimdiff.schemas.rows import reward_row_model

    schema = arrow_schema(reward_row_model([p.name for p in ClaimdiffConfig().rewards.presets]))
    assert main(["schema", "rewards"]) == EXIT_OK
    printed = capsys.readouterr().out
    assert "..." not in printed
    assert "omitted" not in printed
    lines = [line.strip().split(": ", 1)[0] for line in printed.splitlines()]
    assert lines == _leaves(schema)  # every field, nested ones too, in order, none elided


def test_pairs_written_into_the_run_folder_join_the_card(runs: dict[str, Path], tmp_path: Path):
    from claimdiff.training.pairs import PairsConfig, export_pairs

    folder = tmp_path / "run"
    shutil.copytree(runs["clean"], folder)
    summary = export_pairs(str(folder), str(folder / "pairs"), PairsConfig(min_margin=0.0))
    header = load_yaml((folder / CARD_NAME).read_text().split("---\n")[1], what="card")
    assert [c["config_name"] for c in header["configs"]] == [
        "rewards", "differences", "failures", "pairs"]
    pairs = datasets.load_dataset(str(folder), "pairs", split="train")
    assert pairs.num_rows == summary.rows_written > 0
    assert {"chosen", "rejected", "prompt"} <= set(pairs.column_names)
    # a rerun into the folder does not take the earlier run's pairs for its own
    from claimdiff.io.card import render_card
    from claimdiff.io.datasets import read_run_manifest

    rerun = read_run_manifest(str(folder)).model_copy(
        update={"finished_at": "2999-01-01T00:00:00+00:00"})
    assert "config_name: pairs" not in render_card(str(folder), rerun)


def test_a_rerun_into_the_same_folder_is_not_read_from_the_cache(tmp_path: Path):
    first = write_sample(str(tmp_path / "first"), images=2, actors=2, seed=2, broken=False)
    second = write_sample(str(tmp_path / "second"), images=3, actors=2, seed=5, broken=False)
    out = tmp_path / "run"
    run(first, out)
    assert load_table(str(out), "rewards").num_rows == 4
    run(second, out, overwrite=True)
    # a plain load_dataset would answer 4 rows again from its cache: same folder name
    assert load_table(str(out), "rewards").num_rows == len(read(out, "rewards")) == 6
