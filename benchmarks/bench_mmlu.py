"""Questions per second of the MMLU log-likelihood scorer (letter vs cloze) for one model, CPU by default.

    python benchmarks/bench_mmlu.py --mmlu-dir $SQLSHIFT_DATA_DIR/mmlu --subjects seed --limit 32

Why: the forgetting measurement runs MMLU once per model (baseline, each run, each checkpoint, each λ); this
tells how many questions a budget buys. Cloze costs ~4 sequences per question, letter one.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sqlshift.data.mmlu import load_fewshot, resolve_subjects
from sqlshift.benchmarks.mmlu_prompts import evaluate_mmlu, load_questions


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="embedded")
    p.add_argument("--mmlu-dir", default=None, help="folder with dev/ val/ test/ (default $SQLSHIFT_DATA_DIR/mmlu)")
    p.add_argument("--subjects", default="seed")
    p.add_argument("--limit", type=int, default=32, help="questions per mode (0: all)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--k-shot", type=int, default=0)
    p.add_argument("--modes", default="letter,cloze")
    p.add_argument("--chat", action="store_true")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    return p.parse_args()


def main() -> None:
    import torch

    from sqlshift.lm.models import load_model

    a = parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    model, tok = load_model(a.model, device=a.device)
    load_s = time.perf_counter() - t0
    questions, _ = load_questions(a.mmlu_dir, a.subjects, "test")
    if a.limit:
        questions = questions[:: max(1, len(questions) // a.limit)][: a.limit]  # spread over subjects
    fewshot, note = load_fewshot(a.mmlu_dir, resolve_subjects(a.subjects), a.k_shot)
    print(f"model {a.model} on {a.device} ({torch.get_num_threads()} threads), loaded in {load_s:.1f} s; "
          f"{len(questions)} questions, batch {a.batch_size}, {note}, chat={a.chat}")
    for mode in a.modes.split(","):
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            m = evaluate_mmlu(model, tok, questions, Path(d), mode=mode, k_shot=a.k_shot, chat=a.chat,
                              batch_size=a.batch_size, fewshot=fewshot, progress=False)
            s = time.perf_counter() - t
        print(f"{mode:6s}: {len(questions) / s:7.2f} questions/s ({s:.1f} s), accuracy {m['accuracy']:.3f} "
              f"(n={m['n']}), padding check max |diff| {m['padding_check_max_abs_diff']}")


if __name__ == "__main__":
    main()
