"""The table printed at the end of ``sqlshift run``: specialty and each generality benchmark per model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlshift.report.stats import acc_ci, pct, pts


WIDE = 2  # more generality benchmarks than this: one accuracy (Δ) cell each plus the composite, so it fits


def other_specialties(summary: dict[str, Any]) -> list[str]:
    """The specialty-axis benchmarks besides the study's specialty (Spider's variants, SParC, CoSQL, a voted
    Spider): one ``accuracy (Δ)`` column each, so none is scored without being shown."""
    spec = summary.get("specialty")
    return [f for f, b in summary.get("benchmarks", {}).items() if b.get("axis") == "specialty" and f != spec]


def summary_columns(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(columns, rows): model | <specialty> | n | [other specialty benchmarks: accuracy (Δ)] | per generality
    benchmark: <label> | n | Δ<label> vs base.

    With a larger suite each generality benchmark gets one ``accuracy (Δ)`` cell, plus the mean and composite Δ."""
    labels = {f: b["label"] for f, b in summary.get("benchmarks", {}).items()}
    spec, gens = summary.get("specialty"), summary.get("generality") or []
    if len(gens) > WIDE:
        return compact_columns(summary, labels, spec, gens)
    others = other_specialties(summary)
    cols = lead_columns(labels, spec, others)
    for g in gens:
        cols += [labels.get(g, g), "n", f"Δ{labels.get(g, g)} vs base"]
    rows = []
    for m in summary.get("models", []):
        b = m.get("benchmarks", {})
        row = lead_cells(m, spec, others)
        for g in gens:
            e = b.get(g) or {}
            d = e.get("delta_points")
            row += [acc_ci(e.get("accuracy"), e.get("ci95")) if e else "", str(e.get("n", "")),
                    f"{pts(d)} pts" if d is not None else ""]
        rows.append(row)
    return cols, rows


def lead_columns(labels: dict[str, str], spec: str | None, others: list[str]) -> list[str]:
    """model | <specialty> | n | each other specialty benchmark: the columns both layouts start with."""
    return ["model"] + ([labels.get(spec, spec), "n"] if spec else []) + [labels.get(f, f) for f in others]


def lead_cells(model: dict[str, Any], spec: str | None, others: list[str]) -> list[str]:
    """The cells under :func:`lead_columns` for one model."""
    b = model.get("benchmarks", {})
    return [model["key"]] + spec_cells(b, spec) + [score_delta(b.get(f) or {}) for f in others]


def spec_cells(benches: dict[str, Any], spec: str | None) -> list[str]:
    """The specialty's ``accuracy [CI]`` and ``n`` cells of one model (none without a specialty)."""
    if not spec:
        return []
    e = benches.get(spec) or {}
    return [acc_ci(e.get("accuracy"), e.get("ci95")) if e else "", str(e.get("n", ""))]


def compact_columns(summary: dict[str, Any], labels: dict[str, str], spec: str | None,
                    gens: list[str]) -> tuple[list[str], list[list[str]]]:
    """model | <specialty> | n | per generality benchmark: accuracy (Δ) | generality mean | Δ mean [95% CI].

    Every cell carries the model's own score, so a baseline-only study shows its numbers too; the Δ in
    parentheses and the composite's CI appear once there is something to compare with."""
    others = other_specialties(summary)
    cols = lead_columns(labels, spec, others) + [labels.get(g, g) for g in gens]
    cols += ["generality (mean)", "Δ generality [95% CI]"]
    rows = []
    for m in summary.get("models", []):
        b = m.get("benchmarks", {})
        row = lead_cells(m, spec, others) + [score_delta(b.get(g) or {}) for g in gens]
        accs = [b[g]["accuracy"] for g in gens if (b.get(g) or {}).get("accuracy") is not None]
        row.append(pct(sum(accs) / len(accs)) + ("" if len(accs) == len(gens) else f" (of {len(accs)})")
                   if accs else "")
        c = m.get("composite") or {}
        ci = c.get("ci95")
        row.append(f"{pts(c['delta_points'])} [{pts(ci[0])}, {pts(ci[1])}]" if c.get("delta_points") is not None
                   and ci else "")
        rows.append(row)
    return cols, rows


def score_delta(e: dict[str, Any]) -> str:
    """``31.2% (+0.4)``: a benchmark's accuracy and, when compared with the baseline, its Δ in points."""
    if e.get("accuracy") is None:
        return ""
    d = e.get("delta_points")
    return pct(e["accuracy"]) + (f" ({pts(d)})" if d is not None and e.get("vs_baseline") else "")


def print_summary(run_dir: str | Path) -> None:
    """Print the rich summary table from ``summary.json`` and where the full report is."""
    from rich.console import Console
    from rich.table import Table

    run_dir = Path(run_dir)
    path = run_dir / "summary.json"
    if not path.is_file():
        return
    cols, rows = summary_columns(json.loads(path.read_text(encoding="utf-8")))
    table = Table(title=f"sqlshift study: {run_dir}")
    for c in cols:
        table.add_column(c)
    for r in rows:
        table.add_row(*r)
    Console(width=max(100, Console().width)).print(table)
    print(f"report: {run_dir / 'report.html'}")
