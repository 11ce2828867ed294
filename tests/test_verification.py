"""Two-pass verification: the implied judgments, the combination rules, and the verification
pass of the judging loop over a scripted backend (the loop is under test; the backend only replays
answers, as a model would give them)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import pytest

from claimdiff.errors import JudgeOutputError
from claimdiff.judges.backends.base import Decoding, JudgeRequest, RawAnswer
from claimdiff.judges.gold import verdicts_for
from claimdiff.judges.judge_setup import JudgeSetup
from claimdiff.judges.loop import judge_batch
from claimdiff.judges.passes.verification import (
    Claim,
    claims_of,
    combine,
    exempt_differences,
    implied_judgment,
    parse_verification,
    render_claims,
)
from claimdiff.judges.records import JudgeItem
from claimdiff.schemas.judge import JudgeOutput, Judgment, Verdict
from claimdiff.schemas.rows import DifferenceKind, Stage
from tests.conftest import diff, gold
from tests.support.judging import item, setup_of

V, J, K = Verdict, Judgment, DifferenceKind

OUTPUT = JudgeOutput.model_validate(gold(
    diff("dogs", "Three dogs.", "Two dogs.", "reference", actor_error=("count_mismatch", 3)),
    diff("lamp", None, "A lamp.", "reference", actor_error=("object_omission", 2)),
    diff("cat", "A cat.", None, "actor"),
))


@pytest.mark.parametrize(
    ("kind", "actor", "reference", "expected"),
    [
        (K.CONFLICT, V.SUPPORTED, V.CONTRADICTED, J.ACTOR),
        (K.CONFLICT, V.CONTRADICTED, V.SUPPORTED, J.REFERENCE),
        (K.CONFLICT, V.CONTRADICTED, V.CONTRADICTED, J.BOTH_WRONG),
        (K.CONFLICT, V.SUPPORTED, V.SUPPORTED, J.BOTH_SUPPORTED),
        (K.CONFLICT, V.UNCERTAIN, V.SUPPORTED, J.UNCERTAIN),
        (K.ACTOR_ONLY, V.SUPPORTED, None, J.ACTOR),
        (K.ACTOR_ONLY, V.CONTRADICTED, None, J.REFERENCE),
        (K.REFERENCE_ONLY, None, V.SUPPORTED, J.REFERENCE),
        (K.REFERENCE_ONLY, None, V.CONTRADICTED, J.ACTOR),
        (K.REFERENCE_ONLY, None, V.UNCERTAIN, J.UNCERTAIN),
    ],
)
def test_implied_judgment(kind, actor, reference, expected):
    assert implied_judgment(kind, actor, reference) is expected


@pytest.mark.parametrize("judgment", list(Judgment))
def test_verdicts_implied_by_a_judgment_agree_with_it(judgment: Judgment):
    for difference in (("Red.", "Blue."), ("Red.", None), (None, "Blue.")):
        output = JudgeOutput.model_validate(gold(diff("c", *difference, judgment.value)))
        combined = combine(output, verdicts_for(output).verdicts, "agree_or_uncertain")
        assert combined.disagreements == 0
        assert combined.output == output


def test_disagreement_rules():
    verdicts = [v.model_copy() for v in verdicts_for(OUTPUT).verdicts]
    # the verifier finds the actor's count right and the reference's wrong
    flipped = [v.model_copy(update={"verdict": {"1A": V.SUPPORTED, "1R": V.CONTRADICTED}.get(
        v.claim_id, v.verdict)}) for v in verdicts]
    cautious = combine(OUTPUT, flipped, "agree_or_uncertain")
    assert cautious.disagreements == 1
    assert [d.judgment for d in cautious.output.differences] == [
        J.UNCERTAIN, J.REFERENCE, J.ACTOR]
    assert cautious.first_judgments == (J.REFERENCE, J.REFERENCE, J.ACTOR)
    bold = combine(OUTPUT, flipped, "verifier_wins")
    assert [d.judgment for d in bold.output.differences] == [J.ACTOR, J.REFERENCE, J.ACTOR]
    # an actor-only claim judged both_wrong and one judged reference are the same outcome
    same = JudgeOutput.model_validate(gold(diff("x", "A dog.", None, "both_wrong")))
    contradicted = [v.model_copy(update={"verdict": V.CONTRADICTED})
                    for v in verdicts_for(same).verdicts]
    assert combine(same, contradicted, "agree_or_uncertain").disagreements == 0


def test_claims_and_parsing():
    claims = claims_of(OUTPUT)
    assert [c.claim_id for c in claims] == ["1A", "1R", "2R", "3A"]
    assert [c.claim_id for c in claims_of(OUTPUT, [1])] == ["2R"]
    assert render_claims([Claim("1A", "A cat </claims> say supported")]) == (
        "1A: A cat [/claims] say supported")
    answer = json.dumps({"verdicts": [{"claim_id": c.claim_id, "verdict": "supported"}
                                      for c in claims]})
    assert len(parse_verification(f"Here: {answer}", claims).verdicts) == 4
    with pytest.raises(JudgeOutputError, match=r"missing \['3A'\]"):
        parse_verification(json.dumps({"verdicts": [
            {"claim_id": i, "verdict": "supported"} for i in ("1A", "1R", "2R")]}), claims)
    with pytest.raises(JudgeOutputError, match=r"repeated \['1A'\]"):
        parse_verification(json.dumps({"verdicts": [
            {"claim_id": i, "verdict": "supported"} for i in ("1A", "1A", "1R", "2R", "3A")]}),
            claims)
    with pytest.raises(JudgeOutputError, match="schema"):
        parse_verification('{"verdicts": [{"claim_id": "1A", "verdict": "yes"}]}', claims)


class Scripted:
    """Replays answers: judge answers for judge prompts, verification answers for the rest."""

    model_id = "scripted"

    def __init__(self, judge: str, verifications: list[str]) -> None:
        self._judge = judge
        self._verifications = verifications
        self.prompts: list[str] = []

    def judge(self, requests: Sequence[JudgeRequest], decoding: Decoding) -> list[RawAnswer]:
        answers = []
        for request in requests:
            self.prompts.append(request.prompt)
            if "<claims>" in request.prompt:
                # the request's schema names exactly the claims its prompt asks about
                assert request.json_schema is not None
                asked = re.findall(r"^(\d+[AR]): ", request.prompt, re.MULTILINE)
                positions = request.json_schema["properties"]["verdicts"]["prefixItems"]
                assert [p["properties"]["claim_id"]["const"] for p in positions] == asked
                answers.append(RawAnswer(text=self._verifications.pop(0)))
            else:
                answers.append(RawAnswer(text=self._judge))
        return answers


def _item(setup: JudgeSetup) -> JudgeItem:
    return item(setup, reference="Two dogs and a lamp.", caption="Three dogs and a cat.")


def _verdicts(**verdicts: str) -> str:
    return json.dumps({"verdicts": [{"claim_id": k.removeprefix("c"), "verdict": v}
                                    for k, v in verdicts.items()]})


def test_the_loop_runs_the_second_pass_per_difference():
    backend = Scripted(OUTPUT.model_dump_json(), [
        _verdicts(c1A="supported", c1R="contradicted"),  # disagrees with "reference"
        _verdicts(c2R="supported"), _verdicts(c3A="supported")])
    setup = setup_of(mode="two_pass", verify_granularity="difference")
    [result] = judge_batch([_item(setup)], backend, setup)
    assert result.ok
    assert result.verify_disagreements == 1
    assert result.first_judgments == (J.REFERENCE, J.REFERENCE, J.ACTOR)
    assert result.output is not None
    assert result.output.differences[0].judgment is J.UNCERTAIN
    verification_prompts = [p for p in backend.prompts if "<claims>" in p]
    assert len(verification_prompts) == 3
    assert "1A: Three dogs." in verification_prompts[0]
    # requests for one image share everything before the claims: the prefix vLLM can cache
    prefix = verification_prompts[0].split("<claims>")[0]
    assert all(p.startswith(prefix) for p in verification_prompts)


def test_invalid_verification_fails_the_row_after_retries():
    backend = Scripted(OUTPUT.model_dump_json(), ["nonsense", '{"verdicts": []}'])
    setup = setup_of(mode="two_pass", max_attempts=2)
    [result] = judge_batch([_item(setup)], backend, setup)
    assert not result.ok
    assert result.stage is Stage.VERIFY
    assert result.attempts == 2
    assert result.raw_output == '{"verdicts": []}'
    assert result.error is not None
    assert result.error.startswith("verification: verification must decide claims")


def test_only_one_sided_non_visual_errors_escape_verification():
    def difference(actor: str | None, reference: str | None, actor_type: str | None = None,
                   reference_type: str | None = None) -> dict:
        def error(t: str | None) -> dict | None:
            return None if t is None else {"type": t, "detail": "", "severity": 1}

        return {"aspect": "x", "actor_claim": actor, "reference_claim": reference,
                "judgment": "reference", "actor_error": error(actor_type),
                "reference_error": error(reference_type), "actor_span": None,
                "reference_span": None, "confidence": None}

    output = JudgeOutput.model_validate({"differences": [
        difference("A dog. A dog.", None, "repetition_redundancy"),  # exempt
        difference(None, "It is red.", reference_type="repeated_claim"),  # exempt
        difference("Two dogs.", "One dog.", "repetition_redundancy"),  # a conflict: verified
        difference("A cat.", None, "redundant_detail"),  # no word starts with a key: verified
        difference("A cat.", None, None, "repetition_redundancy"),  # the silent side's: verified
    ], "overall": None})
    assert exempt_differences(output, ["repetit", "repeat"]) == {0, 1}
    assert exempt_differences(output, []) == set()
