"""The same questions under other settings: each model's results on the specialty's benchmark and split but with
another prompt or decoding (sample rows in the schema prompt, a vote over samples, ...), paired per question with
that model's specialty result.

The specialty tables compare models under one setting; this compares settings under one model, on the same items
with the same tests as every other comparison in the report (exact McNemar, Newcombe's CI of the paired difference).
"""

from __future__ import annotations

from typing import Any

from sqlshift.report.load import Study
from sqlshift.report.render import Table
from sqlshift.report.stats import acc_ci, fmt_ci, paired_test, pts, pval
from sqlshift.report.words import CI_METHOD, compare_words
from sqlshift.stats import accuracy_summary


def same_split_folders(study: Study) -> list[str]:
    """Folders of the specialty's registered benchmark and split other than the specialty itself (its settings
    differ: the study names each such entry)."""
    spec = study.meta(study.specialty) if study.specialty else None
    if spec is None:
        return []
    split = spec.metrics.get("split")
    return [f for f in study.folders() if f != study.specialty and (m := study.meta(f)) is not None
            and m.benchmark == spec.benchmark and m.metrics.get("split") == split]


def same_items_summary(study: Study, alpha: float) -> dict[str, dict[str, Any]]:
    """folder -> model key -> both accuracies on the shared items and the paired test (A: the specialty result,
    B: this folder's); only models with both results. Empty when the study scored its specialty one way."""
    out: dict[str, dict[str, Any]] = {}
    spec = study.specialty
    for folder in same_split_folders(study):
        for m in study.models:
            if spec not in m.benches or folder not in m.benches:
                continue
            a, b = m.benches[spec].outcomes(), m.benches[folder].outcomes()
            t = paired_test(a, b, alpha)
            if t is None:
                continue
            common = sorted(a.keys() & b.keys())
            out.setdefault(folder, {})[m.key] = {
                "specialty": accuracy_summary([a[i] for i in common]),
                "setting": accuracy_summary([b[i] for i in common]), "vs_specialty": t}
    return out


def same_items_table(summary: dict[str, Any]) -> Table | None:
    """One row per model × other setting of the specialty's questions, paired with the specialty result."""
    spec = summary["specialty"]
    found = summary.get("same_questions") or {}
    rows = []
    for folder, per_model in found.items():
        for key, e in per_model.items():
            t, a, b = e["vs_specialty"], e["specialty"], e["setting"]
            rows.append([key, summary["benchmarks"][folder]["label"], str(t["n_paired"]),
                         acc_ci(a["accuracy"], a["ci95"]), acc_ci(b["accuracy"], b["ci95"]), pts(t["diff_points"]),
                         fmt_ci(t["diff_ci95"], 1.0), f"{t['b_only']} / {t['a_only']}", pval(t["p_value"]),
                         compare_words(t)])
    if not rows:
        return None
    name = summary["benchmarks"][spec]["label"]
    cols = ["Model", "Setting", "n paired", f"{name} [95% CI]", "this setting [95% CI]", "Δ (pts)", "95% CI of Δ",
            "only this setting right / only the specialty's right", "McNemar p", "vs the specialty's setting"]
    return Table("Same questions, other settings", cols, rows,
                 note=f"Each model against its own {name} result on the same questions, paired by item id; Δ's 95% "
                      f"CI is {CI_METHOD}; p is the exact McNemar test. A voted setting is paired here with the "
                      "separate greedy step; the decoding table pairs it with the greedy answers of its own step.")
