"""PNG plots (matplotlib on the Agg canvas, no pyplot state): trade-off, learning/forgetting curves, hardness,
error types, training loss. A plot without data is not drawn; bars carry their values so a real 0% never reads
as a missing bar.
"""

from __future__ import annotations

import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlshift.sql.execution import ERROR_TYPES
from sqlshift.sql.hardness import LEVELS
from sqlshift.report.frontier import axis_labels, checkpoint_paths, interpolation_paths
from sqlshift.report.kinds import by_hardness, text2sql_folder
from sqlshift.report.load import Study

MAX_CURVE_PANELS = 4


def new_figure(w: float = 7.0, h: float = 4.5) -> Any:
    """A figure on the Agg canvas, without pyplot (no global state, no display needed)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=100, layout="constrained")


def save(fig: Any, path: Path) -> Path:
    """PNG bytes rendered in memory, then written atomically (never through a link planted in plots/)."""
    import io

    from sqlshift.outputs import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write_bytes(path, buf.getvalue())


def err(v: float, c: list[float] | None) -> list[list[float]]:
    """Asymmetric error bar from a CI (same units as v)."""
    return [[0.0], [0.0]] if c is None else [[max(0.0, v - c[0])], [max(0.0, c[1] - v)]]


def plot_tradeoff(summary: dict[str, Any], path: Path) -> Path | None:
    fig = tradeoff_figure(summary)
    return None if fig is None else save(fig, path)


def tradeoff_figure(summary: dict[str, Any]) -> Any:
    """Specialty (y) vs generality (x) with CI bars; frontier joined only with ≥ 2 points; λ curves dotted."""
    t = summary["tradeoff"]
    if not t["points"]:
        return None
    fig = new_figure()
    ax = fig.add_subplot()
    front = set(t["frontier"]) if len(t["frontier"]) >= 2 else set()
    # a checkpoint off the frontier is a step on its run's path (drawn below), not a labelled model of its own
    paths = checkpoint_paths(t["points"])
    quiet = {p["key"] for path in paths.values() for p in path[:-1] if p["key"] not in front
             and p["key"] != summary["budget"]["pick"]}
    draw_checkpoint_paths(ax, paths, quiet)
    noisy = False
    for i, p in enumerate(sorted((p for p in t["points"] if p["key"] not in quiet), key=lambda p: p["spec"])):
        colour = "tab:red" if p["key"] in front else ("tab:purple" if p.get("collapsed") else "tab:gray")
        marker = "*" if p["key"] == summary["baseline"] else ("X" if p.get("collapsed") else "o")
        y, ci = 100 * p["spec"], [100 * c for c in p["spec_ci"]]
        ax.errorbar(p["gen"], y, xerr=err(p["gen"], p["gen_ci"]), yerr=err(y, ci), fmt=marker, color=colour,
                    ms={"*": 12, "X": 10}.get(marker, 6), capsize=3, alpha=0.85)
        mark = "†" if p.get("within_noise") and p["key"] in front else ""
        noisy = noisy or bool(mark)
        # neighbours in EX alternate above and below their point, so close points keep readable labels
        ax.annotate(p["key"] + mark, (p["gen"], y), textcoords="offset points", xytext=(5, 5 if i % 2 else -11),
                    fontsize=8)
    if noisy:
        ax.plot([], [], " ", label="† frontier margin within training noise")
    if any(p.get("collapsed") for p in t["points"]):
        ax.plot([], [], "X", color="tab:purple", label="collapsed onto one answer (off the frontier)")
    draw_noise_bands(ax, summary)
    for run, pts_ in interpolation_paths(t["points"], summary["baseline"]).items():
        ax.plot([p["gen"] for p in pts_], [100 * p["spec"] for p in pts_], ":", color="tab:blue", lw=1,
                label=f"{run}: LoRA scale λ 0 → 1")
    if front:
        fp = sorted((p for p in t["points"] if p["key"] in front), key=lambda p: p["gen"])
        ax.plot([p["gen"] for p in fp], [100 * p["spec"] for p in fp], "-", color="tab:red", lw=1.5,
                label="Pareto frontier")
    for p in t["points"]:
        if p["key"] == summary["budget"]["pick"]:
            ax.scatter([p["gen"]], [100 * p["spec"]], s=250, facecolors="none", edgecolors="tab:green", lw=2,
                       label=f"pick (drop ≤ {summary['budget']['max_generality_drop_points']:g} pts)")
    spec_l, gen_l = axis_labels(summary)
    ax.set_xlabel(textwrap.fill(f"{gen_l} ({'pts vs baseline' if summary['composite'] else '%'})", 75))
    ax.set_ylabel(f"{spec_l} (%)")
    ax.set_title("Specialty vs generality (95% CI bars; ★ = baseline)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
    return fig


def draw_checkpoint_paths(ax: Any, paths: dict[str, list[dict[str, Any]]], quiet: set[str]) -> None:
    """Each run's checkpoints joined in step order to its final point, the first one marked with its step: with
    a label and CI bars each, a run's checkpoints would bury the models the plot compares."""
    for n, (run, path) in enumerate(paths.items()):
        colour = f"C{n % 10}"
        xs, ys = [p["gen"] for p in path], [100 * p["spec"] for p in path]
        ax.plot(xs, ys, "--", color=colour, lw=1, alpha=0.7,
                label=f"{run}: checkpoints, step {path[0]['step']} → {path[-1].get('step') or 'final'}")
        small = [p for p in path if p["key"] in quiet]
        ax.scatter([p["gen"] for p in small], [100 * p["spec"] for p in small], s=12, color=colour, zorder=3)
        if path[0]["key"] in quiet:
            ax.annotate(f"step {path[0]['step']}", (xs[0], ys[0]), textcoords="offset points", xytext=(4, -10),
                        fontsize=7, color=colour)


def draw_noise_bands(ax: Any, summary: dict[str, Any]) -> None:
    """Each replica group's seed-to-seed band: the box its runs span on both axes. The CI bars show item noise
    only; a gap between configurations inside this box may be training noise."""
    from matplotlib.patches import Rectangle

    pts = {p["key"]: p for p in summary["tradeoff"]["points"]}
    for group, keys in sorted((summary.get("noise") or {}).get("groups", {}).items()):
        ps = [pts[k] for k in keys if k in pts]
        if len(ps) < 2:
            continue
        xs, ys = [p["gen"] for p in ps], [100 * p["spec"] for p in ps]
        ax.add_patch(Rectangle((min(xs), min(ys)), max(xs) - min(xs), max(ys) - min(ys), facecolor="tab:orange",
                               edgecolor="tab:orange", alpha=0.2, lw=1,
                               label=f"{group}: seed-to-seed band ({len(ps)} seeds)"))


def curve_panels(summary: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(title, y label, value of a model or None) per panel: the specialty, the composite generality Δ when the
    study has one (0 for the baseline, by definition), then generality benchmarks, at most MAX_CURVE_PANELS (when
    not all fit, those with the largest drops, titled so)."""
    def acc(f: str) -> Any:
        return lambda m: 100 * m["benchmarks"][f]["accuracy"] if f in m["benchmarks"] else None

    def label(f: str) -> str:
        return f"{summary['benchmarks'][f]['label']} (%)"

    panels = [("Specialty", label(summary["specialty"]), acc(summary["specialty"]))] if summary["specialty"] else []
    if summary.get("composite"):
        panels.append(("Generality (composite)", "composite generality Δ vs baseline (pts)",
                       lambda m: 0.0 if m["kind"] == "baseline" else (m.get("composite") or {}).get("delta_points")))
    gen, room = [f for f in summary["generality"] if f], MAX_CURVE_PANELS - len(panels)
    title = "Generality" if len(gen) <= room else "Generality (largest drops)"
    panels += [(title, label(f), acc(f)) for f in largest_drops(summary, gen, room)]
    return panels


def largest_drops(summary: dict[str, Any], gen: list[str], k: int) -> list[str]:
    """The k benchmarks of ``gen`` that fell furthest below the baseline at any point drawn on the curves, in the
    study's order: with more benchmarks than panels, the ones that show forgetting (e.g. GSM8K after a full
    fine-tune) rather than the first ones listed."""
    points = [m for m in summary["models"].values() if m["kind"] in ("checkpoint", "run") and m["step"] is not None]

    def drop(f: str) -> float:
        deltas = [(m["benchmarks"].get(f) or {}).get("delta_points") for m in points]
        return min([d for d in deltas if d is not None], default=0.0)

    keep = set(sorted(gen, key=drop)[:max(k, 0)])  # a stable sort: ties keep the study's order
    return [f for f in gen if f in keep]


def plot_curves(summary: dict[str, Any], path: Path) -> Path | None:
    """Specialty, composite generality and each generality benchmark over training steps per run, baseline
    dashed."""
    runs: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for m in summary["models"].values():
        if m["kind"] in ("checkpoint", "run") and m["step"] is not None:
            runs[m["run"] or "?"].append((m["step"], m))
    if not any(len(v) > 1 for v in runs.values()):
        return None
    panels = curve_panels(summary)
    fig = new_figure(4.5 * len(panels), 4)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    base = summary["models"].get(summary["baseline"] or "", {})
    for ax, (title, ylabel, value) in zip(axes, panels):
        for run, seq in sorted(runs.items()):
            xy = sorted((s, v) for s, m in seq if (v := value(m)) is not None)
            if xy:
                ax.plot(*zip(*xy), "o-", label=run)
        b = value(base) if base else None
        if b is not None:
            ax.axhline(b, ls="--", color="k", lw=1, label="baseline")
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return save(fig, path)


def plot_hardness(study: Study, summary: dict[str, Any], path: Path) -> Path | None:
    fig = hardness_figure(study, summary)
    return None if fig is None else save(fig, path)


def hardness_figure(study: Study, summary: dict[str, Any]) -> Any:
    """Accuracy by hardness, grouped bars per model, each bar labelled; levels a model has no items in are left
    out rather than drawn as 0."""
    folder = text2sql_folder(study)
    if folder is None:
        return None
    data = {m.key: by_hardness(m.benches[folder]) for m in study.models if folder in m.benches}
    levels = [h for h in LEVELS if any(d.get(h, {}).get("n") for d in data.values())]
    if not levels:
        return None
    fig = new_figure(min(12.0, max(7.0, 0.45 * len(levels) * len(data))), 4.5)
    ax = fig.add_subplot()
    width = 0.8 / len(data)
    for i, (key, d) in enumerate(data.items()):
        xs = [j + i * width for j, h in enumerate(levels) if d.get(h, {}).get("n")]
        ys = [100 * float(d[h]["accuracy"]) for h in levels if d.get(h, {}).get("n")]
        if xs:
            bars = ax.bar(xs, ys, width, label=key)
            ax.bar_label(bars, labels=[f"{y:.0f}" for y in ys], fontsize=6, padding=1)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(levels))], levels)
    ax.set_ylabel(f"{summary['benchmarks'][folder]['label']} (%)")
    ax.set_title("Accuracy by hardness (bar labels in %)")
    ax.legend(fontsize=7, ncols=2)
    return fig


def plot_errors(study: Study, summary: dict[str, Any], path: Path) -> Path | None:
    """Failed items by error type, stacked per model; only types that occur are drawn."""
    folder = text2sql_folder(study)
    if folder is None:
        return None
    counts = {m.key: m.benches[folder].metrics.get("by_error_type") or {} for m in study.models if folder in m.benches}
    skip = {"correct", "gold_error"}
    types = [t for t in ERROR_TYPES if t not in skip and any(c.get(t) for c in counts.values())]
    types += sorted({t for c in counts.values() for t in c if c.get(t)} - {*ERROR_TYPES, *skip})
    if not types:
        return None
    fig = new_figure(max(7.0, 0.8 * len(counts)), 4.5)
    ax = fig.add_subplot()
    keys = list(counts)
    bottom = [0] * len(keys)
    for t in types:
        vals = [int(counts[k].get(t, 0)) for k in keys]
        ax.bar(keys, vals, bottom=bottom, label=t)
        bottom = [b + v for b, v in zip(bottom, vals)]
    for x, total in enumerate(bottom):
        ax.annotate(str(total), (x, total), ha="center", va="bottom", fontsize=7)
    ax.set_ylabel("failed items")
    ax.set_title(f"Error types ({summary['benchmarks'][folder]['label']}; totals above bars)")
    ax.tick_params(axis="x", labelrotation=30)
    ax.legend(fontsize=7)
    return save(fig, path)


def plot_loss(histories: dict[str, list[dict[str, Any]]], path: Path) -> Path | None:
    """Training (and eval) loss per run."""
    if not any(any("loss" in r or "eval_loss" in r for r in h) for h in histories.values()):
        return None
    fig = new_figure()
    ax = fig.add_subplot()
    for run, hist in histories.items():
        tr = [(r["step"], r["loss"]) for r in hist if "loss" in r and "step" in r]
        ev = [(r["step"], r["eval_loss"]) for r in hist if "eval_loss" in r and "step" in r]
        if tr:
            ax.plot(*zip(*tr), "-", label=f"{run} train")
        if ev:
            ax.plot(*zip(*ev), "o--", label=f"{run} eval")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")
    ax.set_title("Training loss")
    ax.legend(fontsize=8)
    return save(fig, path)


def make_plots(plot_dir: Path, study: Study, summary: dict[str, Any]) -> dict[str, Path]:
    """All plots that have data, by name; stale PNGs of an earlier report are removed first."""
    plot_dir.mkdir(parents=True, exist_ok=True)
    for old in plot_dir.glob("*.png"):
        old.unlink()
    made = [plot_tradeoff(summary, plot_dir / "tradeoff.png"), plot_curves(summary, plot_dir / "curves.png"),
            plot_hardness(study, summary, plot_dir / "hardness.png"),
            plot_errors(study, summary, plot_dir / "errors.png"), plot_loss(study.histories, plot_dir / "loss.png")]
    return {p.stem: p for p in made if p is not None}
