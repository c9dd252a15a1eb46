"""``compile_layers``: the fast path's decoder layers ``torch.compile``d instead of liger's kernels (H100, session 10:
35.9k -> 50.5k real tok/s in bench_train.py). Here: which path it picks, that every layer is compiled with the
adapters inside, that training through compiled layers gives the same losses, and that the option leaves the
training cache keys of runs trained before it existed alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import sqlshift.train.trainer as trainer
from sqlshift.train import varlen
from sqlshift.train.config import TrainConfig, cache_fields
from test_prompts import make_tiny_spider


def test_compile_layers_replaces_liger_on_the_fast_path_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(varlen, "varlen_usable", lambda: False)
    monkeypatch.setattr(trainer, "cuda_available", lambda: True)
    compiled = trainer.resolve_speed_path(TrainConfig(fast_path=True, compile_layers=True))
    assert compiled.fast and compiled.compiled and not compiled.liger
    assert compiled.describe().endswith("decoder layers compiled")
    assert not trainer.resolve_speed_path(TrainConfig(fast_path=True)).compiled
    monkeypatch.setattr(trainer, "cuda_available", lambda: False)  # CPU: the standard path, nothing compiled
    assert not trainer.resolve_speed_path(TrainConfig(fast_path=True, compile_layers=True)).compiled


def test_every_decoder_layer_is_compiled_with_its_adapters(tiny_model_dir: Path) -> None:
    from peft import LoraConfig, get_peft_model

    from sqlshift.lm.models import load_model

    model, _ = load_model(str(tiny_model_dir), device="cpu", dtype="fp32")
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    n = trainer.compile_decoder_layers(peft_model)
    layers = trainer.decoder_layers(peft_model)
    assert n == len(layers) == model.config.num_hidden_layers
    assert all(layer._compiled_call_impl is not None for layer in layers)
    assert hasattr(layers[0].self_attn.q_proj, "lora_A")  # compiled after peft wrapped it: the adapter is inside


def test_cache_key_leaves_out_an_option_at_the_default_it_was_added_with() -> None:
    """Runs trained before compile_layers existed keep their cache key; turning it on is a new training."""
    plain = TrainConfig()
    assert cache_fields(plain) == {k: v for k, v in plain.model_dump(mode="json").items() if k != "compile_layers"}
    assert cache_fields(TrainConfig(compile_layers=True))["compile_layers"] is True


@pytest.mark.slow  # torch.compile of the tiny model's layers on CPU: about a minute on 2 cores
def test_training_through_compiled_layers_gives_the_same_losses(tiny_model_dir: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """train() with a compiled path (forced here: the fast path needs CUDA) compiles, logs it and learns the same."""
    spider = make_tiny_spider(tmp_path / "spider", n_repeat=2)
    cfg = TrainConfig.model_validate({
        "model": str(tiny_model_dir), "learning_rate": 5e-3, "lr_scheduler": "constant", "warmup_ratio": 0.0,
        "per_device_batch_size": 4, "gradient_accumulation_steps": 1, "max_length": 512, "max_steps": 3,
        "logging_steps": 1, "save_steps": 100, "data": {"spider_dir": str(spider)},
        "lora": {"dropout": 0.0}})  # inductor draws dropout masks from its own RNG: compare without dropout

    def run(compiled: bool) -> tuple[list[float], dict]:
        path = trainer.SpeedPath(False, "fp32", "sdpa", False, False, compiled=compiled)
        monkeypatch.setattr(trainer, "resolve_speed_path", lambda *a, **k: path)
        out = trainer.train(cfg, tmp_path / f"c{compiled}")
        losses = [h["loss"] for h in json.loads((out / "log_history.json").read_text()) if "loss" in h]
        return losses, json.loads((out / "train_data.json").read_text())

    (eager, _), (compiled, summary) = run(False), run(True)
    assert summary["speed_path"].endswith("decoder layers compiled")
    assert len(compiled) == len(eager) == 3
    assert eager[0] != eager[-1] and all(abs(a - b) < 1e-4 for a, b in zip(eager, compiled))
