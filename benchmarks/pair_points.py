"""Pair one model point of two run directories per benchmark: accuracy of each, Δ with Newcombe's paired CI and
exact McNemar p (the report's own test), for points that no single study holds, e.g. an adapter scored by
``sqlshift eval`` on the 4-bit and on the bf16 base, or by two backends.

    python benchmarks/pair_points.py RUN_A[:POINT] RUN_B[:POINT] [--benchmarks spider-dev,mmlu]

POINT defaults to the only point under models/ (``sqlshift eval`` writes one).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from sqlshift.jsonl import read_jsonl
from sqlshift.report.stats import paired_test


def point_dir(arg: str) -> Path:
    """RUN[:POINT] -> RUN/models/POINT; without POINT the run's single point."""
    run, _, point = arg.partition(":")
    models = Path(run) / "models"
    if point:
        return models / point
    found = sorted(p for p in models.iterdir() if p.is_dir())
    if len(found) != 1:
        raise SystemExit(f"{models}: {len(found)} points ({', '.join(p.name for p in found)}); name one as RUN:POINT")
    return found[0]


def verdicts(folder: Path, bench: str) -> dict[str, bool]:
    """id -> correct, from the point's results.jsonl of one benchmark."""
    return {r["id"]: bool(r["correct"]) for r in read_jsonl(folder / bench / "results.jsonl")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a"), ap.add_argument("b")
    ap.add_argument("--benchmarks", default="spider-dev,mmlu")
    args = ap.parse_args()
    a, b = point_dir(args.a), point_dir(args.b)
    print(f"A = {a}\nB = {b}")
    for bench in args.benchmarks.split(","):
        va, vb = verdicts(a, bench), verdicts(b, bench)
        t = paired_test(va, vb)
        if t is None:
            print(f"{bench}: no shared item")
            continue
        print(f"{bench}: A {sum(va.values())}/{len(va)} ({100 * sum(va.values()) / len(va):.1f}%)  "
              f"B {sum(vb.values())}/{len(vb)} ({100 * sum(vb.values()) / len(vb):.1f}%)  "
              f"B-A {t['diff_points']:+.1f} pts [{t['diff_ci95'][0]:+.1f}, {t['diff_ci95'][1]:+.1f}] on "
              f"{t['n_paired']} paired, discordant {t['a_only']}/{t['b_only']}, McNemar p = {t['p_value']:.3g}")


if __name__ == "__main__":
    main()
