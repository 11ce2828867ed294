"""`claimdiff.evaluation`: matcher, metrics by hand, and real `labels` runs scored against gold.

Expected numbers are worked out in the comments next to them (weights 1 -> 1.0, 2 -> 1.25,
3 -> 1.6 where rewards matter).
"""

from __future__ import annotations

import itertools
import json
import random
import re
import uuid
from fractions import Fraction
from pathlib import Path
from typing import Any

import fsspec
import pytest

from claimdiff.config import ClaimdiffConfig
from claimdiff.evaluation import (
    DEFAULT_THRESHOLD,
    EmbeddingScorer,
    EvaluationReport,
    align,
    evaluate,
    lexical_score,
    render_table,
    write_report,
)
from claimdiff.evaluation.evaluate import swap_consistency
from claimdiff.evaluation.join import join
from claimdiff.evaluation.load import GoldItem, GoldSet, RunOutput, derive_gold
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
from claimdiff.evaluation.report import Detection, SwapConsistency
from claimdiff.matching import assign, jaccard, match_text, tokens
from claimdiff.rewards.taxonomy import TypeMapper
from claimdiff.schemas.judge import JudgeOutput
from claimdiff.schemas.rows import DifferenceRow, InputRow, RewardRow, RowStatus, SwapCheck
from claimdiff.synth.render import png_bytes
from claimdiff.synth.sample import write_sample
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


def test_tokens_drop_stopwords_fold_plurals_and_spellings():
    assert tokens("The dogs are on the sofa") == {"dog", "sofa"}
    assert tokens("Three berries; a glass") == {"three", "berry", "glass"}
    assert tokens("Colour of the grey tyres, centred") == tokens(
        "color of the gray tires, centered")


def test_lexical_score_is_the_mean_jaccard_of_aspect_and_of_claims():
    a, b = rows(COUNT, CAT)
    assert lexical_score(a, a) == 1.0
    # aspects {number, dog} alike: 1; claims {three, dog, two} vs {two, dog}: 2 / 3
    (c,) = rows(diff("Number of dogs", None, "Two dogs.", "reference"))
    assert lexical_score(a, c) == pytest.approx((1 + 2 / 3) / 2)
    assert lexical_score(a, b) == 0.0


def test_lexical_score_survives_verbose_gold_and_spelling():
    (gold_row,) = rows(diff("presence of the triangles", None,
                            "There are two small pink triangles to the left of the house.",
                            "reference", actor_error=("object_omission", 2)))
    (terse,) = rows(diff("triangles", None, "Pink triangles.", "reference"))
    # aspects {triangle} vs {presence, triangle}: 1/2; claims {pink, triangle} vs
    # {two, small, pink, triangle, left, house}: 2/6
    assert lexical_score(terse, gold_row) == pytest.approx((1 / 2 + 2 / 6) / 2)
    assert lexical_score(terse, gold_row) > DEFAULT_THRESHOLD
    # the same tokens pooled into one Jaccard: 2/7, a miss
    pooled = jaccard(tokens(match_text(terse)), tokens(match_text(gold_row)))
    assert pooled == pytest.approx(2 / 7)
    assert pooled < DEFAULT_THRESHOLD
    british, american = rows(
        diff("colour of the car", "The car is grey.", "The car is blue.", "reference"),
        diff("color of the car", "The car is gray.", "The car is blue.", "reference"))
    assert lexical_score(british, american) == 1.0
    # a shared object word alone does not make a match: another aspect, other claims
    (car_count,) = rows(diff("number of cars", "There are two cars.", "There is one car.",
                             "reference"))
    assert lexical_score(car_count, american) < DEFAULT_THRESHOLD


def _brute_force(scores: list[list[float]], threshold: float) -> list[tuple[int, int]]:
    """The assignment rule by exhaustive search: most matches, best total, earliest pairs."""
    n_p, n_g = len(scores), len(scores[0]) if scores else 0
    candidates = [(p, g) for p in range(n_p) for g in range(n_g)
                  if scores[p][g] > 0 and scores[p][g] >= threshold]
    best_key: tuple[int, Fraction] = (0, Fraction(0))
    best: list[tuple[int, int]] = []
    for k in range(1, min(n_p, n_g) + 1):
        for chosen in itertools.combinations(candidates, k):
            if len({p for p, _ in chosen}) < k or len({g for _, g in chosen}) < k:
                continue
            pairs = sorted(chosen)
            key = (k, sum((Fraction(scores[p][g]) for p, g in pairs), Fraction(0)))
            if key > best_key or (key == best_key and pairs < best):
                best_key, best = key, pairs
    return best


def test_assign_is_optimal_one_to_one_with_index_tie_breaks():
    # greedy would take (0, 0) = 0.9 and stop; two matches exist
    matches = assign([[0.9, 0.8], [0.85, 0.0]], 0.3)
    assert [(m.predicted, m.gold, m.score) for m in matches] == [(0, 1, 0.8), (1, 0, 0.85)]
    # more matches beat a higher total: 0.31 + 0.31 (two) over 0.9 (one)
    matches = assign([[0.9, 0.31], [0.31, 0.0]], 0.3)
    assert [(m.predicted, m.gold) for m in matches] == [(0, 1), (1, 0)]
    # as many matches either way: the higher total wins (0.4 + 0.9 over 0.8 + 0.1)
    matches = assign([[0.8, 0.4], [0.9, 0.1]], 0.3)
    assert [(m.predicted, m.gold, m.score) for m in matches] == [(0, 1, 0.4), (1, 0, 0.9)]
    # all four pairs tie: the earlier pairs (0, 0), then (1, 1)
    assert [(m.predicted, m.gold) for m in assign([[0.5, 0.5], [0.5, 0.5]], 0.3)] == [
        (0, 0), (1, 1)]
    # more predicted than gold (the transposed case) and duplicates: the first one wins
    assert [(m.predicted, m.gold) for m in assign([[1.0], [1.0], [0.2]], 0.3)] == [(0, 0)]
    # below the threshold, or zero, never matches
    assert assign([[0.29, 0.0]], 0.3) == ()
    assert assign([[0.0]], 0.0) == ()
    assert assign([], 0.3) == assign([[]], 0.3) == ()
    with pytest.raises(ValueError, match="threshold"):
        assign([[1.0]], 1.5)


def test_assign_matches_exhaustive_search_on_random_matrices():
    rng = random.Random(7)
    for _ in range(300):
        n_p, n_g = rng.randint(0, 5), rng.randint(0, 5)
        # coarse values make ties common; a few fine ones break them
        scores = [[rng.choice([0.0, 0.25, 0.5, 0.75, 1.0, 0.31, rng.random()])
                   for _ in range(n_g)] for _ in range(n_p)]
        first = assign(scores, 0.3)
        assert first == assign(scores, 0.3)
        assert [(m.predicted, m.gold) for m in first] == _brute_force(scores, 0.3), scores
        assert all(m.score == scores[m.predicted][m.gold] for m in first)


def test_align_orders_by_difference_index_and_matches_duplicates_once():
    predicted = rows(COUNT, COUNT, CAT)
    golds = rows(CAT, COUNT)
    alignment = align(list(reversed(predicted)), golds)
    assert [r.difference_index for r in alignment.predicted] == [0, 1, 2]
    # both predicted COUNTs score 1.0 against gold COUNT: the first one (index 0) wins
    assert [(m.predicted, m.gold) for m in alignment.matches] == [(0, 1), (2, 0)]
    assert alignment.unmatched_predicted() == [1]
    assert alignment == align(predicted, golds)


# Another judge's wording of a gold difference: aspect head first ("number of dogs" -> "dogs
# count"), the other spelling (colour/color, grey/gray), and an existence claim cut to its
# number, colour and noun ("There is a small striped pink triangle to the left of the house." ->
# "A pink triangle.").
ASPECT_HEADS = {"number": "count", "presence": "", "position": "location"}
SPELLING_SWAPS = (("colour", "color"), ("grey", "gray"))
EXISTENCE = re.compile(
    r"There (?:is|are) (a |an |one |two |three |four |five |six )?(?:small |large )?"
    r"(?:plain |striped |polka-dot |checkered )?(.+?)"
    r" (?:with|covered in|to the|in the|next to|above|below|inside)\b.*")


def _swap_spellings(text: str) -> str:
    for british, american in SPELLING_SWAPS:
        text = re.sub(rf"\b{british}|\b{american}",
                      lambda m, b=british, a=american: a if m.group(0) == b else b, text)
    return text


def _terse_claim(claim: str | None) -> str | None:
    if claim is None:
        return None
    found = EXISTENCE.fullmatch(claim)
    if found:
        noun = found.group(2)
        number = (found.group(1) or "").strip()
        if number in ("", "a", "an"):
            number = "an" if noun[:1] in "aeiou" else "a"
        claim = f"{number} {noun}.".capitalize()
    return _swap_spellings(claim)


def _terse_aspect(aspect: str) -> str:
    found = re.fullmatch(r"(\w+) of (?:the )?(.+)", aspect)
    if found:
        head = ASPECT_HEADS.get(found.group(1), found.group(1))
        aspect = f"{found.group(2)} {head}".strip()
    return _swap_spellings(aspect)


def paraphrase(difference: dict[str, Any]) -> dict[str, Any]:
    return {**difference, "aspect": _terse_aspect(difference["aspect"]),
            "actor_claim": _terse_claim(difference["actor_claim"]),
            "reference_claim": _terse_claim(difference["reference_claim"]),
            "actor_span": None, "reference_span": None}


def test_paraphrase_helpers():
    assert _terse_aspect("number of dogs") == "dogs count"
    assert _terse_aspect("colour of the car") == "car color"
    assert _terse_aspect("presence of the triangle") == "triangle"
    assert _terse_claim("There is a small pink triangle to the left of the house.") == (
        "A pink triangle.")
    assert _terse_claim("There are two large green circles covered in white dots in the top "
                        "right of the picture.") == "Two green circles."
    assert _terse_claim("The letters are grey and the car is gray.") == (
        "The letters are gray and the car is grey.")


def test_paraphrased_gold_matches_its_own_gold():
    # every synthetic gold difference, re-worded as a terse judge would, against all the gold
    # differences of its image at once: each must match its own original, one to one
    from claimdiff.synth import generate

    checked = 0
    for image in generate(40, seed=5):
        golds = [d for r in image.rows for d in r.record["gold"]["differences"]]
        originals, paraphrased = rows(*golds), rows(*(paraphrase(d) for d in golds))
        alignment = align(paraphrased, originals)
        assert [(m.predicted, m.gold) for m in alignment.matches] == [
            (i, i) for i in range(len(golds))], [d["aspect"] for d in golds]
        # alone against its own original, too (one gold difference per synthetic row)
        for p, g in zip(paraphrased, originals, strict=True):
            assert lexical_score(p, g) >= DEFAULT_THRESHOLD, (p.aspect, g.aspect)
        checked += len(golds)
    assert checked > 100


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
    # typed: the count pair disagrees on type, so it is no TP of `count` nor of `color`; F1 is
    # 2 TP / (predicted + gold) = 0 for both (a judge that finds nothing scores 0, not n/a)
    assert hal.by_type["count"] == Detection(true_positives=0, predicted=0, gold=1,
                                             precision=None, recall=0.0, f1=0.0)
    assert hal.by_type["color"] == Detection(true_positives=0, predicted=1, gold=0,
                                             precision=0.0, recall=None, f1=0.0)
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
         row(1, 0.5, sample="t"), row(1, 0.4, sample="t"),  # no cleaner caption in t
         # u: both pairs right; v: one right, one inverted; w: its only pair excluded
         row(0, 0.8, sample="u"), row(1, 0.1, "count", sample="u"),
         row(1, 0.3, "color", sample="u"), row(0, 0.6, sample="v"),
         row(1, 0.5, "color", sample="v"), row(1, 0.7, "count", sample="v"),
         row(0, None, sample="w"), row(1, 0.2, "count", sample="w")],
        [PresetId("r", "relative", 1)], "test")
    assert (report.gold_pairs, report.samples, report.rows_null_reward,
            report.rows_missing_from_run) == (10, 4, 2, 1)
    (preset,) = report.presets
    counts = preset.overall
    # pairs: s 1 right, 1 tie, 1 inverted, 2 excluded; u 2 right; v 1 right, 1 inverted; w out
    assert (counts.pairs, counts.correct, counts.ties, counts.inverted, counts.excluded) == (
        7, 4, 1, 2, 3)
    assert counts.share_correct == pytest.approx(4 / 7)
    # samples: s fails (a tie, an inversion), u passes, v fails, w has no compared pair
    assert (counts.samples, counts.samples_passed, counts.sample_pass_rate) == (3, 1, 1 / 3)
    count, color = preset.by_edit["count"], preset.by_edit["color"]
    assert (count.correct, count.inverted, count.excluded) == (2, 2, 3)
    # by edit, a sample passes on that edit's pairs alone: s's colour pair ties, u's and v's
    # colour pairs are right
    assert (count.samples, count.samples_passed) == (3, 1)
    assert (color.ties, color.samples, color.samples_passed) == (1, 3, 2)


def gold_item(actor: str, index: int) -> GoldItem:
    """A gold item without differences."""
    row = InputRow(manifest="m", row_index=index, image="i", image_uri="/i", reference="r",
                   caption="c", sample_id="s", actor_id=actor, gold="{}")
    differences, stats = derive_gold(row, JudgeOutput(differences=[], overall=None), CONFIG,
                                     TypeMapper(CONFIG.taxonomy))
    return GoldItem(row, tuple(differences), stats, {})


def reward(actor: str, index: int, swap: SwapCheck | None = None) -> RewardRow:
    """A judged run row."""
    return RewardRow(run_id="x", sample_id="s", actor_id=actor, manifest="m", row_index=index,
                     image_uri="/i", status=RowStatus.OK, swap=swap)


def test_swap_consistency_is_none_without_differences():
    def consistency(*checks: SwapCheck) -> SwapConsistency | None:
        golds = GoldSet(items=[gold_item(f"a{i}", i) for i in range(len(checks))],
                        rows=len(checks))
        runs = RunOutput(rewards=[reward(f"a{i}", i, c) for i, c in enumerate(checks)],
                         differences=[])
        return swap_consistency(join(golds, runs))

    assert consistency() is None  # no row judged twice: not computed at all
    # judged twice, but neither position found a difference: nothing to be consistent about
    assert consistency(SwapCheck(original_differences=0, swapped_differences=0, matched=0,
                                 judgment_agreements=0)) == SwapConsistency(
        rows=1, difference_consistency=None, judgment_consistency=None)
    # 2 * 1 matched / (2 + 1) found; the one matched judgment agrees
    assert consistency(
        SwapCheck(original_differences=0, swapped_differences=0, matched=0,
                  judgment_agreements=0),
        SwapCheck(original_differences=2, swapped_differences=1, matched=1,
                  judgment_agreements=1)) == SwapConsistency(
        rows=2, difference_consistency=2 / 3, judgment_consistency=1.0)


def test_join_pairs_duplicates_by_row_index_and_counts_ambiguous():
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
    """Gold with one difference dropped, one judgment flipped and two severities changed."""
    degraded = json.loads(json.dumps(hand_rows()))
    degraded[3]["gold"]["differences"].pop(1)  # mixed: the lamp omission is gone
    color = degraded[5]["gold"]["differences"][0]  # colour: the actor is right after all
    color["judgment"], color["reference_error"] = "actor", color["actor_error"]
    color["actor_error"] = None
    degraded[1]["gold"]["differences"][0]["actor_error"]["severity"] = 2  # count: 3 -> 2
    # mixed: the reference's sofa colour error, 2 -> 3
    degraded[3]["gold"]["differences"][1]["reference_error"]["severity"] = 3
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
    # sample data may have no reference errors: then no pairs, and no number
    reference = report.reference_severity
    assert reference.quadratic_kappa == reference.exact_agreement == (
        1.0 if reference.pairs else None)
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
    # reference errors with a severity on both sides: the sofa colour and the grass
    assert report.reference_severity.pairs == 2


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
    # caption (no differences, or none against either side): 3 ties, so image B fails and A
    # (every compared pair correct; the lost row is excluded, not a failure) passes
    assert relative.overall.model_dump() == {
        "pairs": 9, "correct": 6, "ties": 3, "inverted": 0, "excluded": 1,
        "share_correct": 6 / 9, "share_ties": 3 / 9,
        "samples": 2, "samples_passed": 1, "sample_pass_rate": 0.5}
    # per edit: B's colour pairs pass on their own, its setting (both_wrong) pairs do not
    assert {k: (c.samples, c.samples_passed) for k, c in relative.by_edit.items()} == {
        "color": (2, 2), "count": (1, 1), "object_existence": (1, 1), "scene_setting": (1, 0)}
    assert {k: (c.pairs, c.correct) for k, c in relative.by_edit.items()} == {
        "color": (4, 4), "count": (1, 1), "object_existence": (1, 1),
        "scene_setting": (3, 0)}
    assert relative.by_edit["object_existence"].excluded == 1  # the lost hat
    assert {k: (c.pairs, c.correct, c.ties) for k, c in relative.by_severity.items()} == {
        "2": (7, 4, 3), "3": (2, 2, 0)}
    # actor_only penalises the actor's error in both_wrong: every pair is ordered
    assert presets["actor_only"].overall.share_correct == 1.0
    assert presets["actor_only"].overall.sample_pass_rate == 1.0


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
        "f1": 0.0}

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
    # matched reference errors (gold, predicted): sofa (3, 2), grass (2, 2); the car colour is
    # a reference error in gold only. Observed 0.25/2; expected (1*2*0.25 + 1*2*0) / 4 -> 0
    reference = report.reference_severity
    assert (reference.pairs, reference.exact_agreement, reference.quadratic_kappa) == (
        2, 0.5, 0.0)
    assert reference.counts["3"]["2"] == 1

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
    assert "Severity agreement on matched reference errors: 2 pairs" in text
    assert "pass rate" in text
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
    from claimdiff.errors import IncompleteRunError

    manifest, _ = hand_run
    with pytest.raises(IncompleteRunError, match="holds no finished run"):
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
    assert any("bad.jsonl#0" in p and "actor_claim: Field required" in p
               for p in j.problems)
    assert any("bad.jsonl#11" in p and "caption" in p for p in j.problems)
    assert_perfect(report)


# ---- a model's run -------------------------------------------------------------------------

# Bounds that let the tiny random model finish well within its token budget (as in
# tests/test_pipeline_transformers.py).
TINY_MODEL = {"judge.backend": "transformers", "judge.max_differences": 1,
              "judge.max_string_chars": 4, "judge.max_new_tokens": 384,
              "judge.max_batch_size": 4, "run.max_failure_share": 1.0}


def _ratios(value: Any, path: str = "") -> list[tuple[str, float | None]]:
    """Every rate-like field of a report dump (shares, rates, precision, kappa...), by path."""
    found: list[tuple[str, float | None]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("precision", "recall", "f1", "exact_agreement", "share_correct",
                       "share_ties", "sample_pass_rate", "difference_consistency",
                       "judgment_consistency") or key.endswith("_rate"):
                found.append((f"{path}.{key}", item))
            else:
                found.extend(_ratios(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_ratios(item, f"{path}[{index}]"))
    return found


@pytest.mark.slow
def test_eval_scores_a_tiny_model_run(tmp_path: Path):
    # the eval path over a real model's output (a random one: its judgments are noise, so the
    # assertions are about structure and ranges, not values)
    pytest.importorskip("torch")
    pytest.importorskip("xgrammar")
    from claimdiff.synth import write_synthetic
    from tests.support.tiny_vlm import build_tiny_llava

    model = build_tiny_llava(tmp_path / "model", seed=0)
    manifest = write_synthetic(str(tmp_path / "data"), n=1, seed=2, edits_per_image=1)
    run(manifest, tmp_path / "out", {**TINY_MODEL, "judge.model": str(model)}, run_id="tiny")
    report = evaluate(str(tmp_path / "out"), manifest)

    assert report.config_source == "run.json"
    j = report.join
    assert j.gold_items == j.run_rows >= 2
    assert j.joined_judged + j.joined_failed == j.gold_items
    assert j.joined_judged >= 1  # the seeded model answers within its bounds
    assert j.gold_only == j.run_only == j.ambiguous_gold == j.ambiguous_run == 0
    assert {p.name for p in report.reward_ordering.presets} >= {"relative", "actor_only"}
    assert report.noise.gold_differences >= 1
    ratios = _ratios(report.model_dump())
    assert any(path.endswith(".f1") for path, _ in ratios)
    assert all(v is None or 0.0 <= v <= 1.0 for _, v in ratios), ratios
    for severity in (report.severity, report.reference_severity):
        assert severity.quadratic_kappa is None or -1.0 <= severity.quadratic_kappa <= 1.0
    assert EvaluationReport.model_validate_json(report.model_dump_json()) == report
    assert "Reward ordering" in render_table(report)

