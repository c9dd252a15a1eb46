"""Training config, completion-only masking and its guard, replay mixing, a short run, resume, presets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sqlshift.errors import ConfigError, ScorerFailure
from sqlshift.train.trainer import (TrainConfig, build_training_rows, check_mask_coverage, load_train_config, make_trainer,
                                    n_replay_for, parse_overrides, resolve_train_config, tokenize_like_trl,
                                    tokenize_rows_like_trl, train, validate_train_overrides, verify_trainer_dataset)
from test_prompts import make_tiny_spider

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "train"


@pytest.fixture(scope="module")
def tok(tiny_model_dir: Path):
    from sqlshift.lm.models import load_tokenizer

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
        load_train_config(None, {"nope": 1})


def test_overrides_are_typed(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("learning_rate: 2e-4\nlora: {r: 8}\n")
    ov = parse_overrides(["lora.r=16", "learning_rate=1e-4", "lora.enabled=false", "data.db_ids=[a, b]"])
    assert ov["lora.r"] == 16 and ov["lora.enabled"] is False and ov["data.db_ids"] == ["a", "b"]
    cfg = load_train_config(p, ov)
    assert cfg.lora.r == 16 and cfg.learning_rate == 1e-4 and cfg.lora.enabled is False and cfg.data.db_ids == ["a", "b"]
    with pytest.raises(ConfigError, match="fraction"):
        load_train_config(None, {"replay.source": "jsonl", "replay.path": "x.jsonl", "replay.fraction": 0.7})
    with pytest.raises(ConfigError, match="not key=value"):
        parse_overrides(["lora.r"])
    with pytest.raises(TypeError, match="parse_overrides"):
        load_train_config(p, ["lora.r=16"])  # type: ignore[arg-type]


def test_overrides_dict_values_are_not_reparsed_and_sections_merge(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("lora: {r: 8, target_modules: [q_proj]}\nprompt: {system_prompt: base}\n")
    cfg = load_train_config(p, {"lora": {"r": 4}, "prompt.system_prompt": "true", "data": {"db_ids": ["1"]}})
    assert cfg.lora.r == 4 and cfg.lora.target_modules == ["q_proj"]  # a nested mapping updates the section
    assert cfg.prompt.system_prompt == "true" and cfg.data.db_ids == ["1"]  # strings stay strings


def test_all_problems_reported_at_once_with_file_and_dotted_key() -> None:
    ov = {"learning_rat": 1e-4, "lora.r": 0, "prompt.max_promt_tokens": 5, "attn_implementation": "flash"}
    problems = validate_train_overrides("seed-run1", ov)
    assert len(problems) == 4, problems
    assert "seed-run1.yaml: learning_rat (override): unknown key (did you mean learning_rate?)" in problems
    assert any(p.startswith("seed-run1.yaml: lora.r (override):") for p in problems)
    assert "seed-run1.yaml: prompt.max_promt_tokens (override): unknown key (did you mean max_prompt_tokens?)" in problems
    with pytest.raises(ConfigError) as e:
        load_train_config("seed-run1", ov)
    assert all(p in str(e.value) for p in problems) and "Traceback" not in str(e.value)
    assert validate_train_overrides("seed-run1", {"learning_rate": 1e-4}) == []
    assert "embedded-cpu" in validate_train_overrides("no-such-preset", {})[0]


def test_presets_resolve_by_bare_name(tmp_path: Path) -> None:
    assert resolve_train_config("embedded-cpu") == CONFIGS.resolve() / "embedded-cpu.yaml" or \
        resolve_train_config("embedded-cpu").name == "embedded-cpu.yaml"
    assert resolve_train_config("seed-run1.yaml").name == "seed-run1.yaml"
    own = tmp_path / "mine.yaml"
    own.write_text("max_steps: 3\n")
    assert resolve_train_config(own) == own and load_train_config(str(own)).max_steps == 3
    with pytest.raises(ConfigError) as e:
        resolve_train_config("seed-run9")
    assert "seed-run1" in str(e.value) and "embedded-cpu" in str(e.value)


def test_presets_load_and_match_the_paper() -> None:
    for name in ("seed-run1", "seed-run2", "embedded-cpu"):
        assert load_train_config(CONFIGS / f"{name}.yaml") == load_train_config(name)
    r1, r2 = load_train_config(CONFIGS / "seed-run1.yaml"), load_train_config(CONFIGS / "seed-run2.yaml")
    for c in (r1, r2):
        assert (c.lora.r, c.lora.alpha, c.lora.dropout) == (8, 16, 0.05)
        assert c.lora.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj"]
        assert (c.epochs, c.optimizer, c.seed, c.load_in_4bit) == (1, "paged_adamw_8bit", 42, True)
    assert (r1.learning_rate, r2.learning_rate) == (2e-4, 5e-5)
    assert r1.attn_implementation == r2.attn_implementation == "eager"  # SDPA training NaN'd on the GPU
    assert r1.fast_path and r2.fast_path and not load_train_config("embedded-cpu").fast_path
    with pytest.raises(ConfigError, match="attn_implementation"):
        load_train_config(None, {"attn_implementation": "flash"})


def test_completion_only_masking_matches_trl(tok, tiny_model_dir: Path, spider_dir: Path, tmp_path: Path) -> None:
    from sqlshift.lm.models import load_model

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
    # tokenised once here (batched) and handed to trl: the very rows trl's own tokenisation gives
    tokenized = tokenize_rows_like_trl(tok, rows)
    assert tokenized == [tokenize_like_trl(tok, r["prompt"], r["completion"], None) for r in rows]
    given = make_trainer(model, tok, rows, cfg, tmp_path / "out2", tokenized=tokenized).train_dataset
    assert len(given) == len(trainer.train_dataset) == len(rows)
    for i in range(len(rows)):
        assert list(given[i]["input_ids"]) == list(trainer.train_dataset[i]["input_ids"])
        assert list(given[i]["labels"]) == list(trainer.train_dataset[i]["labels"])


def test_sample_rows_reach_training_prompts_as_evaluation_builds_them(tok, tiny_model_dir: Path,
                                                                       spider_dir: Path) -> None:
    """prompt.sample_rows in a training config: each prompt shows the database's rows, exactly as the evaluation's
    PromptBuilder renders that question, and the SQL is still the only supervised part."""
    from sqlshift.data.spider import load_spider
    from sqlshift.sql.prompts import PromptBuilder

    cfg = tiny_cfg(tiny_model_dir, spider_dir, prompt={"sample_rows": 2})
    rows, summary = build_training_rows(tok, cfg)
    plain, _ = build_training_rows(tok, tiny_cfg(tiny_model_dir, spider_dir))
    assert summary["prompt_stats"]["n_truncated"] == 0 and len(rows) == len(plain) == 16
    split = load_spider(spider_dir, "train")
    builder = PromptBuilder(tok, split.tables, split.db_path, cfg.prompt)
    at_eval = {f"spider:{e.index}": builder.build(e).text for e in split.examples}
    for r in rows:
        assert "example rows from singer" in r["prompt"] and "Joe Sharp" in r["prompt"]
        assert r["prompt"] == at_eval[r["id"]]
    assert not any("example rows" in r["prompt"] for r in plain)
    assert check_mask_coverage(tok, rows, cfg.max_length)["min_supervised_tokens"] >= 2


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
                                                        monkeypatch, caplog) -> None:
    from trl import SFTTrainer

    from sqlshift.lm.models import load_model

    import logging

    out = tmp_path / "run"
    with caplog.at_level(logging.DEBUG, logger="sqlshift.train.trainer"):
        train(tiny_cfg(tiny_model_dir, spider_dir, max_steps=3, resume=True), out)
    infos = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert not any("no checkpoint" in m for m in infos)  # a first run is not news (debug only)
    assert any("no checkpoint" in r.getMessage() for r in caplog.records)
    assert any("real tokens" in m and "tokens/s" in m for m in infos)
    assert any("standard path: fp32 base" in m for m in infos)
    caplog.clear()
    assert (out / "checkpoint-3").is_dir()
    steps = {"n": 0}
    real_step = SFTTrainer.training_step

    def counting(self, *a, **k):
        steps["n"] += 1
        return real_step(self, *a, **k)

    monkeypatch.setattr(SFTTrainer, "training_step", counting)
    with caplog.at_level(logging.INFO, logger="sqlshift.train.trainer"):
        train(tiny_cfg(tiny_model_dir, spider_dir, max_steps=5, resume=True), out)
    assert "resumed from checkpoint-3" in caplog.text
    assert steps["n"] == 2  # only steps 4 and 5 ran
    hist = json.loads((out / "log_history.json").read_text())
    losses = [h["loss"] for h in hist if "loss" in h]
    assert [h["step"] for h in hist if "loss" in h] == [1, 2, 3, 4, 5]
    assert losses[-1] < losses[0]
    record = json.loads((out / "train_data.json").read_text())
    assert record["resumed_from"] == "checkpoint-3" and record["speed"]["steps"] == 5
    assert record["speed"]["real_tokens"] > 0 and record["speed_path"].startswith("standard path")
    assert record["speed"]["peak_gpu_gib"] is None  # CPU: no GPU peak to report (CUDA: this process's own)
    # counted on the LoRA-wrapped model: the adapter's weights only, not the whole model
    assert 0 < record["model"]["trainable"] < record["model"]["parameters"] / 10
    saved = yaml.safe_load((out / "train_config.yaml").read_text())
    assert saved["max_steps"] == 5 and saved["lora"]["r"] == 8
    assert (out / "adapter_config.json").is_file() and (out / "tokenizer_config.json").is_file()
    model, tok = load_model(str(tiny_model_dir), adapter=out)
    assert type(model).__name__ == "PeftModelForCausalLM" and tok.padding_side == "left"


@pytest.mark.slow
def test_embedded_model_after_short_finetune_gives_parseable_sql(data_dir: Path, tmp_path: Path) -> None:
    import sqlglot

    import dataclasses

    from sqlshift.benchmarks.spider import predict_split
    from sqlshift.data.spider import load_spider
    from sqlshift.lm.hf import HFLM
    from sqlshift.sql.prompts import PromptConfig

    cfg = load_train_config(CONFIGS / "embedded-cpu.yaml",
                            {"data.spider_dir": str(data_dir / "spider"), "data.limit_n": 32, "max_steps": 6,
                             "gradient_accumulation_steps": 1, "save_steps": 100, "learning_rate": 1e-3})
    out = train(cfg, tmp_path / "emb")
    lm = HFLM("embedded")
    dev = load_spider(data_dir / "spider", "dev")
    dev = dataclasses.replace(dev, examples=dev.examples[:8])
    with lm.adapter(out):
        preds = predict_split(lm, dev, tmp_path / "p.jsonl", prompt_cfg=PromptConfig(), batch_size=4,
                              max_new_tokens=64)
    parsed = 0
    for p in preds:
        try:
            parsed += bool(p["sql"]) and sqlglot.parse_one(p["sql"], read="sqlite") is not None
        except sqlglot.errors.ParseError:
            pass
    assert parsed >= 4, [p["raw"] for p in preds]


def test_cudnn_sdpa_is_left_alone_off_cuda_and_for_eager() -> None:
    import torch

    from sqlshift.train.trainer import avoid_cudnn_sdpa_backward

    before = torch.backends.cuda.cudnn_sdp_enabled()
    assert avoid_cudnn_sdpa_backward(TrainConfig(attn_implementation="eager")) is False
    assert avoid_cudnn_sdpa_backward(TrainConfig()) is torch.cuda.is_available()
    if not torch.cuda.is_available():
        assert torch.backends.cuda.cudnn_sdp_enabled() == before


def test_fast_path_changes_nothing_on_cpu() -> None:
    import torch

    from sqlshift.train.trainer import resolve_speed_path

    if torch.cuda.is_available():
        pytest.skip("checks the CPU path")
    fast = resolve_speed_path(load_train_config("seed-run1"))
    std = resolve_speed_path(load_train_config("seed-run1", {"fast_path": False}))
    assert fast == std and not fast.fast and not fast.padding_free and fast.base_dtype == "fp32"
    assert fast.attn_implementation == "eager" and not fast.liger


def test_padding_free_batch_gives_the_per_example_losses(tok, tiny_model_dir: Path, spider_dir: Path,
                                                         tmp_path: Path) -> None:
    """The fast path's batches (rows concatenated, separated by position_ids) must score every supervised token
    exactly as the row alone does: no attention across rows, no token lost or added at the seams."""
    import torch
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from sqlshift.lm.models import load_model
    from sqlshift.train.trainer import SpeedPath

    cfg = tiny_cfg(tiny_model_dir, spider_dir)
    rows, _ = build_training_rows(tok, cfg)
    rows = rows[:4]
    model, _ = load_model(str(tiny_model_dir), attn_implementation="sdpa")
    tok.padding_side = "right"
    tr = make_trainer(model, tok, rows, cfg, tmp_path / "pf", SpeedPath(True, "fp32", "sdpa", True, False))
    tr.model.eval()
    feats = [tr.train_dataset[i] for i in range(len(rows))]
    assert len({len(f["input_ids"]) for f in feats}) > 1  # rows of different lengths: padding would be needed

    def summed_nll(batch: dict) -> float:
        with torch.no_grad():
            return float(tr.compute_loss(tr.model, dict(batch), num_items_in_batch=torch.tensor(1)))

    singles = [summed_nll(tr.data_collator([f])) for f in feats]
    packed_batch = tr.data_collator(feats)
    assert packed_batch["input_ids"].shape[0] == 1 and "attention_mask" not in packed_batch
    assert packed_batch["input_ids"].shape[1] == sum(len(f["input_ids"]) for f in feats)  # no padding token
    padded = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id)(feats)
    assert summed_nll(packed_batch) == pytest.approx(sum(singles), rel=1e-5)
    assert summed_nll(padded) == pytest.approx(sum(singles), rel=1e-5)
    # the first row alone vs the same row inside the packed batch, token by token
    first = tr.data_collator(feats[:1])
    assert summed_nll(tr.data_collator(feats[:2])) - summed_nll(tr.data_collator(feats[1:2])) == \
        pytest.approx(summed_nll(first), rel=1e-5)


def test_two_visible_gpus_train_on_one_without_data_parallel(tok, tiny_model_dir: Path, spider_dir: Path,
                                                             tmp_path: Path, monkeypatch, caplog) -> None:
    import logging

    import torch

    import sqlshift.train.trainer as train_mod
    from sqlshift.lm.models import load_model

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    cfg = tiny_cfg(tiny_model_dir, spider_dir, max_steps=1, save_steps=100)
    rows, _ = build_training_rows(tok, cfg)
    model, _ = load_model(str(tiny_model_dir))
    with monkeypatch.context() as m:  # the simulation is real: without the pin, trl refuses as on the GPU machine
        m.setattr(train_mod, "pin_single_gpu", lambda args: False)
        with pytest.raises(ValueError, match="DataParallel"):
            make_trainer(model, tok, rows, cfg, tmp_path / "dp0")
    model, _ = load_model(str(tiny_model_dir))
    with caplog.at_level(logging.WARNING, logger="sqlshift.train.trainer"):
        tr = make_trainer(model, tok, rows, cfg, tmp_path / "dp")
    assert "2 GPUs visible" in caplog.text and "cuda:0 only" in caplog.text
    assert "accelerate launch --multi_gpu --num_processes 2 -m sqlshift.cli train" in caplog.text
    assert "CUDA_VISIBLE_DEVICES" in caplog.text
    assert tr.args.n_gpu == 1
    tr.train()
    assert not isinstance(tr.model_wrapped, torch.nn.DataParallel) and tr.state.global_step == 1


def test_console_says_what_matters(tmp_path: Path, caplog) -> None:
    import logging
    import warnings

    from sqlshift.train.trainer import quiet_library_warnings, run_trainer

    class Interrupted:
        def train(self, resume_from_checkpoint=None):
            raise KeyboardInterrupt

    with caplog.at_level(logging.INFO, logger="sqlshift.train.trainer"), pytest.raises(KeyboardInterrupt):
        run_trainer(Interrupted(), None)
    assert "interrupted" not in caplog.text  # the CLI says it, once (tests/test_cli_model.py)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with quiet_library_warnings():
            warnings.warn("Could not find a config file in /m - will assume that the vocabulary was not modified.")
        warnings.warn("something else")
    assert [str(w.message) for w in seen] == ["something else"]


def test_gradient_checkpointing_trains_exactly_as_without(tiny_model_dir: Path, spider_dir: Path,
                                                          tmp_path: Path) -> None:
    """embedded-cpu recomputes activations to save memory: the dropout masks and so the losses must not change."""
    def history(checkpointing: bool) -> list[dict]:
        out = train(tiny_cfg(tiny_model_dir, spider_dir, max_steps=3, save_steps=100, lora={"dropout": 0.3},
                             gradient_checkpointing=checkpointing), tmp_path / f"gc{checkpointing}")
        return [h for h in json.loads((out / "log_history.json").read_text()) if "loss" in h]

    plain, recomputed = history(False), history(True)
    assert [h["num_tokens"] for h in recomputed] == [h["num_tokens"] for h in plain]
    for a, b in zip(plain, recomputed):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5) and b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-4)
    cfg = load_train_config("embedded-cpu")
    assert cfg.gradient_checkpointing and (cfg.per_device_batch_size, cfg.gradient_accumulation_steps, cfg.max_steps) == (4, 1, 24)


def test_save_only_model_checkpoints_hold_weights_and_restart(tiny_model_dir: Path, spider_dir: Path, tmp_path: Path,
                                                              caplog) -> None:
    """A full fine-tune with save_only_model: checkpoints without optimizer state, and a rerun restarts (a model-only
    checkpoint cannot resume training) with one warning instead of failing."""
    import logging

    out = tmp_path / "full"
    cfg = tiny_cfg(tiny_model_dir, spider_dir, max_steps=2, save_steps=1, resume=True, save_only_model=True,
                   lora={"enabled": False})
    train(cfg, out)
    ckpt = out / "checkpoint-1"
    assert (ckpt / "model.safetensors").is_file() and not list(ckpt.glob("optimizer.*"))
    with caplog.at_level(logging.INFO, logger="sqlshift.train.trainer"):
        train(cfg, out)
    assert "training restarts from step 0" in caplog.text and "resumed from" not in caplog.text
    assert json.loads((out / "train_data.json").read_text())["resumed_from"] is None
