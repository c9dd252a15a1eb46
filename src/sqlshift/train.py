"""LoRA / QLoRA / full supervised fine-tuning for Text-to-SQL with trl's SFTTrainer, replay mixing and resume.

Training data is trl's prompt-completion format with string prompts rendered by :mod:`sqlshift.prompts` (the same
text generation sees) and the bare SQL + end-of-turn token as completion; ``completion_only_loss`` masks the prompt.
:func:`check_mask_coverage` re-tokenises exactly as trl does and refuses to train when an example would
contribute no supervised token or leak prompt tokens into the loss.

Multi-GPU: run the same command under ``accelerate launch``; the Trainer shards the data, only rank 0 writes files.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import random
import warnings
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sqlshift.errors import ConfigError, DataError, ScorerFailure
from sqlshift.prompts import PromptBuilder, PromptConfig, completion_text, prompt_length_stats, render_prompt, uses_chat

log = logging.getLogger(__name__)


class LoraSettings(BaseModel):
    """LoRA adapter shape; ``enabled: false`` means full fine-tuning."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    r: int = Field(8, gt=0)
    alpha: int = Field(16, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj"]


class DataSettings(BaseModel):
    """Which Spider examples to train on."""

    model_config = ConfigDict(extra="forbid")
    spider_dir: str | None = Field(None, description="Spider folder or data folder; default $SQLSHIFT_DATA_DIR")
    split: str = "train"
    limit_n: int | None = Field(None, gt=0, description="random subset of N examples (seeded)")
    db_ids: list[str] | None = None


class ReplaySettings(BaseModel):
    """General-domain data mixed in to limit forgetting: ``fraction`` of the final training set."""

    model_config = ConfigDict(extra="forbid")
    source: Literal["none", "mmlu", "jsonl"] = "none"
    path: str | None = Field(None, description="mmlu folder (default <data>/mmlu) or the .jsonl file")
    fraction: float = Field(0.0, ge=0.0, le=0.5)
    subjects: list[str] = Field(default_factory=list, description="MMLU subjects used for replay (held out of eval)")
    split: str = "val"

    @model_validator(mode="after")
    def _check(self) -> "ReplaySettings":
        if self.source == "none" and self.fraction > 0:
            raise ValueError("replay.fraction > 0 needs replay.source mmlu or jsonl")
        if self.source == "jsonl" and not self.path:
            raise ValueError("replay.source jsonl needs replay.path")
        if self.source == "mmlu" and self.fraction > 0 and not self.subjects:
            raise ValueError("replay.source mmlu needs replay.subjects")
        return self


class TrainConfig(BaseModel):
    """Everything a training run depends on; saved verbatim as train_config.yaml beside the adapter."""

    model_config = ConfigDict(extra="forbid")
    model: str = "embedded"
    lora: LoraSettings = LoraSettings()
    epochs: float = Field(1.0, gt=0)
    max_steps: int = -1
    learning_rate: float = Field(2e-4, gt=0)
    lr_scheduler: str = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    weight_decay: float = 0.0
    per_device_batch_size: int = Field(4, gt=0)
    gradient_accumulation_steps: int = Field(4, gt=0)
    max_length: int = Field(1024, gt=0)
    optimizer: str = "adamw_torch"
    seed: int = 42
    load_in_4bit: bool = False
    bf16: Literal["auto"] | bool = "auto"
    gradient_checkpointing: bool = False
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] = "sdpa"
    packing: bool = False
    save_steps: int = Field(100, gt=0)
    logging_steps: int = Field(10, gt=0)
    save_total_limit: int | None = None
    resume: bool = False
    data: DataSettings = DataSettings()
    prompt: PromptConfig = PromptConfig()
    replay: ReplaySettings = ReplaySettings()


# ---------------------------------------------------------------- config loading

def _set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    """``d["a"]["b"] = value`` for key ``a.b``, creating the intermediate dicts."""
    parts = key.split(".")
    for p in parts[:-1]:
        if not isinstance(d.get(p), dict):
            d[p] = {}
        d = d[p]
    d[parts[-1]] = value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides (dotted keys, YAML-typed values: ``lora.r=16``, ``lora.enabled=false``)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not key=value", "write e.g. learning_rate=1e-4 or lora.r=16")
        key, value = item.split("=", 1)
        _set_dotted(raw, key.strip(), yaml.safe_load(value) if value.strip() else None)
    return raw


def _error_message(e: ValidationError, source: str) -> ConfigError:
    """One line naming unknown keys (or the first bad value) and the file."""
    unknown = [".".join(map(str, err["loc"])) for err in e.errors() if err["type"] == "extra_forbidden"]
    if unknown:
        return ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}",
                           f"remove or rename them; valid top-level keys: {', '.join(TrainConfig.model_fields)}")
    err = e.errors()[0]
    return ConfigError(f"{source}: {'.'.join(map(str, err['loc'])) or 'config'}: {err['msg']}", "fix the value")


def load_train_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """TrainConfig from a YAML file (None: defaults) plus ``key=value`` overrides."""
    raw: dict[str, Any] = {}
    source = str(path) if path else "<defaults>"
    if path:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"training config {path} does not exist", "pass an existing YAML, e.g. configs/train/embedded-cpu.yaml")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path} is not valid YAML: {e}", "fix the YAML syntax") from e
        if not isinstance(raw, dict):
            raise ConfigError(f"{path} must hold a mapping of settings", "write key: value lines")
    raw = apply_overrides(raw, list(overrides or []))
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as e:
        raise _error_message(e, source + (f" (with overrides {overrides})" if overrides else "")) from None


# ---------------------------------------------------------------- hardware-dependent choices

def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def avoid_cudnn_sdpa_backward(cfg: TrainConfig) -> bool:
    """Turn off PyTorch's cuDNN attention backend when training with SDPA on CUDA; True when it did.

    cuDNN's SDPA backward returns NaN in dQ for a masked batch padded to 64 mod 128 tokens on H100/H200 with torch
    2.11+ (pytorch/pytorch#196678). That is what stopped every SDPA training of Qwen2.5-Coder-1.5B at step 64 of the
    seed-42 order (`benchmarks/padded_lengths.py` finds that batch); flash / memory-efficient kernels take over."""
    if cfg.attn_implementation != "sdpa" or not cuda_available():
        return False
    import torch

    torch.backends.cuda.enable_cudnn_sdp(False)
    log.info("cuDNN SDPA backend disabled for training (NaN gradients at padded length 64 mod 128)")
    return True


def resolve_optimizer(name: str) -> str:
    """8-bit / paged optimizers need bitsandbytes on CUDA; elsewhere fall back to adamw_torch with a warning."""
    if "8bit" in name or name.startswith("paged_"):
        if not cuda_available() or importlib.util.find_spec("bitsandbytes") is None:
            warnings.warn(f"optimizer {name} needs bitsandbytes and CUDA; using adamw_torch", stacklevel=2)
            return "adamw_torch"
    return name


def resolve_4bit(cfg: TrainConfig) -> bool:
    """QLoRA only on CUDA with bitsandbytes; ignored (with a warning) elsewhere."""
    if not cfg.load_in_4bit:
        return False
    if not cuda_available() or importlib.util.find_spec("bitsandbytes") is None:
        warnings.warn("load_in_4bit needs CUDA and bitsandbytes; loading the model unquantized", stacklevel=2)
        return False
    if not cfg.lora.enabled:
        raise ConfigError("load_in_4bit needs LoRA (a 4-bit model cannot be fully fine-tuned)", "set lora.enabled: true")
    return True


def train_device() -> str:
    """This process's device: under ``accelerate launch``/torchrun each rank loads onto its own GPU (LOCAL_RANK),
    which a 4-bit model needs (it cannot be moved after loading)."""
    if not cuda_available():
        return "cpu"
    return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"


def resolve_bf16(cfg: TrainConfig) -> bool:
    """bf16 on CUDA GPUs that support it; fp32 on CPU (auto)."""
    import torch

    if cfg.bf16 == "auto":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return bool(cfg.bf16)


# ---------------------------------------------------------------- data

def spider_root(cfg: TrainConfig) -> Path:
    """Spider folder from the config or $SQLSHIFT_DATA_DIR."""
    d = cfg.data.spider_dir or os.environ.get("SQLSHIFT_DATA_DIR")
    if not d:
        raise ConfigError("no Spider folder for training", "set data.spider_dir or SQLSHIFT_DATA_DIR")
    return Path(d)


def select_spider_examples(split: Any, cfg: TrainConfig) -> list[Any]:
    """Training examples: all of the split (a missing database only loses sample rows), filtered, then sampled."""
    examples = sorted(split.examples + split.skipped, key=lambda e: e.index)
    if cfg.data.db_ids:
        wanted = set(cfg.data.db_ids)
        examples = [e for e in examples if e.db_id in wanted]
    if cfg.data.limit_n is not None and cfg.data.limit_n < len(examples):
        examples = sorted(random.Random(cfg.seed).sample(examples, cfg.data.limit_n), key=lambda e: e.index)
    if not examples:
        raise ConfigError("the data selection is empty", "check data.split, data.db_ids and data.limit_n")
    return examples


def spider_rows(tok: Any, split: Any, examples: list[Any], cfg: TrainConfig) -> tuple[list[dict[str, Any]], list[Any]]:
    """Prompt/completion rows for Spider examples, each prompt fitted so that prompt + SQL fit ``max_length``."""
    builder = PromptBuilder(tok, split.tables, split.db_path, cfg.prompt)
    rows, prompts = [], []
    for ex in examples:
        completion = completion_text(tok, ex.query, cfg.prompt.chat)
        n_completion = len(tok(completion, add_special_tokens=False)["input_ids"])
        budget = max(1, min(cfg.prompt.max_prompt_tokens, cfg.max_length - n_completion))
        built = builder.build(ex, gold_sql=ex.query, budget=budget)
        prompts.append(built)
        rows.append({"prompt": built.text, "completion": completion, "source": "spider", "id": f"spider:{ex.index}",
                     "truncated": built.truncated})
    return rows, prompts


def n_replay_for(fraction: float, n_spider: int) -> int:
    """Replay examples so that they make up ``fraction`` of the mixed set: round(f / (1 - f) * n_spider)."""
    return int(round(fraction / (1.0 - fraction) * n_spider)) if fraction > 0 else 0


def read_replay_jsonl(path: Path) -> list[dict[str, str]]:
    """``{"instruction"|"prompt", "response"|"completion"}`` lines as prompt/completion dicts."""
    if not path.is_file():
        raise ConfigError(f"replay file {path} does not exist", "set replay.path to a .jsonl file")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{n} is not valid JSON ({e.msg})", "one JSON object per line") from e
        prompt, completion = row.get("instruction", row.get("prompt")), row.get("response", row.get("completion"))
        if not isinstance(prompt, str) or not isinstance(completion, str):
            raise DataError(f"{path}:{n} needs instruction/prompt and response/completion strings", "fix the line")
        out.append({"prompt": prompt, "completion": completion})
    return out


def replay_source_rows(cfg: TrainConfig, n: int) -> list[dict[str, str]]:
    """Exactly ``n`` replay (prompt, completion) pairs from the configured source, sampled with the seed."""
    r = cfg.replay
    if r.source == "jsonl":
        pool = read_replay_jsonl(Path(r.path or ""))
        if len(pool) < n:
            raise ConfigError(f"replay file {r.path} has {len(pool)} rows, {n} needed for fraction {r.fraction}",
                              "lower replay.fraction or add rows")
        return random.Random(cfg.seed).sample(pool, n)
    from sqlshift.data.mmlu import mmlu_replay_examples

    mmlu_dir = Path(r.path) if r.path else spider_root(cfg).resolve().parent / "mmlu"
    if not r.path and (spider_root(cfg) / "mmlu").is_dir():
        mmlu_dir = spider_root(cfg) / "mmlu"
    rows = mmlu_replay_examples(mmlu_dir, r.subjects, n, cfg.seed, split=r.split)
    if len(rows) != n:
        raise ConfigError(f"MMLU replay gave {len(rows)} examples from {r.subjects} ({r.split}), {n} needed",
                          "add subjects, use replay.split: test, or lower replay.fraction")
    return [{"prompt": x["prompt"], "completion": x["completion"]} for x in rows]


def replay_rows(tok: Any, cfg: TrainConfig, n: int) -> list[dict[str, Any]]:
    """Replay pairs rendered the same way as Spider prompts (chat template, or plain ``Answer:`` text)."""
    if n == 0:
        return []
    chat = uses_chat(tok, cfg.prompt.chat)
    out = []
    for i, pair in enumerate(replay_source_rows(cfg, n)):
        if chat:
            prompt = render_prompt(tok, [{"role": "user", "content": pair["prompt"]}], True)
            completion = pair["completion"].strip() + (tok.eos_token or "")
        else:
            prompt = pair["prompt"].rstrip() + "\nAnswer:"
            completion = " " + pair["completion"].strip() + (tok.eos_token or "")
        out.append({"prompt": prompt, "completion": completion, "source": cfg.replay.source, "id": f"replay:{i}",
                    "truncated": False})
    return out


# ---------------------------------------------------------------- mask guard

def tokenize_like_trl(tok: Any, prompt: str, completion: str, max_length: int | None) -> tuple[list[int], list[int], int]:
    """(input_ids, labels, prompt token count) as trl's SFTTrainer builds them for a string prompt-completion row
    with completion_only_loss (tokenise prompt and prompt+completion, mask the common prefix, keep_start truncation)."""
    from trl.data_utils import common_prefix_length

    prompt_ids = tok(text=prompt)["input_ids"]
    ids = tok(text=prompt + completion)["input_ids"]
    n_prompt = common_prefix_length(prompt_ids, ids)
    labels = [-100] * n_prompt + ids[n_prompt:]
    if max_length is not None:
        ids, labels = ids[:max_length], labels[:max_length]
    return ids, labels, len(prompt_ids)


def _show(row: dict[str, Any]) -> str:
    """An offending row, shortened for an error message."""
    p = row["prompt"]
    return f"{row.get('id', '?')}: prompt ...{p[-160:]!r} completion {row['completion'][:120]!r}"


def check_mask_coverage(tok: Any, rows: list[dict[str, Any]], max_length: int | None) -> dict[str, Any]:
    """Refuse to train on rows with no supervised token or with prompt tokens in the loss; return coverage stats.

    Raises ScorerFailure naming the first offending rows. Also counts completions cut by ``max_length`` (the
    model then never sees their end-of-turn token)."""
    no_target, leaked, cut = [], [], []
    supervised = []
    eos = tok.eos_token_id
    for row in rows:
        ids, labels, n_prompt = tokenize_like_trl(tok, row["prompt"], row["completion"], max_length)
        n_sup = sum(1 for x in labels if x != -100)
        supervised.append(n_sup)
        if n_sup == 0:
            no_target.append(row)
        elif any(x != -100 for x in labels[: min(n_prompt, len(labels))]):
            leaked.append(row)
        elif labels[-1] != eos:
            cut.append(row)
    if no_target or leaked:
        bad, why = (no_target, "no supervised token (prompt fills max_length)") if no_target else \
            (leaked, "prompt tokens would be trained on (prompt/completion tokens merge at the boundary)")
        raise ScorerFailure(f"mask guard: {len(bad)} of {len(rows)} training examples have {why}; first: {_show(bad[0])}",
                            "raise max_length, lower prompt.max_prompt_tokens / sample_rows, or fix the data")
    if cut:
        log.warning("mask guard: %d completions cut by max_length=%s (no end-of-turn learned), e.g. %s",
                    len(cut), max_length, _show(cut[0]))
    return {"n": len(rows), "min_supervised_tokens": min(supervised, default=0),
            "mean_supervised_tokens": round(sum(supervised) / max(1, len(supervised)), 1),
            "n_completion_cut": len(cut), "ok": True}


def verify_trainer_dataset(dataset: Any, tok: Any, rows: list[dict[str, Any]], max_length: int | None) -> None:
    """After trl prepared the (unpacked) data: same number of rows, same labels as the guard computed."""
    if len(dataset) != len(rows):
        raise ScorerFailure(f"trl kept {len(dataset)} of {len(rows)} training examples (fully masked rows dropped)",
                            "see the mask guard; raise max_length")
    for i in sorted({0, len(rows) // 2, len(rows) - 1}):
        _, labels, _ = tokenize_like_trl(tok, rows[i]["prompt"], rows[i]["completion"], max_length)
        if list(dataset[i]["labels"]) != labels:
            raise ScorerFailure(f"trl's labels for {rows[i].get('id')} differ from the mask guard's",
                                "the installed trl tokenises differently: update tokenize_like_trl")


# ---------------------------------------------------------------- trainer

def lora_config(cfg: TrainConfig) -> Any:
    """peft LoraConfig from the settings (None for full fine-tuning)."""
    if not cfg.lora.enabled:
        return None
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=list(cfg.lora.target_modules), bias="none", task_type="CAUSAL_LM")


def sft_config(cfg: TrainConfig, output_dir: Path) -> Any:
    """trl SFTConfig: completion-only loss, seeded, checkpoints every save_steps, no external loggers."""
    from trl import SFTConfig

    bf16 = resolve_bf16(cfg)
    return SFTConfig(
        output_dir=str(output_dir), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate, lr_scheduler_type=cfg.lr_scheduler, warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay, per_device_train_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, max_length=cfg.max_length,
        optim=resolve_optimizer(cfg.optimizer), seed=cfg.seed, data_seed=cfg.seed, bf16=bf16, fp16=False,
        gradient_checkpointing=cfg.gradient_checkpointing, packing=cfg.packing, completion_only_loss=True,
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit,
        logging_strategy="steps", logging_steps=cfg.logging_steps, logging_first_step=True, report_to="none",
        dataloader_num_workers=0, dataloader_pin_memory=cuda_available(), disable_tqdm=False,
        # several CPU ranks (torchrun): transformers sets up gloo DDP only when told use_cpu; a single
        # process must not set it (accelerate then asks for a process group that does not exist)
        use_cpu=cpu_ranks() > 1, ddp_backend="gloo" if cpu_ranks() > 1 else None,
    )


def cpu_ranks() -> int:
    """Number of processes of a CPU-only distributed launch (1 when not distributed or on CUDA)."""
    return 1 if cuda_available() else int(os.environ.get("WORLD_SIZE", "1"))


def build_training_rows(tok: Any, cfg: TrainConfig) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Spider rows + replay rows (exact fraction), shuffled with the seed; and a summary for the record."""
    from sqlshift.data.spider import load_spider

    split = load_spider(spider_root(cfg), cfg.data.split)
    examples = select_spider_examples(split, cfg)
    rows, prompts = spider_rows(tok, split, examples, cfg)
    n_replay = n_replay_for(cfg.replay.fraction, len(rows))
    rows_r = replay_rows(tok, cfg, n_replay)
    mixed = rows + rows_r
    random.Random(cfg.seed).shuffle(mixed)
    summary = {"n_spider": len(rows), "n_replay": len(rows_r), "replay_source": cfg.replay.source,
               "replay_fraction_config": cfg.replay.fraction,
               "replay_fraction_actual": round(len(rows_r) / max(1, len(mixed)), 6),
               "spider_split": cfg.data.split, "spider_indices": [e.index for e in examples],
               "prompt_stats": prompt_length_stats(prompts, cfg.prompt.max_prompt_tokens),
               "truncated_ids": [r["id"] for r in rows if r["truncated"]]}
    return mixed, summary


def last_checkpoint(output_dir: Path) -> str | None:
    """The newest checkpoint-N folder in ``output_dir`` (None when none)."""
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(output_dir)) if Path(output_dir).is_dir() else None


def make_trainer(model: Any, tok: Any, rows: list[dict[str, Any]], cfg: TrainConfig, output_dir: Path) -> Any:
    """SFTTrainer on prompt/completion rows, with LoRA when enabled."""
    from datasets import Dataset
    from trl import SFTTrainer

    ds = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    return SFTTrainer(model=model, args=sft_config(cfg, output_dir), train_dataset=ds, processing_class=tok,
                      peft_config=lora_config(cfg))


def write_outputs(trainer: Any, tok: Any, cfg: TrainConfig, output_dir: Path, summary: dict[str, Any]) -> None:
    """Adapter (or full model) + tokenizer + the resolved config + log history + data summary."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    trainer.save_model(str(output_dir))
    if not trainer.is_world_process_zero():
        return
    tok.save_pretrained(str(output_dir))
    (output_dir / "train_config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False),
                                                  encoding="utf-8")
    (output_dir / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1), encoding="utf-8")
    (output_dir / "train_data.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")


def train(cfg: TrainConfig, output_dir: Path, model_spec: str | None = None) -> Path:
    """Fine-tune ``model_spec`` (default ``cfg.model``) on Spider (+ replay); returns the output folder.

    With ``cfg.resume`` and a checkpoint in ``output_dir``, training continues from it."""
    from sqlshift.models import describe, load_model

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if model_spec:
        cfg = cfg.model_copy(update={"model": model_spec})
    q4 = resolve_4bit(cfg)
    # fp32 master weights with bf16 autocast (TrainingArguments.bf16); 4-bit bases keep their own compute dtype.
    # (The NaN gradients seen on Qwen2.5-Coder-1.5B were cuDNN attention, not precision: see
    # avoid_cudnn_sdpa_backward and docs/results.md.)
    avoid_cudnn_sdpa_backward(cfg)
    model, tok = load_model(cfg.model, load_in_4bit=q4, dtype="bf16" if q4 else "fp32", device=train_device(),
                            attn_implementation=cfg.attn_implementation)
    tok.padding_side = "right"  # trl pads itself; right padding is the training convention
    rows, summary = build_training_rows(tok, cfg)
    summary["mask"] = check_mask_coverage(tok, rows, cfg.max_length)
    summary["model"] = describe(model) | {"spec": cfg.model, "load_in_4bit": q4}
    trainer = make_trainer(model, tok, rows, cfg, output_dir)
    trainer.add_callback(stop_on_non_finite())
    log.info("training on %d process(es), this is process %d", trainer.args.world_size, trainer.args.process_index)
    if not cfg.packing:
        verify_trainer_dataset(trainer.train_dataset, tok, rows, cfg.max_length)
    resume = last_checkpoint(output_dir) if cfg.resume else None
    if cfg.resume and resume is None:
        log.info("resume requested but no checkpoint in %s: starting fresh", output_dir)
    summary["resumed_from"] = Path(resume).name if resume else None
    trainer.train(resume_from_checkpoint=resume)
    tok.padding_side = "left"
    write_outputs(trainer, tok, cfg, output_dir, summary)
    diverged = first_non_finite(trainer.state.log_history)
    if diverged is not None:
        raise TrainingDiverged(f"{output_dir}: training diverged (non-finite loss or gradient norm at step {diverged})",
                               "try attn_implementation=eager (a cuDNN attention bug gives NaN on H100/H200), "
                               "lower learning_rate, or check the data")
    return output_dir


class TrainingDiverged(ScorerFailure):
    """Loss or gradient norm became NaN/inf: the adapter is garbage and must not be evaluated as a model."""


def first_non_finite(log_history: list[dict[str, Any]]) -> int | None:
    """Step of the first logged non-finite loss or grad_norm, if any."""
    for rec in log_history:
        for key in ("loss", "grad_norm"):
            v = rec.get(key)
            if isinstance(v, (int, float)) and not math.isfinite(v):
                return int(rec.get("step", -1))
    return None


def stop_on_non_finite() -> Any:
    """A callback that ends training at the first non-finite loss/grad norm (built lazily: transformers is heavy)."""
    from transformers import TrainerCallback

    class _Stop(TrainerCallback):
        """Stop at the first non-finite logged loss/grad norm instead of training on NaN weights for hours."""

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> Any:
            if logs and first_non_finite([{**logs, "step": state.global_step}]) is not None:
                log.error("non-finite loss/grad norm at step %d: stopping", state.global_step)
                control.should_training_stop = True
            return control

    return _Stop()


def run_train(config: Path | None, model: str | None, output: Path, overrides: list[str] | None = None) -> Path:
    """CLI entry: load the YAML (+ overrides) and train into ``output``."""
    cfg = load_train_config(config, overrides or [])
    return train(cfg, Path(output), model_spec=model)


def estimate_steps(n_rows: int, cfg: TrainConfig, world_size: int = 1) -> int:
    """Optimizer steps of a run (for logs and presets): ceil(rows / effective batch) x epochs, or max_steps."""
    if cfg.max_steps > 0:
        return cfg.max_steps
    per_step = cfg.per_device_batch_size * cfg.gradient_accumulation_steps * world_size
    return int(math.ceil(n_rows / per_step) * cfg.epochs)
