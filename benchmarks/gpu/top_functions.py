"""The functions a cProfile file spent its time in: the top 40 by own time, then by cumulative time, and the
callees of vLLM's ``LLM.generate`` and of the HF backend's ``loglikelihood``.

    python benchmarks/gpu/top_functions.py mmlu.prof > mmlu.prof.txt
"""

from __future__ import annotations

import argparse
import pstats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile", help="a file written by python -m cProfile -o")
    ap.add_argument("--top", type=int, default=40)
    a = ap.parse_args()
    stats = pstats.Stats(a.profile)
    for key in ("tottime", "cumulative"):
        print(f"==== top {a.top} by {key}")
        stats.sort_stats(key).print_stats(a.top)
    for label, pattern in (("vLLM's LLM.generate", r"llm.py:\d+\(generate\)"),
                           ("the HF backend's loglikelihood", r"hf.py:\d+\(loglikelihood\)")):
        print(f"==== callees of {label}")
        stats.sort_stats("cumulative").print_callees(pattern)


if __name__ == "__main__":
    main()
