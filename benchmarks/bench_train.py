"""Training throughput of sqlshift.train's SFT setup, with and without packing.

Prints tokens/s (real, non-padding tokens as counted by trl's ``num_tokens``), seconds per step, and on CUDA the
model FLOPs utilisation MFU = 6 * parameters * tokens/s / peak FLOP/s (6N per token is the dense-training
estimate; LoRA skips the frozen weights' gradient, so the true work is nearer 4N and MFU here is an upper-bound
style figure comparable across runs). The first step (warm-up, allocation) is excluded from the timing.

    python benchmarks/bench_train.py --spider-dir ../shared/data/spider --steps 4            # CPU, a few minutes
    python benchmarks/bench_train.py --model /root/m/model.gguf --batch 16 --steps 30        # GPU
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from sqlshift.models import load_model
from sqlshift.train import TrainConfig, build_training_rows, check_mask_coverage, make_trainer

PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


class StepTimer(TrainerCallback):
    """Wall time at the end of every optimizer step."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())


def peak_flops(override_tflops: float | None) -> float | None:
    """Peak dense bf16 FLOP/s of the current GPU (None on CPU)."""
    import torch

    if override_tflops:
        return override_tflops * 1e12
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(0)
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)


def bench_one(model: Any, tok: Any, cfg: TrainConfig, out: Path, peak: float | None) -> dict[str, Any]:
    """Run ``cfg.max_steps`` steps and measure throughput after the first."""
    rows, _ = build_training_rows(tok, cfg)
    check_mask_coverage(tok, rows, cfg.max_length)
    trainer = make_trainer(model, tok, rows, cfg, out)
    timer = StepTimer()
    trainer.add_callback(timer)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "num_tokens" in h]
    tokens = logs[-1]["num_tokens"] - logs[0]["num_tokens"]
    secs = timer.times[-1] - timer.times[0]
    n_params = sum(p.numel() for p in trainer.model.parameters())
    res = {"packing": cfg.packing, "steps_timed": len(timer.times) - 1, "batch": cfg.per_device_batch_size,
           "max_length": cfg.max_length, "tokens_per_s": round(tokens / secs, 1),
           "s_per_step": round(secs / max(1, len(timer.times) - 1), 2),
           "tokens_per_step": round(tokens / max(1, len(timer.times) - 1)), "params": n_params,
           "final_loss": logs[-1].get("loss")}
    if peak:
        res["mfu"] = round(6 * n_params * tokens / secs / peak, 4)
    base = trainer.model
    if hasattr(base, "unload"):
        base.unload()  # strip the LoRA layers so the next config starts from the same base model
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--spider-dir", default=os.environ.get("SQLSHIFT_DATA_DIR"))
    ap.add_argument("--steps", type=int, default=4, help="optimizer steps per config (first one not timed)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--examples", type=int, default=64)
    ap.add_argument("--peak-tflops", type=float, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    a = ap.parse_args()
    if not a.spider_dir:
        sys.exit("pass --spider-dir or set SQLSHIFT_DATA_DIR")
    model, tok = load_model(a.model)
    tok.padding_side = "right"
    peak = peak_flops(a.peak_tflops)
    results = []
    for packing in (False, True):
        cfg = TrainConfig.model_validate({
            "model": a.model, "max_steps": a.steps, "per_device_batch_size": a.batch, "gradient_accumulation_steps": 1,
            "max_length": a.max_length, "packing": packing, "logging_steps": 1, "save_steps": 10_000,
            "warmup_ratio": 0.0, "lr_scheduler": "constant",
            "data": {"spider_dir": a.spider_dir, "limit_n": a.examples},
            "prompt": {"max_prompt_tokens": a.max_length - 64}})
        with tempfile.TemporaryDirectory() as d:
            r = bench_one(model, tok, cfg, Path(d), peak)
        results.append(r)
        print(json.dumps(r), flush=True)
    dev = "cuda" if peak else "cpu"
    print(f"\n{'packing':>8} {'tok/s':>10} {'s/step':>8} {'tok/step':>9}" + ("  MFU" if peak else "") + f"   ({dev})")
    for r in results:
        print(f"{str(r['packing']):>8} {r['tokens_per_s']:>10} {r['s_per_step']:>8} {r['tokens_per_step']:>9}"
              + (f"  {r['mfu']:.1%}" if peak else ""))
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
