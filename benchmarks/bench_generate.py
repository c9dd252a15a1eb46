"""Batched greedy generation speed on Spider dev prompts: new tokens/s for several settings, in one process.

Each setting decodes the same prompts (the ``--n`` longest dev examples' prompts, as the runner builds them) through
the transformers backend the runner uses (``HFLM.generate``: length-sorted batches, longest first) and reports useful
new tokens (up to the stop token) per second of wall time, and the ratio to the first setting ("before"). A warm-up
batch per setting is excluded.

    python benchmarks/bench_generate.py --model embedded --spider-dir ../shared/data/spider --n 16 --settings 4,8
    python benchmarks/bench_generate.py --model /root/models/smollm2 --n 512 --settings 64,256,256s   # GPU
A setting is a batch size; a trailing ``s`` asks transformers for the static KV cache (compiled decode step on CUDA)
through the model's generation config; each batch is padded to its own longest prompt, so distinct shapes recompile.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from sqlshift.data.spider import load_spider
from sqlshift.lm.api import GenerateRequest
from sqlshift.lm.hf import HFLM
from sqlshift.sql.prompts import BuiltPrompt, PromptBuilder, PromptConfig


def sync() -> None:
    """Wait for queued GPU work, so the clock measures it."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def bench_setting(lm: HFLM, prompts: list[BuiltPrompt], batch: int, static: bool,
                  max_new_tokens: int) -> dict[str, Any]:
    """Decode every prompt at batch size ``batch``; time all of them after a warm-up batch of the longest."""
    requests = [GenerateRequest(p.text, max_new_tokens) for p in prompts]
    config = lm.model.generation_config
    config.cache_implementation = "static" if static else None
    try:
        lm.generate(requests[:batch], batch_size=batch, desc="warm-up")
        sync()
        t0 = time.perf_counter()
        new = sum(g.n_tokens for g in lm.generate(requests, batch_size=batch, desc=f"batch {batch}"))
        sync()
        dt = time.perf_counter() - t0
    finally:
        config.cache_implementation = None
    return {"batch": batch, "static_cache": static, "prompts": len(prompts), "new_tokens": new,
            "seconds": round(dt, 2), "new_tok_per_s": round(new / dt, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--spider-dir", required=True)
    ap.add_argument("--n", type=int, default=256, help="number of dev prompts (longest first)")
    ap.add_argument("--settings", default="64,256", help="comma list of batch sizes; suffix s = static cache")
    ap.add_argument("--max-new-tokens", type=int, default=160)
    a = ap.parse_args()
    lm = HFLM(a.model)
    split = load_spider(a.spider_dir, "dev")
    builder = PromptBuilder(lm.tokenizer, split.tables, split.db_path, PromptConfig())
    prompts = sorted((builder.build(e) for e in split.examples), key=lambda p: -p.n_tokens)[: a.n]
    rows: list[dict[str, Any]] = []
    for s in a.settings.split(","):
        rows.append(bench_setting(lm, prompts, int(s.rstrip("s")), s.endswith("s"), a.max_new_tokens))
        rows[-1]["ratio_to_first"] = round(rows[-1]["new_tok_per_s"] / rows[0]["new_tok_per_s"], 2)
        print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
