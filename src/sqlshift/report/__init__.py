"""Report of a run directory: ``report.md``, a self-contained ``report.html``, ``summary.json`` and PNG plots.

Everything is recomputed from the files the other stages wrote, reading every benchmark the same way (the
Benchmark contract), so a report can be rebuilt at any time and a new benchmark needs no report code. Every
accuracy carries n and a 95% interval and every comparison a paired test matched by item id.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlshift.outputs import atomic_write_text
from sqlshift.report.console import print_summary
from sqlshift.report.load import load_study
from sqlshift.report.plots import make_plots
from sqlshift.report.render import render_html, render_md
from sqlshift.report.sections import build_sections
from sqlshift.report.stats import ALPHA
from sqlshift.report.summary import build_summary, summary_for_json

__all__ = ["build_report", "print_summary"]


def build_report(run_dir: str | Path, max_drop: float | None = None, alpha: float = ALPHA) -> dict[str, Path]:
    """Write report.md, report.html, summary.json and plots/*.png into ``run_dir``; returns name -> path.

    ``max_drop``: generality points the budget pick may lose (default: the config's ``max_generality_drop``).
    """
    run_dir = Path(run_dir)
    study = load_study(run_dir, max_drop)
    summary = build_summary(study, alpha)
    plots = make_plots(run_dir / "plots", study, summary)
    sections = build_sections(study, summary, plots)
    title = f"sqlshift report: {run_dir.name}"
    out = {"report.md": run_dir / "report.md", "report.html": run_dir / "report.html",
           "summary.json": run_dir / "summary.json"}
    atomic_write_text(out["report.md"], render_md(title, sections, run_dir))
    atomic_write_text(out["report.html"], render_html(title, sections))
    atomic_write_text(out["summary.json"], json.dumps(summary_for_json(summary), indent=2, default=str) + "\n")
    out.update({f"plots/{p.name}": p for p in plots.values()})
    return out
