"""Host time to tokenise MMLU 57's log-likelihood requests, one tokenizer call per request (before) against each
distinct text once in batched calls (``TokenLM.encode_pairs``, after: on one core, then on every core as the CLI
lets batched calls run), in one process; the ids must be identical.

    python benchmarks/bench_encode.py --tokenizer /root/models/qwen15 --mmlu-dir $SQLSHIFT_DATA_DIR/mmlu

Why: both backends are host-bound on MMLU 57 (GPU busy ≤ 24% during its 46-50 s in session 8), and four answer
letters share each context.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlshift.lm.base import TokenLM


class Tokens(TokenLM):
    """Only the encoding side of a token-level backend."""

    backend = "tokens"

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def generate(self, *a: Any, **k: Any) -> Any:
        raise NotImplementedError

    def loglikelihood(self, *a: Any, **k: Any) -> Any:
        raise NotImplementedError

    def adapter(self, *a: Any, **k: Any) -> Any:
        raise NotImplementedError


def main() -> None:
    from sqlshift.benchmarks.mmlu import MMLUBenchmark, MMLUSettings
    from sqlshift.lm.models import load_tokenizer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokenizer", default="embedded", help="model folder, GGUF or embedded")
    ap.add_argument("--mmlu-dir", required=True)
    ap.add_argument("--n", type=int, default=None, help="questions (default: all)")
    a = ap.parse_args()
    lm = Tokens(load_tokenizer(a.tokenizer))
    bench = MMLUBenchmark(MMLUSettings(benchmark="mmlu", subjects="all", mode="letter", sample=a.n), Path(a.mmlu_dir))
    questions = bench.questions()
    with tempfile.TemporaryDirectory() as d, bench.session(lm, Path(d)):
        reqs = [r for q in questions for r in bench.requests(q, lm)]
    t = time.perf_counter()
    before = [(lm.encode_context(r.context), lm.encode_continuation(r.continuation)) for r in reqs]
    t_before = time.perf_counter() - t
    timed, same = {}, True
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # as the CLI leaves it: forks stay quiet
    for how, batches_parallel in (("encode_pairs_one_core_s", False), ("encode_pairs_s", True)):
        os.environ.pop("SQLSHIFT_PARALLEL_TOKENIZE", None)
        if batches_parallel:  # the CLI's mark: the batched calls may use every core
            os.environ["SQLSHIFT_PARALLEL_TOKENIZE"] = "1"
        t = time.perf_counter()
        same = same and lm.encode_pairs(reqs) == before
        timed[how] = time.perf_counter() - t
    print(json.dumps({"questions": len(questions), "requests": len(reqs), "per_request_s": round(t_before, 3),
                      **{k: round(v, 3) for k, v in timed.items()}, "cores": os.cpu_count(),
                      "speedup": round(t_before / max(timed["encode_pairs_s"], 1e-6), 1), "identical_ids": same}))


if __name__ == "__main__":
    main()
