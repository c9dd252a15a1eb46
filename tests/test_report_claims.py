"""The report says only what the numbers support: flags for one-answer models, wording by the test, no
one-point frontier, no duplicated headings, and a training-noise band beside the paired tests."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from report_runs import CONFIG, load_summary, make_run, write_bench, write_mmlu, ZORBLAX, zorblax_rows
from sqlshift.report import build_report
from sqlshift.report.frontier import frontier_text, pareto_frontier, pick_under_budget, interpolation_paths
from sqlshift.report.stats import newcombe_paired_ci, paired_test
from sqlshift.report.words import compare_words, generality_words, one_answer_flag


@pytest.fixture(scope="module")
def one_letter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """run2 answers 'A' to every MMLU question."""
    run = make_run(tmp_path_factory.mktemp("run"))
    write_mmlu(run / "models" / "run2", 0, preds="A")
    build_report(run)
    return run


def test_a_model_giving_one_answer_where_the_baseline_does_not_is_flagged_as_collapsed(one_letter: Path) -> None:
    """The same words wherever the report names it: a collapse (a loss of the ability to answer), not an
    uninformative axis, and never "no evidence of loss"."""
    s = load_summary(one_letter)
    assert s["models"]["run2"]["benchmarks"]["mmlu"]["one_answer"] == {"option": "A", "share": 1.0}
    assert s["models"]["run1"]["benchmarks"]["mmlu"]["one_answer"] is None
    md = (one_letter / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| MMLU | run2 | 25.0% | 60 |"))  # forgetting
    assert "| collapsed onto one answer: the ability to answer is lost (forgetting), not measured knowledge |" in row
    assert row.endswith("| answers 'A' to 100% where the baseline does not: collapsed |")
    assert "uninformative" not in md.split("## Generality")[1].split("## Run against run")[0]
    summary_line = next(line for line in md.splitlines() if line.startswith("run2:"))
    assert "MMLU 25.0% (" in summary_line and "pts): answers 'A' to 100% where the baseline does not" in summary_line
    habit = next(line for line in md.splitlines() if line.startswith("| MMLU | run2 | 25.0%"))
    assert habit.rstrip(" |").endswith("where the baseline does not: collapsed")


def test_a_model_that_collapsed_where_the_baseline_did_not_stays_on_the_plane_off_the_frontier(
        one_letter: Path) -> None:
    """Fine-tuning that leaves a model giving one answer is forgetting: the point is drawn with its composite
    (that benchmark at chance level), never on the frontier nor picked, and the report says why."""
    s = load_summary(one_letter)
    t = s["tradeoff"]
    point = next(p for p in t["points"] if p["key"] == "run2")
    assert point["collapsed"] == ["MMLU: answers 'A' to 100% where the baseline does not: collapsed"]
    assert "run2" not in t["excluded"] and "run2" not in t["frontier"] and s["budget"]["pick"] != "run2"
    assert point["gen"] == pytest.approx(s["models"]["run2"]["composite"]["delta_points"])
    assert all(p["collapsed"] == [] for p in t["points"] if p["key"] != "run2")
    md = (one_letter / "report.md").read_text()
    assert "Collapsed onto one answer where the baseline does not" in md and "run2 (MMLU: answers 'A'" in md
    row = next(line for line in md.splitlines() if line.startswith("| run2 | run |"))
    assert "no (collapsed)" in row


def test_a_one_letter_baseline_makes_every_comparison_uninterpretable(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    write_mmlu(run / "models" / "baseline", 0, preds="B")
    write_mmlu(run / "models" / "run2", 0, preds="A")  # one answer beside a one-answer baseline: no collapse
    build_report(run)
    md = (run / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| MMLU | run1 |"))
    assert "not interpretable: the baseline answers 'B' to 100%" in row
    row = next(line for line in md.splitlines() if line.startswith("| MMLU | run2 |"))
    assert "not interpretable: this model gives one answer" in row
    assert "answers 'A' to 100%: this axis is uninformative for this model" in row and "collapsed" not in row
    assert "baseline" in load_summary(run)["tradeoff"]["excluded"]


def test_one_answer_from_a_generic_multiple_choice_benchmark(tmp_path: Path) -> None:
    """A benchmark's own ``one_answer``/``top_position`` fields are enough; positions read as letters."""
    run = make_run(tmp_path)
    meta = {**ZORBLAX, "name": "mcq", "benchmark": "mcq", "label": "MCQ", "kind": "multiple_choice"}
    for key in ("baseline", "run1"):
        write_bench(run / "models" / key, meta, zorblax_rows(20), one_answer=key == "run1", top_position="0",
                    top_position_share=0.94)
    build_report(run)
    e = load_summary(run)["models"]["run1"]["benchmarks"]["mcq"]
    assert one_answer_flag(e["one_answer"]) == "answers 'A' to 94%: this axis is uninformative for this model"


def test_comparisons_are_worded_by_their_test(one_letter: Path) -> None:
    s = load_summary(one_letter)["models"]
    sig = s["run1"]["benchmarks"]["spider-dev"]["vs_baseline"]
    assert compare_words(sig) == "higher (p=0.0020)"
    t = s["run1"]["benchmarks"]["mmlu"]["vs_baseline"]
    assert not t["significant"] and t["diff_points"] < 0
    x = -t["diff_ci95"][0]
    words = generality_words(t)
    assert words == (f"not significantly different (p=0.2500): no evidence of loss; the test cannot rule out a loss "
                     f"of up to {x:.1f} points")
    md = (one_letter / "report.md").read_text()
    assert words in md
    assert not re.search(r"\bgain(ed|s)?\b|without los", md, re.IGNORECASE)


def test_generality_words_for_a_significant_loss() -> None:
    a = {str(i): True for i in range(40)}
    b = {str(i): i >= 12 for i in range(40)}
    t = paired_test(a, b)
    assert t is not None and t["significant"]
    assert generality_words(t) == f"lower (p={t['p_value']:.4f})"


def headings(md: str) -> list[str]:
    return [line.strip() for line in md.splitlines() if re.match(r"#{1,6} ", line)]


def test_no_duplicated_headings(one_letter: Path) -> None:
    md = (one_letter / "report.md").read_text()
    hs = headings(md)
    assert len(hs) > 10 and len(hs) == len(set(hs)), [h for h in hs if hs.count(h) > 1]
    html = (one_letter / "report.html").read_text()
    hh = re.findall(r"<h[1-6]>(.*?)</h[1-6]>", html)
    assert len(hh) == len(set(hh)) == len(hs)
    texts = [h.lstrip("#").strip().lower() for h in hs]
    assert len(texts) == len(set(texts))  # not even across levels ("Training" / "Training")


def test_training_noise_band(one_letter: Path) -> None:
    s = load_summary(one_letter)
    noise = s["noise"]
    assert noise["groups"] == {"run1": ["run1", "run1-seed2"]}
    dev = noise["by_benchmark"]["spider-dev"]
    g = dev["groups"]["run1"]
    assert g["values"] == [50.0, 35.0] and g["mean"] == 42.5 and g["range"] == 15.0
    assert g["sd"] == pytest.approx(10.6066, abs=1e-3) and dev["band_points"] == 15.0
    assert g["paired_ci_halfwidth"] > 0
    md = (one_letter / "report.md").read_text()
    assert "## Training noise" in md
    assert "| run1 | run1, run1-seed2 | EX (dev) | 2 | 50.0, 35.0 | 42.5 | 10.6 | 15.0 |" in md
    assert "within the seed-to-seed range" in md


def test_no_noise_section_without_replicas(tmp_path: Path) -> None:
    run = make_run(tmp_path, {**CONFIG, "runs": [{"name": "run1"}, {"name": "run2"}]})
    build_report(run)
    s = load_summary(run)
    assert s["noise"]["by_benchmark"] == {} and all(p["within_noise"] == [] for p in s["tradeoff"]["points"])
    assert "Training noise" not in (run / "report.md").read_text()


def P(key: str, spec: float, gen: float, kind: str = "run", **kw: Any) -> dict[str, Any]:
    return {"key": key, "spec": spec, "gen": gen, "kind": kind, "within_noise": [], **kw}


def summary_of(points: list[dict[str, Any]], frontier: list[str], pick: str | None) -> dict[str, Any]:
    return {"tradeoff": {"points": points, "frontier": frontier, "excluded": {}}, "baseline": "base",
            "budget": {"pick": pick, "max_generality_drop_points": 2.0}, "composite": False, "specialty": "s",
            "generality": ["g"], "benchmarks": {"s": {"label": "EX (dev)"}, "g": {"label": "MMLU"}}}


def test_one_point_frontier_is_not_called_a_frontier() -> None:
    from sqlshift.report.plots import tradeoff_figure

    points = [P("base", 0.2, 50.0, "baseline"), P("best", 0.6, 55.0)]
    s = summary_of(points, [p["key"] for p in pareto_frontier(points)], "best")
    text = "\n".join(frontier_text(s))
    assert "Pareto frontier" not in text and "no frontier to trace" in text
    for p in points:
        p.update(step=None, run=None, spec_ci=[p["spec"] - 0.1, p["spec"] + 0.1], gen_ci=None)
    labels = tradeoff_figure(s).axes[0].get_legend_handles_labels()[1]
    assert "Pareto frontier" not in labels
    s2 = summary_of(points + [P("other", 0.7, 40.0, step=None, run=None, spec_ci=[0.6, 0.8], gen_ci=None)],
                    ["best", "other"], "best")
    assert "Pareto frontier" in tradeoff_figure(s2).axes[0].get_legend_handles_labels()[1]


def test_tradeoff_plot_draws_checkpoints_as_their_runs_path() -> None:
    """Checkpoints off the frontier are small dots on a dashed path (first step, ..., final run), not labelled
    models with CI bars; a checkpoint on the frontier keeps its label."""
    from sqlshift.report.frontier import checkpoint_paths
    from sqlshift.report.plots import tradeoff_figure

    ci = {"spec_ci": [0.1, 0.7], "gen_ci": None}
    points = [P("base", 0.2, 0.0, "baseline", run=None, step=None, **ci), P("r", 0.6, -0.5, run="r", step=30, **ci),
              P("r-step20", 0.5, 0.4, "checkpoint", run="r", step=20, **ci),
              P("r-step10", 0.4, -0.2, "checkpoint", run="r", step=10, **ci)]
    assert [p["key"] for p in checkpoint_paths(points)["r"]] == ["r-step10", "r-step20", "r"]
    s = summary_of(points, ["r", "r-step20"], "r")
    ax = tradeoff_figure(s).axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert "r-step20" in texts and "r-step10" not in texts and "step 10" in texts
    assert "r: checkpoints, step 10 → 30" in ax.get_legend_handles_labels()[1]
    path = next(line for line in ax.get_lines() if line.get_label().startswith("r: checkpoints"))
    assert list(path.get_xdata()) == [-0.2, 0.4, -0.5] and list(path.get_ydata()) == pytest.approx([40, 50, 60])
    orphan = [p for p in points if p["key"] != "r"]  # the run's final point left out: its checkpoints stay labelled
    texts = [t.get_text() for t in tradeoff_figure(summary_of(orphan, [], None)).axes[0].texts]
    assert "r-step10" in texts and "r-step20" in texts


def test_hardness_bars_are_labelled_and_empty_levels_left_out(one_letter: Path) -> None:
    from sqlshift.report.load import load_study
    from sqlshift.report.plots import hardness_figure
    from sqlshift.report.summary import build_summary

    study = load_study(one_letter)
    for m in study.models:  # no model has an "extra" item: that level must vanish, not show as 0%
        bh = m.benches["spider-dev"].metrics["by_hardness"]
        bh["extra"] = {"n": 0, "n_correct": 0, "accuracy": 0.0, "ci95": [0.0, 1.0]}
    ax = hardness_figure(study, build_summary(study)).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["easy", "medium", "hard"]
    bar_texts = [t.get_text() for t in ax.texts]
    assert len(bar_texts) == sum(len(c) for c in ax.containers) and all(bar_texts)


def test_newcombe_interval() -> None:
    # large n: close to the Wald interval for paired proportions
    lo, hi = newcombe_paired_ci(4000, 400, 600, 5000)
    n, d = 10000, 0.02
    half = 1.959964 * ((400 + 600) - (600 - 400) ** 2 / n) ** 0.5 / n
    assert (lo, hi) == pytest.approx((d - half, d + half), abs=5e-4)
    # no discordant pairs: the interval still has width (Wald's would be a point)
    lo, hi = newcombe_paired_ci(20, 0, 0, 20)
    assert lo < 0 < hi
    lo, hi = newcombe_paired_ci(0, 0, 10, 0)
    assert -1 <= lo < 1.0 <= hi <= 1


def test_pareto_frontier() -> None:
    pts_ = [P("base", 0.2, 50, "baseline"), P("a", 0.4, 45), P("b", 0.3, 50), P("c", 0.3, 40), P("d", 0.4, 45),
            P("e", 0.1, 10)]
    assert [p["key"] for p in pareto_frontier(pts_)] == ["b", "a", "d"]
    assert pareto_frontier([]) == []


def test_pick_under_budget() -> None:
    pts_ = [P("base", 0.2, 50.0, "baseline"), P("a", 0.6, 40.0), P("b", 0.45, 48.0), P("c", 0.45, 49.0),
            P("d", 0.30, 51.5)]
    assert pick_under_budget(pts_, 2.0)["key"] == "c"
    assert pick_under_budget(pts_, 10.0)["key"] == "a"  # exactly at the budget counts
    assert pick_under_budget(pts_, 0.5)["key"] == "d"
    assert pick_under_budget(pts_[1:], 2.0) is None
    assert pick_under_budget([P("base", 0.2, 50.0, "baseline"), P("z", 0.1, 30.0)], 1.0)["key"] == "base"


def test_interpolation_paths_run_from_baseline_through_lambdas_to_the_run() -> None:
    points = [P("baseline", 0.5, 50, "baseline"), P("r", 0.5, 50, run="r"),
              P("r-lambda0.75", 0.5, 50, "interpolation", run="r", **{"lambda": 0.75}),
              P("r-lambda0.25", 0.5, 50, "interpolation", run="r", **{"lambda": 0.25}), P("o", 0.5, 50, run="o")]
    paths = interpolation_paths(points, "baseline")
    assert [p["key"] for p in paths["r"]] == ["baseline", "r-lambda0.25", "r-lambda0.75", "r"] and list(paths) == ["r"]


def test_frontier_text_names_who_dominates_whom() -> None:
    points = [P("base", 0.5, 40.0, "baseline"), P("spec", 0.7, 39.0), P("gen", 0.6, 45.0), P("mid", 0.55, 41.0)]
    text = "\n".join(frontier_text(summary_of(points, ["gen", "spec"], "spec")))
    assert "gen dominates base, mid." in text and "spec dominates" not in text
    assert "The baseline is dominated by gen, mid on point estimates" in text


def test_tradeoff_plot_draws_the_seed_to_seed_band(one_letter: Path) -> None:
    """The replica group's runs span a box on the trade-off plot (training noise, which CI bars do not show)."""
    from sqlshift.report.plots import tradeoff_figure

    s = load_summary(one_letter)
    ax = tradeoff_figure(s).axes[0]
    bands = [p for p in ax.patches if "seed-to-seed band" in str(p.get_label())]
    assert len(bands) == 1 and bands[0].get_label() == "run1: seed-to-seed band (2 seeds)"
    pts = {p["key"]: p for p in s["tradeoff"]["points"]}
    xs, ys = [pts[k]["gen"] for k in ("run1", "run1-seed2")], [100 * pts[k]["spec"] for k in ("run1", "run1-seed2")]
    (x0, y0), w, h = bands[0].get_xy(), bands[0].get_width(), bands[0].get_height()
    assert (x0, y0) == pytest.approx((min(xs), min(ys))) and h == pytest.approx(15.0)  # 50% vs 35% EX
    assert w == pytest.approx(max(xs) - min(xs))
    s["noise"]["groups"] = {}
    assert not [p for p in tradeoff_figure(s).axes[0].patches if "seed-to-seed" in str(p.get_label())]


def test_training_cost_table_names_method_speed_and_memory(tmp_path: Path) -> None:
    """The report's training cost per run comes from each run's train_data.json and adapter_config.json: QLoRA vs
    LoRA vs full, tokens/s and peak memory side by side; a pre-wrap trainable count (all weights) is not shown."""
    import json

    run = make_run(tmp_path)
    facts = {"run1": ({"load_in_4bit": True, "parameters": 100, "trainable": 4}, 8, 2.5),
             "run2": ({"load_in_4bit": False, "parameters": 100, "trainable": 100}, 8, 9.25),
             "full": ({"load_in_4bit": False, "parameters": 100, "trainable": 100}, None, None)}
    for name, (model, r, peak) in facts.items():
        d = run / "train" / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "train_data.json").write_text(json.dumps({"model": model, "speed_path": "standard path", "speed": {
            "wall_s": 12.5, "steps": 40, "real_tokens_per_s": 1234.4, "peak_gpu_gib": peak}}))
        if r:
            (d / "adapter_config.json").write_text(json.dumps({"r": r}))
    build_report(run)
    rows = {line.split(" | ")[0].lstrip("| "): line for line in (run / "report.md").read_text().splitlines()
            if line.startswith("| run1 | ") or line.startswith("| run2 | ") or line.startswith("| full | ")}
    assert "| run1 | QLoRA r=8 | 4 | 40 | 12.5 | 1,234 | 2.5 | standard path |" in rows["run1"]
    assert "| run2 | LoRA r=8 | — | 40 | 12.5 | 1,234 | 9.2 |" in rows["run2"]
    assert "| full | full | 100 | 40 | 12.5 | 1,234 | — |" in rows["full"]


def test_budget_pick_among_seeds_names_the_configuration(one_letter: Path) -> None:
    """A budget pick that is one seed of a replica group says the choice is the configuration, not that seed."""
    from sqlshift.report.frontier import budget_text

    s = load_summary(one_letter)
    by_key = {p["key"]: p for p in s["tradeoff"]["points"]}
    s["budget"]["pick"] = "run1-seed2"
    assert "one of 2 training seeds of run1 (run1, run1-seed2)" in budget_text(s, by_key)
    s["budget"]["pick"] = next(k for k in by_key if k not in ("run1", "run1-seed2"))
    assert "training seeds" not in budget_text(s, by_key)


def test_tradeoff_plot_marks_frontier_margins_within_training_noise(one_letter: Path) -> None:
    """A frontier point whose margin is within the seed band gets a dagger, explained once in the legend."""
    from sqlshift.report.plots import tradeoff_figure

    s = load_summary(one_letter)
    s["tradeoff"]["frontier"] = [p["key"] for p in s["tradeoff"]["points"]][:2]
    for p in s["tradeoff"]["points"]:
        p["within_noise"] = p["key"] == s["tradeoff"]["frontier"][0]
    ax = tradeoff_figure(s).axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts.count(s["tradeoff"]["frontier"][0] + "†") == 1 and sum(t.endswith("†") for t in texts) == 1
    assert "† frontier margin within training noise" in ax.get_legend_handles_labels()[1]
    for p in s["tradeoff"]["points"]:
        p["within_noise"] = False
    ax = tradeoff_figure(s).axes[0]
    assert not any(t.get_text().endswith("†") for t in ax.texts)
    assert "† frontier margin within training noise" not in ax.get_legend_handles_labels()[1]


def test_checkpoint_curves_include_the_composite_generality(one_letter: Path, tmp_path: Path) -> None:
    """With a composite generality, the curves show its Δ over training steps beside the specialty."""
    from sqlshift.report.plots import curve_panels, plot_curves

    s = load_summary(one_letter)
    assert s["composite"]
    titles = [t for t, _, _ in curve_panels(s)]
    assert titles[:2] == ["Specialty", "Generality (composite)"] and len(titles) <= 4
    _, _, composite = curve_panels(s)[1]
    run1 = [m for m in s["models"].values() if m.get("run") == "run1" and m["kind"] in ("run", "checkpoint")]
    values = [composite(m) for m in run1]
    assert values == [(m.get("composite") or {}).get("delta_points") for m in run1]
    assert sum(v is not None for v in values) >= 2  # the checkpoints have a composite too: a curve, not a dot
    assert plot_curves(s, tmp_path / "curves.png").stat().st_size > 0
    s["composite"] = False
    assert "Generality (composite)" not in [t for t, _, _ in curve_panels(s)]


def test_checkpoint_curves_show_the_generality_benchmarks_that_fell_furthest(one_letter: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """With more generality benchmarks than panels, the curves show those with the largest drop on any drawn
    point (where forgetting is), not the first ones listed, and the panel title says they were chosen."""
    from sqlshift.report import plots

    s = load_summary(one_letter)
    gen = [f for f in s["generality"] if f]
    assert s["composite"] and len(gen) == 2
    monkeypatch.setattr(plots, "MAX_CURVE_PANELS", 3)  # specialty, composite, and room for one of the two
    last = gen[-1]
    point = next(m for m in s["models"].values() if m["kind"] == "checkpoint" and last in m["benchmarks"])
    point["benchmarks"][last]["delta_points"] = -40.0
    panels = plots.curve_panels(s)
    shown = [(t, y) for t, y, _ in panels[2:]]
    assert shown == [("Generality (largest drops)", f"{s['benchmarks'][last]['label']} (%)")]
    monkeypatch.setattr(plots, "MAX_CURVE_PANELS", 4)
    assert [t for t, _, _ in plots.curve_panels(s)[2:]] == ["Generality", "Generality"]
