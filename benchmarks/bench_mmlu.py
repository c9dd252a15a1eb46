"""Questions per second of the MMLU log-likelihood scorer (letter vs cloze) for one model, CPU by default.

    python benchmarks/bench_mmlu.py --mmlu-dir $SQLSHIFT_DATA_DIR/mmlu --subjects seed --limit 32
    python benchmarks/bench_mmlu.py --mmlu-dir src/sqlshift/demo/mmlu --subjects all --limit 16   # the demo quiz

Why: the forgetting measurement runs MMLU once per model (baseline, each run, each checkpoint, each λ); this
tells how many questions a budget buys. Cloze costs ~4 sequences per question, letter one.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sqlshift.benchmarks.mmlu import MMLUBenchmark, MMLUSettings
from sqlshift.data.mmlu import resolve_mmlu_dir


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="embedded")
    p.add_argument("--mmlu-dir", default=None, help="folder with dev/ val/ test/ (default $SQLSHIFT_DATA_DIR/mmlu)")
    p.add_argument("--subjects", default="seed")
    p.add_argument("--limit", type=int, default=32, help="a seeded sample of this many questions per mode (0: all)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--k-shot", type=int, default=0)
    p.add_argument("--modes", default="letter,cloze")
    p.add_argument("--chat", action="store_true")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    return p.parse_args()


def main() -> None:
    """Each mode through the runner's MMLU benchmark on the transformers backend, in a scratch folder."""
    import torch

    from sqlshift.lm.hf import HFLM

    a = parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    lm = HFLM(a.model, device=a.device, batch_size=a.batch_size)
    load_s = time.perf_counter() - t0
    print(f"model {a.model} on {a.device} ({torch.get_num_threads()} threads), loaded in {load_s:.1f} s; "
          f"subjects {a.subjects}, up to {a.limit or 'all'} questions (seeded sample), batch {a.batch_size}, "
          f"{a.k_shot}-shot, chat={a.chat}")
    for mode in a.modes.split(","):
        settings = MMLUSettings(benchmark="mmlu", subjects=a.subjects, mode=mode, k_shot=a.k_shot, chat=a.chat,
                                batch_size=a.batch_size, sample=a.limit or None)
        bench = MMLUBenchmark(settings, resolve_mmlu_dir(a.mmlu_dir))
        for problem in bench.check():
            raise SystemExit(problem)
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            m = bench.evaluate(lm, Path(d))
            s = time.perf_counter() - t
        print(f"{mode:6s}: {m['n'] / s:7.2f} questions/s ({s:.1f} s), accuracy {m['accuracy']:.3f} "
              f"(n={m['n']}, {m['fewshot_note']}), padding check max |diff| {m['lm']['padding_check_max_abs_diff']}")


if __name__ == "__main__":
    main()
