"""The `labels` judge: gold differences carried in the manifest (human or generated labels).

It answers with the row's `gold` JSON as it is, so gold labels go through the same parsing,
validation, outcomes and rewards as a model's answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from claimdiff.judges.base import Decoding, JudgeRequest, RawAnswer

NO_GOLD = "row has no gold labels: the labels judge needs a `gold` column"


class LabelsBackend:
    @property
    def model_id(self) -> str:
        return "labels"

    def judge(self, requests: Sequence[JudgeRequest], decoding: Decoding) -> list[RawAnswer]:
        return [
            RawAnswer(text=r.gold) if r.gold is not None else RawAnswer(text=None, error=NO_GOLD)
            for r in requests
        ]
