"""The report's statistics: paired tests by item id, a CI for the paired difference, the composite bootstrap,
seed-to-seed spread, and the one place numbers are formatted.

Every comparison is paired on the items both models answered, because two models scored on the same questions
differ far less by chance than two independent samples would.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from sqlshift.stats import mcnemar, significance_label, wilson_ci

ALPHA = 0.05
#: below-chance p under which a multiple-choice score means a broken scorer, not forgetting (as in guards)
SCORER_FAILURE_P = 0.01
BOOTSTRAP_REPS = 2000
BOOTSTRAP_SEED = 0
DASH = "—"


# ------------------------------------------------------------------------------------------------ formatting


def pct(x: float | None) -> str:
    """``41.2%``."""
    return DASH if x is None else f"{100 * x:.1f}%"


def fmt_ci(c: Iterable[float] | None, scale: float = 100.0) -> str:
    """``[38.1, 44.4]`` from a (lo, hi) pair in fractions (``scale=1`` for values already in points)."""
    if c is None:
        return DASH
    lo, hi = list(c)
    return f"[{scale * lo:.1f}, {scale * hi:.1f}]"


def acc_ci(acc: float | None, ci95: Iterable[float] | None) -> str:
    """``41.2% [38.1, 44.4]``: the cell every accuracy is shown in."""
    return DASH if acc is None else f"{pct(acc)} {fmt_ci(ci95)}"


def pts(d: float | None) -> str:
    """A change in percentage points, signed."""
    return DASH if d is None else f"{d:+.1f}"


def pval(p: float | None) -> str:
    if p is None:
        return DASH
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


# ------------------------------------------------------------------------------------------------ paired tests


def newcombe_paired_ci(both: int, a_only: int, b_only: int, neither: int, conf: float = 0.95) -> tuple[float, float]:
    """CI of p_b − p_a for paired proportions: Newcombe's (1998) method 10, built from the two Wilson intervals.

    Unlike a Wald interval on the discordant pairs it stays inside [-1, 1] and does not collapse to a point when
    there are few discordant pairs, which is exactly when "the test cannot rule out a loss of X" matters.
    """
    n = both + a_only + b_only + neither
    if n == 0:
        return (-1.0, 1.0)
    pa, pb = (both + a_only) / n, (both + b_only) / n
    la, ua = wilson_ci(both + a_only, n, conf)
    lb, ub = wilson_ci(both + b_only, n, conf)
    # correlation of the two outcomes (continuity-corrected as Newcombe does)
    prod = (both + a_only) * (b_only + neither) * (both + b_only) * (a_only + neither)
    c = both * neither - a_only * b_only
    c = c - n / 2 if c > n / 2 else (0.0 if c >= 0 else c)
    phi = c / math.sqrt(prod) if prod else 0.0
    theta = pb - pa
    lower = math.sqrt(max(0.0, (pb - lb) ** 2 - 2 * phi * (pb - lb) * (ua - pa) + (ua - pa) ** 2))
    upper = math.sqrt(max(0.0, (ub - pb) ** 2 - 2 * phi * (ub - pb) * (pa - la) + (pa - la) ** 2))
    return (max(-1.0, theta - lower), min(1.0, theta + upper))


def paired_test(a: dict[str, bool], b: dict[str, bool], alpha: float = ALPHA) -> dict[str, Any] | None:
    """Exact McNemar on the items both sides scored (matched by id); Δ = acc(b) − acc(a) on them, with its CI.

    ``diff_points`` and ``diff_ci95`` are in percentage points; None when the two share no item.
    """
    common = sorted(a.keys() & b.keys())
    if not common:
        return None
    xa, xb = [a[i] for i in common], [b[i] for i in common]
    r = mcnemar(xa, xb)
    both = sum(1 for x, y in zip(xa, xb) if x and y)
    neither = len(common) - both - r["a_only"] - r["b_only"]
    lo, hi = newcombe_paired_ci(both, int(r["a_only"]), int(r["b_only"]), neither)
    return {"n_paired": len(common), "a_only": r["a_only"], "b_only": r["b_only"], "p_value": r["p_value"],
            "diff_points": 100.0 * (sum(xb) - sum(xa)) / len(common), "diff_ci95": [100 * lo, 100 * hi],
            "significant": r["p_value"] < alpha, "label": significance_label(r["p_value"], alpha)}


# ------------------------------------------------------------------------------------------------ composite


def paired_diffs(a: dict[str, bool], b: dict[str, bool]) -> np.ndarray:
    """Per shared item: +1 when only b is right, −1 when only a is, 0 otherwise."""
    common = sorted(a.keys() & b.keys())
    return np.array([int(b[i]) - int(a[i]) for i in common], dtype=int)


def composite_delta(pairs: Sequence[np.ndarray], reps: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED,
                    conf: float = 0.95) -> dict[str, Any] | None:
    """Mean over benchmarks of Δ (points), with a paired bootstrap CI resampling each benchmark's items.

    Resampling n paired items with replacement only changes how many are +1, 0 and −1, so each benchmark's
    bootstrap draw is one multinomial draw: exact, and cheap even for 14k-item benchmarks.
    """
    pairs = [d for d in pairs if len(d)]
    if not pairs:
        return None
    rng = np.random.default_rng(seed)
    boot = np.zeros(reps)
    for d in pairs:
        boot += bootstrap_means(d, reps, rng)
    boot = 100.0 * boot / len(pairs)
    lo, hi = np.percentile(boot, [50 * (1 - conf), 50 * (1 + conf)])
    delta = 100.0 * float(np.mean([d.mean() for d in pairs]))
    return {"delta_points": delta, "ci95": [float(lo), float(hi)], "n_benchmarks": len(pairs),
            "n_discordant": int(sum(int(np.count_nonzero(d)) for d in pairs)),
            "n_paired": [int(len(d)) for d in pairs], "reps": reps, "seed": seed,
            "significant": bool(lo > 0 or hi < 0)}


def bootstrap_means(d: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``reps`` resamples (with replacement) of the integer values ``d``.

    A resample only changes how many items take each value, so each one is a multinomial draw over the values
    (at least −1, 0, 1, in that order): exact, and cheap for any n.
    """
    values = np.arange(min(-1, int(d.min())), max(1, int(d.max())) + 1)
    probs = np.array([(d == v).mean() for v in values])
    draws = rng.multinomial(len(d), probs / probs.sum(), size=reps)
    return (draws @ values) / len(d)


# ------------------------------------------------------------------------------------------------ noise


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample SD and range of seed-to-seed values (SD None with one value)."""
    v = [float(x) for x in values]
    if not v:
        return {"values": [], "mean": None, "sd": None, "range": None}
    sd = float(np.std(v, ddof=1)) if len(v) > 1 else None
    return {"values": v, "mean": float(np.mean(v)), "sd": sd, "range": max(v) - min(v)}

