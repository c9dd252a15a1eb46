"""Sections that only some kinds of benchmark have: text-to-SQL hardness, error taxonomy and examples;
multiple-choice answer habits and categories; generation health of everything that generates.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from sqlshift.sql.execution import ERROR_TYPES
from sqlshift.sql.hardness import LEVELS
from sqlshift.stats import accuracy_summary
from sqlshift.report.load import BenchResult, Model, Study
from sqlshift.report.render import Table
from sqlshift.report.stats import ALPHA, DASH, acc_ci, fmt_ci, pct, pts, pval, paired_test
from sqlshift.report.tables import base_entry, label
from sqlshift.report.words import collapsed, compare_words, one_answer, one_answer_flag, option_name

SECONDARY = ("headline", "accuracy_raw", "accuracy_norm", "prior_corrected_accuracy", "interaction_accuracy",
             "prompt_level_strict", "prompt_level_loose", "inst_level_strict", "inst_level_loose")


def text2sql_folder(study: Study) -> str | None:
    """The text-to-SQL benchmark the kind sections describe: the specialty when it is one, else the first."""
    folders = [f for f in study.folders() if (meta := study.meta(f)) and meta.kind == "text2sql"]
    return study.specialty if study.specialty in folders else (folders[0] if folders else None)


def by_hardness(b: BenchResult) -> dict[str, dict[str, Any]]:
    """Accuracy per hardness level: from metrics.json, or from the rows when it lacks them."""
    if b.metrics.get("by_hardness"):
        return b.metrics["by_hardness"]
    groups: dict[str, list[bool]] = defaultdict(list)
    for r in b.rows:
        if r.get("error_type") != "gold_error":
            groups[str(r.get("hardness") or "unknown")].append(bool(r["correct"]))
    return {h: accuracy_summary(v) for h, v in groups.items()}


def hardness_table(study: Study, summary: dict[str, Any], folder: str) -> Table | None:
    """Accuracy with CI and n per hardness level per model."""
    data = {m.key: by_hardness(m.benches[folder]) for m in study.models if folder in m.benches}
    levels = [h for h in LEVELS if any(h in d for d in data.values())]
    levels += sorted({h for d in data.values() for h in d} - set(LEVELS))
    if not levels:
        return None
    rows = [[k, *(f"{acc_ci(d[h]['accuracy'], d[h]['ci95'])} (n={d[h]['n']})" if h in d and d[h].get("n")
                  else DASH for h in levels)] for k, d in data.items()]
    return Table(f"{label(summary, folder)} by hardness", ["Model", *levels], rows,
                 note="Accuracy, 95% Wilson CI and n per Spider hardness level (— where a level has no items).")


def error_table(study: Study, summary: dict[str, Any], folder: str) -> Table | None:
    """Outcome counts by error type × hardness per model (gold failures excluded, as from n)."""
    rows: list[tuple[str, str, Counter[str]]] = []
    for m in study.models:
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for r in m.benches[folder].rows if folder in m.benches else []:
            if r.get("error_type") != "gold_error":
                counts[str(r.get("error_type"))][str(r.get("hardness") or "unknown")] += 1
        for et in [*ERROR_TYPES, *sorted(set(counts) - set(ERROR_TYPES))]:
            if counts.get(et):
                rows.append((m.key, et, counts[et]))
    if not rows:
        return None
    levels = [*LEVELS, *sorted({h for _, _, c in rows for h in c} - set(LEVELS))]
    return Table(f"{label(summary, folder)}: outcomes by error type and hardness", ["Model", "Outcome", *levels,
                                                                                   "total"],
                 [[k, et, *(str(c.get(h, 0)) for h in levels), str(sum(c.values()))] for k, et, c in rows])


def best_finetuned(study: Study, folder: str) -> Model | None:
    """The non-baseline model with the highest accuracy on ``folder``."""
    cands = [m for m in study.models if m.kind != "baseline" and folder in m.benches]
    return max(cands, key=lambda m: m.benches[folder].accuracy, default=None)


def clip(s: Any, n: int = 220) -> str:
    s = "" if s is None else str(s)
    return s if len(s) <= n else s[: n - 1] + "…"


def error_examples_table(model: Model, summary: dict[str, Any], folder: str, per_type: int = 3) -> Table | None:
    """Up to ``per_type`` failed items of each error type, to read what went wrong."""
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in model.benches[folder].rows:
        et = str(r.get("error_type"))
        if et not in ("correct", "gold_error", "None") and len(by_type[et]) < per_type:
            by_type[et].append(r)
    rows = [[et, clip(r.get("question")), clip(r.get("gold_sql")), clip(r.get("pred_sql")), clip(r.get("error"))]
            for et in sorted(by_type) for r in by_type[et]]
    if not rows:
        return None
    return Table(f"Error examples of {model.key} ({label(summary, folder)})",
                 ["Error type", "Question", "Gold", "Prediction", "Error"], rows)


def text2sql_tables(study: Study, summary: dict[str, Any]) -> list[Table]:
    folder = text2sql_folder(study)
    if folder is None:
        return []
    best = best_finetuned(study, folder)
    made = [hardness_table(study, summary, folder), error_table(study, summary, folder),
            error_examples_table(best, summary, folder) if best else None]
    return [t for t in made if t is not None]


# ------------------------------------------------------------------------------------------------ multiple choice


def habit_table(study: Study, summary: dict[str, Any]) -> Table | None:
    """Per multiple-choice benchmark and model: the most frequent answer, its share, chance, the flag."""
    rows, classes = [], []
    for f in study.folders():
        for m in study.models:
            b = m.benches.get(f)
            if b is None or b.kind != "multiple_choice":
                continue
            counts = b.metrics.get("pred_counts") or b.metrics.get("pred_position_counts") or {}
            total = sum(int(v) for v in counts.values())
            top = max(counts.items(), key=lambda kv: int(kv[1])) if counts else None
            flag = one_answer(b)
            rows.append([label(summary, f), m.key, pct(b.accuracy), pct(b.metrics.get("chance")),
                         option_name(top[0], b.metrics.get("option_labels")) if top else DASH, pct(int(top[1]) / total) if top and total else DASH,
                         one_answer_flag(flag, collapsed(summary["models"][m.key]["benchmarks"][f],
                                                         base_entry(summary, f))) or DASH])
            classes.append("failure" if flag else "")
    if not rows:
        return None
    return Table("Most frequent answer", ["Benchmark", "Model", "Accuracy", "Chance", "most frequent answer",
                                          "its share", "Flag"], rows, row_classes=classes)


def letter_habit(b: BenchResult) -> dict[str, Any] | None:
    """MMLU letter counts and prior-corrected accuracy: from metrics.json, or computed from the rows."""
    from sqlshift.benchmarks.mmlu_prompts import letter_bias

    out = {k: b.metrics.get(k) for k in ("pred_counts", "gold_counts", "prior_corrected_accuracy")}
    if b.rows and all({"pred", "gold"} <= r.keys() for r in b.rows) and None in out.values():
        computed = letter_bias(b.rows)
        out = {k: v if v is not None else computed.get(k) for k, v in out.items()}
    return out if out["pred_counts"] and out["gold_counts"] else None


def letter_table(study: Study, summary: dict[str, Any]) -> Table | None:
    """How often each model answers each letter, and its accuracy with that habit divided out."""
    rows, gold = [], None
    for f in study.folders():
        for m in study.models:
            b = m.benches.get(f)
            lt = letter_habit(b) if b is not None and b.benchmark == "mmlu" else None
            if not lt:
                continue
            letters = sorted(lt["pred_counts"])
            n = sum(lt["pred_counts"].values()) or 1
            gold = gold or (f, lt["gold_counts"])
            rows.append([label(summary, f), m.key, *(pct(lt["pred_counts"][L] / n) for L in letters), pct(b.accuracy),
                         pct(lt.get("prior_corrected_accuracy"))])
    if not rows or gold is None:
        return None
    letters = sorted(gold[1])
    ng = sum(gold[1].values()) or 1
    rows.append([label(summary, gold[0]), "(gold answers)", *(pct(gold[1][L] / ng) for L in letters), DASH, DASH])
    return Table("Letter habit", ["Benchmark", "Model", *(f"answers {L}" for L in letters), "Accuracy",
                                  "Letter prior removed"], rows,
                 note="'Letter prior removed': each letter's probability divided by the model's mean probability of "
                      "that letter. A change that survives it is about the questions; one that does not is a habit.")


def category_table(study: Study, summary: dict[str, Any]) -> Table | None:
    """Per category (rows carrying ``category``): accuracy with CI, Δ vs baseline and its test paired by id."""
    base, rows = study.baseline, []
    for f in study.folders():
        for m in study.models:
            b = m.benches.get(f)
            cats = (b.metrics.get("by_category") or {}) if b is not None and b.kind == "multiple_choice" else {}
            for cat, c in sorted(cats.items()):
                ref = base.benches.get(f) if base is not None and base is not m else None
                t = paired_test(ref.outcomes({"category": cat}), b.outcomes({"category": cat}), ALPHA) if ref else None
                rows.append([label(summary, f), m.key, cat, pct(c.get("accuracy")), str(c.get("n", DASH)),
                             fmt_ci(c.get("ci95")), pts(t["diff_points"]) if t else DASH,
                             pval(t["p_value"]) if t else DASH, compare_words(t) if t else DASH])
    if not rows:
        return None
    cols = ["Benchmark", "Model", "Category", "Accuracy", "n", "95% CI", "Δ vs baseline (pts)", "McNemar p",
            "vs baseline"]
    if all(r[6] == DASH for r in rows):  # nothing compared (a baseline-only study): scores only
        return Table("By category", cols[:6], [r[:6] for r in rows])
    return Table("By category", cols, rows)


def multiple_choice_tables(study: Study, summary: dict[str, Any]) -> list[Table]:
    made = [habit_table(study, summary), letter_table(study, summary), category_table(study, summary)]
    return [t for t in made if t is not None]


# ------------------------------------------------------------------------------------------------ all kinds


def generation_table(study: Study, summary: dict[str, Any]) -> Table | None:
    """Outputs cut by the token limit, extracted oddly, empty...: whatever each benchmark's ``generation`` counts."""
    found = [(m.key, f, b.metrics["generation"]) for m in study.models for f, b in m.benches.items()
             if isinstance(b.metrics.get("generation"), dict)]
    fields = list(dict.fromkeys(k for _, _, g in found for k in g if k != "n"))
    if not found:
        return None

    rows = [[key, label(summary, f), str(g.get("n", DASH)), *(health_cell(k, g.get(k), int(g.get("n") or 0))
                                                             for k in fields)] for key, f, g in found]
    return Table("Outputs per benchmark", ["Model", "Benchmark", "n", *(k.replace("_", " ") for k in fields)], rows,
                 note="Many outputs at the token limit, empty, or needing unusual extraction point at the prompt or "
                      "decoding, not at what the model knows.")


def health_cell(field: str, value: Any, n: int) -> str:
    """A count with its share of n (``3 (7.3%)``); a mean or other measure (``mean_tokens``) as the number it is."""
    if value is None:
        return DASH
    if field.startswith(("mean_", "median_", "max_", "min_")) or not isinstance(value, int) or isinstance(value, bool):
        return f"{value:.1f}" if isinstance(value, float) else str(value)
    return f"{value} ({100 * value / n:.1f}%)" if n else str(value)


def secondary_table(study: Study, summary: dict[str, Any]) -> Table | None:
    """Scores benchmarks report beside their headline accuracy (raw/normalised, strict/loose, per interaction)."""
    found = [(m.key, f, b.metrics) for m in study.models for f, b in m.benches.items()
             if any(b.metrics.get(k) is not None for k in SECONDARY)]
    fields = [k for k in SECONDARY if any(mt.get(k) is not None for _, _, mt in found)]
    if not found:
        return None

    def cell(v: Any) -> str:
        return DASH if v is None else pct(v) if isinstance(v, (int, float)) else str(v)

    rows = [[key, label(summary, f), *(cell(mt.get(k)) for k in fields)] for key, f, mt in found]
    return Table("Secondary scores", ["Model", "Benchmark", *(k.replace("_", " ") for k in fields)], rows,
                 note="'headline' names which score the benchmark reports as its accuracy.")
