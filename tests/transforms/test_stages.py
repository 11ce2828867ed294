"""Each pipeline stage alone, on Beam's TestPipeline, with `assert_that` on its ok and failure
outputs (the whole pipeline is tested end to end elsewhere)."""

from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.typehints.native_type_compatibility import convert_to_beam_type
from PIL import Image

from claimdiff.config import ClaimdiffConfig, ImageConfig
from claimdiff.io.images import LoadedImage
from claimdiff.judges.backends.labels import LabelsBackend
from claimdiff.judges.judge_setup import JudgeSetup
from claimdiff.judges.loop import judge_batch
from claimdiff.schemas.rows import DifferenceRow, InputRow
from claimdiff.transforms.derive import Derive
from claimdiff.transforms.judge import Judge, prepare
from claimdiff.transforms.load_images import LoadImages
from claimdiff.transforms.read_manifest import ReadManifest
from claimdiff.transforms.write import WriteDataset
from tests.conftest import diff, gold

REF = "Two dogs on a sofa."
GOLD = json.dumps(gold(diff("number of dogs", "Three dogs.", "Two dogs.", "reference",
                            ("count_mismatch", 3))))


def pipeline() -> test_pipeline.TestPipeline:
    return test_pipeline.TestPipeline(options=PipelineOptions(["--runner=FnApiRunner"]))


def row(index: int, image: str, *, gold_: str | None = GOLD) -> InputRow:
    return InputRow(manifest="m.jsonl", row_index=index, image=image, image_uri=image,
                    reference=REF, caption=f"caption {index}", sample_id="s",
                    actor_id=f"a{index}", gold=gold_)


def test_read_manifest(tmp_path: Path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        json.dumps({"image": "a.png", "reference": REF, "caption": "x"}) + "\n"
        + "{not json\n"
        + json.dumps({"image": "a.png", "reference": 3, "caption": "x"}) + "\n")
    with pipeline() as p:
        out = p | ReadManifest([str(manifest)], "r", ["file"], 1000)
        assert_that(out.ok | beam.Map(lambda r: (r.row_index, r.caption)),
                    equal_to([(0, "x")]), label="ok")
        assert_that(out.failures | beam.Map(lambda f: (f.failure.row_index, f.failure.stage)),
                    equal_to([(1, "read_manifest"), (2, "validate")]), label="failures")


def test_load_images(tmp_path: Path):
    good = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(good)
    rows = [row(0, str(good)), row(1, str(good)), row(2, str(tmp_path / "missing.png"))]
    with pipeline() as p:
        out = p | beam.Create(rows) | LoadImages("r", ImageConfig())
        assert_that(out.ok | beam.Map(lambda pair: (pair[1].row_index, pair[0].width)),
                    equal_to([(0, 8), (1, 8)]), label="ok")
        assert_that(out.failures | beam.Map(lambda f: (f.failure.row_index, f.failure.stage,
                                                       f.row is not None)),
                    equal_to([(2, "load_image", True)]), label="failures")


def _image() -> LoadedImage:
    return LoadedImage("/a.png", "0" * 64, 8, 8, Image.new("RGB", (8, 8)))


def test_judge():
    setup = JudgeSetup.build(ClaimdiffConfig(), check_model=False)
    pairs = [(_image(), row(0, "/a.png")), (_image(), row(1, "/a.png", gold_=None))]
    with pipeline() as p:
        out = p | beam.Create(pairs) | Judge("r", setup)
        assert_that(out.ok | beam.Map(lambda r: (r.item.row.row_index,
                                                 len(r.output.differences))),
                    equal_to([(0, 1)]), label="ok")
        assert_that(out.failures | beam.Map(lambda f: (f.failure.row_index,
                                                       f.failure.error_class,
                                                       f.failure.prompt_version)),
                    equal_to([(1, "NoGoldError", setup.prompt_version)]), label="failures")


def test_derive():
    config = ClaimdiffConfig()
    setup = JudgeSetup.build(config, check_model=False)
    results = judge_batch([prepare((_image(), row(0, "/a.png")), setup)], LabelsBackend(), setup)
    with pipeline() as p:
        out = p | beam.Create(results) | Derive("r", config, setup)
        assert_that(out.differences | beam.Map(lambda d: (d.row_index, d.outcomes,
                                                          d.prompt_version)),
                    equal_to([(0, ["actor_hallucination"], setup.prompt_version)]),
                    label="differences")
        assert_that(out.rewards | beam.Map(lambda r: (r.row_index, r.status, r.reward)),
                    equal_to([(0, "ok", 0.0)]), label="rewards")
        assert_that(out.failures, equal_to([]), label="failures")


def test_write_dataset_redacts_and_keeps_the_schema(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CLAIMDIFF_TEST_SECRET", "sk-0123456789abcdef")
    setup = JudgeSetup.build(ClaimdiffConfig(), check_model=False)
    result = judge_batch([prepare((_image(), row(0, "/a.png")), setup)], LabelsBackend(),
                         setup)[0]
    from claimdiff.rewards.stats import Provenance, derive
    from claimdiff.rewards.taxonomy import TypeMapper

    config = ClaimdiffConfig()
    provenance = Provenance(run_id="r", image_sha256="0" * 64, judge_model="labels",
                            prompt_version="p", decoding=setup.decoding,
                            cache_key="http://u:pw@h/x?token=sk-0123456789abcdef",
                            attempts=1)
    assert result.output is not None
    differences, _ = derive(row(0, "/a.png"), result.output, provenance, config,
                            TypeMapper(config.taxonomy))
    with pipeline() as p:
        _ = p | beam.Create(differences) | WriteDataset(
            str(tmp_path), "differences", DifferenceRow, 1, ["CLAIMDIFF_TEST_SECRET"])
    [shard] = (tmp_path / "differences").glob("part-*.parquet")
    table = pq.read_table(shard)
    assert table.schema.metadata[b"claimdiff.model"] == b"DifferenceRow"
    assert table.column("cache_key").to_pylist() == ["http://<redacted>@h/x?token=<redacted>"]


@pytest.mark.parametrize(("stage", "element"), [
    (LoadImages("r", ImageConfig()), InputRow),
    (Judge("r", JudgeSetup.build(ClaimdiffConfig(), check_model=False)),
     tuple[LoadedImage, InputRow]),
])
def test_stages_declare_their_input_types(stage: beam.PTransform, element: object):
    hints = stage.get_type_hints()
    assert hints.input_types is not None
    assert hints.input_types[0][0] == convert_to_beam_type(element)
