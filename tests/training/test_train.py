"""`claimdiff train dpo` and `claimdiff train rwr` on a tiny random-weight LLaVA, on CPU: two
real optimisation steps each, the adapter saved, reloaded and generating."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from claimdiff.cli import EXIT_OK, EXIT_USAGE, main
from claimdiff.errors import ConfigError
from claimdiff.training.common import (
    TrainingDataError,
    resolve_precision,
    trl_config,
)
from claimdiff.training.dpo import DpoTrainConfig, train_dpo
from claimdiff.training.pairs import PairsConfig, export_pairs
from claimdiff.training.rwr import RwrConfig, export_rwr

pytest.importorskip("trl")
pytest.importorskip("peft")
torch = pytest.importorskip("torch")

TWO_STEPS = ["--max-steps", "2", "--save-steps", "2", "--batch-size", "2"]


@pytest.fixture(scope="module")
def pairs_data(synth_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pairs") / "pairs"
    export_pairs(str(synth_run), str(out), PairsConfig(strategy="all_pairs"))
    return out


@pytest.fixture(scope="module")
def rwr_data(synth_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rwr") / "rwr"
    export_rwr(str(synth_run), str(out), RwrConfig())
    return out


def _printed_summary(out: str) -> dict[str, Any]:
    """The command's closing JSON (TRL prints its progress logs before it)."""
    return json.loads(out[out.rindex('{\n  "kind"'):])


def _summary(output: Path) -> dict[str, Any]:
    summary = json.loads((output / "training_summary.json").read_text())
    steps = [h for h in summary["log_history"] if "loss" in h]
    assert [h["step"] for h in steps] == [1, 2]
    assert all(math.isfinite(h["loss"]) for h in steps)
    assert summary["steps"] == 2
    assert (output / "checkpoints" / "checkpoint-2").is_dir()
    from PIL import Image

    with Image.open(output / "loss.png") as png:
        assert png.format == "PNG"
        assert png.size[0] > 100
    return summary


def _lora_tensors(output: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(output / "final" / "adapter_model.safetensors"))


def _check_adapter_trained_and_reloads(output: Path, base_path: Path) -> None:
    tensors = _lora_tensors(output)
    assert tensors
    # only the language model is adapted, never the vision tower
    assert all("language_model" in k and "vision_tower" not in k for k in tensors)
    # PEFT starts every lora_B at zero: a non-zero one was trained
    b_tensors = [v for k, v in tensors.items() if "lora_B" in k]
    assert b_tensors
    assert all(float(v.abs().max()) > 0 for v in b_tensors)

    from peft import PeftModel
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(str(output / "final"))
    base = AutoModelForImageTextToText.from_pretrained(str(base_path))
    model = PeftModel.from_pretrained(base, str(output / "final")).eval()
    messages = [{"role": "user", "content": [{"type": "image"},
                                             {"type": "text", "text": "Describe it."}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(text=[text], images=[Image.new("RGB", (64, 64), (200, 40, 40))],
                       return_tensors="pt")
    with torch.no_grad():
        generated = model.generate(**inputs, max_new_tokens=4, do_sample=False)
        tuned = model(**inputs).logits
        with model.disable_adapter():
            untouched = model(**inputs).logits
    assert generated.shape[1] > inputs["input_ids"].shape[1]
    assert not torch.allclose(tuned, untouched)


@pytest.mark.slow
def test_train_dpo_with_lora_from_the_cli(pairs_data: Path, tiny_llava: Path, tmp_path: Path,
                                          capsys):
    output = tmp_path / "dpo"
    assert main(["train", "dpo", "--model", str(tiny_llava), "--pairs", str(pairs_data),
                 "--output", str(output), *TWO_STEPS, "--lora-r", "4"]) == EXIT_OK
    printed = _printed_summary(capsys.readouterr().out)
    assert printed["steps"] == 2
    assert printed["kind"] == "dpo"
    summary = _summary(output)
    assert summary["reference_model"] == "frozen base under the adapter"
    assert summary["precision"] == "fp32"
    assert summary["lora"]["r"] == 4
    assert summary["trainable_parameters"] < summary["parameters"] / 10
    assert any("rewards/margins" in h for h in summary["log_history"])
    _check_adapter_trained_and_reloads(output, tiny_llava)
    # a second run into the same folder needs --overwrite
    assert main(["train", "dpo", "--model", str(tiny_llava), "--pairs", str(pairs_data),
                 "--output", str(output), *TWO_STEPS]) == EXIT_USAGE


@pytest.mark.slow
def test_train_dpo_without_lora_uses_a_frozen_copy(pairs_data: Path, tiny_llava: Path,
                                                   tmp_path: Path):
    from safetensors.torch import load_file

    output = tmp_path / "dpo-full"
    summary = train_dpo(DpoTrainConfig(
        model=str(tiny_llava), data=str(pairs_data), output=str(output),
        lora={"enabled": False}, trl={"max_steps": 2, "save_steps": 2, "learning_rate": 1e-3}))
    assert summary["reference_model"] == "explicit frozen copy"
    assert summary["trainable_parameters"] == summary["parameters"]
    _summary(output)
    before = load_file(str(tiny_llava / "model.safetensors"))
    after = load_file(str(output / "final" / "model.safetensors"))
    changed = [k for k in before if k in after and not torch.equal(before[k], after[k])]
    assert changed


@pytest.mark.slow
def test_train_rwr_with_lora_from_the_cli(rwr_data: Path, tiny_llava: Path, tmp_path: Path,
                                          capsys):
    output = tmp_path / "rwr"
    assert main(["train", "rwr", "--model", str(tiny_llava), "--data", str(rwr_data),
                 "--output", str(output), *TWO_STEPS, "--learning-rate", "1e-3"]) == EXIT_OK
    assert _printed_summary(capsys.readouterr().out)["kind"] == "rwr"
    summary = _summary(output)
    assert all("weight_mean" in h for h in summary["log_history"] if "loss" in h)
    assert summary["weight_mean"] == pytest.approx(1.0)
    _check_adapter_trained_and_reloads(output, tiny_llava)


def test_weighted_loss_is_trls_loss_times_the_weights(rwr_data: Path, tiny_llava: Path,
                                                       tmp_path: Path):
    """All weights 1: exactly TRL's SFT loss; all weights 2: twice it; a zero weight removes
    that example's tokens from the sum (not from the count)."""
    import trl
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from claimdiff.training.common import load_training_data
    from claimdiff.training.rwr_trainer import WeightedCollator, weighted_trainer_class

    processor = AutoProcessor.from_pretrained(str(tiny_llava))
    model = AutoModelForImageTextToText.from_pretrained(str(tiny_llava)).eval()
    base = DataCollatorForVisionLanguageModeling(processor=processor, completion_only_loss=True)
    args = trl_config(trl.SFTConfig, tmp_path, "fp32", {"report_to": "none", "max_steps": 1})
    with load_training_data(str(rwr_data), {"weight"}) as dataset:
        weighted = weighted_trainer_class()(
            model=copy.deepcopy(model), args=args, train_dataset=dataset,
            processing_class=processor, data_collator=WeightedCollator(base))
        plain = trl.SFTTrainer(model=copy.deepcopy(model), args=args, train_dataset=dataset,
                               processing_class=processor, data_collator=base)

        def loss(trainer: Any, weights: list[float] | None) -> float:
            examples = [dataset[i] for i in range(2)]
            for example, w in zip(examples, weights or [0.0, 0.0], strict=True):
                example["weight"] = w
            if weights is None:
                for example in examples:
                    del example["weight"]
                batch = base(examples)
            else:
                batch = WeightedCollator(base)(examples)
            with torch.no_grad():
                return float(trainer.compute_loss(trainer.model, batch))

        reference = loss(plain, None)
        assert loss(weighted, [1.0, 1.0]) == pytest.approx(reference, rel=1e-5)
        assert loss(weighted, [2.0, 2.0]) == pytest.approx(2 * reference, rel=1e-5)
        first_only, second_only = loss(weighted, [1.0, 0.0]), loss(weighted, [0.0, 1.0])
        assert first_only + second_only == pytest.approx(reference, rel=1e-5)
        assert 0 < first_only < reference


def test_an_example_longer_than_max_length_fails_before_training(pairs_data: Path,
                                                                 tiny_llava: Path,
                                                                 tmp_path: Path):
    output = tmp_path / "long"
    config = DpoTrainConfig(model=str(tiny_llava), data=str(pairs_data), output=str(output),
                            max_length=40, trl={"max_steps": 1})
    with pytest.raises(TrainingDataError, match=r"longer than max_length=40 tokens \(image "
                       r"tokens included\).*does not truncate"):
        train_dpo(config)
    assert not (output / "checkpoints").exists()
    assert not (output / "final").exists()


def test_rwr_training_refuses_data_without_weights(pairs_data: Path, tiny_llava: Path,
                                                   tmp_path: Path, capsys):
    assert main(["train", "rwr", "--model", str(tiny_llava), "--data", str(pairs_data),
                 "--output", str(tmp_path / "x"), "--max-steps", "1"]) == EXIT_USAGE
    assert "lacks the columns ['completion', 'weight']" in capsys.readouterr().err


@pytest.mark.parametrize(("trl", "message"), [
    ({"max_length": 512}, "claimdiff never truncates"),
    ({"bf16": True}, "set precision"),
    ({"output_dir": "x"}, "--output"),
])
def test_trl_keys_claimdiff_owns_are_refused(trl, message):
    config = DpoTrainConfig(model="m", data="d", output="o", trl=trl)
    with pytest.raises(ConfigError, match=message):
        config.trl_kwargs({})


def test_trl_validates_its_own_options(tmp_path: Path):
    import trl

    with pytest.raises(ConfigError, match=r"trl: .*no_such_option"):
        trl_config(trl.DPOConfig, tmp_path, "fp32", {"no_such_option": 1})


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only rules")
@pytest.mark.parametrize(("asked", "expected"), [
    ("auto", "fp32"), ("fp32", "fp32"), ("bf16", ConfigError), ("fp16", ConfigError)])
def test_precision_on_cpu(asked, expected):
    if expected is ConfigError:
        with pytest.raises(ConfigError, match="needs a CUDA device"):
            resolve_precision(asked)
    else:
        assert resolve_precision(asked) == expected


def test_a_model_that_does_not_load_leaves_no_output(pairs_data: Path, tmp_path: Path, capsys):
    output = tmp_path / "out"
    assert main(["train", "dpo", "--model", str(tmp_path / "no-model"), "--pairs",
                 str(pairs_data), "--output", str(output)]) == EXIT_USAGE
    assert "cannot load the model" in capsys.readouterr().err
    assert not output.exists()
