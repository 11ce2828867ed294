"""`claimdiff.evaluation`: matcher, metrics by hand, and real `labels` runs scored against gold.

Expected numbers are worked out in the comments next to them (weights 1 -> 1.0, 2 -> 1.25,
3 -> 1.6 where rewards matter).
"""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any

import fsspec
import pytest

from claimdiff.config import ClaimdiffConfig
from claimdiff.evaluation import (
    EmbeddingScorer,
    EvaluationReport,
    align,
    evaluate,
    lexical_score,
    render_table,
    write_report,
)
from claimdiff.evaluation.join import join
from claimdiff.evaluation.load import GoldItem, GoldSet, RunOutput, derive_gold
from claimdiff.evaluation.matching import assign, tokens
from claimdiff.evaluation.metrics import (
    UNMATCHED,
    actor_type,
    confusion,
    detection,
    is_hallucination,
    is_omission,
    noise_rates,
    quadratic_kappa,
)
from claimdiff.evaluation.ordering import OrderingRow, PresetId, reward_ordering
from claimdiff.evaluation.report import Detection
from claimdiff.rewards.taxonomy import TypeMapper
from claimdiff.sample_data import png_bytes, write_sample
from claimdiff.schemas.judge import JudgeOutput
from claimdiff.schemas.rows import DifferenceRow, InputRow, RewardRow, RowStatus
from tests.conftest import diff, gold
from tests.pipeline_support import run

CONFIG = ClaimdiffConfig()
OVERRIDES = {"run.max_failure_share": 1.0}


def rows(*differences: dict[str, Any]) -> list[DifferenceRow]:
    """Difference rows built by the pipeline's own derive, from judge-format dicts."""
    row = InputRow(manifest="m", row_index=0, image="i.png", image_uri="/i.png",
                   reference="r", caption="c", sample_id="s", actor_id="a")
    output = JudgeOutput.model_validate(gold(*differences))
    return derive_gold(row, output, CONFIG, TypeMapper(CONFIG.taxonomy))[0]


# ---- matcher -------------------------------------------------------------------------------

COUNT = diff("number of dogs", "There are three dogs.", "There are two dogs.", "reference",
             actor_error=("count_mismatch", 3))
CAT = diff("a cat", "A cat sleeps on the sofa.", None, "reference",
           actor_error=("object_hallucination", 3))
LAMP = diff("the lamp", None, "A lamp stands next to the sofa.", "reference",
            actor_error=("object_omission", 2))


def test_tokens_drop_stopwords_and_fold_plurals():
    assert tokens("The dogs are on the sofa") == {"dog", "sofa"}
    assert tokens("Three berries; a glass") == {"three", "berry", "glass"}


def test_lexical_score_is_jaccard_of_aspect_and_claims():
    a, b = rows(COUNT, CAT)
    assert lexical_score(a, a) == 1.0
    # {number, dog, three, two} vs {number, dog, two}: 3 / 4
    (c,) = rows(diff("Number of dogs", None, "Two dogs.", "reference"))
    assert lexical_score(a, c) == 0.75
    assert lexical_score(a, b) == 0.0


def test_assign_is_greedy_one_to_one_with_index_tie_breaks():
    # all four pairs tie: the lower predicted, then lower gold index goes first
    assert [(m.predicted, m.gold) for m in assign([[0.5, 0.5], [0.5, 0.5]], 0.3)] == [
        (0, 0), (1, 1)]
    # the best pair (1, 0) is taken first, so predicted 0 falls back to gold 1
    matches = assign([[0.8, 0.4], [0.9, 0.1]], 0.3)
    assert [(m.predicted, m.gold, m.score) for m in matches] == [(0, 1, 0.4), (1, 0, 0.9)]
    # below the threshold, or zero, never matches
    assert assign([[0.29, 0.0]], 0.3) == ()
    assert assign([[0.0]], 0.0) == ()
    with pytest.raises(ValueError, match="threshold"):
        assign([[1.0]], 1.5)


def test_assign_is_deterministic_and_one_to_one_on_random_matrices():
    rng = random.Random(7)
    for _ in range(200):
        n_p, n_g = rng.randint(0, 6), rng.randint(0, 6)
        # coarse values make ties common
        scores = [[rng.choice([0.0, 0.25, 0.5, 0.75, 1.0]) for _ in range(n_g)]
                  for _ in range(n_p)]
        first = assign(scores, 0.3)
        assert first == assign(scores, 0.3)
        assert len({m.predicted for m in first}) == len(first)
        assert len({m.gold for m in first}) == len(first)
        assert all(m.score >= 0.3 and m.score == scores[m.predicted][m.gold] for m in first)
        # greedy leaves no unmatched pair that clears the threshold
        used_p, used_g = {m.predicted for m in first}, {m.gold for m in first}
        assert not any(scores[p][g] >= 0.3 for p in range(n_p) for g in range(n_g)
                       if p not in used_p and g not in used_g)


def test_align_orders_by_difference_index_and_matches_duplicates_once():
    predicted = rows(COUNT, COUNT, CAT)
    golds = rows(CAT, COUNT)
    alignment = align(list(reversed(predicted)), golds)
    assert [r.difference_index for r in alignment.predicted] == [0, 1, 2]
    # both predicted COUNTs score 1.0 against gold COUNT: the first one (index 0) wins
    assert [(m.predicted, m.gold) for m in alignment.matches] == [(0, 1), (2, 0)]
    assert alignment.unmatched_predicted() == [1]
    assert alignment == align(predicted, golds)


def test_embedding_scorer_is_pluggable_and_caches():
    calls: list[str] = []

    def embed(texts):
        calls.extend(texts)
        return [[float(len(t)), float(t.count("dog")), 1.0] for t in texts]

    scorer = EmbeddingScorer(embed)
    count, cat = rows(COUNT, CAT)
    assert scorer(count, count) == pytest.approx(1.0)
    assert 0.0 <= scorer(count, cat) < 1.0
    assert len(calls) == 2  # two distinct texts, each encoded once
    alignment = align([count, cat], rows(CAT, COUNT), scorer=scorer, threshold=0.999)
    assert [(m.predicted, m.gold) for m in alignment.matches] == [(0, 1), (1, 0)]


# ---- metrics on hand-built differences -----------------------------------------------------

def test_detection_confusion_and_noise_by_hand():
    gold_rows = rows(COUNT, CAT, LAMP)
    predicted = rows(
        # the count error, found but typed as colour
        diff("number of dogs", "There are three dogs.", "There are two dogs.", "reference",
             actor_error=("color_mismatch", 2)),
        LAMP,
        diff("a hat", "A hat on the dog.", None, "reference",
             actor_error=("object_hallucination", 3)),
        diff("lighting", "The room is bright.", "The room is bright.", "both_supported"),
    )
    alignment = align(predicted, gold_rows)
    assert [(m.predicted, m.gold) for m in alignment.matches] == [(0, 0), (1, 2)]

    hal = detection([alignment], is_hallucination, actor_type)
    # TP: the count pair; predicted: count + hat; gold: count + cat
    assert hal.overall == Detection(true_positives=1, predicted=2, gold=2, precision=0.5,
                                    recall=0.5, f1=0.5)
    # typed: the count pair disagrees on type, so it is no TP of `count` nor of `color`
    assert hal.by_type["count"] == Detection(true_positives=0, predicted=0, gold=1,
                                             precision=None, recall=0.0, f1=None)
    assert hal.by_type["color"] == Detection(true_positives=0, predicted=1, gold=0,
                                             precision=0.0, recall=None, f1=None)
    assert hal.by_type["object_existence"].model_dump() == {
        "true_positives": 0, "predicted": 1, "gold": 1, "precision": 0.0, "recall": 0.0,
        "f1": 0.0}
    omi = detection([alignment], is_omission, actor_type)
    assert (omi.overall.precision, omi.overall.recall, omi.overall.f1) == (1.0, 1.0, 1.0)

    counts = confusion([alignment]).counts
    nonzero = {(g, p): n for g, row in counts.items() for p, n in row.items() if n}
    assert nonzero == {
        ("actor_hallucination", "actor_hallucination"): 1,
        ("actor_omission", "actor_omission"): 1,
        ("actor_hallucination", UNMATCHED): 1,  # the cat, missed
        (UNMATCHED, "actor_hallucination"): 1,  # the hat, made up
        (UNMATCHED, "spurious"): 1,
    }
    noise = noise_rates([alignment])
    assert (noise.predicted_spurious_rate, noise.predicted_unmatched_rate,
            noise.gold_unmatched_rate, noise.gold_spurious_rate) == (0.25, 0.5, 1 / 3, 0.0)


def test_quadratic_kappa_by_hand():
    assert quadratic_kappa([]) is None
    assert quadratic_kappa([(3, 3), (3, 3)]) == 1.0  # no disagreement, one category
    # observed = (4/4 + 4/4) / 2 = 1; expected = (1*1*1 + 1*1*1) / 4 = 0.5 -> 1 - 1/0.5
    assert quadratic_kappa([(1, 3), (3, 1)]) == -1.0
    # see the doctest: one off-by-one among four -> 0.5
    assert quadratic_kappa([(2, 3), (3, 3), (2, 2), (2, 2)]) == 0.5


def test_reward_ordering_by_hand():
    def row(actor_errors: int, value: float | None, edit: str = "clean",
            missing: bool = False, sample: str = "s") -> OrderingRow:
        rewards = None if value is None else {"r": value}
        return OrderingRow(sample, actor_errors, edit, 3 if actor_errors else None, rewards,
                           missing)

    report = reward_ordering(
        [row(0, 0.9), row(1, 0.2, "count"), row(1, 0.9, "color"), row(2, 0.95, "count"),
         row(1, None, "count"), row(1, None, "count", missing=True),
         row(1, 0.5, sample="t"), row(1, 0.4, sample="t")],  # no cleaner caption in t
        [PresetId("r", "relative", 1)], "test")
    assert (report.gold_pairs, report.samples, report.rows_null_reward,
            report.rows_missing_from_run) == (5, 1, 1, 1)
    (preset,) = report.presets
    counts = preset.overall
    assert (counts.pairs, counts.correct, counts.ties, counts.inverted, counts.excluded) == (
        3, 1, 1, 1, 2)
    assert counts.share_correct == pytest.approx(1 / 3)
    assert preset.by_edit["count"].correct == 1
    assert preset.by_edit["count"].inverted == 1
    assert preset.by_edit["color"].ties == 1


def test_join_pairs_duplicates_by_row_index_and_counts_ambiguous():
    def gold_item(actor: str, index: int) -> GoldItem:
        row = InputRow(manifest="m", row_index=index, image="i", image_uri="/i", reference="r",
                       caption="c", sample_id="s", actor_id=actor, gold="{}")
        differences, stats = derive_gold(row, JudgeOutput(), CONFIG, TypeMapper(CONFIG.taxonomy))
        return GoldItem(row, tuple(differences), stats, {})

    def reward(actor: str, index: int) -> RewardRow:
        return RewardRow(run_id="x", sample_id="s", actor_id=actor, row_index=index,
                         image_uri="/i", status=RowStatus.OK)

    golds = GoldSet(items=[gold_item("one", 5), gold_item("dup", 1), gold_item("dup", 2),
                           gold_item("amb", 3), gold_item("amb", 3), gold_item("lost", 4)],
                    rows=6)
    runs = RunOutput(rewards=[reward("one", 0), reward("dup", 2), reward("dup", 1),
                              reward("dup", 9), reward("amb", 3), reward("extra", 0)],
                     differences=rows(COUNT))  # (s, a, 0): no rewards row -> orphan
    joined = join(golds, runs)
    s = joined.summary
    # `one`: unique key, joined despite differing row indices; `dup`: paired by index
    assert [(i.gold.row.actor_id, i.gold.row.row_index, i.run.reward.row_index if i.run else None)
            for i in joined.items] == [("dup", 1, 1), ("dup", 2, 2), ("lost", 4, None),
                                       ("one", 5, 0)]
    assert (s.joined_judged, s.gold_only, s.run_only, s.ambiguous_gold, s.ambiguous_run,
            s.orphan_differences) == (3, 1, 2, 2, 1, 1)
    assert any("actor_id=amb" in p for p in s.problems)


# ---- real pipeline runs --------------------------------------------------------------------

def hand_rows() -> list[dict[str, Any]]:
    """Two images; every outcome of the table occurs at least once."""
    ref_a, ref_b = "Two dogs on a red sofa next to a lamp.", "A blue car parked on a street."

    def row(sample: str, actor: str, policy: str, labels: dict[str, Any] | None,
            image: str | None = None) -> dict[str, Any]:
        record = {"image": image or f"img/{sample}.png", "reference": ref_a if sample == "A"
                  else ref_b, "caption": f"caption {actor}", "sample_id": sample,
                  "actor_id": actor, "policy": policy}
        if labels is not None:
            record["gold"] = labels
        return record

    return [
        row("A", "faithful", "p1", gold(overall="tie")),                                  # 0
        row("A", "count", "p1", gold(COUNT)),                                             # 1
        row("A", "omission", "p2", gold(                                                  # 2
            diff("colour of the sofa", None, "The sofa is red.", "reference",
                 actor_error=("color_omission", 2)),
            diff("the dogs", "Two dogs.", "Two dogs.", "both_supported"))),
        row("A", "mixed", "p2", gold(CAT, LAMP, diff(                                     # 3
            "colour of the sofa", "The sofa is brown.", "The sofa is red.", "actor",
            reference_error=("color_mismatch", 2)))),
        row("B", "faithful", "p1", gold(overall="tie")),                                  # 4
        row("B", "color", "p1", gold(diff(                                                # 5
            "colour of the car", "The car is green.", "The car is blue.", "reference",
            actor_error=("color_mismatch", 2)))),
        row("B", "extra", "p2", gold(diff(                                                # 6
            "the street", "The street is wet.", None, "actor"), overall="actor")),
        row("B", "uncertain", "p2", gold(diff(                                            # 7
            "the driver", "The driver is smiling.", None, "uncertain"))),
        row("B", "both_wrong", "p1", gold(diff(                                           # 8
            "where the car is parked", "The car is parked on grass.",
            "The car is parked on a street.", "both_wrong",
            actor_error=("setting_mismatch", 2), reference_error=("setting_mismatch", 2)))),
        row("A", "lost", "p1", gold(diff(                                                 # 9
            "a hat", "A hat on a dog.", None, "reference",
            actor_error=("object_hallucination", 3))), image="img/missing.png"),
        row("B", "nogold", "p2", None),                                                   # 10
    ]


def degraded_rows() -> list[dict[str, Any]]:
    """Gold with one difference dropped, one judgment flipped and one severity changed."""
    degraded = json.loads(json.dumps(hand_rows()))
    degraded[3]["gold"]["differences"].pop(1)  # mixed: the lamp omission is gone
    color = degraded[5]["gold"]["differences"][0]  # colour: the actor is right after all
    color["judgment"], color["reference_error"] = "actor", color["actor_error"]
    color["actor_error"] = None
    degraded[1]["gold"]["differences"][0]["actor_error"]["severity"] = 2  # count: 3 -> 2
    return degraded


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def hand_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("hand")
    (root / "img").mkdir()
    from PIL import Image

    for name in ("A", "B"):
        (root / f"img/{name}.png").write_bytes(png_bytes(Image.new("RGB", (32, 24))))
    manifest = write_jsonl(root / "manifest.jsonl", hand_rows())
    run(manifest, root / "out", OVERRIDES, run_id="hand")
    return manifest, root / "out"


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    root = tmp_path_factory.mktemp("sample")
    manifest = write_sample(str(root / "data"), images=6, actors=4, seed=3, broken=False)
    run(manifest, root / "out", OVERRIDES, run_id="sample")
    return manifest, root / "out"


def assert_perfect(report: EvaluationReport) -> None:
    for name in ("actor_hallucination", "actor_omission", "reference_error"):
        detection_ = getattr(report, name)
        for d in [detection_.overall, *detection_.by_type.values()]:
            assert d.true_positives == d.predicted == d.gold, name
            assert {d.precision, d.recall, d.f1} <= {1.0, None}, name
    counts = report.outcome_confusion.counts
    assert all(n == 0 for g, row in counts.items() for p, n in row.items() if g != p)
    assert report.severity.quadratic_kappa == report.severity.exact_agreement == 1.0
    noise = report.noise
    assert noise.predicted_differences == noise.gold_differences
    assert noise.predicted_unmatched_rate == noise.gold_unmatched_rate == 0.0
    for p in report.policies:
        assert p.gold_hallucinations_per_caption == p.predicted_hallucinations_per_caption
        assert p.gold_omissions_per_caption == p.predicted_omissions_per_caption


def test_labels_run_scores_perfectly_on_sample_data(sample_run):
    manifest, out = sample_run
    report = evaluate(str(out), manifest)
    assert report.config_source == "run.json"
    assert report.join.joined_judged == report.join.gold_items == report.join.run_rows == 24
    assert report.actor_hallucination.overall.gold > 0
    assert report.actor_omission.overall.gold > 0
    assert report.actor_hallucination.overall.f1 == report.actor_omission.overall.f1 == 1.0
    assert_perfect(report)
    assert report.severity.pairs > 0
    assert "swap_consistency" in report.not_computed


def test_reward_ordering_holds_on_sample_data(sample_run):
    manifest, out = sample_run
    ordering = evaluate(str(out), manifest).reward_ordering
    assert ordering.edit_source == "metadata column 'edit'"
    assert ordering.samples == 6
    presets = {p.name: p for p in ordering.presets}
    for name in ("relative", "actor_only"):
        preset = presets[name]
        assert preset.overall.pairs == ordering.gold_pairs > 0
        assert preset.overall.share_correct == 1.0
        assert preset.overall.ties == preset.overall.excluded == 0
        assert all(c.share_correct == 1.0 for c in preset.by_edit.values())
        assert all(c.share_correct == 1.0 for c in preset.by_severity.values())
    assert set(presets["relative"].by_edit) <= {
        "wrong_color", "wrong_count", "omission", "hallucination"}
    assert set(presets["relative"].by_severity) <= {"2", "3"}


def test_hand_run_against_its_own_gold(hand_run):
    manifest, out = hand_run
    report = evaluate(str(out), str(manifest), policy_column="policy")
    assert report.join.model_dump(exclude={"problems"}) == {
        "gold_rows": 11, "gold_invalid_rows": 0, "gold_unlabelled": 1, "gold_label_errors": 0,
        "gold_items": 10, "run_rows": 11, "joined_judged": 9, "joined_failed": 1,
        "gold_only": 0, "run_only": 1, "ambiguous_gold": 0, "ambiguous_run": 0,
        "orphan_differences": 0}
    assert_perfect(report)
    # every outcome of the table occurs once at least: the diagonal
    counts = report.outcome_confusion.counts
    assert [counts[x][x] for x in report.outcome_confusion.labels] == [3, 1, 2, 0, 1, 1, 1, 1, 0]
    assert report.reference_error.overall.f1 == 1.0


def test_hand_run_reward_ordering(hand_run):
    manifest, out = hand_run
    ordering = evaluate(str(out), str(manifest)).reward_ordering
    # A: faithful vs count, omission, mixed, lost (failed: excluded); B: faithful, extra,
    # uncertain (0 actor errors) vs colour and both_wrong -> 4 + 6 pairs
    assert (ordering.gold_pairs, ordering.rows_null_reward, ordering.rows_missing_from_run) == (
        10, 1, 0)
    assert ordering.edit_source == "gold canonical types of the edited caption's errors"
    presets = {p.name: p for p in ordering.presets}
    relative = presets["relative"]
    # relative gives both_wrong 0.5 + 0.5 * (1.25 - 1.25) / 1.25 = 0.5, the same as each clean
    # caption (no differences, or none against either side): 3 ties
    assert relative.overall.model_dump() == {
        "pairs": 9, "correct": 6, "ties": 3, "inverted": 0, "excluded": 1,
        "share_correct": 6 / 9, "share_ties": 3 / 9}
    assert {k: (c.pairs, c.correct) for k, c in relative.by_edit.items()} == {
        "color": (4, 4), "count": (1, 1), "object_existence": (1, 1),
        "scene_setting": (3, 0)}
    assert relative.by_edit["object_existence"].excluded == 1  # the lost hat
    assert {k: (c.pairs, c.correct, c.ties) for k, c in relative.by_severity.items()} == {
        "2": (7, 4, 3), "3": (2, 2, 0)}
    # actor_only penalises the actor's error in both_wrong: every pair is ordered
    assert presets["actor_only"].overall.share_correct == 1.0


def test_degraded_gold_scores_what_it_should(hand_run, tmp_path):
    _, out = hand_run
    degraded = write_jsonl(tmp_path / "degraded.jsonl", degraded_rows())
    report = evaluate(str(out), str(degraded), policy_column="policy")

    hal = report.actor_hallucination
    # predicted: count, cat, green car, grass; gold now lacks the green car (flipped)
    assert (hal.overall.true_positives, hal.overall.predicted, hal.overall.gold) == (3, 4, 3)
    assert (hal.overall.precision, hal.overall.recall) == (0.75, 1.0)
    assert hal.overall.f1 == pytest.approx(6 / 7)
    assert (hal.by_type["color"].precision, hal.by_type["color"].recall) == (0.0, None)
    assert hal.by_type["count"].f1 == hal.by_type["scene_setting"].f1 == 1.0

    omi = report.actor_omission
    # predicted: sofa colour, lamp; gold: sofa colour only (lamp dropped)
    assert (omi.overall.precision, omi.overall.recall) == (0.5, 1.0)
    assert omi.overall.f1 == pytest.approx(2 / 3)
    assert omi.by_type["object_existence"].model_dump() == {
        "true_positives": 0, "predicted": 1, "gold": 0, "precision": 0.0, "recall": None,
        "f1": None}

    ref = report.reference_error
    # predicted: brown sofa, grass; gold adds the car colour (the reference was wrong)
    assert (ref.overall.precision, ref.overall.recall) == (1.0, 2 / 3)
    assert ref.overall.f1 == pytest.approx(0.8)
    assert (ref.by_type["color"].precision, ref.by_type["color"].recall) == (1.0, 0.5)

    counts = report.outcome_confusion.counts
    nonzero = {(g, p): n for g, row in counts.items() for p, n in row.items() if n}
    assert nonzero == {
        ("actor_hallucination", "actor_hallucination"): 2,
        ("actor_omission", "actor_omission"): 1,
        ("spurious", "spurious"): 1,
        ("reference_error", "reference_error"): 1,
        (UNMATCHED, "actor_omission"): 1,                 # the dropped lamp
        ("reference_error", "actor_hallucination"): 1,    # the flipped judgment
        ("actor_extra_correct", "actor_extra_correct"): 1,
        ("unverifiable", "unverifiable"): 1,
        ("actor_hallucination+reference_error", "actor_hallucination+reference_error"): 1,
    }

    # matched actor errors (gold, predicted): count (2, 3), cat (3, 3), sofa (2, 2),
    # grass (2, 2). Observed weighted disagreement 0.25/4; expected (3*2 + 1*2) * 0.25 / 16
    # -> kappa = 1 - 0.0625 / 0.125
    severity = report.severity
    assert (severity.pairs, severity.exact_agreement, severity.quadratic_kappa) == (
        4, 0.75, 0.5)
    assert severity.counts["2"]["3"] == 1

    noise = report.noise
    assert (noise.predicted_differences, noise.gold_differences) == (10, 9)
    assert (noise.predicted_spurious_rate, noise.predicted_unverifiable_rate) == (0.1, 0.1)
    assert noise.gold_spurious_rate == noise.gold_unverifiable_rate == 1 / 9
    assert (noise.predicted_unmatched_rate, noise.gold_unmatched_rate) == (0.1, 0.0)

    # p1: faithful A/B, count, colour, both_wrong (the lost row failed: not scored)
    # p2: omission, mixed, extra, uncertain
    policies = {p.policy: p for p in report.policies}
    p1, p2 = policies["p1"], policies["p2"]
    assert (p1.captions, p1.gold_hallucinations_per_caption,
            p1.predicted_hallucinations_per_caption) == (5, 0.4, 0.6)
    assert p1.gold_omissions_per_caption == p1.predicted_omissions_per_caption == 0.0
    assert (p2.captions, p2.gold_hallucinations_per_caption,
            p2.predicted_hallucinations_per_caption) == (4, 0.25, 0.25)
    assert (p2.gold_omissions_per_caption, p2.predicted_omissions_per_caption) == (0.25, 0.5)


def test_gold_uses_the_given_config(hand_run):
    manifest, out = hand_run
    # a config that calls every setting error a count error changes the gold type only
    config = ClaimdiffConfig.model_validate({"taxonomy": {"synonyms": {"setting": "count"}}})
    report = evaluate(str(out), str(manifest), config=config)
    assert report.config_source == "argument"
    by_type = report.actor_hallucination.by_type
    # the run typed the grass error scene_setting; gold now says count (with the dog count)
    assert (by_type["scene_setting"].precision, by_type["scene_setting"].gold) == (0.0, 0)
    assert (by_type["count"].precision, by_type["count"].recall) == (1.0, 0.5)
    assert report.actor_hallucination.overall.f1 == 1.0


def test_report_renders_and_round_trips(hand_run, tmp_path):
    manifest, out = hand_run
    report = evaluate(str(out), str(manifest))
    text = render_table(report)
    assert "actor_hallucination" in text
    assert "quadratic-weighted kappa 1.000" in text
    assert "not computed: swap_consistency" in text
    assert max(len(line) for line in text.splitlines()) < 200
    write_report(report, str(tmp_path / "eval.json"))
    write_report(report, str(tmp_path / "eval.txt"))
    loaded = EvaluationReport.model_validate_json((tmp_path / "eval.json").read_text())
    assert loaded == report
    assert (tmp_path / "eval.txt").read_text() == text


def test_run_output_on_an_fsspec_url(hand_run):
    manifest, out = hand_run
    fs = fsspec.filesystem("memory")
    root = f"/eval-{uuid.uuid4().hex[:8]}"
    try:
        fs.put(str(out), root, recursive=True)
        remote = evaluate(f"memory://{root}", str(manifest))
        local = evaluate(str(out), str(manifest))
        assert remote.model_dump(exclude={"run_output"}) == local.model_dump(
            exclude={"run_output"})
    finally:
        fs.rm(root, recursive=True)


def test_not_a_run_output_is_a_clear_error(hand_run, tmp_path):
    from claimdiff.errors import ConfigError

    manifest, _ = hand_run
    with pytest.raises(ConfigError, match="no rewards/ folder"):
        evaluate(str(tmp_path), str(manifest))


def test_bad_gold_rows_are_counted_not_scored(hand_run, tmp_path):
    _, out = hand_run
    records = hand_rows()
    records[0]["gold"] = {"differences": [{"aspect": "x", "judgment": "actor"}]}  # no claims
    records.append({"image": "img/A.png", "reference": "r"})  # no caption
    report = evaluate(str(out), str(write_jsonl(tmp_path / "bad.jsonl", records)))
    j = report.join
    assert (j.gold_rows, j.gold_invalid_rows, j.gold_label_errors, j.gold_unlabelled) == (
        12, 1, 1, 1)
    # A/faithful and B/nogold now have no usable gold: run rows without a partner
    assert (j.joined_judged, j.run_only) == (8, 2)
    assert any("bad.jsonl#0" in p and "actor_claim or a reference_claim" in p
               for p in j.problems)
    assert any("bad.jsonl#11" in p and "caption" in p for p in j.problems)
    assert_perfect(report)
