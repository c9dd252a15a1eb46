"""Attention for padding-free training rows: SDPA with transformers' packed-sequence mask against PyTorch's
variable-length flash attention (sqlshift.train.varlen), in one process on one GPU.

A randomly initialised model of Qwen2.5-Coder-1.5B's shape (no weights to carry: attention cost does not depend on
them) with a LoRA (r = 8, q/k/v/o) trains on packed rows shaped like Run 1's micro-batches (8 rows, ≈ 400 tokens each,
seeded lengths). Prints ms per forward+backward, tokens/s, the ratio, peak memory, and the largest loss difference
between the two attentions on the same batches (they must agree to bf16 noise). Needs only torch, transformers and
peft, which the GPU image has.

    PYTHONPATH=src python benchmarks/bench_varlen.py              # GPU
    PYTHONPATH=src python benchmarks/bench_varlen.py --tiny       # CPU: SDPA only (varlen is CUDA-only), a smoke run
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from sqlshift.train import varlen

QWEN15 = {"vocab_size": 151936, "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
          "num_attention_heads": 12, "num_key_value_heads": 2, "max_position_embeddings": 32768,
          "rope_theta": 1_000_000.0, "tie_word_embeddings": True}
TINY = {"vocab_size": 512, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 2048}


def packed_batches(n: int, rows: int, lo: int, hi: int, vocab: int, device: Any) -> list[dict[str, Any]]:
    """``n`` padding-free batches as trl's collator makes them: one row, position_ids restarting at each example,
    cu_seq_lens and the longest example."""
    import torch

    gen = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        lens = torch.randint(lo, hi + 1, (rows,), generator=gen).tolist()
        ids = torch.randint(10, vocab, (1, sum(lens)), generator=gen)
        pos = torch.cat([torch.arange(k) for k in lens]).unsqueeze(0)
        cu = torch.tensor([0] + torch.tensor(lens).cumsum(0).tolist(), dtype=torch.int32)
        out.append({"input_ids": ids.to(device), "labels": ids.to(device), "position_ids": pos.to(device),
                    "cu_seq_lens_q": cu.to(device), "cu_seq_lens_k": cu.to(device),
                    "max_length_q": max(lens), "max_length_k": max(lens)})
    return out


def build(shape: dict[str, Any], attn: str, device: Any, dtype: Any) -> Any:
    """The same seeded random Qwen2-shaped model with the same seeded LoRA, on ``attn``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(**shape, attn_implementation=attn)).to(device, dtype)
    torch.manual_seed(1)
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    return get_peft_model(model, lora)


def time_steps(model: Any, batches: list[dict[str, Any]], warmup: int) -> dict[str, Any]:
    """Forward + backward per batch; seconds of the batches after ``warmup`` and every loss."""
    import torch

    cuda = torch.cuda.is_available()
    losses, t0 = [], 0.0
    for i, b in enumerate(batches):
        if i == warmup:
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        loss = model(**b).loss
        loss.backward()
        losses.append(loss.detach())
    if cuda:
        torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    tokens = sum(b["input_ids"].numel() for b in batches[warmup:])
    return {"ms_per_step": round(1000 * secs / (len(batches) - warmup), 1), "tokens_per_s": round(tokens / secs),
            "losses": [float(x) for x in losses]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="a 2-layer model (CPU smoke run)")
    ap.add_argument("--rows", type=int, default=8, help="examples per packed micro-batch (Run 1: 8)")
    ap.add_argument("--min-len", type=int, default=200)
    ap.add_argument("--max-len", type=int, default=600, help="example lengths: uniform in [min, max] (Run 1: ≈ 400)")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()
    import torch

    cuda = torch.cuda.is_available()
    device, dtype = torch.device("cuda" if cuda else "cpu"), torch.bfloat16 if cuda else torch.float32
    shape = TINY if a.tiny else QWEN15
    batches = packed_batches(a.steps, a.rows, a.min_len, a.max_len, shape["vocab_size"], device)
    usable = varlen.varlen_usable()
    info = {"device": torch.cuda.get_device_name(0) if cuda else "cpu", "torch": torch.__version__,
            "varlen_usable": usable, "shape": "tiny" if a.tiny else "Qwen2.5-1.5B", "rows": a.rows,
            "tokens_per_step": round(sum(b["input_ids"].numel() for b in batches) / len(batches))}
    print(json.dumps(info), flush=True)
    torch.backends.cuda.enable_cudnn_sdp(False)  # as the trainer does (NaN gradients, docs/results.md)
    results = {}
    for attn in ["sdpa"] + ([varlen.NAME] if usable else []):
        if attn == varlen.NAME:
            varlen.register()
        model = build(shape, attn, device, dtype)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        res = time_steps(model, batches, a.warmup)
        res["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None
        results[attn] = res
        print(json.dumps({"attention": attn, **{k: v for k, v in res.items() if k != "losses"}}), flush=True)
        del model
    if len(results) == 2:
        sd, vl = results["sdpa"], results[varlen.NAME]
        gap = max(abs(x - y) for x, y in zip(sd["losses"], vl["losses"]))
        print(json.dumps({"speedup_varlen_over_sdpa": round(vl["tokens_per_s"] / sd["tokens_per_s"], 2),
                          "max_abs_loss_diff": round(gap, 4), "loss_sdpa_first": round(sd["losses"][0], 4)}))


if __name__ == "__main__":
    main()
