"""LoRA / QLoRA / full supervised fine-tuning for Text-to-SQL with trl's SFTTrainer, replay mixing and resume.

The config (YAML presets + dotted overrides) is :mod:`sqlshift.train.config`; the rows (prompt/completion pairs,
replay, the mask guard) come from :mod:`sqlshift.train.data`; this module holds the hardware choices and the trainer
(and re-exports both for callers).

Two speed paths, chosen by ``fast_path`` and logged: the standard one (fp32 base with bf16 autocast, batches padded
to their longest row) and, on CUDA only, the fast one (bf16 frozen base with fp32 LoRA weights, padding-free
batches whose rows are separated by ``position_ids``, PyTorch's variable-length flash attention when this GPU runs it
(:mod:`sqlshift.train.varlen`; SDPA with a packed mask otherwise), liger's layer kernels when installed, or with
``compile_layers`` every decoder layer ``torch.compile``d instead). Both train on the
same rows in the same order with the same number of optimizer steps; on CPU ``fast_path`` changes nothing.

Multi-GPU: run the same command under ``accelerate launch``; the Trainer shards the data, only rank 0 writes files.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import shutil
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from sqlshift.errors import ConfigError, TrainingDiverged
from sqlshift.outputs import atomic_write_text
from sqlshift.train import varlen
from sqlshift.train.config import (PRESETS_DIR, DataSettings, LoraSettings, ReplaySettings, TrainConfig,
                                   apply_overrides, available_presets, load_train_config, parse_overrides,
                                   resolve_train_config, validate_train_overrides)
from sqlshift.train.data import (PREPARED, build_training_rows, check_mask_coverage, n_replay_for, read_replay_jsonl,
                                 replay_rows, rows_dataset, select_spider_examples, spider_root, spider_rows,
                                 tokenize_like_trl, tokenize_rows_like_trl, verify_trainer_dataset)

__all__ = ["PRESETS_DIR", "DataSettings", "LoraSettings", "ReplaySettings", "TrainConfig", "TrainingDiverged",
           "apply_overrides", "available_presets", "build_training_rows", "check_mask_coverage", "load_train_config",
           "make_trainer", "n_replay_for", "parse_overrides", "read_replay_jsonl", "replay_rows",
           "resolve_train_config", "run_train", "select_spider_examples", "spider_root", "spider_rows",
           "tokenize_like_trl", "tokenize_rows_like_trl", "train", "validate_train_overrides", "verify_trainer_dataset"]

log = logging.getLogger(__name__)
# transformers 5 renames gradient -> activation checkpointing; trl and peft still use the old names internally
warnings.filterwarnings("ignore", message=r".*gradient_checkpointing.*deprecated", category=FutureWarning)


# ---------------------------------------------------------------- hardware-dependent choices

def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def avoid_cudnn_sdpa_backward(attn: TrainConfig | str) -> bool:
    """Turn off PyTorch's cuDNN attention backend when training with SDPA on CUDA; True when it did.

    cuDNN's SDPA backward returns NaN in dQ for a masked batch padded to 64 mod 128 tokens on H100/H200 with torch
    2.11+ (pytorch/pytorch#196678). That is what stopped every SDPA training of Qwen2.5-Coder-1.5B at step 64 of the
    seed-42 order (`benchmarks/padded_lengths.py` finds that batch); flash / memory-efficient kernels take over."""
    attn = attn.attn_implementation if isinstance(attn, TrainConfig) else attn
    if attn != "sdpa" or not cuda_available():
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


@dataclass(frozen=True)
class SpeedPath:
    """How this process trains (see the module docstring); logged at the start of every run."""

    fast: bool
    base_dtype: Literal["fp32", "bf16"]
    attn_implementation: str
    padding_free: bool
    liger: bool
    compiled: bool = False  # every decoder layer torch.compile'd (instead of liger: its kernels do not trace)
    quantized: bool = False  # a 4-bit NF4 base (QLoRA); base_dtype is then its compute dtype

    def describe(self) -> str:
        name = "fast path" if self.fast else "standard path"
        base = f"4-bit NF4 base ({self.base_dtype} compute)" if self.quantized else f"{self.base_dtype} base"
        batches = "padding-free batches" if self.padding_free else "padded batches"
        kernels = ", liger layer kernels" if self.liger else ", decoder layers compiled" if self.compiled else ""
        return f"{name}: {base}, {self.attn_implementation} attention, {batches}{kernels}"


def resolve_speed_path(cfg: TrainConfig, q4: bool = False) -> SpeedPath:
    """The fast path on CUDA when ``cfg.fast_path``; otherwise exactly the standard path (CPU always)."""
    if not (cfg.fast_path and cuda_available()):
        if cfg.fast_path or cfg.compile_layers:
            log.info("fast_path%s needs CUDA: training on the standard path",
                     " and compile_layers" if cfg.compile_layers else "")
        return SpeedPath(False, "bf16" if q4 else "fp32", cfg.attn_implementation, False, False, quantized=q4)
    attn = "sdpa" if cfg.attn_implementation == "eager" else cfg.attn_implementation
    if attn == "sdpa" and cfg.varlen and varlen.varlen_usable():  # padding-free rows without SDPA's packed mask
        varlen.register()
        attn = varlen.NAME
    # A full fine-tune keeps fp32 master weights under bf16 autocast: bf16 weights would drop every update smaller
    # than their precision (lr 1e-5 x a gradient is mostly below 2^-8 of a weight). LoRA's frozen base can be bf16.
    base: Literal["fp32", "bf16"] = "bf16" if cfg.lora.enabled else "fp32"
    liger = not cfg.compile_layers and importlib.util.find_spec("liger_kernel") is not None
    return SpeedPath(True, base, attn, True, liger, compiled=cfg.compile_layers, quantized=q4)


def decoder_layers(model: Any) -> list[Any]:
    """The transformer blocks: the first ``layers`` ModuleList (under peft's wrappers too)."""
    import torch

    return next(list(m) for n, m in model.named_modules() if n.endswith("layers") and isinstance(m, torch.nn.ModuleList))


def compile_decoder_layers(model: Any) -> int:
    """``torch.compile`` every decoder layer in place (dynamic shapes: padding-free batches vary in length), after
    peft has wrapped the modules so the compiled code includes the adapters; returns how many.

    Why layers, not the model: one graph per layer type compiles once and is reused by every layer; on an H100 the
    fast path at 16 x 1 went from 35.9k (liger) to 50.5k real tok/s (bench_train.py, session 10). Compiled code draws
    LoRA dropout masks from inductor's RNG: other masks than eager's, the same distribution (without dropout the
    losses match eager's)."""
    layers = decoder_layers(model)
    for layer in layers:
        layer.compile(dynamic=True)
    return len(layers)


def pin_single_gpu(args: Any) -> bool:
    """Train on cuda:0 alone when several GPUs are visible to a process not started by accelerate/torchrun.

    Trainer would otherwise wrap the model in ``nn.DataParallel``, which trl's SFTTrainer refuses. Setting
    CUDA_VISIBLE_DEVICES here would be too late once CUDA is initialised (the runner generates before training),
    so the TrainingArguments' GPU count is fixed to 1 instead, the way Trainer does for model-parallel models."""
    import torch

    if "WORLD_SIZE" in os.environ or "LOCAL_RANK" in os.environ:
        return False
    n = torch.cuda.device_count()
    if n <= 1:
        return False
    log.warning("%d GPUs visible but not launched by accelerate/torchrun: training on cuda:0 only. To use all of them: "
                "accelerate launch --multi_gpu --num_processes %d -m sqlshift.cli train ...; to pick one: "
                "CUDA_VISIBLE_DEVICES=<index> sqlshift train ...", n, n)
    _ = args.device  # sets up the devices (and args._n_gpu = device count) before it is overridden
    args._n_gpu = 1
    return True


# ---------------------------------------------------------------- trainer

def lora_config(cfg: TrainConfig) -> Any:
    """peft LoraConfig from the settings (None for full fine-tuning)."""
    if not cfg.lora.enabled:
        return None
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=list(cfg.lora.target_modules), bias="none", task_type="CAUSAL_LM")


def sft_config(cfg: TrainConfig, output_dir: Path, path: SpeedPath | None = None) -> Any:
    """trl SFTConfig: completion-only loss, seeded, checkpoints every save_steps, no external loggers."""
    from trl import SFTConfig

    path = path or resolve_speed_path(cfg)
    bf16 = resolve_bf16(cfg)
    args = SFTConfig(
        output_dir=str(output_dir), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate, lr_scheduler_type=cfg.lr_scheduler, warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay, per_device_train_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        # trl does not truncate padding-free batches (see check_rows_fit)
        max_length=None if path.padding_free else cfg.max_length, padding_free=path.padding_free,
        use_liger_kernel=path.liger,
        # LoRA (and full fine-tuning) uses every trainable weight in every forward: skip DDP's unused-weight search
        ddp_find_unused_parameters=False,
        optim=resolve_optimizer(cfg.optimizer), seed=cfg.seed, data_seed=cfg.seed, bf16=bf16, fp16=False,
        gradient_checkpointing=cfg.gradient_checkpointing, packing=cfg.packing, completion_only_loss=True,
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit,
        save_only_model=cfg.save_only_model,
        logging_strategy="steps", logging_steps=cfg.logging_steps, logging_first_step=True, report_to="none",
        dataloader_num_workers=0, dataloader_pin_memory=cuda_available(), disable_tqdm=False,
        # several CPU ranks (torchrun): transformers sets up gloo DDP only when told use_cpu; a single
        # process must not set it (accelerate then asks for a process group that does not exist)
        use_cpu=cpu_ranks() > 1, ddp_backend="gloo" if cpu_ranks() > 1 else None,
    )
    pin_single_gpu(args)
    return args


def cpu_ranks() -> int:
    """Number of processes of a CPU-only distributed launch (1 when not distributed or on CUDA)."""
    return 1 if cuda_available() else int(os.environ.get("WORLD_SIZE", "1"))


def last_checkpoint(output_dir: Path) -> str | None:
    """The newest checkpoint-N folder in ``output_dir`` (None when none)."""
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(output_dir)) if Path(output_dir).is_dir() else None


@contextmanager
def quiet_library_warnings() -> Iterator[None]:
    """Silence library warnings a user cannot act on.

    peft warns "Could not find a config file in <base>" at every adapter save when offline and the base is a GGUF
    folder (no config.json): it only means the vocabulary is assumed unchanged, which holds (no embedding is trained).
    trl flags ``use_liger_kernel`` as deprecated in favour of Hub kernels, which cannot be fetched offline."""
    # liger lists, at WARNING, every optional backend (Ascend, CuTe DSL) it cannot import on this machine
    logging.getLogger("liger_kernel.backends.registry").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Could not find a config file in .* will assume that the vocabulary")
        warnings.filterwarnings("ignore", message=r"`use_liger_kernel=True` is deprecated", category=FutureWarning)
        yield


def make_trainer(model: Any, tok: Any, rows: list[dict[str, Any]], cfg: TrainConfig, output_dir: Path,
                 path: SpeedPath | None = None, tokenized: list[tuple[list[int], list[int], int]] | None = None) -> Any:
    """SFTTrainer on the rows (their ids and labels when ``tokenized``), with LoRA when enabled."""
    from trl import SFTTrainer

    args = sft_config(cfg, output_dir, path)
    with quiet_library_warnings(), no_dataset_bars():
        trainer = SFTTrainer(model=model, args=args, train_dataset=rows_dataset(rows, args, output_dir, tokenized),
                             processing_class=tok, peft_config=lora_config(cfg))
    return with_loss_bar(trainer)


@contextmanager
def no_dataset_bars() -> Iterator[None]:
    """trl tokenises and truncates the rows through ``datasets.map``: five bars for a second's work, hidden."""
    import datasets

    was_off = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_off:
            datasets.enable_progress_bars()


def with_loss_bar(trainer: Any) -> Any:
    """One progress bar for training with the loss in it, instead of a raw ``{'loss': ...}`` dict per log step
    (the full log history is still saved as log_history.json)."""
    from transformers.trainer_callback import ProgressCallback

    class LossBar(ProgressCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            super().on_train_begin(args, state, control, **kwargs)
            if self.training_bar is not None:
                self.training_bar.set_description("train (steps)")

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
            if state.is_world_process_zero and self.training_bar is not None and logs:
                shown = {k: f"{v:.4g}" for k, v in logs.items() if k in ("loss", "eval_loss", "grad_norm")}
                if shown:
                    self.training_bar.set_postfix(shown, refresh=False)

    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(LossBar())
    return trainer


def write_outputs(trainer: Any, tok: Any, cfg: TrainConfig, output_dir: Path, summary: dict[str, Any]) -> None:
    """Adapter (or full model) + tokenizer + the resolved config + log history + data summary."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    with quiet_library_warnings():
        trainer.save_model(str(output_dir))
    if not trainer.is_world_process_zero():
        return
    tok.save_pretrained(str(output_dir))
    atomic_write_text(output_dir / "train_config.yaml", yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    atomic_write_text(output_dir / "log_history.json", json.dumps(trainer.state.log_history, indent=1))
    atomic_write_text(output_dir / "train_data.json", json.dumps(summary, indent=1))


def check_rows_fit(mask: dict[str, Any], cfg: TrainConfig, path: SpeedPath) -> int | None:
    """The max_length trl should truncate to: padding-free batches keep every row whole (prompts are fitted to
    max_length, so a longer row is rare and at most a few tokens over; it is logged)."""
    if not path.padding_free:
        return cfg.max_length
    if mask["max_tokens"] > cfg.max_length:
        log.warning("a training row has %d tokens, over max_length=%d: padding-free batches keep it whole",
                    mask["max_tokens"], cfg.max_length)
    return None


@contextmanager
def compact_lm_head_off_triton() -> Iterator[None]:
    """Let trl's fused LM head score only the supervised positions on CPU too, as it does on CUDA.

    Without Triton, trl scores every position (to keep tile shapes fixed for compiled backends): on CPU that
    multiplied each step's time by about 4 and peak memory by several GB for the 49k-vocabulary embedded model,
    since the loss needs only the completion tokens. The log-probabilities of those tokens are the same either way."""
    import trl.trainer.utils as trl_utils

    original = getattr(trl_utils, "_use_triton", None)
    if original is None:  # another trl layout: leave it alone
        yield
        return
    trl_utils._use_triton = lambda device: device.type == "cpu" or original(device)
    try:
        yield
    finally:
        trl_utils._use_triton = original


def run_trainer(trainer: Any, resume: str | None) -> dict[str, Any]:
    """``trainer.train``; returns wall time, real (non-padding) tokens and tokens/s (Ctrl-C: the CLI says how to
    resume, once)."""
    import torch

    if cuda_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    with quiet_library_warnings(), compact_lm_head_off_triton():
        trainer.train(resume_from_checkpoint=resume)
    wall = time.perf_counter() - t0
    tokens = int(getattr(trainer, "_total_train_tokens", 0))  # trl's count of non-padding tokens, all ranks
    # this process's own peak (a study trains each run in its own child): comparable across runs sharing one GPU
    peak = round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda_available() else None
    speed = {"wall_s": round(wall, 1), "steps": trainer.state.global_step, "real_tokens": tokens,
             "real_tokens_per_s": round(tokens / wall, 1) if wall > 0 else None, "peak_gpu_gib": peak}
    log.info("training took %.1f s: %d real tokens, %.0f tokens/s (to step %d)%s", wall, tokens,
             speed["real_tokens_per_s"] or 0, speed["steps"], f", peak GPU memory {peak:.1f} GiB" if peak else "")
    return speed


def train(cfg: TrainConfig, output_dir: Path, model_spec: str | None = None) -> Path:
    """Fine-tune ``model_spec`` (default ``cfg.model``) on Spider (+ replay); returns the output folder.

    With ``cfg.resume`` and a checkpoint in ``output_dir``, training continues from it."""
    from sqlshift.lm.models import describe, load_model

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if model_spec:
        cfg = cfg.model_copy(update={"model": model_spec})
    q4 = resolve_4bit(cfg)
    path = resolve_speed_path(cfg, q4)
    log.info("training on the %s", path.describe())
    # Standard path: fp32 master weights with bf16 autocast (TrainingArguments.bf16). Fast path: a bf16 frozen base;
    # peft keeps the LoRA weights in fp32. 4-bit bases keep their own compute dtype.
    avoid_cudnn_sdpa_backward(path.attn_implementation)
    model, tok = load_model(cfg.model, load_in_4bit=q4, dtype=path.base_dtype, device=train_device(),
                            attn_implementation=path.attn_implementation)
    tok.padding_side = "right"  # trl pads itself; right padding is the training convention
    rows, summary = build_training_rows(tok, cfg)
    tokenized = tokenize_rows_like_trl(tok, rows)  # once: the mask guard checks these ids and trl trains on them
    summary["mask"] = check_mask_coverage(tok, rows, cfg.max_length, tokenized)
    trl_max_length = check_rows_fit(summary["mask"], cfg, path)
    summary["speed_path"] = path.describe()
    trainer = make_trainer(model, tok, rows, cfg, output_dir, path, tokenized)
    summary["model"] = describe(trainer.model) | {"spec": cfg.model, "load_in_4bit": q4}  # after LoRA: trainable
    if path.compiled:
        log.info("compiling %d decoder layers (the first steps take longer)", compile_decoder_layers(trainer.model))
    trainer.add_callback(stop_on_non_finite())
    log.info("training on %d process(es), this is process %d", trainer.args.world_size, trainer.args.process_index)
    if trainer.args.world_size > 1:  # the same files on every process: tokenised once (data.rows_dataset)
        log.info("process %d reads the tokenised training data from %s", trainer.args.process_index,
                 ", ".join(sorted(Path(f["filename"]).name for f in trainer.train_dataset.cache_files)) or "memory")
    if not cfg.packing:
        verify_trainer_dataset(trainer.train_dataset, tok, rows, trl_max_length)
    resume = last_checkpoint(output_dir) if cfg.resume else None
    if resume and cfg.save_only_model:
        log.warning("save_only_model: the checkpoints in %s hold no optimizer state; training restarts from step 0",
                    output_dir)
        resume = None
    if resume:
        log.info("resumed from %s", Path(resume).name)
    elif cfg.resume:
        log.debug("no checkpoint in %s: starting fresh", output_dir)
    summary["resumed_from"] = Path(resume).name if resume else None
    summary["speed"] = run_trainer(trainer, resume)
    if trainer.args.process_index == 0:  # the ranks' shared copy of the rows (rows_dataset): no longer read
        shutil.rmtree(output_dir / PREPARED, ignore_errors=True)
    tok.padding_side = "left"
    write_outputs(trainer, tok, cfg, output_dir, summary)
    diverged = first_non_finite(trainer.state.log_history)
    if diverged is not None:
        raise TrainingDiverged(f"{output_dir}: training diverged (non-finite loss or gradient norm at step {diverged})",
                               "try attn_implementation=eager (a cuDNN attention bug gives NaN on H100/H200), "
                               "lower learning_rate, or check the data")
    return output_dir


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


def run_train(config: str | Path | None, model: str | None, output: Path, overrides: Sequence[str] | None = None) -> Path:
    """CLI entry: a YAML path or preset name, ``key=value`` override strings, train into ``output``."""
    cfg = load_train_config(resolve_train_config(config) if config else None, parse_overrides(overrides or []))
    return train(cfg, Path(output), model_spec=model)


