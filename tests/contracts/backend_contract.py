"""The contract every judge backend keeps, as test functions over a `contract` fixture.

A test module makes a `Contract` for its backend (the labels judge and the transformers backend
in the main environment; the vLLM and OpenAI-compatible backends in the vLLM environment) and
imports these tests; one suite, not a copy per backend:

- every request of a batch gets one answer, in order, and an empty batch gets none;
- an answer is text or a typed request error (`JudgeRequestError`), never both missing;
  finish reasons are "stop" or "length"; counts are None or non-negative integers;
- a request the backend cannot answer fails alone: the rest of its batch is answered as if it
  were not there;
- greedy answers are reproducible, and do not depend on batch-mates;
- a constrained backend answers a request's own schema when it brings one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from claimdiff.errors import JudgeRequestError
from claimdiff.judges.backends.base import Decoding, JudgeBackend, JudgeRequest, RawAnswer


@dataclass(frozen=True)
class Contract:
    backend: JudgeBackend
    answerable: Callable[[str], JudgeRequest]  # a request it answers, by key
    unanswerable: JudgeRequest  # one it cannot (over its context, no gold, ...)
    error: type[JudgeRequestError]  # the kind of error the unanswerable one gets
    decoding: Decoding
    constrained: bool  # honours JSON schemas


def _well_formed(answer: RawAnswer) -> None:
    assert isinstance(answer, RawAnswer)
    assert (answer.text is None) <= (answer.error is not None), "no text and no error"
    assert answer.error is None or isinstance(answer.error, JudgeRequestError)
    assert answer.finish_reason in ("stop", "length")
    for count in (answer.prompt_tokens, answer.cached_prompt_tokens, answer.new_tokens,
                  answer.max_tokens):
        assert count is None or (isinstance(count, int) and count >= 0)
    assert answer.transport_attempts >= 0
    assert answer.length_retries >= 0


def test_every_request_gets_one_answer_in_order(contract: Contract) -> None:
    requests = [contract.answerable(key) for key in ("a", "b", "c")]
    answers = contract.backend.judge(requests, contract.decoding)
    assert len(answers) == 3
    for answer in answers:
        _well_formed(answer)
        assert answer.error is None, answer.error
        assert answer.text is not None
    assert contract.backend.judge([], contract.decoding) == []
    assert isinstance(contract.backend.model_id, str)
    assert contract.backend.model_id


def test_an_unanswerable_request_fails_alone(contract: Contract) -> None:
    alone = contract.backend.judge([contract.answerable("a")], contract.decoding)
    mixed = contract.backend.judge([contract.unanswerable, contract.answerable("a")],
                                   contract.decoding)
    assert len(mixed) == 2
    for answer in mixed:
        _well_formed(answer)
    assert isinstance(mixed[0].error, contract.error), mixed[0].error
    assert mixed[1].error is None
    assert mixed[1].text == alone[0].text


def test_greedy_answers_are_reproducible_and_batch_independent(contract: Contract) -> None:
    requests = [contract.answerable(key) for key in ("a", "b")]
    first = [a.text for a in contract.backend.judge(requests, contract.decoding)]
    assert [a.text for a in contract.backend.judge(requests, contract.decoding)] == first
    assert contract.backend.judge(requests[1:], contract.decoding)[0].text == first[1]


def test_a_request_brings_its_own_schema(contract: Contract) -> None:
    if not contract.constrained:
        pytest.skip("this backend decodes unconstrained: no schema to honour")
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
              "additionalProperties": False}
    request = contract.answerable("s").model_copy(update={"json_schema": schema})
    (answer,) = contract.backend.judge([request], contract.decoding)
    _well_formed(answer)
    assert answer.text is not None
    assert isinstance(json.loads(answer.text)["ok"], bool)
