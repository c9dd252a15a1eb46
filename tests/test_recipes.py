"""The recipe seam: LoRA, QLoRA and full fine-tuning are recipes that produce a model point the runner evaluates
the same way; λ where it applies, a config error where it does not; full fine-tuning end to end via sqlshift run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from sqlshift.errors import ConfigError, EmptyPredictions
from sqlshift.study.runner import run_experiment
from sqlshift.train.config import load_train_config
from sqlshift.train.recipes import Full, LoRA, QLoRA, recipe_of

FAST = {"max_steps": 2, "save_steps": 1, "per_device_batch_size": 2, "gradient_accumulation_steps": 1,
        "data.limit_n": 8, "max_length": 384, "prompt.max_prompt_tokens": 320, "learning_rate": 5e-2}


def study(model: str, run: dict[str, Any]) -> dict[str, Any]:
    return {"name": "recipes", "model": model, "data_dir": "demo", "allow_below_chance": True,
            "benchmarks": [{"benchmark": "spider", "split": "dev", "sample": 4, "batch_size": 4, "max_new_tokens": 8},
                           {"benchmark": "mmlu", "subjects": ["everyday_math"], "batch_size": 16}],
            "runs": [run]}


def run_study(tmp: Path, cfg: dict[str, Any]) -> Path:
    path = tmp / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    try:
        run_experiment(path, tmp / "run")
    except EmptyPredictions:  # a random tiny model may write only blank SQL; everything is written before this
        pass
    return tmp / "run"


def test_the_training_config_decides_the_recipe() -> None:
    assert isinstance(recipe_of(load_train_config("embedded-cpu")), LoRA)
    assert isinstance(recipe_of(load_train_config("embedded-cpu", {"load_in_4bit": True})), QLoRA)
    full = recipe_of(load_train_config("embedded-cpu", {"lora.enabled": False}))
    assert isinstance(full, Full) and not full.takes_lambda and LoRA.takes_lambda
    assert full.point(Path("t/full")).model == "t/full" and full.point(Path("t/full")).adapter is None
    assert LoRA().point(Path("t/lora")).adapter == Path("t/lora") and LoRA().point(Path("t/lora")).model is None


def test_lambda_on_a_full_fine_tune_is_a_config_error_before_training(tmp_path: Path, tiny_model_dir: Path) -> None:
    run = {"name": "full", "config": "embedded-cpu", "lambdas": [0.5], "overrides": {**FAST, "lora.enabled": False}}
    with pytest.raises(ConfigError, match=r"runs\[full\]: lambdas scale a LoRA adapter.*full fine-tune"):
        run_study(tmp_path, study(str(tiny_model_dir), run))
    assert not (tmp_path / "run" / "train").exists()


def check_full_study(run_dir: Path) -> None:
    """A full fine-tune is trained to a whole model and evaluated as its own model, with the runner's files."""
    train = run_dir / "train" / "full"
    assert (train / "config.json").is_file() and not (train / "adapter_config.json").exists()
    meta = json.loads((run_dir / "models" / "full" / "model.json").read_text())
    assert meta["model"] == str(train) and meta["adapter"] is None and meta["kind"] == "run"
    for key in ("baseline", "full"):
        for bench in ("spider-dev", "mmlu"):
            metrics = json.loads((run_dir / "models" / key / bench / "metrics.json").read_text())
            assert metrics["complete"] and metrics["n"] > 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert "full" in json.dumps(summary)


def test_full_fine_tune_runs_end_to_end_and_caches(tmp_path: Path, tiny_model_dir: Path) -> None:
    run = {"name": "full", "config": "embedded-cpu", "checkpoints": "all", "overrides": {**FAST, "lora.enabled": False}}
    run_dir = run_study(tmp_path, study(str(tiny_model_dir), run))
    check_full_study(run_dir)
    assert (run_dir / "models" / "full-step1" / "mmlu" / "metrics.json").is_file()  # a checkpoint is a model too
    steps = json.loads((run_dir / "steps.json").read_text())
    run_study(tmp_path, study(str(tiny_model_dir), run))  # rerun: every step cached, nothing retrained
    assert json.loads((run_dir / "steps.json").read_text()) == steps


@pytest.mark.slow
def test_full_fine_tune_of_the_embedded_model_on_cpu(tmp_path: Path) -> None:
    """The embedded SmolLM2-135M fully fine-tuned for two steps on CPU and evaluated through sqlshift run."""
    run = {"name": "full", "config": "embedded-cpu",
           "overrides": {**FAST, "per_device_batch_size": 1, "data.limit_n": 2, "learning_rate": 1e-5,
                         "lora.enabled": False}}
    check_full_study(run_study(tmp_path, study("embedded", run)))
