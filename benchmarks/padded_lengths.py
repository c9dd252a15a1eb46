"""Padded length of every training micro-batch, in the exact order the Trainer feeds them.

Why: on H100/H200 with torch 2.11+, cuDNN's SDPA backward returns NaN in dQ when an explicit attention mask is
passed and the sequence length is 64 mod 128 (pytorch/pytorch#196678). Training pads each micro-batch to its
longest row, so whether (and at which step) a run hits the bug is a property of the data order. This script
rebuilds that order on CPU (the same rows, collator and seeded sampler as ``sqlshift train``) and prints:
the cumulative non-padding token count per optimizer step (compare with ``num_tokens`` in a run's
log_history.json to check the order is the real one) and the micro-batches whose padded length is 64 mod 128.

    python benchmarks/padded_lengths.py --tokenizer /path/qwen15.gguf --config configs/train/seed-run1.yaml \\
        --spider-dir ../shared/data per_device_batch_size=8 gradient_accumulation_steps=2
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from sqlshift.lm.models import load_model, load_tokenizer
from sqlshift.train.trainer import build_training_rows, load_train_config, make_trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokenizer", required=True, help="the trained model's spec (its tokenizer decides lengths)")
    ap.add_argument("--config", required=True)
    ap.add_argument("--spider-dir", required=True)
    ap.add_argument("--steps", type=int, default=100, help="optimizer steps to list")
    ap.add_argument("--log-history", help="a run's log_history.json: compare its num_tokens with ours")
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args()
    cfg = load_train_config(a.config, a.overrides + [f"data.spider_dir={a.spider_dir}"])
    tok = load_tokenizer(a.tokenizer)
    tok.padding_side = "right"
    rows, _ = build_training_rows(tok, cfg)
    model, _ = load_model("embedded", device="cpu")  # only to build the Trainer; the data path does not use it
    from transformers import set_seed

    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(model, tok, rows, cfg, Path(tmp))
        set_seed(cfg.seed)  # Trainer.train() seeds before it builds the dataloader
        dl = trainer.get_train_dataloader()
        if hasattr(dl, "set_epoch"):
            dl.set_epoch(0)
        accum, step, hits, cum = cfg.gradient_accumulation_steps, 0, [], []
        total = 0
        for i, batch in enumerate(dl):
            length = int(batch["input_ids"].shape[1])
            total += int(batch["attention_mask"].sum())
            if length % 128 == 64:
                hits.append({"micro_batch": i, "optimizer_step": i // accum + 1, "padded_length": length})
            if (i + 1) % accum == 0:
                step += 1
                cum.append(total)
                if step >= a.steps:
                    break
    print(json.dumps({"micro_batches_64_mod_128": hits}, indent=1))
    if a.log_history:
        logged = {r["step"]: r["num_tokens"] for r in json.loads(Path(a.log_history).read_text()) if "num_tokens" in r}
        match = {s: (int(n), cum[s - 1]) for s, n in logged.items() if s <= len(cum)}
        print("num_tokens logged vs rebuilt:", match)


if __name__ == "__main__":
    main()
