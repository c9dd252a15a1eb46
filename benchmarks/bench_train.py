"""Training throughput of sqlshift.train.trainer: the standard path against the fast path, in one process on one device.

Every variant trains the same fresh LoRA (seeded) on the same Spider rows in the same order for ``--steps``
optimizer steps; the first ``--warmup`` steps are not timed. Prints real (non-padding) tokens/s as trl counts them
(``num_tokens``), the padded tokens the standard path processes, peak GPU memory, the speed-up over the first
variant, and how far each variant's per-step loss is from the first one's (bf16 vs fp32 noise, not a trend).

    python benchmarks/bench_train.py --spider-dir ../shared/data/spider --steps 3 --variants std-eager,std-sdpa   # CPU
    python benchmarks/bench_train.py --model /root/m/model.gguf --steps 40 --json $OUT/bench.json                  # GPU

Variants (``--variants``, comma-separated, run in this order; liger patches the model for good, so it runs last):
std-eager (the session-4 setting: fp32 base + bf16 autocast, eager attention, padded batches), std-sdpa (the same
with SDPA), fast-noliger (bf16 base, fp32 LoRA, SDPA, padding-free), fast (that with liger's kernels: the fast path
of session 5), fast-varlen (that with PyTorch's variable-length flash attention instead of SDPA's packed mask: the fast
path where the GPU runs it; CUDA only), fast-varlen-16x1 (the same with 16 rows per micro-batch and no accumulation:
the same 16 rows per optimizer step in half the kernel launches, for a host-bound step), fast-varlen-noliger and
fast-varlen-16x1-noliger (those two without liger's kernels), plain (the reference the
fast path is held to: a hand-written loop of transformers + peft, bf16 base, fp32 LoRA, SDPA, each micro-batch padded
to its longest row, torch's AdamW; no Trainer, no trl; run it first, before liger patches the model). A variant
name ending in ``+compile`` (e.g. fast-varlen-16x1-noliger+compile) is that variant with every decoder layer compiled
(``torch.compile``, dynamic shapes): fused element-wise work, fewer kernel launches for a host-bound step; not on a
liger variant (liger's Triton kernels do not trace under torch.compile).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, set_seed

from sqlshift.lm.models import load_model
from sqlshift.train import varlen
from sqlshift.train.trainer import (SpeedPath, avoid_cudnn_sdpa_backward, build_training_rows, check_mask_coverage,
                                    compile_decoder_layers, decoder_layers, load_train_config, make_trainer)

VARIANTS = {
    "std-eager": SpeedPath(False, "fp32", "eager", False, False),
    "std-sdpa": SpeedPath(False, "fp32", "sdpa", False, False),
    "fast-noliger": SpeedPath(True, "bf16", "sdpa", True, False),
    "fast": SpeedPath(True, "bf16", "sdpa", True, True),
    "fast-varlen": SpeedPath(True, "bf16", varlen.NAME, True, True),
    "fast-varlen-16x1": SpeedPath(True, "bf16", varlen.NAME, True, True),
    "fast-varlen-noliger": SpeedPath(True, "bf16", varlen.NAME, True, False),
    "fast-varlen-16x1-noliger": SpeedPath(True, "bf16", varlen.NAME, True, False),
    "plain": SpeedPath(False, "bf16", "sdpa", False, False),
}
# (rows per micro-batch, accumulation) where a variant sets its own
SHAPES = {"fast-varlen-16x1": (16, 1), "fast-varlen-16x1-noliger": (16, 1)}
COMPILE = "+compile"


def path_of(name: str) -> SpeedPath:
    """A variant's speed path (``+compile`` modifies a variant, it is not one)."""
    return VARIANTS[name.removesuffix(COMPILE)]


PLAIN = "plain loop: transformers + peft, bf16 base, fp32 LoRA, sdpa attention, padded batches, torch AdamW"


class StepTimer(TrainerCallback):
    """Wall time and padded token count of every optimizer step."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())


class ProfileSteps(TrainerCallback):
    """torch.profiler over ``active`` optimizer steps after ``skip``: the top kernels by GPU time, how busy the GPU
    was (kernel time / wall time: the rest is launch gaps, host work and syncs) and a Chrome trace in ``out``."""

    def __init__(self, out: Path, skip: int, active: int = 5) -> None:
        import torch

        acts = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA]
                                                         if torch.cuda.is_available() else [])
        self.out, self.t0, self.t1 = out, 0.0, 0.0
        self.prof = torch.profiler.profile(activities=acts, schedule=torch.profiler.schedule(
            wait=max(skip - 1, 0), warmup=1, active=active, repeat=1), on_trace_ready=self.report)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.prof.start()

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.prof.step()

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.prof.stop()

    def report(self, prof: Any) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        prof.export_chrome_trace(str(self.out / "train_trace.json"))
        avg = prof.key_averages()
        table = avg.table(sort_by="self_cuda_time_total" if self.prof.activities else "self_cpu_time_total",
                          row_limit=20)
        (self.out / "train_top_kernels.txt").write_text(table)
        print(table, flush=True)


def padded_tokens(trainer: Any, n_batches: int) -> int:
    """Tokens the model processes for the first ``n_batches`` micro-batches, padding included."""
    n = 0
    for i, batch in enumerate(trainer.get_train_dataloader()):
        if i >= n_batches:
            break
        n += batch["input_ids"].numel()
    return n


def set_attention(model: Any, name: str) -> None:
    """Switch the attention implementation of a loaded model."""
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(name)
    else:
        model.config._attn_implementation = name


def bench_one(name: str, model: Any, tok: Any, rows: list[dict[str, Any]], cfg: Any, out: Path,
              warmup: int, profile: Path | None = None) -> dict[str, Any]:
    """Train ``cfg.max_steps`` steps on variant ``name``; time the steps after ``warmup``."""
    import torch

    if name == "plain":
        return bench_plain(model, tok, rows, cfg, warmup)
    base, compiled = name.removesuffix(COMPILE), name.endswith(COMPILE)
    if base in SHAPES:
        batch, accum = SHAPES[base]
        cfg = cfg.model_copy(update={"per_device_batch_size": batch, "gradient_accumulation_steps": accum})
    path = VARIANTS[base]
    if path.attn_implementation == varlen.NAME:
        varlen.register()
    model.to(torch.bfloat16 if path.base_dtype == "bf16" else torch.float32)
    set_attention(model, path.attn_implementation)
    avoid_cudnn_sdpa_backward(path.attn_implementation)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    set_seed(cfg.seed)  # the same LoRA initialisation for every variant
    trainer = make_trainer(model, tok, rows, cfg, out, path)
    layers = decoder_layers(trainer.model) if compiled else []
    if compiled:  # as training does with compile_layers: after peft has wrapped the modules
        compile_decoder_layers(trainer.model)
    timer = StepTimer()
    trainer.add_callback(timer)
    if profile is not None:
        trainer.add_callback(ProfileSteps(profile / name, skip=warmup))
    try:
        trainer.train()
    finally:
        for layer in layers:
            layer._compiled_call_impl = None  # the next variant runs the layers as they are
    logs = [h for h in trainer.state.log_history if "num_tokens" in h]
    tokens = logs[-1]["num_tokens"] - logs[warmup - 1]["num_tokens"]
    secs = timer.times[-1] - timer.times[warmup - 1]
    steps = len(timer.times) - warmup
    micro = cfg.gradient_accumulation_steps
    res = {"variant": name, "path": path.describe() + (", decoder layers compiled" if compiled else ""),
           "steps_timed": steps, "real_tokens": tokens,
           "real_tokens_per_s": round(tokens / secs, 1), "s_per_step": round(secs / steps, 3),
           "losses": [h["loss"] for h in logs], "grad_norms": [h.get("grad_norm") for h in logs],
           "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None}
    if not path.padding_free:
        res["padded_tokens"] = padded_tokens(trainer, len(timer.times) * micro)
        res["padding_share"] = round(1 - logs[-1]["num_tokens"] / res["padded_tokens"], 3)
    base = trainer.model
    if hasattr(base, "unload"):
        base.unload()  # strip the LoRA layers so the next variant starts from the same base model
    return res


def bench_plain(model: Any, tok: Any, rows: list[dict[str, Any]], cfg: Any, warmup: int) -> dict[str, Any]:
    """The plain loop on the same rows, shape and LoRA: what the fast path's Trainer and trl cost on top."""
    import torch
    from peft import get_peft_model

    from sqlshift.train.data import tokenize_rows_like_trl
    from sqlshift.train.trainer import lora_config

    cuda = torch.cuda.is_available()
    dev = "cuda" if cuda else "cpu"
    model.to(dev, torch.bfloat16 if cuda else torch.float32)
    set_attention(model, "sdpa")
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    set_seed(cfg.seed)
    peft_model = get_peft_model(model, lora_config(cfg))  # LoRA weights in fp32 (peft's autocast_adapter_dtype)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, fused=cuda)
    data = tokenize_rows_like_trl(tok, rows, cfg.max_length)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(cfg.seed)).tolist()
    batch, accum = cfg.per_device_batch_size, cfg.gradient_accumulation_steps
    times, counts, losses = [], [], []
    for step in range(cfg.max_steps):
        n, total = 0, torch.zeros((), device=dev)
        for m in range(accum):
            ids, labels, mask = padded([data[i] for i in order[(step * accum + m) * batch:][:batch]], tok, dev)
            with torch.autocast(dev, dtype=torch.bfloat16, enabled=cuda):
                loss = peft_model(input_ids=ids, attention_mask=mask, labels=labels).loss / accum
            loss.backward()
            total, n = total + loss.detach(), n + int(mask.sum())
        opt.step()
        opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter())
        counts.append(n)
        losses.append(total)
    secs, steps = times[-1] - times[warmup - 1], len(times) - warmup
    tokens = float(sum(counts[warmup:]))
    peft_model.unload()
    return {"variant": "plain", "path": PLAIN, "steps_timed": steps, "real_tokens": tokens,
            "real_tokens_per_s": round(tokens / secs, 1), "s_per_step": round(secs / steps, 3),
            "losses": [float(x) for x in losses], "grad_norms": [None] * len(losses),
            "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None}


def padded(batch: list[tuple[list[int], list[int], int]], tok: Any, dev: str) -> tuple[Any, Any, Any]:
    """(input ids, labels, attention mask) of a micro-batch, right-padded to its longest row."""
    import torch

    width = max(len(ids) for ids, _, _ in batch)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    ids = torch.tensor([x + [pad] * (width - len(x)) for x, _, _ in batch], device=dev)
    labels = torch.tensor([y + [-100] * (width - len(y)) for _, y, _ in batch], device=dev)
    mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x, _, _ in batch], device=dev)
    return ids, labels, mask


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--config", default="seed-run1", help="training preset or YAML")
    ap.add_argument("--spider-dir", default=os.environ.get("SQLSHIFT_DATA_DIR"))
    ap.add_argument("--steps", type=int, default=40, help="optimizer steps per variant")
    ap.add_argument("--warmup", type=int, default=5, help="first steps not timed")
    ap.add_argument("--batch", type=int, default=8, help="per-device batch")
    ap.add_argument("--accum", type=int, default=2, help="gradient accumulation steps")
    ap.add_argument("--variants", default="std-eager,std-sdpa,fast-noliger,fast,fast-varlen")
    ap.add_argument("--limit-n", type=int, default=None, help="Spider subset (smoke tests)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--profile", type=Path, default=None,
                    help="profile 5 steps after the warm-up of each variant: top kernels + Chrome trace under "
                         "DIR/<variant> (profiling slows those steps: take speeds from a run without it)")
    a = ap.parse_args()
    if not a.spider_dir:
        sys.exit("pass --spider-dir or set SQLSHIFT_DATA_DIR")
    import torch

    names = [v.strip() for v in a.variants.split(",") if v.strip()]
    unknown = [n for n in names if n.removesuffix(COMPILE) not in VARIANTS or n == "plain" + COMPILE]
    if unknown:
        sys.exit(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)} (+compile on any)")
    liger = [n for n in names if path_of(n).liger]
    if any(n.endswith(COMPILE) for n in liger):
        sys.exit("liger's Triton kernels do not trace under torch.compile (H100, torch 2.11, session 9): compile a "
                 "-noliger variant, e.g. fast-varlen-16x1-noliger+compile")
    if liger and names[-len(liger):] != liger:
        sys.exit(f"run the liger variants ({', '.join(liger)}) last: liger patches the model for good")
    if varlen.NAME in {path_of(n).attn_implementation for n in names} and not varlen.varlen_usable():
        sys.exit("fast-varlen needs a CUDA GPU whose torch has torch.nn.attention.varlen (see the log line above)")
    # configs/mitigation.yaml's Run 1: Table 1 without QLoRA, adamw_torch, 8 x 2
    cfg = load_train_config(a.config, {"model": a.model, "load_in_4bit": False, "optimizer": "adamw_torch",
                                       "per_device_batch_size": a.batch, "gradient_accumulation_steps": a.accum,
                                       "max_steps": a.steps, "logging_steps": 1, "save_steps": 100_000,
                                       "data.spider_dir": a.spider_dir, "data.limit_n": a.limit_n})
    model, tok = load_model(a.model, dtype="fp32", attn_implementation="sdpa")
    tok.padding_side = "right"
    rows, _ = build_training_rows(tok, cfg)
    per_step = max([a.batch * a.accum] + [b * m for n, (b, m) in SHAPES.items() if n in names])
    rows = rows[: a.steps * per_step]  # the rows the steps consume (the trainer shuffles them, seeded)
    mask = check_mask_coverage(tok, rows, cfg.max_length)
    print(json.dumps({"rows": len(rows), "mean_tokens": mask["mean_tokens"], "max_tokens": mask["max_tokens"],
                      "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}), flush=True)
    results = []
    for name in names:
        with tempfile.TemporaryDirectory() as d:
            r = bench_one(name, model, tok, rows, cfg, Path(d), a.warmup, a.profile)
        results.append(r)
        print(json.dumps({k: v for k, v in r.items() if k not in ("losses", "grad_norms")}), flush=True)
    ref = results[0]
    print(f"\n{'variant':>13} {'real tok/s':>11} {'x':>6} {'s/step':>7} {'pad %':>6} {'GiB':>6} "
          f"{'|dloss| mean/max vs ' + ref['variant']:>28}   ({results[0].get('path')} first; {a.steps} steps, "
          f"{a.warmup} untimed, {a.batch} x {a.accum})")
    for r in results:
        d = [abs(x - y) for x, y in zip(r["losses"], ref["losses"])]
        r["loss_abs_diff_mean"], r["loss_abs_diff_max"] = round(statistics.fmean(d), 4), round(max(d), 4)
        r["speedup"] = round(r["real_tokens_per_s"] / ref["real_tokens_per_s"], 2)
        pad = f"{100 * r['padding_share']:.0f}" if "padding_share" in r else "0"
        print(f"{r['variant']:>13} {r['real_tokens_per_s']:>11.0f} {r['speedup']:>6.2f} {r['s_per_step']:>7.3f} "
              f"{pad:>6} {str(r['peak_gpu_gib']):>6} {r['loss_abs_diff_mean']:>13.4f} / {r['loss_abs_diff_max']:.4f}")
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
