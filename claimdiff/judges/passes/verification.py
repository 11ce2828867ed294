"""Two-pass verification: each enumerated claim decided again, on its own, against the image.

The second pass sees only the claims (not the captions, not the first judgment) and says of each
one `supported`, `contradicted` or `uncertain`. Those verdicts imply a judgment per difference:

| claims present | actor claim | reference claim | implied judgment |
|----------------|-------------|-----------------|------------------|
| both           | supported   | contradicted    | actor            |
| both           | contradicted| supported       | reference        |
| both           | contradicted| contradicted    | both_wrong       |
| both           | supported   | supported       | both_supported   |
| actor only     | supported   | -               | actor            |
| actor only     | contradicted| -               | reference        |
| reference only | -           | supported       | reference        |
| reference only | -           | contradicted    | actor            |
| any            | any uncertain                 | | uncertain        |

The passes agree on a difference when their judgments give the same outcomes (the outcome table of
docs/architecture.md), so an actor-only claim judged `both_wrong` in pass one and `reference` by
implication agree: both are an actor hallucination. A one-sided difference the first pass called
`both_supported` (not a real difference: the other caption says the same in other words) agrees
with a verifier that finds its claim supported: whether two wordings match is the first pass's
question, not the image's.
Where they disagree, the `judge.verify_rule` decides:
- `agree_or_uncertain` (default, for high-precision runs): the difference becomes `uncertain`, so
  it counts against nobody and shows as judge noise;
- `verifier_wins`: the implied judgment replaces the first one unless it is `uncertain`.
Every disagreement is counted (`claimdiff.judge/verify_disagreements`, per row in
`stats.verify_disagreements`) and the first judgment is kept in `differences.first_judgment`.

Errors that are not about the image (`judge.verify_exempt_types`, by default repetition: a
repeated claim is true, only needless) cannot be verified from the claim alone:
such differences are not sent to the verifier and keep the first pass's judgment.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

from claimdiff.judges.attempts import Answer, answer_all
from claimdiff.judges.backends.base import JudgeBackend, JudgeRequest, Role
from claimdiff.judges.events import Event, Observe
from claimdiff.judges.formats.verification import Claim, parse_verification
from claimdiff.judges.prompting.templates import neutralise
from claimdiff.judges.records import JudgeResult
from claimdiff.rewards.outcomes import difference_kind, outcomes_of
from claimdiff.schemas.judge import (
    ClaimVerdict,
    JudgedDifference,
    JudgeOutput,
    Judgment,
    Verdict,
    VerificationOutput,
    verification_schema,
)
from claimdiff.schemas.rows import DifferenceKind, Stage

if TYPE_CHECKING:
    from claimdiff.judges.judge_setup import JudgeSetup

V, J = Verdict, Judgment
_IMPLIED_CONFLICT = {
    (V.SUPPORTED, V.CONTRADICTED): J.ACTOR,
    (V.CONTRADICTED, V.SUPPORTED): J.REFERENCE,
    (V.CONTRADICTED, V.CONTRADICTED): J.BOTH_WRONG,
    (V.SUPPORTED, V.SUPPORTED): J.BOTH_SUPPORTED,
}




def claims_of(output: JudgeOutput, indices: Sequence[int] | None = None) -> list[Claim]:
    """The claims to verify: `<n>A` / `<n>R` for the actor / reference claim of difference n."""
    claims = []
    for index, difference in enumerate(output.differences):
        if indices is not None and index not in indices:
            continue
        for side, text in (("A", difference.actor_claim), ("R", difference.reference_claim)):
            if text and text.strip():
                claims.append(Claim(f"{index + 1}{side}", text.strip()))
    return claims


def render_claims(claims: Sequence[Claim], special_tokens: Collection[str] = ()) -> str:
    """One claim a line, as data; claim text is untrusted like the captions it came from."""
    return "\n".join(
        f"{c.claim_id}: {neutralise(c.text, special_tokens).replace(chr(10), ' ')}"
        for c in claims)


def implied_judgment(kind: DifferenceKind, actor: Verdict | None,
                     reference: Verdict | None) -> Judgment:
    """The judgment the verdicts imply; a claim left undecided counts as `uncertain`."""
    needed = {DifferenceKind.CONFLICT: (actor, reference), DifferenceKind.ACTOR_ONLY: (actor,),
              DifferenceKind.REFERENCE_ONLY: (reference,)}[kind]
    if V.UNCERTAIN in needed or None in needed:
        return J.UNCERTAIN
    if kind is DifferenceKind.CONFLICT and actor is not None and reference is not None:
        return _IMPLIED_CONFLICT[(actor, reference)]
    if kind is DifferenceKind.ACTOR_ONLY:
        return J.ACTOR if actor is V.SUPPORTED else J.REFERENCE
    return J.REFERENCE if reference is V.SUPPORTED else J.ACTOR


@dataclass(frozen=True)
class Combined:
    output: JudgeOutput
    first_judgments: tuple[Judgment, ...]
    disagreements: int


def exempt_differences(output: JudgeOutput, exempt_types: Sequence[str]) -> set[int]:
    """Differences the verifier cannot decide: a one-sided claim wrong only as a caption.

    A repeated claim is true of the image and wrong only as writing (redundant); the verifier
    sees claims alone, so it would find it supported and undo the first pass's error. Only a
    one-sided difference whose claiming side's error type has a word starting with one of
    `exempt_types` (`repetition_redundancy`, `repeated_claim`) is exempt: a conflict, or a
    type that merely contains the letters, is verified like any other.
    """
    keys = tuple(k.lower() for k in exempt_types)

    def non_visual(difference: JudgedDifference) -> bool:
        kind = difference_kind(difference.actor_claim, difference.reference_claim)
        if kind is DifferenceKind.CONFLICT:
            return False
        error = (difference.actor_error if kind is DifferenceKind.ACTOR_ONLY
                 else difference.reference_error)
        words = re.split(r"[^a-z0-9]+", error.type.lower()) if error is not None else []
        return bool(keys) and any(word.startswith(keys) for word in words)

    return {i for i, d in enumerate(output.differences) if non_visual(d)}


def combine(output: JudgeOutput, verdicts: Sequence[ClaimVerdict], rule: str,
            exempt: frozenset[int] | set[int] = frozenset()) -> Combined:
    """Final judgments from the first pass and the verdicts, by `rule` (see module doc).

    Differences in `exempt` were not verified and keep their first judgment.
    """
    by_id = {v.claim_id: v.verdict for v in verdicts}
    final: list[JudgedDifference] = []
    disagreements = 0
    for index, difference in enumerate(output.differences):
        if index in exempt:
            final.append(difference)
            continue
        kind = difference_kind(difference.actor_claim, difference.reference_claim)
        actor, reference = by_id.get(f"{index + 1}A"), by_id.get(f"{index + 1}R")
        implied = implied_judgment(kind, actor, reference)
        same_fact = (difference.judgment is J.BOTH_SUPPORTED
                     and V.CONTRADICTED not in (actor, reference)
                     and V.UNCERTAIN not in (actor, reference))
        if same_fact or outcomes_of(kind, implied) == outcomes_of(kind, difference.judgment):
            final.append(difference)
            continue
        disagreements += 1
        judgment: Judgment = J.UNCERTAIN
        if rule == "verifier_wins" and implied is not J.UNCERTAIN:
            judgment = implied
        final.append(difference.model_copy(update={"judgment": judgment}))
    return Combined(
        output=output.model_copy(update={"differences": final}),
        first_judgments=tuple(d.judgment for d in output.differences),
        disagreements=disagreements,
    )


def verify(results: list[JudgeResult], backend: JudgeBackend, setup: JudgeSetup,
           note: Observe) -> list[JudgeResult]:
    """The verification pass: every enumerated claim decided again, on its own.

    A verification answer that still fails after every attempt fails its row (stage `verify`):
    a high-precision run must not pass first-pass judgments off as verified ones.
    """
    config = setup.config
    assert setup.verify_prompt is not None  # JudgeSetup loads it in two-pass mode
    constrained = config.constrained and config.output_format == "json"
    owners: list[int] = []
    claim_sets: list[list[Claim]] = []
    requests: list[JudgeRequest] = []
    exempt: dict[int, set[int]] = {}
    for i, result in enumerate(results):
        if result.output is None:
            continue
        exempt[i] = exempt_differences(result.output, config.verify_exempt_types)
        checked = [d for d in range(len(result.output.differences)) if d not in exempt[i]]
        groups: list[list[int]] = (
            [checked] if config.verify_granularity == "sample" else [[d] for d in checked])
        for group in groups:
            claims = claims_of(result.output, group)
            if not claims:
                continue
            ids = tuple(c.claim_id for c in claims)
            owners.append(i)
            claim_sets.append(claims)
            requests.append(JudgeRequest(
                key=f"{result.item.cache_key}:verify:{ids[0]}", role=Role.VERIFY,
                prompt=setup.render(setup.verify_prompt,
                                    claims=render_claims(claims, setup.special_tokens)),
                image=result.item.pixels, gold=result.item.row.gold, claim_ids=ids,
                json_schema=verification_schema(list(ids)) if constrained else None))
    parsers = [partial(parse_verification, expected=claims) for claims in claim_sets]
    answers = answer_all(requests, parsers, backend, config, setup.first_decoding, note)
    note(Event.VERIFY_REQUESTS, len(requests))

    verdicts: dict[int, list[ClaimVerdict]] = {}
    raws: dict[int, list[str]] = {}
    failed: dict[int, Answer[VerificationOutput]] = {}
    for owner, answer in zip(owners, answers, strict=True):
        if answer.output is None:
            failed.setdefault(owner, answer)
        else:
            verdicts.setdefault(owner, []).extend(answer.output.verdicts)
            raws.setdefault(owner, []).append(answer.raw or "")
    updated = list(results)
    for i, result in enumerate(results):
        if result.output is None:
            continue
        if i in failed:
            answer = failed[i]
            updated[i] = replace(
                result, output=None, raw_output=answer.raw, attempts=answer.attempts,
                finish_reason=answer.finish_reason, error_class=answer.error_class,
                error=f"verification: {answer.error}", stage=Stage.VERIFY)
            continue
        combined = combine(result.output, verdicts.get(i, []), config.verify_rule, exempt[i])
        note(Event.VERIFY_DIFFERENCES, len(result.output.differences) - len(exempt[i]))
        note(Event.VERIFY_EXEMPT, len(exempt[i]))
        note(Event.VERIFY_DISAGREEMENTS, combined.disagreements)
        updated[i] = replace(result, output=combined.output,
                             first_judgments=combined.first_judgments,
                             verify_disagreements=combined.disagreements,
                             verify_raw=tuple(raws.get(i, ())))
    return updated
