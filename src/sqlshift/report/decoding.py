"""Greedy against voted decoding, paired per question: the ``decoding`` block of a voting benchmark's summary entry
and the report's table of it (execution-guided decoding: :mod:`sqlshift.benchmarks.voting`).

A voting benchmark's rows carry both verdicts (``greedy_correct`` beside the voted ``correct``), so the two are
compared on the same questions with the same tests as every other comparison in the report: Wilson intervals,
exact McNemar, Newcombe's CI of the paired difference.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlshift.benchmarks.voting import ceiling
from sqlshift.report.load import BenchResult
from sqlshift.report.render import Table
from sqlshift.report.stats import DASH, acc_ci, fmt_ci, newcombe_paired_ci, paired_test, pts, pval
from sqlshift.report.tables import label
from sqlshift.report.words import CI_METHOD, compare_words
from sqlshift.stats import accuracy_summary, significance_label

STAGES = ("greedy", "sample", "vote")


def is_voted(b: BenchResult) -> bool:
    """Whether a benchmark decoded by vote: its settings say so, or its rows carry the greedy verdict beside."""
    samples = (b.metrics.get("decoding") or {}).get("samples") or 0
    return samples > 0 or any(r.get("greedy_correct") is not None for r in b.rows)


def greedy_outcomes(b: BenchResult) -> dict[str, bool]:
    """id -> the greedy answer's verdict, on exactly the items the voted score counts (gold failures excluded)."""
    counted = b.outcomes()
    return {str(r["id"]): bool(r["greedy_correct"]) for r in b.rows
            if str(r["id"]) in counted and r.get("greedy_correct") is not None}


def decoding_entry(b: BenchResult, alpha: float) -> dict[str, Any] | None:
    """Greedy and voted EX with CIs, the paired test (Δ = voted − greedy) and how the votes went; None when greedy.

    Computed from results.jsonl whenever its rows carry both verdicts: metrics.json holds only aggregates written
    by the benchmark, and the report restates per-item evidence rather than trusting a summary of it (a
    hand-edited, truncated or mismatched metrics.json would otherwise pass through). metrics.json's own
    aggregates are used only for a folder without rows, and ``source`` says which was read.
    """
    if not is_voted(b):
        return None
    greedy = greedy_outcomes(b)
    if greedy:
        voted = {i: c for i, c in b.outcomes().items() if i in greedy}
        out = {"source": "results.jsonl", **from_outcomes(greedy, voted, alpha), **vote_stats(b.rows),
               "any_candidate": ceiling([r for r in b.rows if str(r["id"]) in greedy])}
    else:
        out = {"source": "metrics.json", **from_metrics(b.metrics, alpha)}
    return {"settings": b.metrics.get("decoding"), **out}


def from_outcomes(greedy: dict[str, bool], voted: dict[str, bool], alpha: float) -> dict[str, Any]:
    """The two accuracies and their paired test from per-item verdicts."""
    t = paired_test(greedy, voted, alpha)
    assert t is not None  # voted holds exactly greedy's ids, and greedy is not empty
    return {"n": t["n_paired"], "greedy": accuracy_summary(list(greedy.values())),
            "voted": accuracy_summary([voted[i] for i in greedy]), "vs_greedy": paired(t)}


def paired(t: dict[str, Any]) -> dict[str, Any]:
    """A paired test of greedy (A) against voted (B), its discordant counts named for what they are."""
    return {"voted_only": t["b_only"], "greedy_only": t["a_only"], "p_value": t["p_value"],
            "diff_points": t["diff_points"], "diff_ci95": t["diff_ci95"], "significant": t["significant"],
            "label": t["label"]}


def vote_stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How the votes went and what each stage cost, over every row that was voted on (as metrics.json counts)."""
    voted = [r for r in rows if isinstance(r.get("vote"), dict)]
    votes = [r["vote"] for r in voted]
    seconds: Counter[str] = Counter()
    for r in voted:
        seconds.update({k: float(v) for k, v in (r.get("seconds") or {}).items()})
    return {"n_voted": len(votes),
            "n_changed": sum(r.get("pred_sql") != r.get("greedy_sql") for r in voted),
            "rules": dict(Counter(str(v.get("rule")) for v in votes)),
            "mean_distinct_results": mean([len(v.get("counts") or []) for v in votes]),
            "mean_failed": mean([int(v.get("failed") or 0) for v in votes]),
            "seconds": {k: round(seconds[k], 2) for k in [*STAGES, *sorted(set(seconds) - set(STAGES))]
                        if k in seconds}}


def mean(xs: list[int]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def from_metrics(m: dict[str, Any], alpha: float) -> dict[str, Any]:
    """The same figures from metrics.json's aggregates (a folder whose results.jsonl is gone)."""
    g, v = m.get("greedy") or {}, m.get("vote") or {}
    n, kv, kg = int(m.get("n", 0)), int(m.get("n_correct", 0)), int(g.get("n_correct", 0))
    p = v.get("paired") or {}
    vo, go = int(p.get("voted_only", 0)), int(p.get("greedy_only", 0))
    both = kv - vo
    lo, hi = newcombe_paired_ci(both, go, vo, n - both - vo - go)
    pv = float(p.get("p_value", 1.0))
    test = {"voted_only": vo, "greedy_only": go, "p_value": pv, "diff_points": 100.0 * (kv - kg) / n if n else 0.0,
            "diff_ci95": [100 * lo, 100 * hi], "significant": pv < alpha, "label": significance_label(pv, alpha)}
    return {"n": n, "greedy": accuracy_summary([True] * kg + [False] * (n - kg)),
            "voted": accuracy_summary([True] * kv + [False] * (n - kv)), "vs_greedy": test,
            **{k: v.get(k) for k in ("n_changed", "rules", "mean_distinct_results", "mean_failed", "any_candidate")},
            "seconds": m.get("seconds") or {}}


# ------------------------------------------------------------------------------------------------ the table


def seconds_cell(s: dict[str, float]) -> str:
    """``12.0 / 80.5 / 3.1``: greedy / sampling / voting seconds (— for a stage not recorded)."""
    return " / ".join(f"{s[k]:.1f}" if k in s else DASH for k in STAGES)


def mean_cell(x: float | None) -> str:
    return DASH if x is None else f"{x:.2f}"


def ceiling_cells(c: dict[str, Any] | None) -> list[str]:
    """Any candidate right (with its CI) and one sample's mean EX; — for rows written before samples were judged."""
    if not c:
        return [DASH, DASH]
    one = c.get("mean_sample_accuracy")
    return [acc_ci(c["accuracy"], c["ci95"]), DASH if one is None else f"{100 * one:.1f}%"]


def decoding_row(key: str, name: str, d: dict[str, Any]) -> list[str]:
    t = d["vs_greedy"]
    name += "" if d["source"] == "results.jsonl" else " (from metrics.json: no per-question rows)"
    return [key, name, str(d["n"]), acc_ci(d["greedy"]["accuracy"], d["greedy"]["ci95"]),
            acc_ci(d["voted"]["accuracy"], d["voted"]["ci95"]), pts(t["diff_points"]), fmt_ci(t["diff_ci95"], 1.0),
            f"{t['voted_only']} / {t['greedy_only']}", pval(t["p_value"]), f"voted {compare_words(t)}",
            *ceiling_cells(d.get("any_candidate")), mean_cell(d["mean_distinct_results"]), mean_cell(d["mean_failed"]),
            seconds_cell(d["seconds"])]


def decoding_table(summary: dict[str, Any]) -> Table | None:
    """One row per model × voting benchmark: greedy and voted EX on the same questions, paired."""
    rows = [decoding_row(key, label(summary, f), e["decoding"]) for key, m in summary["models"].items()
            for f, e in m["benchmarks"].items() if e.get("decoding")]
    if not rows:
        return None
    cols = ["Model", "Benchmark", "n", "Greedy EX [95% CI]", "Voted EX [95% CI]", "Δ voted − greedy (pts)",
            "95% CI of Δ", "only voted right / only greedy right", "McNemar p", "Reading",
            "any candidate right [95% CI]", "one sample (mean EX)", "distinct results (mean)",
            "failed candidates (mean)", "seconds: greedy / sample / vote"]
    return Table("Greedy vs voted decoding", cols, rows,
                 note=f"Greedy and voted answers to the same questions, paired per question (results.jsonl). "
                      f"Δ's 95% CI is {CI_METHOD}; p is the exact McNemar test. Distinct results and failed "
                      "candidates are per question, over greedy + samples; seconds are summed over questions. "
                      "'Any candidate right' is the ceiling of any rule that picks among these candidates (judged "
                      "against the gold after the vote, which never sees it).")
