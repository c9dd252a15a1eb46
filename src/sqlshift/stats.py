"""Confidence intervals and paired significance tests for per-example 0/1 correctness.

Every accuracy sqlshift prints carries n and a 95% interval; every "A beats B" carries a paired test,
because the seed study's 22% vs 21% on n=100 is well inside the noise.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from scipy import stats


def wilson_ci(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes out of n (well-behaved near 0 and 1, unlike the normal one)."""
    if n == 0:
        return (0.0, 1.0)
    z = stats.norm.ppf(0.5 + conf / 2)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return (lo, hi)


def accuracy_summary(correct: Sequence[bool]) -> dict[str, float | int | list[float]]:
    """``{"n", "n_correct", "accuracy", "ci95"}`` for a list of 0/1 outcomes."""
    n = len(correct)
    k = int(sum(bool(c) for c in correct))
    lo, hi = wilson_ci(k, n)
    return {"n": n, "n_correct": k, "accuracy": k / n if n else 0.0, "ci95": [lo, hi]}


def mcnemar(a: Sequence[bool], b: Sequence[bool]) -> dict[str, float | int]:
    """Exact McNemar test on paired outcomes (two-sided binomial test on the discordant pairs).

    ``a_only``: examples A got right and B wrong; ``b_only`` the reverse.
    """
    if len(a) != len(b):
        raise ValueError(f"paired test needs equal lengths, got {len(a)} and {len(b)}")
    a_only = sum(1 for x, y in zip(a, b) if x and not y)
    b_only = sum(1 for x, y in zip(a, b) if y and not x)
    d = a_only + b_only
    p = 1.0 if d == 0 else float(stats.binomtest(a_only, d, 0.5).pvalue)
    return {"a_only": a_only, "b_only": b_only, "discordant": d, "p_value": p}


def below_chance_p(k: int, n: int, chance: float) -> float:
    """One-sided binomial p-value that accuracy k/n is *below* chance (a scorer bug, not forgetting)."""
    if n == 0:
        return 1.0
    return float(stats.binomtest(k, n, chance, alternative="less").pvalue)


def habit_chance(preds: Sequence[object], golds: Sequence[object]) -> float | None:
    """Expected accuracy of answers given with the model's own answer frequencies but independently of the
    question: sum over answers of (share predicted) x (share in the key).

    A near-chance model that answers "B" 89% of the time scores about the key's share of "B" on a subject, which
    can sit far below 1/k without any scorer bug; only a score below *this* means the answers run against the
    key (a key shifted by one, wrong letter tokens). None without items.
    """
    n = len(preds)
    if not n or len(golds) != n:
        return None
    pred_counts = Counter(map(str, preds))
    gold_counts = Counter(map(str, golds))
    return sum(c * gold_counts[a] for a, c in pred_counts.items()) / (n * n)


def guard_chance(chance: float, habit: float | None) -> float:
    """The null of the below-chance guard: the lower of uniform chance and :func:`habit_chance`, so that a letter
    habit never raises an alarm and a score below both does."""
    return chance if habit is None else min(chance, habit)


def significance_label(p: float, alpha: float = 0.05) -> str:
    """Plain words for reports."""
    return "significant" if p < alpha else "not significant"


def format_ci(m: dict | None) -> str:
    """``41.2% [38.1, 44.4]`` from a block with ``accuracy`` and ``ci95``: the one way sqlshift prints a score."""
    if not m or m.get("accuracy") is None:
        return "-"
    lo, hi = m.get("ci95") or (None, None)
    if lo is None:
        return f"{100 * m['accuracy']:.1f}%"
    return f"{100 * m['accuracy']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"
