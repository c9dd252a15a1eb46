"""The functions a cProfile file spent its time in: the top 40 by own time, then by cumulative time, and the
callees of vLLM's ``LLM.generate`` (where MMLU's host time goes: our request building, vLLM's front end, its engine).

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
    print("==== callees of LLM.generate")
    stats.sort_stats("cumulative").print_callees(r"llm.py:\d+\(generate\)")


if __name__ == "__main__":
    main()
