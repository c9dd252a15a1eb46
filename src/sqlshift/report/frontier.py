"""The trade-off: one point per model (specialty accuracy up, generality across), the Pareto frontier, the pick
under a generality budget, and which frontier margins are smaller than the seed-to-seed noise.

The generality axis is the composite Δ (mean points vs baseline over the listed benchmarks) when the config
lists several, else the single benchmark's accuracy; either way ``gen`` is in points, so a drop is
``base.gen − p.gen``.
"""

from __future__ import annotations

from typing import Any

from sqlshift.report.render import Table
from sqlshift.report.stats import DASH, fmt_ci, pct, pts
from sqlshift.report.tables import base_entry
from sqlshift.report.words import collapsed as entry_collapsed, one_answer_flag

EPS = 1e-9


def dominates(p: dict[str, Any], q: dict[str, Any]) -> bool:
    """p is at least as good as q on both axes and strictly better on one (point estimates)."""
    return p["spec"] >= q["spec"] and p["gen"] >= q["gen"] and (p["spec"] > q["spec"] or p["gen"] > q["gen"])


def pareto_frontier(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Points no other point dominates, by specialty ascending (identical points all stay)."""
    front = [q for q in points if not any(dominates(p, q) for p in points)]
    return sorted(front, key=lambda p: (p["spec"], -p["gen"]))


def find_baseline_point(points: list[dict[str, Any]], baseline: str | None = None) -> dict[str, Any] | None:
    """The baseline point: by key when given, else the one of kind ``baseline``."""
    for p in points:
        if (baseline is not None and p.get("key") == baseline) or (baseline is None and p.get("kind") == "baseline"):
            return p
    return None


def pick_under_budget(points: list[dict[str, Any]], max_drop_points: float,
                      baseline: str | None = None) -> dict[str, Any] | None:
    """The highest specialty among points losing at most ``max_drop_points`` of generality vs the baseline.

    Ties go to the higher generality; the baseline (drop 0) is eligible, so "keep the baseline" is an answer.
    """
    base = find_baseline_point(points, baseline)
    if base is None:
        return None
    ok = [p for p in points if base["gen"] - p["gen"] <= max_drop_points + EPS]
    return max(ok, key=lambda p: (p["spec"], p["gen"])) if ok else None


def collapsed_on(m: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    """Generality benchmarks on which this model gives one answer and the baseline does not: a collapse that
    fine-tuning caused. Its accuracy there says nothing about knowledge, but losing the ability to answer is
    forgetting, so the point stays on the plane (its composite counts that benchmark at the habit's chance level);
    it is kept off the frontier and out of the pick. When the baseline gives one answer too, the benchmark says
    nothing about any model and the point is left out (:func:`gen_value`)."""
    return [f for f in summary["generality"]
            if m["kind"] != "baseline" and (e := m["benchmarks"].get(f)) and entry_collapsed(e, base_entry(summary, f))]


def collapse_words(m: dict[str, Any], summary: dict[str, Any], collapsed: list[str]) -> list[str]:
    """The benchmarks of :func:`collapsed_on` in words: ``MMLU: answers 'C' to 97%: ...`` each."""
    return [f"{summary['benchmarks'].get(f, {}).get('label', f)}: "
            f"{one_answer_flag(m['benchmarks'][f]['one_answer'], collapse=True)}"
            for f in collapsed]


def gen_value(m: dict[str, Any], summary: dict[str, Any], collapsed: list[str]
              ) -> tuple[float, list[float] | None] | str:
    """(generality in points, its CI) of one model, or why it has none (``collapsed``: :func:`collapsed_on`)."""
    gens = summary["generality"]
    if not gens:
        return "no generality benchmark"
    for f in gens:
        e = m["benchmarks"].get(f)
        label = summary["benchmarks"].get(f, {}).get("label", f)
        if e is None:
            return f"no {label}"
        if e["scorer_failure"]:
            return f"{label} scorer failure (below chance)"
        if e["one_answer"] and f not in collapsed:
            return f"{label}: {one_answer_flag(e['one_answer'])}"
    if not summary["composite"]:
        e = m["benchmarks"][gens[0]]
        return 100.0 * e["accuracy"], [100.0 * c for c in e["ci95"]]
    if m["kind"] == "baseline":
        return 0.0, None
    c = m["composite"]
    if c is None or not c["complete"]:
        return "composite not computable (baseline lacks a generality benchmark)"
    return c["delta_points"], c["ci95"]


def within_noise(p: dict[str, Any], base: dict[str, Any] | None, summary: dict[str, Any]) -> list[str]:
    """Axes on which p's margin over the baseline is no larger than the seed-to-seed range."""
    bands = summary["noise"]["by_benchmark"]
    if base is None or p is base:
        return []
    gen_axis = "composite" if summary["composite"] else (summary["generality"] or [None])[0]
    out = []
    for axis, key, margin in (("specialty", summary["specialty"], 100.0 * (p["spec"] - base["spec"])),
                              ("generality", gen_axis, p["gen"] - base["gen"])):
        band = bands.get(key or "", {}).get("band_points")
        if band is not None and abs(margin) <= band + EPS:
            out.append(axis)
    return out


def tradeoff(summary: dict[str, Any], max_drop: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """(summary["tradeoff"], summary["budget"]): points, frontier, excluded models, the budget pick."""
    spec = summary["specialty"]
    points, excluded = [], {}
    for key, m in summary["models"].items():
        e = m["benchmarks"].get(spec) if spec else None
        collapsed = collapsed_on(m, summary)
        g = gen_value(m, summary, collapsed) if e is not None else f"no {spec or 'specialty benchmark'}"
        if isinstance(g, str):
            excluded[key] = g
            continue
        points.append({"key": key, "kind": m["kind"], "run": m["run"], "step": m["step"], "lambda": m["lambda"],
                       "spec": e["accuracy"], "spec_ci": e["ci95"], "gen": g[0], "gen_ci": g[1],
                       "collapsed": collapse_words(m, summary, collapsed)})
    base = find_baseline_point(points, summary["baseline"])
    for p in points:
        p["within_noise"] = within_noise(p, base, summary)
    sound = [p for p in points if not p["collapsed"]]
    front = pareto_frontier(sound)
    pick = pick_under_budget(sound, max_drop, summary["baseline"]) if summary["baseline"] else None
    axis = "composite" if summary["composite"] else (summary["generality"] or [None])[0]
    return ({"specialty": spec, "generality_axis": axis, "points": points, "excluded": excluded,
             "frontier": [p["key"] for p in front]},
            {"max_generality_drop_points": max_drop, "pick": pick["key"] if pick else None})


def run_paths(points: list[dict[str, Any]], kind: str, order: str, baseline: str | None = None
              ) -> dict[str, list[dict[str, Any]]]:
    """Per run with points of ``kind``: the baseline (if given and present), those points ordered by ``order``,
    then the run itself — one curve per run on the trade-off plane."""
    by_key = {p["key"]: p for p in points}
    paths: dict[str, list[dict[str, Any]]] = {}
    for p in points:
        if p["kind"] == kind and p["run"] in by_key:
            paths.setdefault(p["run"], []).append(p)
    start = [by_key[baseline]] if baseline in by_key else []
    return {run: start + sorted(pts_, key=lambda p: p[order]) + [by_key[run]] for run, pts_ in paths.items()}


def interpolation_paths(points: list[dict[str, Any]], baseline: str | None) -> dict[str, list[dict[str, Any]]]:
    """Per run with λ points: baseline (λ=0), its λ points in order, the run itself (λ=1) — one WiSE-FT curve."""
    return run_paths(points, "interpolation", "lambda", baseline)


def checkpoint_paths(points: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per run with checkpoint points: its checkpoints by step, then the run itself (its final step) — the path
    one training took across the trade-off plane."""
    return run_paths(points, "checkpoint", "step")


def axis_labels(summary: dict[str, Any]) -> tuple[str, str]:
    """(specialty label, generality axis label) for text and plots."""
    labels = {f: b["label"] for f, b in summary["benchmarks"].items()}
    spec = labels.get(summary["specialty"] or "", "specialty")
    if summary["composite"]:
        return spec, "generality (mean Δ over " + ", ".join(labels.get(f, f) for f in summary["generality"]) + ")"
    return spec, labels.get((summary["generality"] or [""])[0], "generality")


def gen_text(p: dict[str, Any], composite: bool) -> str:
    return f"{pts(p['gen'])} pts" if composite else f"{p['gen']:.1f}%"


def frontier_text(summary: dict[str, Any]) -> list[str]:
    """Plain words: the frontier (only with ≥ 2 points), who dominates whom, noise marks, the budget pick."""
    t, comp = summary["tradeoff"], summary["composite"]
    by_key = {p["key"]: p for p in t["points"]}
    if not by_key:
        return ["No model has both a specialty score and an informative generality score, so there is no "
                "trade-off to show.", *excluded_text(t)]
    spec_l, gen_l = axis_labels(summary)
    desc = lambda k: f"{k} ({spec_l} {pct(by_key[k]['spec'])}, {gen_l} {gen_text(by_key[k], comp)})"  # noqa: E731
    out = []
    if len(t["frontier"]) >= 2:
        out.append("On the Pareto frontier (no other model is at least as good on both axes and better on one, "
                   f"by point estimates): {', '.join(desc(k) for k in t['frontier'])}.")
    elif len(by_key) > 1:
        out.append(f"{desc(t['frontier'][0])} is at least as good as every other model on both axes (point "
                   "estimates); there is no frontier to trace.")
    for k in t["frontier"] if len(t["frontier"]) >= 2 else []:
        beaten = [p["key"] for p in t["points"] if dominates(by_key[k], p)]
        if beaten:
            out.append(f"{k} dominates {', '.join(beaten)}.")
    base = summary["baseline"]
    if base in by_key:
        doms = [p["key"] for p in t["points"] if dominates(p, by_key[base])]
        out.append(f"The baseline is dominated by {', '.join(doms)} on point estimates; the paired tests above say "
                   "which of these differences are significant." if doms else
                   "The baseline stays on the frontier: every model with a higher specialty point estimate has a "
                   "lower generality point estimate (the forgetting table says whether that drop is significant).")
    for p in t["points"]:
        if p["within_noise"] and p["key"] in t["frontier"]:
            out.append(f"{p['key']}: its margin over the baseline on {' and '.join(p['within_noise'])} is within "
                       "the seed-to-seed range of training noise; a re-run could reverse it.")
    return [*out, budget_text(summary, by_key), *collapsed_text(t), *excluded_text(t)]


def collapsed_text(t: dict[str, Any]) -> list[str]:
    """Which points collapsed onto one answer, and why they are drawn but neither on the frontier nor picked."""
    bad = [p for p in t["points"] if p.get("collapsed")]
    if not bad:
        return []
    return ["Collapsed onto one answer where the baseline does not (drawn ✕; off the frontier and out of the "
            "pick; the generality figure counts that benchmark at the answer habit's chance level, so it is the "
            "loss of the ability to answer, not of knowledge): "
            + "; ".join(f"{p['key']} ({', '.join(p['collapsed'])})" for p in bad) + "."]


def excluded_text(t: dict[str, Any]) -> list[str]:
    """Which models are not in the trade-off and why (never left out silently)."""
    if not t["excluded"]:
        return []
    return ["Not in the trade-off: " + "; ".join(f"{k} ({why})" for k, why in t["excluded"].items()) + "."]


def budget_text(summary: dict[str, Any], by_key: dict[str, dict[str, Any]]) -> str:
    """The early-stopping choice under the generality budget, in one sentence."""
    b = summary["budget"]
    if b["pick"] is None:
        return (f"No pick under a generality budget of {b['max_generality_drop_points']:g} points (no baseline "
                "point to measure drops from).")
    p = by_key[b["pick"]]
    spec_l, gen_l = axis_labels(summary)
    return (f"Early stopping by the trade-off: allowing at most {b['max_generality_drop_points']:g} points of "
            f"generality drop (point estimate), the best model is {b['pick']} ({spec_l} {pct(p['spec'])}, "
            f"{gen_l} {gen_text(p, summary['composite'])}).{replica_note(summary, b['pick'])}")


def replica_note(summary: dict[str, Any], key: str) -> str:
    """Why a pick among seeds of one configuration is the configuration, not that seed (its lead is noise)."""
    for group, keys in (summary.get("noise") or {}).get("groups", {}).items():
        if key in keys and len(keys) > 1:
            return (f" It is one of {len(keys)} training seeds of {group} ({', '.join(keys)}): the choice is the "
                    f"configuration; which seed leads is training noise (see Training noise).")
    return ""


def frontier_table(summary: dict[str, Any]) -> Table | None:
    """Every trade-off point, frontier ones highlighted, with the generality drop and the budget verdict."""
    t = summary["tradeoff"]
    if not t["points"]:
        return None
    base = find_baseline_point(t["points"], summary["baseline"])
    budget, pick = summary["budget"]["max_generality_drop_points"], summary["budget"]["pick"]
    spec_l, gen_l = axis_labels(summary)
    show_front = len(t["frontier"]) >= 2
    rows, classes = [], []
    for p in t["points"]:
        drop = base["gen"] - p["gen"] if base else None
        within = DASH if drop is None else ("yes" if drop <= budget + EPS else "no")
        on = show_front and p["key"] in t["frontier"]
        gen_ci = fmt_ci(p["gen_ci"], scale=1.0) if p["gen_ci"] else DASH
        rows.append([p["key"], p["kind"], DASH if p["step"] is None else str(p["step"]),
                     DASH if p["lambda"] is None else f"{p['lambda']:g}", pct(p["spec"]), fmt_ci(p["spec_ci"]),
                     gen_text(p, summary["composite"]), gen_ci, DASH if drop is None else f"{drop:.1f}",
                     "yes" if on else ("no (collapsed)" if p.get("collapsed") else "no"), within,
                     ", ".join(p["within_noise"]) or DASH,
                     "PICK" if p["key"] == pick else ""])
        classes.append("pick" if p["key"] == pick else ("frontier" if on else ""))
    return Table("Trade-off points", ["Model", "Kind", "Step", "λ", spec_l, "95% CI", gen_l, "95% CI",
                                      "generality drop (pts)", "On frontier", f"Drop ≤ {budget:g} pts",
                                      "Margin within training noise", "Budget pick"], rows, row_classes=classes)
