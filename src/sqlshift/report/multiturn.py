"""Multi-turn Text-to-SQL (SParC, CoSQL) paired per interaction and per turn position.

A benchmark's headline is question match (per turn), which the generic tables already pair. Interaction match (every
turn of a conversation right) and accuracy by turn position are what tell "transfers to context-dependent questions"
from "only turn 1, a Spider question, got better"; here both get a CI and a paired test against the baseline, and
interaction match also run against run, from the per-turn rows each benchmark wrote.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

from sqlshift.benchmarks.multiturn import TURN_GROUPS, interaction_verdicts, turn_group
from sqlshift.report.load import BenchResult, Study
from sqlshift.report.render import Table
from sqlshift.report.stats import ALPHA, DASH, acc_ci, fmt_ci, paired_test, pct, pts, pval
from sqlshift.report.tables import PAIR_COLUMNS, pair_cells
from sqlshift.report.words import compare_words
from sqlshift.stats import wilson_ci


def is_multiturn(b: BenchResult) -> bool:
    return "interaction_accuracy" in b.metrics


def interaction_outcomes(b: BenchResult) -> dict[str, bool]:
    """interaction -> right, by the benchmark's own rule (the per-item form of its interaction match)."""
    return {str(k): v for k, v in interaction_verdicts(b.rows).items()}


def turn_outcomes(b: BenchResult) -> dict[str, dict[str, bool]]:
    """turn position (the benchmark's buckets) -> {row id: correct}, over the turns in question match's n."""
    outcomes = b.outcomes()
    out: dict[str, dict[str, bool]] = {}
    for r in b.rows:
        if (i := str(r["id"])) in outcomes:
            out.setdefault(turn_group(int(r["turn"])), {})[i] = outcomes[i]
    return out


def score(outcomes: dict[str, bool], ref: dict[str, bool] | None, alpha: float) -> dict[str, Any]:
    """Accuracy with n and Wilson CI, and Δ with the paired test against ``ref`` (None for the reference)."""
    n, k = len(outcomes), sum(outcomes.values())
    t = paired_test(ref, outcomes, alpha) if ref is not None else None
    return {"accuracy": k / n if n else None, "n": n, "n_correct": k, "ci95": list(wilson_ci(k, n)),
            "delta_points": t["diff_points"] if t else None, "vs_baseline": t}


def benchmark_entry(study: Study, folder: str, alpha: float) -> dict[str, Any]:
    """Interaction match and per-position question match of every model, and interaction match run against run."""
    base = study.baseline
    have = [m for m in study.models if folder in m.benches]
    inter = {m.key: interaction_outcomes(m.benches[folder]) for m in have}
    turns = {m.key: turn_outcomes(m.benches[folder]) for m in have}
    bkey = base.key if base is not None and base.key in inter else None
    entry: dict[str, Any] = {"interaction": {}, "by_turn": {}, "pairwise": []}
    for m in have:
        ref = None if bkey is None or m.key == bkey else bkey
        entry["interaction"][m.key] = score(inter[m.key], inter[ref] if ref else None, alpha)
        entry["by_turn"][m.key] = {p: score(o, turns[ref].get(p) if ref else None, alpha)
                                   for p in TURN_GROUPS if (o := turns[m.key].get(p))}
    runs = [m.key for m in have if m.kind == "run"]
    for a, b in combinations(runs, 2):
        if (t := paired_test(inter[a], inter[b], alpha)) is not None:
            entry["pairwise"].append({"a": a, "b": b, **t})
    return entry


def multiturn_summary(study: Study, alpha: float = ALPHA) -> dict[str, dict[str, Any]]:
    """summary.json's ``multiturn``: folder -> :func:`benchmark_entry` (empty without SParC or CoSQL results)."""
    return {f: benchmark_entry(study, f, alpha) for f in study.folders()
            if (meta := study.meta(f)) is not None and is_multiturn(meta)}


def name(summary: dict[str, Any], folder: str) -> str:
    """'SParC' from the question-match label 'SParC QM'."""
    return summary["benchmarks"].get(folder, {}).get("label", folder).removesuffix(" QM")


def interaction_table(summary: dict[str, Any]) -> Table | None:
    rows = []
    for f, e in (summary.get("multiturn") or {}).items():
        for key, s in e["interaction"].items():
            t = s["vs_baseline"]
            rows.append([name(summary, f), key, pct(s["accuracy"]), f"{s['n_correct']}/{s['n']}",
                         fmt_ci(s["ci95"]), pts(s["delta_points"]) if t else DASH,
                         fmt_ci(t["diff_ci95"], scale=1.0) if t else DASH, pval(t["p_value"]) if t else DASH,
                         compare_words(t) if t else DASH])
    if not rows:
        return None
    cols = ["Benchmark", "Model", "Interaction match", "correct/n", "95% CI", "Δ vs baseline (pts)", "95% CI of Δ",
            "McNemar p", "vs baseline"]
    return Table("Interaction match (every turn of a conversation right)", cols, rows,
                 note="Per interaction: right when every turn whose gold SQL executes is right. Δ paired by "
                      "interaction: Newcombe's CI, exact McNemar p. Accuracy CIs are Wilson intervals.")


def interaction_pairwise_table(summary: dict[str, Any]) -> Table | None:
    rows = [[name(summary, f), f"{t['a']} vs {t['b']}", *pair_cells(t)]
            for f, e in (summary.get("multiturn") or {}).items() for t in e["pairwise"]]
    if not rows:
        return None
    return Table("Interaction match, run against run", ["Benchmark", "Comparison (A vs B)", *PAIR_COLUMNS], rows)


def turn_table(summary: dict[str, Any]) -> Table | None:
    rows = []
    for f, e in (summary.get("multiturn") or {}).items():
        for key, per in e["by_turn"].items():
            cells = []
            for p in TURN_GROUPS:
                s = per.get(p)
                t = s["vs_baseline"] if s else None
                test = f"; {pts(s['delta_points'])} pts, p={pval(t['p_value'])}" if t else ""
                cells.append(f"{acc_ci(s['accuracy'], s['ci95'])} (n={s['n']}{test})" if s else DASH)
            rows.append([name(summary, f), key, *cells])
    if not rows:
        return None
    return Table("Question match by turn position", ["Benchmark", "Model", *(f"turn {p}" for p in TURN_GROUPS)], rows,
                 note="Turn 1 is a stand-alone question (Spider's prompt); later turns need the conversation. Each "
                      "cell: accuracy, 95% CI, n, and Δ vs the baseline on the same turns (exact McNemar p).")
