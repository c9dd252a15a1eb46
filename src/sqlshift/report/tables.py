"""Tables every benchmark gets the same way: accuracy with CI and paired test per benchmark, the forgetting table
and composite score, run-vs-run tests, robustness across text-to-SQL benchmarks, training noise, coverage, training.
"""

from __future__ import annotations

import math
from typing import Any

from sqlshift.report.load import Study
from sqlshift.report.render import Table
from sqlshift.report.stats import DASH, acc_ci, fmt_ci, pct, pts, pval
from sqlshift.report.words import (CI_METHOD, collapsed, compare_words, composite_words, generality_words,
                                   one_answer_flag, uninformative)

DELTA_NOTE = (f"Δ in points vs the baseline; its 95% CI is {CI_METHOD}; p is the exact McNemar test on the "
              "items both models answered (matched by id). Accuracy CIs are Wilson intervals.")


def label(summary: dict[str, Any], folder: str) -> str:
    return summary["benchmarks"].get(folder, {}).get("label", folder)


def folders_on(summary: dict[str, Any], axis: str) -> list[str]:
    """Benchmark folders on one axis; the configured generality ones count as generality whatever they say."""
    if axis == "generality":
        rest = [f for f, b in summary["benchmarks"].items() if b["axis"] == "generality" and f != summary["specialty"]]
        return list(dict.fromkeys([*summary["generality"], *rest]))
    gen = set(folders_on(summary, "generality"))
    return [f for f in summary["benchmarks"] if f not in gen]


def base_entry(summary: dict[str, Any], folder: str) -> dict[str, Any] | None:
    """The baseline's entry for one benchmark (None without a baseline or without that benchmark)."""
    return summary["models"].get(summary["baseline"] or "", {}).get("benchmarks", {}).get(folder)


def delta_cells(e: dict[str, Any]) -> list[str]:
    """Δ, its paired CI and p of one benchmark entry (dashes for the baseline)."""
    t = e["vs_baseline"]
    return [pts(e["delta_points"]), fmt_ci(t["diff_ci95"], scale=1.0) if t else DASH, pval(t["p_value"]) if t else DASH]


def benchmark_table(summary: dict[str, Any], folder: str) -> Table | None:
    """One benchmark, one row per model: accuracy, n, CI, Δ vs baseline with its paired CI and test."""
    rows, base = [], base_entry(summary, folder)
    for key, m in summary["models"].items():
        e = m["benchmarks"].get(folder)
        if e is None:
            continue
        reading = uninformative(e, base) or compare_words(e["vs_baseline"]) if e["vs_baseline"] else DASH
        rows.append([key, pct(e["accuracy"]), f"{e['n_correct']}/{e['n']}", fmt_ci(e["ci95"]), *delta_cells(e),
                     reading, one_answer_flag(e["one_answer"], collapsed(e, base)) or DASH])
    if not rows:
        return None
    cols = ["Model", "Accuracy", "correct/n", "95% CI", "Δ vs baseline (pts)", "95% CI of Δ", "McNemar p",
            "vs baseline", "Flag"]
    if not compared(summary, [folder]):
        return Table(label(summary, folder), *scores_only(cols, rows, 4), note=ALONE_NOTE)
    return Table(label(summary, folder), cols, rows, note=DELTA_NOTE)


ALONE_NOTE = "Accuracy CIs are Wilson intervals. No model is compared with a baseline here, so no Δ columns."


def compared(summary: dict[str, Any], folders: list[str]) -> bool:
    """Whether any model has a paired comparison with the baseline on these benchmarks (a Δ column to show)."""
    return any((m["benchmarks"].get(f) or {}).get("vs_baseline") for m in summary["models"].values() for f in folders)


def scores_only(cols: list[str], rows: list[list[str]], first_delta: int) -> tuple[list[str], list[list[str]]]:
    """The table without its Δ / test / reading columns (``first_delta`` up to the last, the flag, kept)."""
    cut = len(cols) - 1
    return cols[:first_delta] + cols[cut:], [r[:first_delta] + r[cut:] for r in rows]


def forgetting_table(summary: dict[str, Any]) -> Table | None:
    """One row per generality benchmark × model, with the reading each test supports and validity flags."""
    rows, classes = [], []
    for f in folders_on(summary, "generality"):
        for key, m in summary["models"].items():
            e = m["benchmarks"].get(f)
            if e is None:
                continue
            base = base_entry(summary, f)
            flag = one_answer_flag(e["one_answer"], collapsed(e, base))
            if e["scorer_failure"]:
                flag = f"SCORER FAILURE: below chance (p={pval(e['below_chance_p'])}), not forgetting"
            reading = uninformative(e, base) or generality_words(e["vs_baseline"]) if e["vs_baseline"] else DASH
            rows.append([label(summary, f), key, pct(e["accuracy"]), str(e["n"]), fmt_ci(e["ci95"]), *delta_cells(e),
                         reading, flag or DASH])
            classes.append("failure" if flag else "")
    if not rows:
        return None
    cols = ["Benchmark", "Model", "Accuracy", "n", "95% CI", "Δ vs baseline (pts)", "95% CI of Δ", "McNemar p",
            "Reading", "Flag"]
    flag_note = (" A model that gives one answer to ≥ 90% of items is flagged: where the baseline does not, it"
                 " collapsed (it lost the ability to answer); where the baseline does too, the benchmark says nothing.")
    if not compared(summary, folders_on(summary, "generality")):
        return Table("Generality scores", *scores_only(cols, rows, 5), note=ALONE_NOTE + flag_note,
                     row_classes=classes)
    return Table("Forgetting table", cols, rows, note=DELTA_NOTE + flag_note, row_classes=classes)


def composite_table(summary: dict[str, Any]) -> Table | None:
    """The composite generality score per model: mean Δ over the configured benchmarks, bootstrap CI."""
    if not summary["composite"]:
        return None
    rows = []
    for key, m in summary["models"].items():
        c = m["composite"]
        if c is None:
            continue
        names = ", ".join(label(summary, f) for f in c["benchmarks"])
        rows.append([key, pts(c["delta_points"]), fmt_ci(c["ci95"], scale=1.0), names, composite_words(c)])
    if not rows:
        return None
    comp = summary["methods"]["composite_ci"]
    return Table("Composite generality score", ["Model", "mean Δ (pts)", "95% CI", "over", "Reading"], rows,
                 note=f"Mean over benchmarks of Δ vs the baseline, each on its paired items; CI: {comp} "
                      "(each benchmark's items resampled separately).")


PAIR_COLUMNS = ["n paired", "Δ (B − A, pts)", "95% CI of Δ", "only A right / only B right", "McNemar p", "Reading"]


def pair_cells(t: dict[str, Any]) -> list[str]:
    """The cells of one run-against-run test (``a``, ``b`` and :func:`paired_test`'s fields), as PAIR_COLUMNS."""
    return [str(t["n_paired"]), pts(t["diff_points"]), fmt_ci(t["diff_ci95"], scale=1.0),
            f"{t['a_only']} / {t['b_only']}", pval(t["p_value"]), f"{t['b']} {compare_words(t)}"]


def pairwise_table(summary: dict[str, Any]) -> Table | None:
    """Every two final runs, per benchmark, paired by item id."""
    rows = [[f"{t['a']} vs {t['b']}", label(summary, f), *pair_cells(t)]
            for f, tests in summary["pairwise"].items() for t in tests]
    if not rows:
        return None
    return Table("Run against run", ["Comparison (A vs B)", "Benchmark", *PAIR_COLUMNS], rows)


def robustness_table(summary: dict[str, Any]) -> Table | None:
    """Every text-to-SQL specialty benchmark per model, each vs the baseline on its own items."""
    folders = [f for f in folders_on(summary, "specialty") if summary["benchmarks"][f]["kind"] == "text2sql"]
    if len(folders) < 2:
        return None
    rows = []
    for key, m in summary["models"].items():
        row = [key]
        for f in folders:
            e = m["benchmarks"].get(f)
            t = e["vs_baseline"] if e else None
            test = f"; {pts(e['delta_points'])} pts, {compare_words(t)}" if t else ""
            row.append(f"{acc_ci(e['accuracy'], e['ci95'])} (n={e['n']}{test})" if e else DASH)
        rows.append(row)
    return Table("Text-to-SQL benchmarks side by side", ["Model", *(label(summary, f) for f in folders)], rows,
                 note="Each cell: accuracy, 95% CI, n, and the change vs the baseline on the same benchmark, paired "
                      "by item id. Benchmarks have different items, so compare them only through these changes.")


def noise_table(summary: dict[str, Any]) -> Table | None:
    """Seed-to-seed mean, SD and range per replica group and benchmark, beside the paired-test CI half-width."""
    rows = []
    for f, nb in summary["noise"]["by_benchmark"].items():
        name = "composite Δ" if f == "composite" else label(summary, f)
        for g, s in nb["groups"].items():
            half = s["paired_ci_halfwidth"]
            rows.append([g, ", ".join(summary["noise"]["groups"][g]), name, str(len(s["values"])),
                         ", ".join(f"{v:.1f}" for v in s["values"]), f"{s['mean']:.1f}",
                         DASH if s["sd"] is None else f"{s['sd']:.1f}", f"{s['range']:.1f}",
                         DASH if half is None else f"±{half:.1f}"])
    if not rows:
        return None
    return Table("Seed-to-seed spread", ["Group", "Runs", "Benchmark", "seeds", "values (%, or pts)", "mean", "SD",
                                         "range (pts)", "paired-test 95% CI of Δ vs baseline (mean half-width)"],
                 rows, note="Runs that differ only in the training seed. A difference between configurations "
                            "smaller than the range here may be training noise even when a paired test calls it "
                            "significant: the paired test sees item noise only, not seed noise.")


def coverage_table(study: Study, summary: dict[str, Any]) -> Table:
    """What was evaluated, what was skipped and why, which gold answers failed: never silent."""
    rows = []
    for m in study.models:
        for f, b in ((f, m.benches[f]) for f in study.folders() if f in m.benches):
            mt = b.metrics
            reasons = ", ".join(f"{n} {r}" for r, n in sorted((mt.get("skip_reasons") or {}).items())) or DASH
            gold = mt.get("gold_failed") or []
            gold_s = str(mt.get("n_gold_failed", len(gold))) + (
                f" (ids {', '.join(map(str, gold[:20]))})" if gold else "")
            req = mt.get("n_requested")
            rows.append([m.key, label(summary, f), str(b.n), DASH if req is None else str(req),
                         str(mt.get("n_skipped", 0)), reasons, gold_s])
    return Table("Coverage: evaluated, skipped and gold failures",
                 ["Model", "Benchmark", "n evaluated", "n requested", "n skipped", "skip reasons", "gold failures"],
                 rows, note="Skipped items (e.g. missing databases) and gold answers that fail are excluded from n.")


def training_table(study: Study, diverged: dict[str, int]) -> Table | None:
    """First/last training loss, last eval loss and the divergence step per run; failed runs too."""
    rows = []
    for run, hist in study.histories.items():
        loss = [r for r in hist if "loss" in r]
        ev = [r for r in hist if "eval_loss" in r]
        rows.append([run, str(max((r.get("step", 0) for r in hist), default=0)), loss_cell(loss[:1], "loss"),
                     loss_cell(loss[-1:], "loss"), loss_cell(ev[-1:], "eval_loss"), str(diverged.get(run, DASH)),
                     study.failures.get(run, DASH)])
    rows += [[run, DASH, DASH, DASH, DASH, DASH, msg] for run, msg in study.failures.items()
             if run not in study.histories]
    if not rows:
        return None
    return Table("Loss per run", ["Run", "last step", "first loss", "last loss", "last eval loss",
                                  "diverged at step", "failure"], rows)


def training_cost_table(study: Study) -> Table | None:
    """What each run's training cost, from its own process: method, trainable parameters, steps, wall time, real
    (non-padding) tokens per second and peak allocated GPU memory (runs trained at once share the GPU's time, so
    their speeds are lower than alone)."""
    rows = []
    for run, f in study.train_facts.items():
        sp, m = f["speed"], f["model"]
        method = ("QLoRA" if m.get("load_in_4bit") else "LoRA") + f" r={f['lora_r']}" if f["lora_r"] else "full"
        # a count taken before LoRA wrapped the model (every weight, older run directories) is not a LoRA's count
        known = isinstance(m.get("trainable"), int) and not (f["lora_r"] and m["trainable"] == m.get("parameters"))
        rows.append([run, method, f"{m['trainable']:,}" if known else DASH,
                     str(sp.get("steps", DASH)), num(sp.get("wall_s"), ".1f"), num(sp.get("real_tokens_per_s"), ",.0f"),
                     num(sp.get("peak_gpu_gib"), ".1f"), f["path"] or DASH])
    if not rows:
        return None
    return Table("Training cost per run", ["Run", "method", "trainable parameters", "steps", "wall (s)",
                                           "real tokens/s", "peak GPU (GiB)", "path"], rows)


def num(v: Any, spec: str) -> str:
    return format(v, spec) if isinstance(v, (int, float)) and math.isfinite(v) else DASH


def loss_cell(recs: list[dict[str, Any]], key: str) -> str:
    if not recs:
        return DASH
    v = recs[0][key]
    return f"{v:.4f}" if isinstance(v, (int, float)) and math.isfinite(v) else str(v)
