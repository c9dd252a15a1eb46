"""Plain words for numbers, worded by what the test supports and no further.

A significant difference is "higher"/"lower" with its p; anything else is "not significantly different", and a
generality comparison also says how large a loss the paired CI still allows, because "no significant drop" on a
few hundred items is compatible with a real one.
"""

from __future__ import annotations

from typing import Any

from sqlshift.benchmarks.common import answer_habit, habit_of_counts
from sqlshift.report.load import BenchResult
from sqlshift.report.stats import pval

CI_METHOD = "Newcombe's hybrid-score interval for paired proportions (method 10)"


def compare_words(t: dict[str, Any] | None) -> str:
    """``higher (p=…)`` / ``lower (p=…)`` when significant, else ``not significantly different (p=…)``."""
    if t is None:
        return "not tested (no shared items)"
    if t["significant"]:
        return f"{'higher' if t['diff_points'] > 0 else 'lower'} (p={pval(t['p_value'])})"
    return f"not significantly different (p={pval(t['p_value'])})"


def loss_bound(t: dict[str, Any]) -> float:
    """The largest loss (points, ≥ 0) the 95% CI of the paired difference still allows."""
    return max(0.0, -float(t["diff_ci95"][0]))


def generality_words(t: dict[str, Any] | None) -> str:
    """The generality reading: a significant change, or no evidence of loss with the loss the CI cannot rule out."""
    if t is None or t["significant"]:
        return compare_words(t)
    bound = loss_bound(t)
    if bound < 0.05:  # the CI's lower end is at or above zero once rounded
        return f"{compare_words(t)}: no evidence of loss; the 95% CI of the difference excludes a loss of 0.1 points or more"
    return f"{compare_words(t)}: no evidence of loss; the test cannot rule out a loss of up to {bound:.1f} points"


def composite_words(c: dict[str, Any] | None) -> str:
    """The composite generality reading, from its bootstrap CI (significant when the CI excludes 0)."""
    if c is None:
        return "not computed (no paired items)"
    lo, hi = c["ci95"]
    if not c["n_discordant"]:
        return ("not significantly different: no item changed its verdict, so the bootstrap cannot bound a loss; "
                "see each benchmark's paired CI")
    if c["significant"]:
        return f"{'higher' if c['delta_points'] > 0 else 'lower'} (95% CI [{lo:+.1f}, {hi:+.1f}] excludes 0)"
    return (f"not significantly different (95% CI [{lo:+.1f}, {hi:+.1f}]): no evidence of loss; the test cannot "
            f"rule out a mean loss of up to {max(0.0, -lo):.1f} points")


def option_name(position: Any, labels: dict[str, str] | None = None) -> str:
    """An answer position as a reader knows it: its text when every item has the same options (BoolQ's ``0`` ->
    ``no``), else the letter (``0`` -> ``A``); letters and words stay as they are."""
    s = str(position)
    if labels and s in labels:
        return str(labels[s])
    return chr(ord("A") + int(s)) if s.isdigit() and int(s) < 26 else s


def one_answer(b: BenchResult) -> dict[str, Any] | None:
    """``{option, share}`` when the model gives one answer to ≥ 90% of items (the axis then measures nothing).

    Benchmarks record ``one_answer`` (:func:`sqlshift.benchmarks.common.answer_habit`); older folders without it
    are judged by the same function from their answer counts or rows."""
    m = b.metrics
    if "one_answer" not in m or "top_position" not in m:
        counts = m.get("pred_counts") or m.get("pred_position_counts")
        if counts:
            m = {**m, **habit_of_counts({str(k): int(v) for k, v in counts.items()})}
        elif b.kind == "multiple_choice" and b.rows and all("pred" in r for r in b.rows):
            m = {**m, **answer_habit(r["pred"] for r in b.rows)}
    if m.get("one_answer"):
        return {"option": option_name(m.get("top_position"), m.get("option_labels")),
                "share": float(m.get("top_position_share") or 1.0)}
    return None


def collapsed(e: dict[str, Any], base: dict[str, Any] | None) -> bool:
    """The model gives one answer where the baseline does not: fine-tuning broke its answering. That is forgetting
    (of the ability to answer), though the accuracy then no longer measures knowledge."""
    return bool(e.get("one_answer")) and base is not None and base is not e and not base.get("one_answer")


def uninformative(e: dict[str, Any], base: dict[str, Any] | None) -> str | None:
    """Why a comparison on this benchmark cannot be read as a knowledge change: the model collapsed onto one answer
    (itself a loss), or it or the baseline gives one answer anyway."""
    if collapsed(e, base):
        return "collapsed onto one answer: the ability to answer is lost (forgetting), not measured knowledge"
    if e.get("one_answer"):
        return "not interpretable: this model gives one answer"
    if base is not None and base is not e and base.get("one_answer"):
        flag = base["one_answer"]
        return f"not interpretable: the baseline answers '{flag['option']}' to {100 * flag['share']:.0f}%"
    return None


def one_answer_flag(flag: dict[str, Any] | None, collapse: bool = False) -> str:
    """``answers 'A' to 100%: this axis is uninformative for this model``, or, where the baseline does not give one
    answer (:func:`collapsed`), ``answers 'A' to 100% where the baseline does not: collapsed``."""
    if not flag:
        return ""
    habit = f"answers '{flag['option']}' to {100 * flag['share']:.0f}%"
    return f"{habit} where the baseline does not: collapsed" if collapse else \
        f"{habit}: this axis is uninformative for this model"
