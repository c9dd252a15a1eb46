"""Several studies on one trade-off plot and in one table (``sqlshift compare``): how gain and forgetting change
with the model (e.g. 0.5B against 1.5B), each study's points measured against its own baseline.

Reads only each study's ``summary.json`` (a run directory or the file itself), so a study run on another machine
or in another session compares as it was reported. The studies must share the trade-off's axes: the same
specialty and the same generality axis (a composite of the same benchmarks, or the same single benchmark);
otherwise the points would not mean the same thing and this refuses, naming the file.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlshift.errors import ConfigError
from sqlshift.report.frontier import axis_labels, find_baseline_point
from sqlshift.report.load import load_config, read_json
from sqlshift.report.plots import err, new_figure, save
from sqlshift.report.render import Section, Table, render_html, render_md
from sqlshift.report.stats import fmt_ci

COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive"]


@dataclass
class Compared:
    """One study: its label on the plot, where its summary came from, the summary itself."""

    label: str
    source: Path
    summary: dict[str, Any]


def summary_path(path: Path) -> Path:
    """A run directory's ``summary.json``, or the file given."""
    p = Path(path)
    found = p / "summary.json" if p.is_dir() else p
    if not found.is_file():
        raise ConfigError(f"{p} has no summary.json", "pass a run directory written by 'sqlshift run' (or "
                                                       "'sqlshift report DIR' first), or a summary.json file")
    return found


def default_label(found: Path) -> str:
    """The study's model, from the run directory's config.yaml when there is one, else the file's name."""
    if found.name == "summary.json" and (found.parent / "config.yaml").is_file():
        model = load_config(found.parent).get("model")
        if model:
            return str(model).rstrip("/").rsplit("/", 1)[-1]
    return found.parent.name if found.name == "summary.json" else found.name.removesuffix(".summary.json")


def load_compared(paths: list[Path], labels: list[str] | None = None) -> list[Compared]:
    """Each study's summary with its label; one-line errors for a missing file or axes that differ."""
    if labels and len(labels) != len(paths):
        raise ConfigError(f"{len(labels)} --label for {len(paths)} studies", "give one --label per study, in order")
    out = []
    for i, p in enumerate(paths):
        found = summary_path(p)
        summary = read_json(found, dict)
        if not summary.get("tradeoff", {}).get("points"):
            raise ConfigError(f"{found} has no trade-off points", "rebuild it with 'sqlshift report DIR'")
        out.append(Compared(labels[i] if labels else default_label(found), found, summary))
    check_axes(out)
    return out


def axes(summary: dict[str, Any]) -> tuple[Any, ...]:
    return (summary.get("specialty"), bool(summary.get("composite")), tuple(summary.get("generality") or ()))


def check_axes(studies: list[Compared]) -> None:
    """Every study's points on the same axes as the first's."""
    first = studies[0]
    for s in studies[1:]:
        if axes(s.summary) != axes(first.summary):
            raise ConfigError(f"{s.source} measures specialty/generality as {axes(s.summary)}, {first.source} as "
                              f"{axes(first.summary)}", "compare studies scored on the same benchmarks")


def final_points(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The baseline and each run's final point (checkpoints and λ points stay in each study's own report)."""
    return [p for p in summary["tradeoff"]["points"] if p["kind"] in ("baseline", "run")]


def gen_scale(summary: dict[str, Any]) -> float:
    """Generality in points: a composite is already a Δ in points, a single benchmark an accuracy in [0, 1]."""
    return 1.0 if summary.get("composite") else 100.0


def compare_rows(studies: list[Compared]) -> list[list[str]]:
    """Per study and point: specialty with CI, its gain over the study's baseline, generality with CI."""
    rows = []
    for s in studies:
        pts, scale = final_points(s.summary), gen_scale(s.summary)
        base = find_baseline_point(pts, s.summary["baseline"])
        for p in pts:
            gain = "" if base is None or p is base else f"{100 * (p['spec'] - base['spec']):+.1f}"
            gen = f"{p['gen']:+.1f}" if scale == 1.0 else f"{100 * p['gen']:.1f}"
            gen_ci = fmt_ci(p["gen_ci"], scale) if p["gen_ci"] else ""
            rows.append([s.label, p["key"], f"{100 * p['spec']:.1f}", fmt_ci(p["spec_ci"]), gain, gen, gen_ci])
    return rows


def compare_figure(studies: list[Compared]) -> Any:
    """One colour per study; its baseline a star, its runs dots, each joined to its baseline by a thin line."""
    fig = new_figure()
    ax = fig.add_subplot()
    composite, scale = bool(studies[0].summary.get("composite")), gen_scale(studies[0].summary)
    for i, s in enumerate(studies):
        colour = COLOURS[i % len(COLOURS)]
        pts = final_points(s.summary)
        base = find_baseline_point(pts, s.summary["baseline"])
        for p in pts:
            x, y = scale * p["gen"], 100 * p["spec"]
            xci = [scale * c for c in p["gen_ci"]] if p["gen_ci"] else None
            star = p is base
            ax.errorbar(x, y, xerr=err(x, xci), yerr=err(y, [100 * c for c in p["spec_ci"]]),
                        fmt="*" if star else "o", ms=12 if star else 6, color=colour, capsize=3, alpha=0.85)
            ax.annotate(p["key"], (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
            if base is not None and not star:
                ax.plot([scale * base["gen"], x], [100 * base["spec"], y], "-", color=colour, lw=0.8, alpha=0.5)
        ax.plot([], [], "o", color=colour, label=s.label)
    spec_l, gen_l = axis_labels(studies[0].summary)
    ax.set_xlabel(textwrap.fill(f"{gen_l} ({'pts vs own baseline' if composite else '%'})", 75))
    ax.set_ylabel(f"{spec_l} (%)")
    ax.set_title("Specialty vs generality per study (95% CI bars; ★ = each study's baseline)")
    ax.legend(fontsize=8, loc="best")
    return fig


def build_compare(paths: list[Path], out: Path, labels: list[str] | None = None) -> dict[str, Path]:
    """compare.md, compare.html and compare.png in ``out``: the studies' final points on one plot and one table."""
    from sqlshift.outputs import atomic_write_text

    studies = load_compared(paths, labels)
    out.mkdir(parents=True, exist_ok=True)
    plot = save(compare_figure(studies), out / "compare.png")
    composite = bool(studies[0].summary.get("composite"))
    spec_l, gen_l = axis_labels(studies[0].summary)
    table = Table("Final points", ["study", "point", f"{spec_l} %", "95% CI", "gain (pts)",
                                   f"{gen_l} ({'pts vs baseline' if composite else '%'})", "95% CI"],
                  compare_rows(studies), note="each study against its own baseline; sources: "
                  + "; ".join(f"{s.label} = {s.source}" for s in studies))
    section = Section("Trade-off across studies", tables=[table], plots=[plot])
    title = "sqlshift compare: " + " vs ".join(s.label for s in studies)
    return {"markdown": atomic_write_text(out / "compare.md", render_md(title, [section], out)),
            "html": atomic_write_text(out / "compare.html", render_html(title, [section])), "plot": plot}
