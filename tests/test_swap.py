from __future__ import annotations

from claimdiff.judges.gold import mirror
from claimdiff.judges.passes.swap import compare, selected
from claimdiff.schemas.judge import JudgeOutput, Judgment, Overall
from tests.conftest import diff, gold

OUTPUT = JudgeOutput.model_validate(gold(
    diff("number of dogs", "Three dogs.", "Two dogs.", "reference",
         actor_error=("count_mismatch", 3)),
    diff("lamp", None, "A lamp stands behind.", "actor",
         reference_error=("object_hallucination", 3)),
    diff("sofa colour", "The sofa is red.", "The sofa is blue.", "both_wrong",
         actor_error=("color_mismatch", 2), reference_error=("color_mismatch", 2)),
))


def test_mirror_swaps_sides_and_is_its_own_inverse():
    mirrored = mirror(OUTPUT)
    first = mirrored.differences[0]
    assert (first.actor_claim, first.reference_claim) == ("Two dogs.", "Three dogs.")
    assert first.judgment is Judgment.ACTOR
    assert first.reference_error is not None
    assert first.reference_error.type == "count_mismatch"
    assert mirrored.differences[2].judgment is Judgment.BOTH_WRONG
    assert mirrored.overall is Overall.ACTOR
    assert mirror(mirrored) == OUTPUT


def test_compare_counts_found_and_agreeing_differences():
    assert compare(OUTPUT, OUTPUT).model_dump() == {
        "original_differences": 3, "swapped_differences": 3, "matched": 3,
        "judgment_agreements": 3}
    # the swapped run missed the lamp and flipped the dogs (position bias)
    swapped = OUTPUT.model_copy(update={"differences": [
        OUTPUT.differences[0].model_copy(update={"judgment": Judgment.ACTOR}),
        OUTPUT.differences[2]]})
    assert compare(OUTPUT, swapped).model_dump() == {
        "original_differences": 3, "swapped_differences": 2, "matched": 2,
        "judgment_agreements": 1}


def test_swap_sample_is_stable_and_near_its_fraction():
    keys = [f"key-{i}" for i in range(2000)]
    chosen = [k for k in keys if selected(k, 0.25)]
    assert 400 < len(chosen) < 600
    assert chosen == [k for k in keys if selected(k, 0.25)]
    assert not any(selected(k, 0.0) for k in keys)
    assert all(selected(k, 1.0) for k in keys)
