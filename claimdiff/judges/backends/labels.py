"""The `labels` judge: gold differences carried in the manifest (human or generated labels).

It answers every request from the row's `gold` as a perfect judge would, so gold labels go
through the same parsing, validation, passes, outcomes and rewards as a model's answer:
- the first pass: the gold as it is;
- the position-swap check: the gold mirrored (claims, spans, errors and judgments change sides),
  written in the run's output format;
- verification: the verdicts the gold's judgments imply, for the claims asked about;
- the holistic call: refused (`NoGoldError`): a 0-10 score is not in the gold, and making one up
  from the gold's differences would be a number nobody judged; the holistic reward is null.
"""

from __future__ import annotations

from collections.abc import Sequence

from claimdiff.errors import JudgeOutputError, NoGoldError
from claimdiff.judges.backends.base import Decoding, JudgeRequest, RawAnswer, Role
from claimdiff.judges.formats import parser_for, renderer_for
from claimdiff.judges.gold import mirror, verdicts_for
from claimdiff.schemas.judge import VerificationOutput

NO_GOLD = "row has no gold labels: the labels judge needs a `gold` column"
NO_HOLISTIC = "the labels judge has no holistic score (gold labels are claim differences)"


class LabelsBackend:
    def __init__(self, output_format: str = "json") -> None:
        self._output_format = output_format

    @property
    def model_id(self) -> str:
        return "labels"

    def judge(self, requests: Sequence[JudgeRequest], decoding: Decoding) -> list[RawAnswer]:
        return [self._answer(request) for request in requests]

    def _answer(self, request: JudgeRequest) -> RawAnswer:
        if request.gold is None:
            return RawAnswer(text=None, error=NoGoldError(NO_GOLD))
        if request.role is Role.JUDGE:
            return RawAnswer(text=request.gold)
        if request.role is Role.HOLISTIC:
            return RawAnswer(text=None, error=NoGoldError(NO_HOLISTIC))
        try:
            # read as the first pass read it: gold is written in the run's output format
            gold = parser_for(self._output_format)(request.gold)
        except JudgeOutputError:
            # the first pass failed on this gold already; answer the same unparsable text
            return RawAnswer(text=request.gold)
        if request.role is Role.SWAP:
            text = renderer_for(self._output_format)(mirror(gold))
        else:
            wanted = set(request.claim_ids)
            text = VerificationOutput(verdicts=[
                v for v in verdicts_for(gold).verdicts if v.claim_id in wanted]).model_dump_json()
        return RawAnswer(text=text)
