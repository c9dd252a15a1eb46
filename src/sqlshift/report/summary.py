"""summary.json: per model per benchmark accuracy with n, CI, Δ and the paired test vs the baseline; the composite
generality score; run-vs-run tests; the trade-off; the seed-to-seed noise band. Every table and plot is drawn
from this one structure (plus the per-item rows for kind sections), so they cannot disagree.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

from sqlshift.report.decoding import decoding_entry
from sqlshift.report.frontier import tradeoff
from sqlshift.report.load import BenchResult, Model, Study, diverged_runs
from sqlshift.report.multiturn import multiturn_summary
from sqlshift.report.robustness import robustness_pairwise, robustness_summary, variant_pairs
from sqlshift.report.same_items import same_items_summary
from sqlshift.report.stats import (ALPHA, BOOTSTRAP_REPS, BOOTSTRAP_SEED, SCORER_FAILURE_P, composite_delta,
                                   paired_diffs, paired_test, spread)
from sqlshift.report.words import CI_METHOD, one_answer


def is_scorer_failure(b: BenchResult) -> bool:
    """Significantly *below* chance: the scorer is broken; this is not forgetting."""
    p = b.metrics.get("below_chance_p")
    return p is not None and float(p) < SCORER_FAILURE_P


def bench_entry(model: Model, base: Model | None, folder: str, alpha: float) -> dict[str, Any]:
    """One benchmark of one model: the contract's numbers, Δ and paired test vs the baseline, validity flags; a
    voting benchmark adds ``decoding`` (greedy vs voted, paired)."""
    b = model.benches[folder]
    ref = base.benches.get(folder) if base is not None and base is not model else None
    voted = decoding_entry(b, alpha)
    return {"accuracy": b.accuracy, "n": b.n, "n_correct": b.n_correct, "ci95": b.ci95,
            "delta_points": 100.0 * (b.accuracy - ref.accuracy) if ref else None,
            "vs_baseline": paired_test(ref.outcomes(), b.outcomes(), alpha) if ref else None,
            "chance": b.metrics.get("chance"), "below_chance_p": b.metrics.get("below_chance_p"),
            "scorer_failure": is_scorer_failure(b), "one_answer": one_answer(b)} | (
                {"decoding": voted} if voted else {})


def model_composite(model: Model, base: Model | None, folders: list[str]) -> dict[str, Any] | None:
    """Mean Δ over the generality benchmarks with a paired bootstrap CI (None for the baseline itself)."""
    if base is None or base is model:
        return None
    shared = [f for f in folders if f in model.benches and f in base.benches]
    out = composite_delta([paired_diffs(base.benches[f].outcomes(), model.benches[f].outcomes()) for f in shared])
    return None if out is None else {**out, "benchmarks": shared, "complete": len(shared) == len(folders)}


def model_entry(model: Model, study: Study, alpha: float) -> dict[str, Any]:
    base = study.baseline
    group = next((g for g, members in study.replicas.items() if model.kind == "run" and model.run in members), None)
    return {"kind": model.kind, "run": model.run, "step": model.step, "lambda": model.lam, "replica_group": group,
            "backend": model.info.get("backend"),
            "benchmarks": {f: bench_entry(model, base, f, alpha) for f in study.folders() if f in model.benches},
            "composite": model_composite(model, base, study.generality) if study.composite else None}


def pairwise_tests(study: Study, alpha: float) -> dict[str, list[dict[str, Any]]]:
    """Exact McNemar between every two final runs, per benchmark, paired by item id."""
    runs = [m for m in study.models if m.kind == "run"]
    out: dict[str, list[dict[str, Any]]] = {}
    for folder in study.folders():
        for a, b in combinations(runs, 2):
            if folder in a.benches and folder in b.benches:
                t = paired_test(a.benches[folder].outcomes(), b.benches[folder].outcomes(), alpha)
                if t:
                    out.setdefault(folder, []).append({"a": a.key, "b": b.key, **t})
    return out


def final_model(models: dict[str, dict[str, Any]], run: str) -> dict[str, Any] | None:
    """The final (kind ``run``) model of a training run."""
    return next((m for m in models.values() if m["kind"] == "run" and m["run"] == run), None)


def axis_value(m: dict[str, Any], axis: str) -> tuple[float, float | None] | None:
    """(value in points, half-width of its paired CI vs the baseline) of one model on a benchmark or the composite."""
    if axis == "composite":
        c = m["composite"]
        return None if c is None else (c["delta_points"], (c["ci95"][1] - c["ci95"][0]) / 2)
    e = m["benchmarks"].get(axis)
    if e is None:
        return None
    t = e["vs_baseline"]
    return 100.0 * e["accuracy"], (t["diff_ci95"][1] - t["diff_ci95"][0]) / 2 if t else None


def noise_band(study: Study, models: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Seed-to-seed spread of each benchmark (and the composite) over every replica group.

    ``band_points`` is the largest range over groups: a margin smaller than that could reverse on a re-run.
    """
    by_bench: dict[str, Any] = {}
    for axis in [*study.folders(), *(["composite"] if study.composite else [])]:
        groups = {}
        for orig, members in study.replicas.items():
            got = [v for r in members if (m := final_model(models, r)) and (v := axis_value(m, axis))]
            halves = [h for _, h in got if h is not None]
            if len(got) >= 2:
                groups[orig] = {**spread([v for v, _ in got]),
                                "paired_ci_halfwidth": sum(halves) / len(halves) if halves else None}
        if groups:
            by_bench[axis] = {"groups": groups, "band_points": max(g["range"] for g in groups.values())}
    return {"groups": study.replicas, "by_benchmark": by_bench}


def unique_labels(benchmarks: dict[str, dict[str, Any]]) -> None:
    """Labels shared by several folders get the folder name appended, so no two tables or columns share one."""
    seen: dict[str, int] = {}
    for b in benchmarks.values():
        seen[b["label"]] = seen.get(b["label"], 0) + 1
    for f, b in benchmarks.items():
        if seen[b["label"]] > 1:
            b["label"] = f"{b['label']} ({f})"


def build_summary(study: Study, alpha: float = ALPHA) -> dict[str, Any]:
    """The machine-readable result (see docs/DESIGN.md for the schema); ``models`` keyed here, a list on disk."""
    base = study.baseline
    benchmarks = {}
    for f in study.folders():
        meta = study.meta(f)
        assert meta is not None
        benchmarks[f] = {"benchmark": meta.benchmark, "label": meta.label, "axis": meta.axis, "kind": meta.kind}
    unique_labels(benchmarks)
    summary: dict[str, Any] = {
        "run_dir": str(study.run_dir), "alpha": alpha, "baseline": base.key if base else None,
        "specialty": study.specialty, "generality": study.generality, "composite": study.composite,
        "methods": {"paired_test": "exact McNemar on items matched by id", "paired_diff_ci": CI_METHOD,
                    "composite_ci": f"paired bootstrap over items, {BOOTSTRAP_REPS} reps, seed {BOOTSTRAP_SEED}",
                    "accuracy_ci": "Wilson"},
        "benchmarks": benchmarks,
        "models": {m.key: model_entry(m, study, alpha) for m in study.models}}
    summary["pairwise"] = pairwise_tests(study, alpha)
    if same := same_items_summary(study, alpha):  # absent when the specialty's questions were scored one way
        summary["same_questions"] = same
    variants = variant_pairs(study)
    if robust := robustness_summary(study, variants, alpha):  # absent without variant splits: as before
        summary["robustness"] = robust
        summary["robustness_pairwise"] = robustness_pairwise(study, variants, alpha)
    if multi := multiturn_summary(study, alpha):  # absent without SParC / CoSQL results
        summary["multiturn"] = multi
    summary["noise"] = noise_band(study, summary["models"])
    summary["tradeoff"], summary["budget"] = tradeoff(summary, study.max_drop)
    summary["diverged"] = diverged_runs(study.histories)
    summary["failures"] = study.failures
    summary["missing_benchmarks"] = study.missing
    summary["backends"] = sorted({m["backend"] for m in summary["models"].values() if m.get("backend")})
    return summary


def summary_for_json(summary: dict[str, Any]) -> dict[str, Any]:
    """summary.json lists models in report order, each carrying its ``key``."""
    return {**summary, "models": [{"key": k, **m} for k, m in summary["models"].items()]}
