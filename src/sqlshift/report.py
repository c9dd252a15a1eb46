"""Report of a run directory: ``report.md``, a self-contained ``report.html``, ``summary.json`` and PNG plots.

Everything is recomputed from the files the other stages wrote (see docs/DESIGN.md), so a report can be rebuilt
at any time. Every accuracy carries n and a 95% Wilson interval and every comparison a paired McNemar test,
because small differences on small test sets are usually noise. Tables are built once as data (:class:`Table`)
and rendered to both Markdown and HTML, so the two can never disagree.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from sqlshift.errors import DataError
from sqlshift.jsonl import read_jsonl
from sqlshift.metrics.stats import mcnemar, significance_label, wilson_ci

ALPHA = 0.05
#: below-chance p under which an MMLU score means a broken scorer, not forgetting (as in guards)
SCORER_FAILURE_P = 0.01
VARIANT_SPLITS = ("syn", "realistic", "dk")
HARDNESS = ("easy", "medium", "hard", "extra")
ERROR_TYPES = ("wrong_result", "syntax_error", "unknown_table", "unknown_column", "timeout", "resource_limit",
               "forbidden", "empty_prediction")
KIND_RANK = {"baseline": 0, "run": 1, "checkpoint": 1, "interpolation": 2}
DASH = "—"


# ------------------------------------------------------------------------------------------------ loading


@dataclass
class Model:
    """Everything saved for one evaluated model (baseline, run, checkpoint or λ-interpolation)."""

    key: str
    info: dict[str, Any]
    spider: dict[str, dict[str, Any]] = field(default_factory=dict)
    spider_rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    mmlu: dict[str, Any] | None = None
    mmlu_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return str(self.info.get("kind") or "run")

    @property
    def run(self) -> str | None:
        return self.info.get("run")

    @property
    def step(self) -> int | None:
        s = self.info.get("step")
        return int(s) if s is not None else None

    @property
    def lam(self) -> float | None:
        v = self.info.get("lambda")
        return float(v) if v is not None else None

    def ex_outcomes(self, split: str) -> dict[int, bool]:
        """index -> correct; gold failures are excluded, as in the metrics' n."""
        return {int(r["index"]): bool(r["correct"]) for r in self.spider_rows.get(split, [])
                if r.get("error_type") != "gold_error"}

    def mmlu_outcomes(self, category: str | None = None) -> dict[tuple[str, int], bool]:
        """(subject, index) -> correct, optionally for one category only."""
        return {(str(r["subject"]), int(r["index"])): bool(r["correct"]) for r in self.mmlu_rows
                if category is None or r.get("category") == category}

    def sort_key(self) -> tuple[Any, ...]:
        step = self.step if self.kind != "run" else math.inf
        return (KIND_RANK.get(self.kind, 3), self.run or self.key, self.kind == "interpolation",
                step if step is not None else math.inf, self.lam or 0.0, self.key)


def read_json(path: Path) -> Any:
    """JSON file with an error that names the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path} is not valid JSON (line {e.lineno}: {e.msg})", "rerun the step that wrote it") from e


def infer_info(name: str) -> dict[str, Any]:
    """model.json stand-in from the folder name, for runs written before model.json existed."""
    if name == "baseline":
        return {"key": name, "kind": "baseline"}
    m = re.fullmatch(r"(.+)-step(\d+)", name)
    if m:
        return {"key": name, "kind": "checkpoint", "run": m[1], "step": int(m[2])}
    m = re.fullmatch(r"(.+)-lambda([0-9.]+)", name)
    if m:
        return {"key": name, "kind": "interpolation", "run": m[1], "lambda": float(m[2])}
    return {"key": name, "kind": "run", "run": name}


def load_model(mdir: Path) -> Model:
    """One ``models/<key>/`` folder."""
    info = read_json(mdir / "model.json") if (mdir / "model.json").is_file() else infer_info(mdir.name)
    model = Model(str(info.get("key") or mdir.name), info)
    for sdir in sorted(mdir.glob("spider-*")):
        if (sdir / "metrics.json").is_file():
            split = sdir.name[len("spider-"):]
            model.spider[split] = read_json(sdir / "metrics.json")
            model.spider_rows[split] = read_jsonl(sdir / "results.jsonl")
    if (mdir / "mmlu" / "metrics.json").is_file():
        model.mmlu = read_json(mdir / "mmlu" / "metrics.json")
        model.mmlu_rows = read_jsonl(mdir / "mmlu" / "results.jsonl")
    return model


def load_models(run_dir: Path) -> list[Model]:
    """All models of a run directory, baseline first, then each run with its checkpoints, then λ versions."""
    root = run_dir / "models"
    if not root.is_dir():
        raise DataError(f"{root} does not exist", "pass a run directory written by `sqlshift run`")
    models = [load_model(d) for d in sorted(root.iterdir()) if d.is_dir()]
    models = [m for m in models if m.spider or m.mmlu]
    if not models:
        raise DataError(f"no evaluated models under {root}", "run `sqlshift run` to completion first")
    return sorted(models, key=Model.sort_key)


def load_log_histories(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """run name -> trainer log history (``log_history.json``, or ``trainer_state.json``'s ``log_history``)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for tdir in sorted((run_dir / "train").glob("*")) if (run_dir / "train").is_dir() else []:
        for name in ("log_history.json", "trainer_state.json"):
            if (tdir / name).is_file():
                data = read_json(tdir / name)
                rows = data.get("log_history", []) if isinstance(data, dict) else data
                if isinstance(rows, list) and rows:
                    out[tdir.name] = [r for r in rows if isinstance(r, dict)]
                    break
    return out


# ------------------------------------------------------------------------------------------------ statistics


def paired_test(a: dict[Any, bool], b: dict[Any, bool], alpha: float = ALPHA) -> dict[str, Any] | None:
    """Exact McNemar on the examples both sides scored; ``diff_points`` = acc(b) - acc(a) on that shared set."""
    common = sorted(a.keys() & b.keys())
    if not common:
        return None
    xa, xb = [a[i] for i in common], [b[i] for i in common]
    r = mcnemar(xa, xb)
    diff = 100.0 * (sum(xb) - sum(xa)) / len(common)
    return {"n_paired": len(common), "a_only": r["a_only"], "b_only": r["b_only"], "p_value": r["p_value"],
            "diff_points": diff, "significant": r["p_value"] < alpha, "label": significance_label(r["p_value"], alpha)}


def ex_summary(m: dict[str, Any]) -> dict[str, Any]:
    """The numbers of an EX metrics.json the report uses (CI recomputed only if the file lacks it)."""
    n, k = int(m.get("n", 0)), int(m.get("n_correct", 0))
    acc = float(m.get("execution_accuracy", k / n if n else 0.0))  # "accuracy" in the summary, like MMLU
    return {"accuracy": acc, "n": n, "n_correct": k, "ci95": list(m.get("ci95") or wilson_ci(k, n)),
            "n_skipped": int(m.get("n_skipped", 0)), "skip_reasons": m.get("skip_reasons", {}),
            "n_gold_failed": int(m.get("n_gold_failed", 0)), "gold_failed": m.get("gold_failed", []),
            "mode": m.get("mode")}


def acc_summary(m: dict[str, Any]) -> dict[str, Any]:
    """``{accuracy, n, n_correct, ci95}`` of an MMLU (sub)metrics block."""
    n, k = int(m.get("n", 0)), int(m.get("n_correct", 0))
    return {"accuracy": float(m.get("accuracy", k / n if n else 0.0)), "n": n, "n_correct": k,
            "ci95": list(m.get("ci95") or wilson_ci(k, n))}


def is_scorer_failure(m: dict[str, Any] | None) -> bool:
    """True when MMLU is significantly *below* chance: the scorer is broken; this is not forgetting."""
    return m is not None and m.get("below_chance_p") is not None and float(m["below_chance_p"]) < SCORER_FAILURE_P


def points_drop(base: float | None, value: float) -> float | None:
    """Change in percentage points (value - base)."""
    return None if base is None else 100.0 * (value - base)


def model_ex(model: Model, base: Model | None, split: str, alpha: float) -> dict[str, Any]:
    """EX of one split with its change and McNemar test vs the baseline."""
    out = ex_summary(model.spider[split])
    has_base = base is not None and base is not model and split in base.spider
    base_acc = ex_summary(base.spider[split])["accuracy"] if has_base else None
    out["delta_points"] = points_drop(base_acc, out["accuracy"])
    out["vs_baseline"] = paired_test(base.ex_outcomes(split), model.ex_outcomes(split), alpha) if has_base else None
    out["generation"] = model.spider[split].get("generation")
    return out


def model_mmlu(model: Model, base: Model | None, alpha: float) -> dict[str, Any] | None:
    """MMLU aggregate and per category, each with change and McNemar test vs the baseline."""
    if model.mmlu is None:
        return None
    m = model.mmlu
    has_base = base is not None and base is not model and base.mmlu is not None
    out = {**acc_summary(m), "chance": float(m.get("chance", 0.25)), "below_chance_p": m.get("below_chance_p"),
           "scorer_failure": is_scorer_failure(m), "mode": m.get("mode"), "k_shot": m.get("k_shot")}
    out["delta_points"] = points_drop(acc_summary(base.mmlu)["accuracy"] if has_base else None, out["accuracy"])
    out["vs_baseline"] = paired_test(base.mmlu_outcomes(), model.mmlu_outcomes(), alpha) if has_base else None
    out["letters"] = letter_habit(model.mmlu_rows)
    out["by_category"] = {}
    for cat, cm in sorted(m.get("by_category", {}).items()):
        c = acc_summary(cm)
        bc = base.mmlu.get("by_category", {}).get(cat) if has_base else None
        c["delta_points"] = points_drop(acc_summary(bc)["accuracy"] if bc else None, c["accuracy"])
        c["vs_baseline"] = paired_test(base.mmlu_outcomes(cat), model.mmlu_outcomes(cat), alpha) if bc else None
        out["by_category"][cat] = c
    return out


def letter_habit(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Share of each predicted letter and the letter-prior-corrected accuracy, from results.jsonl.

    Computed from the rows (not read from metrics.json) so that run directories written before the field
    existed get it too.
    """
    from sqlshift.metrics.mmlu import letter_bias

    return {k: v for k, v in letter_bias(rows).items() if k in ("pred_counts", "gold_counts",
                                                                  "prior_corrected_accuracy")}


def pairwise_tests(models: list[Model], alpha: float) -> dict[str, list[dict[str, Any]]]:
    """McNemar between every two final runs (``kind == run``), per Spider split and on MMLU."""
    runs = [m for m in models if m.kind == "run"]
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a, b in combinations(runs, 2):
        for split in sorted(a.spider.keys() & b.spider.keys()):
            t = paired_test(a.ex_outcomes(split), b.ex_outcomes(split), alpha)
            if t:
                out[f"spider-{split}"].append({"a": a.key, "b": b.key, **t})
        if a.mmlu and b.mmlu:
            t = paired_test(a.mmlu_outcomes(), b.mmlu_outcomes(), alpha)
            if t:
                out["mmlu"].append({"a": a.key, "b": b.key, **t})
    return dict(out)


# ------------------------------------------------------------------------------------------------ frontier


def dominates(p: dict[str, Any], q: dict[str, Any]) -> bool:
    """p is at least as good as q on both EX and MMLU and strictly better on one."""
    return p["ex"] >= q["ex"] and p["mmlu"] >= q["mmlu"] and (p["ex"] > q["ex"] or p["mmlu"] > q["mmlu"])


def pareto_frontier(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Points no other point dominates (maximising both ``ex`` and ``mmlu``), sorted by EX ascending.

    Ties: identical points do not dominate each other, so all copies stay on the frontier.
    """
    front = [q for q in points if not any(dominates(p, q) for p in points)]
    return sorted(front, key=lambda p: (p["ex"], -p["mmlu"]))


def find_baseline_point(points: list[dict[str, Any]], baseline: str | None = None) -> dict[str, Any] | None:
    """The baseline point: by key when given, else the one of kind ``baseline`` (or keyed ``baseline``)."""
    for p in points:
        if (baseline is not None and p.get("key") == baseline) or (
                baseline is None and (p.get("kind") == "baseline" or p.get("key") == "baseline")):
            return p
    return None


def pick_under_budget(points: list[dict[str, Any]], max_mmlu_drop_points: float,
                      baseline: str | None = None) -> dict[str, Any] | None:
    """Early stopping by the trade-off: the highest EX among points losing at most X MMLU points vs baseline.

    Ties on EX go to the higher MMLU. The baseline itself (drop 0) is eligible, so when nothing beats it the
    answer is "keep the baseline". None when there is no baseline point to measure drops from.
    """
    base = find_baseline_point(points, baseline)
    if base is None:
        return None
    ok = [p for p in points if 100.0 * (base["mmlu"] - p["mmlu"]) <= max_mmlu_drop_points + 1e-9]
    return max(ok, key=lambda p: (p["ex"], p["mmlu"])) if ok else None


def tradeoff_points(summary: dict[str, Any], split: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """One point per model with both EX (on ``split``) and a valid MMLU; excluded models with the reason."""
    points, excluded = [], {}
    for key, m in summary["models"].items():
        ex, mm = m["ex"].get(split), m["mmlu"]
        if ex is None or mm is None:
            excluded[key] = f"no spider-{split}" if ex is None else "no MMLU"
            continue
        if mm["scorer_failure"]:
            excluded[key] = "MMLU scorer failure (below chance)"
            continue
        points.append({"key": key, "kind": m["kind"], "run": m["run"], "step": m["step"], "lambda": m["lambda"],
                       "ex": ex["accuracy"], "ex_ci": ex["ci95"], "mmlu": mm["accuracy"],
                       "mmlu_ci": mm["ci95"]})
    return points, excluded


# ------------------------------------------------------------------------------------------------ summary


def primary_split(models: list[Model]) -> str | None:
    """The split the trade-off uses: dev when present, else the first one found."""
    splits = sorted({s for m in models for s in m.spider})
    return "dev" if "dev" in splits else (splits[0] if splits else None)


def find_baseline(models: list[Model]) -> Model | None:
    return next((m for m in models if m.kind == "baseline"), None) or next(
        (m for m in models if m.key == "baseline"), None)


def build_summary(run_dir: Path, models: list[Model], max_mmlu_drop: float, alpha: float) -> dict[str, Any]:
    """The machine-readable result: per model EX and MMLU with n and CI, tests, frontier and the budget pick."""
    base = find_baseline(models)
    split = primary_split(models)
    summary: dict[str, Any] = {"run_dir": str(run_dir), "alpha": alpha, "baseline": base.key if base else None,
                               "primary_split": split, "models": {}}
    for m in models:
        summary["models"][m.key] = {
            "kind": m.kind, "run": m.run, "step": m.step, "lambda": m.lam,
            "ex": {s: model_ex(m, base, s, alpha) for s in sorted(m.spider)},
            "mmlu": model_mmlu(m, base, alpha)}
    summary["pairwise"] = pairwise_tests(models, alpha)
    points, excluded = tradeoff_points(summary, split) if split else ([], {})
    front = pareto_frontier(points)
    pick = pick_under_budget(points, max_mmlu_drop, summary["baseline"]) if summary["baseline"] else None
    summary["tradeoff"] = {"split": split, "points": points, "excluded": excluded,
                           "frontier": [p["key"] for p in front]}
    summary["budget"] = {"max_mmlu_drop_points": max_mmlu_drop, "pick": pick["key"] if pick else None}
    summary["diverged"] = diverged_runs(load_log_histories(run_dir))
    return summary


def diverged_runs(histories: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """run -> first step with a non-finite logged loss or gradient norm (such an adapter is broken, not forgetful)."""
    from sqlshift.train import first_non_finite

    return {run: step for run, rows in histories.items() if (step := first_non_finite(rows)) is not None}


# ------------------------------------------------------------------------------------------------ tables


@dataclass
class Table:
    """A table as data; rendered to Markdown and HTML. ``row_classes`` only colours HTML rows."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""
    row_classes: list[str] = field(default_factory=list)


@dataclass
class Section:
    """A report section: paragraphs, tables and plots (plot name -> file)."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)


def pct(x: float | None) -> str:
    return DASH if x is None else f"{100 * x:.1f}%"


def ci(c: Iterable[float] | None) -> str:
    if c is None:
        return DASH
    lo, hi = list(c)
    return f"[{100 * lo:.1f}, {100 * hi:.1f}]"


def pts(d: float | None) -> str:
    return DASH if d is None else f"{d:+.1f}"


def pval(p: float | None) -> str:
    if p is None:
        return DASH
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


def test_cells(t: dict[str, Any] | None) -> list[str]:
    """McNemar p and its plain-words verdict."""
    return [DASH, DASH] if t is None else [pval(t["p_value"]), t["label"]]


def ex_table(summary: dict[str, Any]) -> Table:
    """Table 'Execution accuracy': per model and split, EX with n and CI, change and McNemar vs baseline."""
    rows = []
    for key, m in summary["models"].items():
        for split, e in m["ex"].items():
            rows.append([key, split, pct(e["accuracy"]), f"{e['n_correct']}/{e['n']}", ci(e["ci95"]),
                         pts(e["delta_points"]), *test_cells(e["vs_baseline"])])
    return Table("Execution accuracy", ["Model", "Split", "EX", "correct/n", "95% CI", "Δ vs baseline (pts)",
                                        "McNemar p", "vs baseline"], rows,
                 note=f"95% Wilson intervals; exact McNemar test paired by example index, alpha {summary['alpha']}.")


def pairwise_table(summary: dict[str, Any]) -> Table | None:
    """Run vs run McNemar tests on every split and on MMLU."""
    rows = [[f"{t['a']} vs {t['b']}", bench, str(t["n_paired"]), pts(t["diff_points"]),
             f"{t['a_only']} / {t['b_only']}", pval(t["p_value"]), t["label"]]
            for bench, tests in summary["pairwise"].items() for t in tests]
    if not rows:
        return None
    return Table("Pairwise comparisons between runs", ["Comparison", "Benchmark", "n paired", "Δ (B − A, pts)",
                                                       "only A right / only B right", "McNemar p", "Verdict"], rows)


def mmlu_flag(mm: dict[str, Any]) -> str:
    """Below chance is reported as a broken scorer, never as forgetting."""
    if mm["scorer_failure"]:
        return f"SCORER FAILURE: below chance (p={pval(mm['below_chance_p'])}), not forgetting"
    return ""


def mmlu_table(summary: dict[str, Any]) -> Table | None:
    """Table 'MMLU': per model, each category and the aggregate, with change and McNemar vs baseline."""
    rows, classes = [], []
    for key, m in summary["models"].items():
        mm = m["mmlu"]
        if mm is None:
            continue
        for cat, c in mm["by_category"].items():
            rows.append([key, cat, pct(c["accuracy"]), f"{c['n_correct']}/{c['n']}", ci(c["ci95"]),
                         pts(c["delta_points"]), *test_cells(c["vs_baseline"]), pct(mm["chance"]), ""])
            classes.append("")
        rows.append([key, "all", pct(mm["accuracy"]), f"{mm['n_correct']}/{mm['n']}", ci(mm["ci95"]),
                     pts(mm["delta_points"]), *test_cells(mm["vs_baseline"]), pct(mm["chance"]), mmlu_flag(mm)])
        classes.append("failure" if mm["scorer_failure"] else "total")
    if not rows:
        return None
    return Table("MMLU", ["Model", "Category", "Accuracy", "correct/n", "95% CI", "Δ vs baseline (pts)",
                          "McNemar p", "vs baseline", "Chance", "Flag"], rows,
                 note="McNemar paired by (subject, question index). A score significantly below chance "
                      f"(p < {SCORER_FAILURE_P}) means the scorer is broken, not that the model forgot.",
                 row_classes=classes)


def letter_table(summary: dict[str, Any]) -> Table | None:
    """Table 'Letter habit': how often each model answers A/B/C/D, and its accuracy with that habit removed."""
    rows = []
    gold = None
    for key, m in summary["models"].items():
        lt = (m["mmlu"] or {}).get("letters")
        if not lt or lt.get("prior_corrected_accuracy") is None:
            continue
        n = sum(lt["pred_counts"].values())
        gold = gold or lt["gold_counts"]
        rows.append([key, *(pct(lt["pred_counts"][L] / n) for L in "ABCD"), pct(m["mmlu"]["accuracy"]),
                     pct(lt["prior_corrected_accuracy"])])
    if not rows or not gold:
        return None
    ng = sum(gold.values())
    rows.append(["(gold answers)", *(pct(gold[L] / ng) for L in "ABCD"), DASH, DASH])
    return Table("Letter habit", ["Model", "answers A", "B", "C", "D", "Accuracy", "Letter prior removed"], rows,
                 note="'Letter prior removed': each letter's probability divided by the model's mean probability of "
                      "that letter. A change that survives it is about the questions; one that does not is a habit.")


def robustness_table(summary: dict[str, Any]) -> Table | None:
    """EX on dev beside each Spider variant present (syn, realistic, dk), with CIs and the drop from dev."""
    present = [v for v in VARIANT_SPLITS if any(v in m["ex"] for m in summary["models"].values())]
    if not present:
        return None
    rows = []
    for key, m in summary["models"].items():
        dev = m["ex"].get("dev")
        row = [key, f"{pct(dev['accuracy'])} {ci(dev['ci95'])} (n={dev['n']})" if dev else DASH]
        for v in present:
            e = m["ex"].get(v)
            drop = 100 * (e["accuracy"] - dev["accuracy"]) if e and dev else None
            row.append(f"{pct(e['accuracy'])} {ci(e['ci95'])} (n={e['n']}; {pts(drop)} vs dev)"
                       if e else DASH)
        rows.append(row)
    return Table("Robustness: EX on Spider variants", ["Model", "dev", *present], rows,
                 note="Each cell: EX, 95% CI, n and the change from dev in points (different questions, so unpaired).")


def frontier_table(summary: dict[str, Any]) -> Table | None:
    """Every trade-off point, frontier ones highlighted, with MMLU drop and the budget verdict."""
    t = summary["tradeoff"]
    if not t["points"]:
        return None
    base = find_baseline_point(t["points"], summary["baseline"])
    budget, pick = summary["budget"]["max_mmlu_drop_points"], summary["budget"]["pick"]
    rows, classes = [], []
    for p in t["points"]:
        drop = 100 * (base["mmlu"] - p["mmlu"]) if base else None
        within = DASH if drop is None else ("yes" if drop <= budget + 1e-9 else "no")
        on = p["key"] in t["frontier"]
        rows.append([p["key"], p["kind"], DASH if p["step"] is None else str(p["step"]),
                     DASH if p["lambda"] is None else f"{p['lambda']:g}", pct(p["ex"]), ci(p["ex_ci"]), pct(p["mmlu"]),
                     ci(p["mmlu_ci"]), DASH if drop is None else f"{drop:.1f}", "yes" if on else "no", within,
                     "PICK" if p["key"] == pick else ""])
        classes.append("pick" if p["key"] == pick else ("frontier" if on else ""))
    return Table("Trade-off and Pareto frontier", ["Model", "Kind", "Step", "λ", f"EX ({t['split']})", "EX CI", "MMLU",
                                                   "MMLU CI", "MMLU drop (pts)", "On frontier",
                                                   f"Drop ≤ {budget:g} pts", "Budget pick"], rows,
                 row_classes=classes)


def frontier_text(summary: dict[str, Any]) -> list[str]:
    """Plain words: what is on the frontier, who dominates whom, and the budget pick."""
    t = summary["tradeoff"]
    pts_by_key = {p["key"]: p for p in t["points"]}
    if not pts_by_key:
        return ["No model has both an EX and a valid MMLU score, so there is no trade-off to show."]
    desc = lambda k: f"{k} (EX {pct(pts_by_key[k]['ex'])}, MMLU {pct(pts_by_key[k]['mmlu'])})"  # noqa: E731
    out = [f"On the Pareto frontier (no other model is at least as good on both EX and MMLU and better on one): "
           f"{', '.join(desc(k) for k in t['frontier'])}."]
    if len(t["frontier"]) == 1 and len(pts_by_key) > 1:
        out.append(f"{t['frontier'][0]} dominates every other model.")
    else:
        for k in t["frontier"]:
            beaten = [p["key"] for p in t["points"] if dominates(pts_by_key[k], p)]
            if beaten:
                out.append(f"{k} dominates {', '.join(beaten)}.")
    base = summary["baseline"]
    if base in pts_by_key:
        doms = [p["key"] for p in t["points"] if dominates(p, pts_by_key[base])]
        out.append(f"The baseline is dominated by {', '.join(doms)}: fine-tuning gained EX without losing MMLU."
                   if doms else "The baseline stays on the frontier: no model beats it on MMLU, so every EX gain "
                                "came with some MMLU cost.")
    out.append(budget_text(summary, pts_by_key))
    if t["excluded"]:
        out.append("Not in the trade-off: " + "; ".join(f"{k} ({why})" for k, why in t["excluded"].items()) + ".")
    out.append("Being on the frontier is not the same as being significantly better: check the McNemar tests above.")
    return out


def budget_text(summary: dict[str, Any], pts_by_key: dict[str, dict[str, Any]]) -> str:
    """The early-stopping choice under the MMLU budget, in one sentence."""
    b = summary["budget"]
    if b["pick"] is None:
        return f"No pick under an MMLU budget of {b['max_mmlu_drop_points']:g} points (no baseline MMLU to compare)."
    p = pts_by_key[b["pick"]]
    return (f"Early stopping by the trade-off: allowing at most {b['max_mmlu_drop_points']:g} points of MMLU drop, "
            f"the best model is {b['pick']} (EX {pct(p['ex'])}, MMLU {pct(p['mmlu'])}).")


def error_table(models: list[Model], split: str) -> Table | None:
    """Counts by error type × hardness per model (gold failures excluded, as from n)."""
    rows: list[tuple[str, str, Counter[str]]] = []
    for m in models:
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for r in m.spider_rows.get(split, []):
            if r.get("error_type") != "gold_error":
                counts[str(r.get("error_type"))][str(r.get("hardness") or "unknown")] += 1
        for et in ["correct", *ERROR_TYPES, *sorted(set(counts) - {"correct", *ERROR_TYPES})]:
            if counts.get(et):
                rows.append((m.key, et, counts[et]))
    if not rows:
        return None
    levels = [*HARDNESS, *sorted({h for _, _, c in rows for h in c} - set(HARDNESS))]
    return Table(f"Outcomes by error type and hardness (spider-{split})", ["Model", "Outcome", *levels, "total"],
                 [[k, et, *(str(c.get(h, 0)) for h in levels), str(sum(c.values()))] for k, et, c in rows])


def best_finetuned(models: list[Model], split: str) -> Model | None:
    """The non-baseline model with the highest EX on ``split``."""
    cands = [m for m in models if m.kind != "baseline" and split in m.spider]
    return max(cands, key=lambda m: ex_summary(m.spider[split])["accuracy"], default=None)


def clip(s: Any, n: int = 220) -> str:
    s = "" if s is None else str(s)
    return s if len(s) <= n else s[: n - 1] + "…"


def error_examples_table(model: Model, split: str, per_type: int = 3) -> Table | None:
    """Up to ``per_type`` failed examples of each error type, to read what went wrong."""
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in model.spider_rows.get(split, []):
        et = str(r.get("error_type"))
        if et not in ("correct", "gold_error") and len(by_type[et]) < per_type:
            by_type[et].append(r)
    rows = [[et, clip(r.get("question")), clip(r.get("gold_sql")), clip(r.get("pred_sql")), clip(r.get("error"))]
            for et in sorted(by_type) for r in by_type[et]]
    if not rows:
        return None
    return Table(f"Error examples of {model.key} (spider-{split})", ["Error type", "Question", "Gold", "Prediction",
                                                                     "Error"], rows)


def share(k: Any, n: int) -> str:
    return DASH if k is None else f"{k} ({100 * int(k) / n:.1f}%)" if n else str(k)


def generation_table(summary: dict[str, Any]) -> Table | None:
    """Generation health: outputs cut by the token limit, needing extraction beyond line one, or empty."""
    rows = []
    for key, m in summary["models"].items():
        for split, e in m["ex"].items():
            g = e.get("generation")
            if g:
                n = int(g.get("n", 0))
                rows.append([key, split, str(n), share(g.get("hit_limit"), n), share(g.get("multi_line_extraction"), n),
                             share(g.get("empty"), n)])
    if not rows:
        return None
    return Table("Generation health", ["Model", "Split", "n", "hit token limit", "extraction beyond first line",
                                       "empty"], rows,
                 note="Many outputs at the token limit or empty point at the prompt or decoding, not the model's SQL.")


def coverage_table(summary: dict[str, Any]) -> Table:
    """What was evaluated, what was skipped and why, and which gold queries failed (never silent)."""
    rows = []
    for key, m in summary["models"].items():
        for split, e in m["ex"].items():
            reasons = ", ".join(f"{n} {r}" for r, n in sorted(e["skip_reasons"].items())) or DASH
            gold = f"{e['n_gold_failed']}" + (f" (indices {', '.join(map(str, e['gold_failed'][:20]))})"
                                              if e["gold_failed"] else "")
            rows.append([key, f"spider-{split}", str(e["n"]), str(e["n_skipped"]), reasons, gold])
        if m["mmlu"]:
            rows.append([key, "mmlu", str(m["mmlu"]["n"]), "0", DASH, DASH])
    return Table("Coverage: evaluated, skipped and gold failures",
                 ["Model", "Benchmark", "n evaluated", "n skipped", "skip reasons", "gold failures"], rows,
                 note="Skipped examples (e.g. missing databases) and gold queries that fail to execute are excluded "
                      "from n.")


def training_table(histories: dict[str, list[dict[str, Any]]], diverged: dict[str, int]) -> Table | None:
    """First/last training loss, last eval loss and the divergence step per run."""
    rows = []
    for run, hist in histories.items():
        loss = [r for r in hist if "loss" in r]
        ev = [r for r in hist if "eval_loss" in r]
        rows.append([run, str(max((r.get("step", 0) for r in hist), default=0)),
                     f"{loss[0]['loss']:.4f}" if loss else DASH, f"{loss[-1]['loss']:.4f}" if loss else DASH,
                     f"{ev[-1]['eval_loss']:.4f}" if ev else DASH, str(diverged.get(run, DASH))])
    if not rows:
        return None
    return Table("Training", ["Run", "last step", "first loss", "last loss", "last eval loss", "diverged at step"],
                 rows)


# ------------------------------------------------------------------------------------------------ plots


def new_figure(w: float = 7.0, h: float = 4.5) -> Any:
    """A figure on the Agg canvas, without pyplot (no global state, no display needed)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=100, layout="constrained")


def save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def err(v: float, c: list[float]) -> list[list[float]]:
    """Asymmetric error bar (in %) from a CI."""
    return [[100 * max(0.0, v - c[0])], [100 * max(0.0, c[1] - v)]]


def plot_tradeoff(summary: dict[str, Any], path: Path) -> Path | None:
    """EX (y) vs MMLU (x), one point per model with CI bars; frontier joined, baseline a star, λ curves dotted."""
    t = summary["tradeoff"]
    if not t["points"]:
        return None
    fig = new_figure()
    ax = fig.add_subplot()
    front = set(t["frontier"])
    for p in t["points"]:
        colour = "tab:red" if p["key"] in front else "tab:gray"
        marker = "*" if p["key"] == summary["baseline"] else "o"
        ax.errorbar(100 * p["mmlu"], 100 * p["ex"], xerr=err(p["mmlu"], p["mmlu_ci"]), yerr=err(p["ex"], p["ex_ci"]),
                    fmt=marker, color=colour, ms=12 if marker == "*" else 6, capsize=3, alpha=0.85)
        ax.annotate(p["key"], (100 * p["mmlu"], 100 * p["ex"]), textcoords="offset points", xytext=(5, 5), fontsize=8)
    for run, pts in interpolation_paths(t["points"], summary["baseline"]).items():
        ax.plot([100 * p["mmlu"] for p in pts], [100 * p["ex"] for p in pts], ":", color="tab:blue", lw=1,
                label=f"{run}: LoRA scale λ 0 → 1")
    fp = sorted((p for p in t["points"] if p["key"] in front), key=lambda p: p["mmlu"])
    ax.plot([100 * p["mmlu"] for p in fp], [100 * p["ex"] for p in fp], "-", color="tab:red", lw=1.5,
            label="Pareto frontier")
    pick = summary["budget"]["pick"]
    for p in t["points"]:
        if p["key"] == pick:
            ax.scatter([100 * p["mmlu"]], [100 * p["ex"]], s=250, facecolors="none", edgecolors="tab:green", lw=2,
                       label=f"pick (MMLU drop ≤ {summary['budget']['max_mmlu_drop_points']:g} pts)")
    ax.set_xlabel("MMLU accuracy (%)")
    ax.set_ylabel(f"Execution accuracy on spider-{t['split']} (%)")
    ax.set_title("Gain vs cost (95% CI bars; ★ = baseline)")
    ax.legend(fontsize=8, loc="best")
    return save(fig, path)


def interpolation_paths(points: list[dict[str, Any]], baseline: str | None) -> dict[str, list[dict[str, Any]]]:
    """Per run with λ points: baseline (λ=0), its λ points in order, the run itself (λ=1) — one WiSE-FT curve."""
    by_key = {p["key"]: p for p in points}
    paths: dict[str, list[dict[str, Any]]] = {}
    for p in points:
        if p["kind"] == "interpolation" and p["run"] in by_key:
            paths.setdefault(p["run"], []).append(p)
    out = {}
    for run, pts in paths.items():
        start = [by_key[baseline]] if baseline in by_key else []
        out[run] = start + sorted(pts, key=lambda p: p["lambda"]) + [by_key[run]]
    return out


def plot_curves(summary: dict[str, Any], path: Path) -> Path | None:
    """EX and MMLU over training steps per run (learning and forgetting), baseline dashed."""
    split = summary["tradeoff"]["split"]
    runs: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for m in summary["models"].values():
        if m["kind"] in ("checkpoint", "run") and m["step"] is not None:
            runs[m["run"] or "?"].append((m["step"], m))
    runs = {r: sorted(v, key=lambda x: x[0]) for r, v in runs.items() if len(v) >= 1}
    if not runs or not any(len(v) > 1 for v in runs.values()):
        return None
    fig = new_figure(10, 4)
    axes = fig.subplots(1, 2)
    base = summary["models"].get(summary["baseline"] or "", {})
    for ax, label, get in ((axes[0], f"EX spider-{split} (%)", lambda m: (m["ex"].get(split) or {}).get(
            "accuracy")), (axes[1], "MMLU (%)", lambda m: (m["mmlu"] or {}).get("accuracy"))):
        for run, seq in runs.items():
            xs = [s for s, m in seq if get(m) is not None]
            ys = [100 * get(m) for s, m in seq if get(m) is not None]
            ax.plot(xs, ys, "o-", label=run)
        if base and get(base) is not None:
            ax.axhline(100 * get(base), ls="--", color="k", lw=1, label="baseline")
        ax.set_xlabel("training step")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    axes[0].set_title("Learning")
    axes[1].set_title("Forgetting")
    return save(fig, path)


def plot_hardness(summary: dict[str, Any], path: Path) -> Path | None:
    """EX by Spider hardness, grouped bars per model."""
    split = summary["tradeoff"]["split"]
    raw = {k: r for k, r in summary["_raw_hardness"].items() if r}
    levels = [h for h in HARDNESS if any(h in r for r in raw.values())]
    if not levels:
        return None
    fig = new_figure(min(11.0, max(7.0, 0.35 * len(levels) * len(raw))), 4.5)
    ax = fig.add_subplot()
    width = 0.8 / len(raw)
    for i, (key, r) in enumerate(raw.items()):
        ax.bar([j + i * width for j in range(len(levels))],
               [100 * float(r.get(h, {}).get("accuracy", 0.0)) for h in levels], width, label=key)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(levels))], levels)
    ax.set_ylabel(f"EX spider-{split} (%)")
    ax.set_title("Execution accuracy by hardness")
    ax.legend(fontsize=7, ncols=2)
    return save(fig, path)


def plot_errors(summary: dict[str, Any], path: Path) -> Path | None:
    """Failed predictions by error type, stacked per model."""
    counts = summary["_raw_errors"]
    types = [t for t in ERROR_TYPES if any(c.get(t) for c in counts.values())]
    types += sorted({t for c in counts.values() for t in c} - {*ERROR_TYPES, "correct", "gold_error"})
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
    ax.set_ylabel("failed examples")
    ax.set_title(f"Error types (spider-{summary['tradeoff']['split']})")
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


def make_plots(plot_dir: Path, summary: dict[str, Any], histories: dict[str, list[dict[str, Any]]]) -> list[Path]:
    """All plots that have data; stale PNGs of an earlier report are removed first."""
    plot_dir.mkdir(parents=True, exist_ok=True)
    for old in plot_dir.glob("*.png"):
        old.unlink()
    made = [plot_tradeoff(summary, plot_dir / "tradeoff.png"), plot_curves(summary, plot_dir / "curves.png"),
            plot_hardness(summary, plot_dir / "hardness.png"), plot_errors(summary, plot_dir / "errors.png"),
            plot_loss(histories, plot_dir / "loss.png")]
    return [p for p in made if p is not None]


# ------------------------------------------------------------------------------------------------ rendering


def md_cell(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def table_md(t: Table) -> str:
    lines = [f"### {t.title}", "", "| " + " | ".join(md_cell(c) for c in t.columns) + " |",
             "|" + "---|" * len(t.columns)]
    lines += ["| " + " | ".join(md_cell(c) for c in r) + " |" for r in t.rows]
    if t.note:
        lines += ["", f"*{t.note}*"]
    return "\n".join(lines)


def table_html(t: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in t.columns)
    body = []
    for i, r in enumerate(t.rows):
        cls = t.row_classes[i] if i < len(t.row_classes) and t.row_classes[i] else ""
        attr = f' class="{cls}"' if cls else ""
        body.append(f"<tr{attr}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>")
    note = f'<p class="note">{html.escape(t.note)}</p>' if t.note else ""
    return (f"<h3>{html.escape(t.title)}</h3>\n<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
            + "\n".join(body) + f"\n</tbody>\n</table>\n{note}")


def render_md(title: str, sections: list[Section], root: Path) -> str:
    out = [f"# {title}", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        out += [p + "\n" for p in s.paragraphs]
        out += [table_md(t) + "\n" for t in s.tables]
        out += [f"![{p.stem}]({p.relative_to(root).as_posix()})\n" for p in s.plots]
    return "\n".join(out)


CSS = """body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}table{border-collapse:collapse;margin:.6em 0 1.4em;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f2f2f2}
tr.total td{font-weight:600}tr.frontier td{background:#eaf6ea}tr.pick td{background:#cfeccf;font-weight:600}
tr.failure td{background:#fde3e1}img{max-width:100%;border:1px solid #eee;margin:.5em 0}
.note{color:#555;font-size:12px;margin-top:-1em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em}"""


def img_html(p: Path) -> str:
    """The PNG inlined as a data URI, so the HTML file stands alone."""
    data = base64.b64encode(p.read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(p.stem)}" src="data:image/png;base64,{data}"></figure>'


def render_html(title: str, sections: list[Section]) -> str:
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body>\n<h1>{html.escape(title)}</h1>"]
    for s in sections:
        parts.append(f"<section><h2>{html.escape(s.title)}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in s.paragraphs]
        parts += [table_html(t) for t in s.tables]
        parts += [img_html(p) for p in s.plots]
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------ assembly


def raw_hardness_and_errors(summary: dict[str, Any], models: list[Model]) -> None:
    """Attach the per-model hardness and error-type blocks of the primary split (plots only; not in summary.json)."""
    split = summary["tradeoff"]["split"]
    summary["_raw_hardness"] = {m.key: m.spider[split].get("by_hardness", {}) for m in models if split in m.spider}
    summary["_raw_errors"] = {m.key: m.spider[split].get("by_error_type", {}) for m in models if split in m.spider}


def headline(summary: dict[str, Any]) -> list[str]:
    """One sentence per fine-tuned model on the primary split: EX gain and MMLU cost with their verdicts."""
    split, out = summary["tradeoff"]["split"], []
    for key, m in summary["models"].items():
        e, mm = m["ex"].get(split), m["mmlu"]
        if m["kind"] == "baseline" or e is None or e["delta_points"] is None:
            continue
        s = f"{key}: EX {pct(e['accuracy'])} ({pts(e['delta_points'])} pts vs baseline, " \
            f"{(e['vs_baseline'] or {}).get('label', 'untested')})"
        diverged = summary.get("diverged", {}).get(m.get("run") or "")
        if diverged is not None:
            s += f"; training diverged at step {diverged} (NaN loss/gradient): a broken adapter, not a result"
        elif mm and mm["scorer_failure"]:
            s += "; MMLU below chance: scorer failure, not forgetting"
        elif mm and mm["delta_points"] is not None:
            s += f"; MMLU {pct(mm['accuracy'])} ({pts(mm['delta_points'])} pts, " \
                 f"{(mm['vs_baseline'] or {}).get('label', 'untested')})"
        out.append(s + ".")
    evaluated = {m.get("run") for m in summary["models"].values()}
    for run, step in summary.get("diverged", {}).items():
        if run not in evaluated:
            out.append(f"{run}: training diverged at step {step} (NaN loss/gradient); stopped and not evaluated.")
    return out


def build_sections(summary: dict[str, Any], models: list[Model], plots: dict[str, Path],
                   histories: dict[str, list[dict[str, Any]]]) -> list[Section]:
    """The report's sections in reading order; empty parts are left out."""
    split = summary["tradeoff"]["split"]
    keep = lambda *ts: [t for t in ts if t is not None]  # noqa: E731
    best = best_finetuned(models, split) if split else None
    secs = [Section("Summary", headline(summary) or ["No fine-tuned model to compare with a baseline."]),
            Section("Gain: execution accuracy", tables=keep(ex_table(summary), pairwise_table(summary))),
            Section("Cost: MMLU", tables=keep(mmlu_table(summary), letter_table(summary))),
            Section("Trade-off", frontier_text(summary), keep(frontier_table(summary)),
                    [plots[n] for n in ("tradeoff", "curves") if n in plots]),
            Section("Robustness", tables=keep(robustness_table(summary))),
            Section("Error analysis", tables=keep(error_table(models, split) if split else None,
                                                  error_examples_table(best, split) if best else None),
                    plots=[plots[n] for n in ("hardness", "errors") if n in plots]),
            Section("Generation health", tables=keep(generation_table(summary))),
            Section("Coverage", tables=[coverage_table(summary)]),
            Section("Training", tables=keep(training_table(histories, summary.get("diverged", {}))), plots=[plots["loss"]] if "loss" in plots else [])]
    return [s for s in secs if s.paragraphs or s.tables or s.plots]


def summary_for_json(summary: dict[str, Any]) -> dict[str, Any]:
    """summary.json lists models in report order, each carrying its ``key`` (what ``print_summary`` reads)."""
    return {**summary, "models": [{"key": k, **m} for k, m in summary["models"].items()]}


def build_report(run_dir: str | Path, max_mmlu_drop: float = 2.0, alpha: float = ALPHA) -> dict[str, Path]:
    """Write report.md, report.html, summary.json and plots/*.png into ``run_dir``; returns name -> path."""
    run_dir = Path(run_dir)
    models = load_models(run_dir)
    histories = load_log_histories(run_dir)
    summary = build_summary(run_dir, models, max_mmlu_drop, alpha)
    raw_hardness_and_errors(summary, models)
    plots = {p.stem: p for p in make_plots(run_dir / "plots", summary, histories)}
    for k in ("_raw_hardness", "_raw_errors"):
        summary.pop(k)
    sections = build_sections(summary, models, plots, histories)
    title = f"sqlshift report: {run_dir.name}"
    out = {"report.md": run_dir / "report.md", "report.html": run_dir / "report.html",
           "summary.json": run_dir / "summary.json"}
    out["report.md"].write_text(render_md(title, sections, run_dir), encoding="utf-8")
    out["report.html"].write_text(render_html(title, sections), encoding="utf-8")
    out["summary.json"].write_text(json.dumps(summary_for_json(summary), indent=2, default=str) + "\n",
                                   encoding="utf-8")
    out.update({f"plots/{p.name}": p for p in plots.values()})
    return out
