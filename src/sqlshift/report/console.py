"""The table printed at the end of ``sqlshift run``: specialty and each generality benchmark per model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlshift.report.stats import acc_ci, pts


WIDE = 2  # more generality benchmarks than this: one Δ column each plus the composite, so the table fits


def summary_columns(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(columns, rows): model | <specialty> | n | per generality benchmark: <label> | n | Δ<label> vs base.

    With a larger suite each generality benchmark gets only its Δ column, and the composite Δ is added."""
    labels = {f: b["label"] for f, b in summary.get("benchmarks", {}).items()}
    spec, gens = summary.get("specialty"), summary.get("generality") or []
    if len(gens) > WIDE:
        return compact_columns(summary, labels, spec, gens)
    cols = ["model"] + ([labels.get(spec, spec), "n"] if spec else [])
    for g in gens:
        cols += [labels.get(g, g), "n", f"Δ{labels.get(g, g)} vs base"]
    rows = []
    for m in summary.get("models", []):
        b = m.get("benchmarks", {})
        row = [m["key"]] + spec_cells(b, spec)
        for g in gens:
            e = b.get(g) or {}
            d = e.get("delta_points")
            row += [acc_ci(e.get("accuracy"), e.get("ci95")) if e else "", str(e.get("n", "")),
                    f"{pts(d)} pts" if d is not None else ""]
        rows.append(row)
    return cols, rows


def spec_cells(benches: dict[str, Any], spec: str | None) -> list[str]:
    """The specialty's ``accuracy [CI]`` and ``n`` cells of one model (none without a specialty)."""
    if not spec:
        return []
    e = benches.get(spec) or {}
    return [acc_ci(e.get("accuracy"), e.get("ci95")) if e else "", str(e.get("n", ""))]


def compact_columns(summary: dict[str, Any], labels: dict[str, str], spec: str | None,
                    gens: list[str]) -> tuple[list[str], list[list[str]]]:
    """model | <specialty> | n | Δ per generality benchmark (points) | composite Δ [95% CI]."""
    cols = ["model"] + ([labels.get(spec, spec), "n"] if spec else []) + [f"Δ{labels.get(g, g)}" for g in gens]
    cols.append("Δ generality (mean)")
    rows = []
    for m in summary.get("models", []):
        b = m.get("benchmarks", {})
        row = [m["key"]] + spec_cells(b, spec)
        row += [pts(b.get(g, {}).get("delta_points")) if b.get(g, {}).get("delta_points") is not None else ""
                for g in gens]
        c = m.get("composite") or {}
        ci = c.get("ci95")
        row.append(f"{pts(c['delta_points'])} [{pts(ci[0])}, {pts(ci[1])}]" if c.get("delta_points") is not None
                   and ci else "")
        rows.append(row)
    return cols, rows


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
