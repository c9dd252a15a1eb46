"""Batched greedy generation speed on Spider dev prompts: new tokens/s for several settings, in one process.

Each setting decodes the same prompts (the ``--n`` longest-first dev examples' prompts, as the runner builds them)
and reports useful new tokens (up to the stop token) per second of wall time, and the ratio to the first
setting ("before"). A warm-up batch per setting is excluded.

    python benchmarks/bench_generate.py --model embedded --spider-dir ../shared/data/spider --n 16 --settings 4,8
    python benchmarks/bench_generate.py --model /root/models/smollm2 --n 512 --settings 64,256,256s   # GPU
A setting is a batch size; a trailing ``s`` adds the static KV cache (compiled decode step).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from sqlshift.data.spider import load_spider
from sqlshift.sql.extract import decode_batch, length_sorted_batches
from sqlshift.lm.models import load_model
from sqlshift.sql.prompts import BuiltPrompt, PromptBuilder, PromptConfig


def bench_setting(model: Any, tok: Any, prompts: list[BuiltPrompt], batch: int, static: bool,
                  max_new_tokens: int) -> dict[str, Any]:
    """Decode every prompt in length-sorted batches; time all but a first warm-up batch."""
    import torch

    batches = [[prompts[i].text for i in b] for b in length_sorted_batches(prompts, batch)]
    decode_batch(model, tok, batches[0], max_new_tokens, static_cache=static)  # warm-up
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0, new = time.perf_counter(), 0
    for texts in batches:
        new += sum(n for _, n, _ in decode_batch(model, tok, texts, max_new_tokens, static_cache=static))
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
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
    model, tok = load_model(a.model)
    split = load_spider(a.spider_dir, "dev")
    builder = PromptBuilder(tok, split.tables, split.db_path, PromptConfig())
    prompts = [builder.build(e) for e in split.examples]
    prompts = sorted(prompts, key=lambda p: -p.n_tokens)[: a.n]
    rows = []
    for s in a.settings.split(","):
        rows.append(bench_setting(model, tok, prompts, int(s.rstrip("s")), s.endswith("s"), a.max_new_tokens))
        rows[-1]["ratio_to_first"] = round(rows[-1]["new_tok_per_s"] / rows[0]["new_tok_per_s"], 2)
        print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
