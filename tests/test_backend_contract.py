"""The backend contract (`tests/contracts/backend_contract.py`) for the backends of the main
environment: the labels judge and the transformers backend on a tiny random-weight LLaVA."""

from __future__ import annotations

import pytest
from PIL import Image

from claimdiff.errors import ContextOverflowError, NoGoldError
from claimdiff.judges.backends.base import Decoding, JudgeRequest
from claimdiff.judges.backends.labels import LabelsBackend
from claimdiff.schemas.judge import decoding_schema
from tests.conftest import diff, gold
from tests.contracts.backend_contract import (  # noqa: F401 - the contract's tests, collected here
    Contract,
    test_a_request_brings_its_own_schema,
    test_an_unanswerable_request_fails_alone,
    test_every_request_gets_one_answer_in_order,
    test_greedy_answers_are_reproducible_and_batch_independent,
)
from tests.support.tiny_vlm import build_tiny_llava

GOLD = gold(diff("dogs", "two dogs", "one dog", "reference", ("count_mismatch", 3)))


def _labels() -> Contract:
    import json

    def answerable(key: str) -> JudgeRequest:
        return JudgeRequest(key=key, prompt=f"judge {key}", gold=json.dumps(GOLD))

    return Contract(LabelsBackend(), answerable, JudgeRequest(key="none", prompt="no gold"),
                    NoGoldError, Decoding(), constrained=False)


def _transformers(tmp_path_factory: pytest.TempPathFactory) -> Contract:
    from claimdiff.judges.backends.transformers import TransformersBackend

    model = build_tiny_llava(tmp_path_factory.mktemp("contract_llava"), seed=0)
    backend = TransformersBackend(str(model), decoding_schema(max_differences=1,
                                                              max_string_chars=4))
    sizes = {"a": (80, 60), "b": (40, 120), "c": (300, 200), "s": (32, 32)}

    def answerable(key: str) -> JudgeRequest:
        return JudgeRequest(key=key, prompt=f"Actor: a {key} ball. Reference: a ball.",
                            image=Image.new("RGB", sizes[key], (200, 30, 30)))

    too_long = JudgeRequest(key="long", prompt="word " * 9000,
                            image=Image.new("RGB", (40, 40)))
    return Contract(backend, answerable, too_long, ContextOverflowError,
                    Decoding(max_new_tokens=256), constrained=True)


@pytest.fixture(scope="module", params=["labels", "transformers"])
def contract(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Contract:
    if request.param == "labels":
        return _labels()
    return _transformers(tmp_path_factory)
