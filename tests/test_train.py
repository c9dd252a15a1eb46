"""Training config, completion-only masking and its guard, replay mixing, a short run, resume, presets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sqlshift.errors import ConfigError, ScorerFailure
from sqlshift.train import (TrainConfig, build_training_rows, check_mask_coverage, load_train_config, make_trainer,
                            n_replay_for, tokenize_like_trl, train, verify_trainer_dataset)
from test_prompts import make_tiny_spider

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "train"


@pytest.fixture(scope="module")
def tok(tiny_model_dir: Path):
    from sqlshift.models import load_tokenizer

    return load_tokenizer(str(tiny_model_dir))


@pytest.fixture()
def spider_dir(tmp_path: Path) -> Path:
    return make_tiny_spider(tmp_path / "spider", n_repeat=2)


def tiny_cfg(model_dir: Path, spider_dir: Path, **kw) -> TrainConfig:
    """A config for the tiny model: fast steps, loss logged every step."""
    base = {"model": str(model_dir), "learning_rate": 5e-3, "lr_scheduler": "constant", "warmup_ratio": 0.0,
            "per_device_batch_size": 4, "gradient_accumulation_steps": 1, "max_length": 512, "max_steps": 5,
            "logging_steps": 1, "save_steps": 3, "data": {"spider_dir": str(spider_dir)}}
    return TrainConfig.model_validate(base | kw)


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("learning_rate: 1e-4\nlora:\n  r: 8\n  rank: 4\nepochz: 2\n")
    with pytest.raises(ConfigError) as e:
        load_train_config(p)
    assert "lora.rank" in str(e.value) and "epochz" in str(e.value) and "bad.yaml" in str(e.value)
    with pytest.raises(ConfigError, match="nope"):
        load_train_config(None, ["nope=1"])


def test_overrides_are_typed(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("learning_rate: 2e-4\nlora: {r: 8}\n")
    cfg = load_train_config(p, ["lora.r=16", "learning_rate=1e-4", "lora.enabled=false", "data.db_ids=[a, b]"])
    assert cfg.lora.r == 16 and cfg.learning_rate == 1e-4 and cfg.lora.enabled is False and cfg.data.db_ids == ["a", "b"]
    with pytest.raises(ConfigError, match="fraction"):
        load_train_config(None, ["replay.source=jsonl", "replay.path=x.jsonl", "replay.fraction=0.7"])


def test_presets_load_and_match_the_paper() -> None:
    for name in ("seed-run1", "seed-run2", "embedded-cpu"):
        load_train_config(CONFIGS / f"{name}.yaml")
    r1, r2 = load_train_config(CONFIGS / "seed-run1.yaml"), load_train_config(CONFIGS / "seed-run2.yaml")
    for c in (r1, r2):
        assert (c.lora.r, c.lora.alpha, c.lora.dropout) == (8, 16, 0.05)
        assert c.lora.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj"]
        assert (c.epochs, c.optimizer, c.seed, c.load_in_4bit) == (1, "paged_adamw_8bit", 42, True)
    assert (r1.learning_rate, r2.learning_rate) == (2e-4, 5e-5)
    assert r1.attn_implementation == r2.attn_implementation == "eager"  # SDPA training NaN'd on the GPU
    with pytest.raises(ConfigError, match="attn_implementation"):
        load_train_config(None, ["attn_implementation=flash"])


def test_completion_only_masking_matches_trl(tok, tiny_model_dir: Path, spider_dir: Path, tmp_path: Path) -> None:
    from sqlshift.models import load_model

    cfg = tiny_cfg(tiny_model_dir, spider_dir)
    rows, summary = build_training_rows(tok, cfg)
    ids, labels, n_prompt = tokenize_like_trl(tok, rows[0]["prompt"], rows[0]["completion"], cfg.max_length)
    assert labels[:n_prompt] == [-100] * n_prompt
    sup = [t for t in labels if t != -100]
    assert sup and sup[-1] == tok.eos_token_id and tok.decode(sup[:-1]).startswith("SELECT")
    assert tok.decode(ids[:n_prompt]) == rows[0]["prompt"]
    assert check_mask_coverage(tok, rows, cfg.max_length)["min_supervised_tokens"] >= 2
    model, _ = load_model(str(tiny_model_dir))
    trainer = make_trainer(model, tok, rows, cfg, tmp_path / "out")
    assert summary["n_spider"] == 16 and summary["prompt_stats"]["n_truncated"] == 0
    verify_trainer_dataset(trainer.train_dataset, tok, rows, cfg.max_length)  # trl's own labels agree


def test_mask_guard_rejects_unsupervised_example(tok) -> None:
    good = {"prompt": "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n", "completion": "SELECT 1<|im_end|>"}
    bad = {"prompt": "<|im_start|>user\n" + "word " * 300 + "<|im_end|>\n<|im_start|>assistant\n",
           "completion": "SELECT 1<|im_end|>", "id": "spider:42"}
    assert check_mask_coverage(tok, [good], 64)["ok"]
    with pytest.raises(ScorerFailure, match="spider:42"):
        check_mask_coverage(tok, [good, bad], 64)


def test_replay_fraction_is_exact(tok, tiny_model_dir: Path, spider_dir: Path, tmp_path: Path, monkeypatch) -> None:
    assert [n_replay_for(f, 100) for f in (0, 0.1, 0.2, 0.5)] == [0, 11, 25, 100]
    jl = tmp_path / "replay.jsonl"
    jl.write_text("".join(json.dumps({"instruction": f"Say {i}", "response": f"{i}"}) + "\n" for i in range(10)))
    cfg = tiny_cfg(tiny_model_dir, spider_dir, replay={"source": "jsonl", "path": str(jl), "fraction": 0.2})
    rows, s = build_training_rows(tok, cfg)
    assert (s["n_spider"], s["n_replay"], s["replay_fraction_actual"]) == (16, 4, 0.2)
    assert sum(r["source"] == "jsonl" for r in rows) == 4
    import sqlshift.data.mmlu as mmlu

    seen = {}

    def fake(mmlu_dir, subjects, n, seed, split="val"):
        seen.update(n=n, subjects=subjects, split=split)
        return [{"prompt": f"Q{i}?\nA. x\nB. y", "completion": "A. x"} for i in range(n)]

    monkeypatch.setattr(mmlu, "mmlu_replay_examples", fake)
    cfg = tiny_cfg(tiny_model_dir, spider_dir, replay={"source": "mmlu", "fraction": 0.5, "subjects": ["philosophy"]})
    rows, s = build_training_rows(tok, cfg)
    assert s["n_replay"] == 16 == seen["n"] and seen["subjects"] == ["philosophy"] and s["replay_fraction_actual"] == 0.5
    assert check_mask_coverage(tok, rows, cfg.max_length)["ok"]


def test_short_run_lowers_loss_saves_adapter_and_resumes(tiny_model_dir: Path, spider_dir: Path, tmp_path: Path,
                                                        monkeypatch) -> None:
    from trl import SFTTrainer

    from sqlshift.models import load_model

    out = tmp_path / "run"
    train(tiny_cfg(tiny_model_dir, spider_dir, max_steps=3), out)
    assert (out / "checkpoint-3").is_dir()
    steps = {"n": 0}
    real_step = SFTTrainer.training_step

    def counting(self, *a, **k):
        steps["n"] += 1
        return real_step(self, *a, **k)

    monkeypatch.setattr(SFTTrainer, "training_step", counting)
    train(tiny_cfg(tiny_model_dir, spider_dir, max_steps=5, resume=True), out)
    assert steps["n"] == 2  # only steps 4 and 5 ran
    hist = json.loads((out / "log_history.json").read_text())
    losses = [h["loss"] for h in hist if "loss" in h]
    assert [h["step"] for h in hist if "loss" in h] == [1, 2, 3, 4, 5]
    assert losses[-1] < losses[0]
    assert json.loads((out / "train_data.json").read_text())["resumed_from"] == "checkpoint-3"
    saved = yaml.safe_load((out / "train_config.yaml").read_text())
    assert saved["max_steps"] == 5 and saved["lora"]["r"] == 8
    assert (out / "adapter_config.json").is_file() and (out / "tokenizer_config.json").is_file()
    model, tok = load_model(str(tiny_model_dir), adapter=out)
    assert type(model).__name__ == "PeftModelForCausalLM" and tok.padding_side == "left"


@pytest.mark.slow
def test_embedded_model_after_short_finetune_gives_parseable_sql(data_dir: Path, tmp_path: Path) -> None:
    import sqlglot

    from sqlshift.data.spider import load_spider
    from sqlshift.generate import generate_predictions
    from sqlshift.models import load_model

    cfg = load_train_config(CONFIGS / "embedded-cpu.yaml",
                            [f"data.spider_dir={data_dir / 'spider'}", "data.limit_n=32", "max_steps=6",
                             "gradient_accumulation_steps=1", "save_steps=100", "learning_rate=1e-3"])
    out = train(cfg, tmp_path / "emb")
    model, tok = load_model("embedded", adapter=out)
    dev = load_spider(data_dir / "spider", "dev")
    preds = generate_predictions(model, tok, dev, tmp_path / "p.jsonl", batch_size=4, max_new_tokens=64, limit=8,
                                 progress=False)
    parsed = 0
    for p in preds:
        try:
            parsed += bool(p["sql"]) and sqlglot.parse_one(p["sql"], read="sqlite") is not None
        except sqlglot.errors.ParseError:
            pass
    assert parsed >= 4, [p["raw"] for p in preds]


def test_cudnn_sdpa_is_left_alone_off_cuda_and_for_eager() -> None:
    import torch

    from sqlshift.train import avoid_cudnn_sdpa_backward

    before = torch.backends.cuda.cudnn_sdp_enabled()
    assert avoid_cudnn_sdpa_backward(TrainConfig(attn_implementation="eager")) is False
    assert avoid_cudnn_sdpa_backward(TrainConfig()) is torch.cuda.is_available()
    if not torch.cuda.is_available():
        assert torch.backends.cuda.cudnn_sdp_enabled() == before
