"""The report's sections in reading order, from the summary and the study; empty sections are left out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlshift.report.kinds as kinds
import sqlshift.report.multiturn as multiturn
import sqlshift.report.robustness as robustness
import sqlshift.report.tables as tables
from sqlshift.report.decoding import decoding_table
from sqlshift.report.frontier import frontier_table, frontier_text
from sqlshift.report.load import Study
from sqlshift.report.render import Section, Table
from sqlshift.report.same_items import same_items_table
from sqlshift.report.stats import pct, pts, pval
from sqlshift.report.words import (collapsed, compare_words, composite_words, generality_words, one_answer_flag,
                                   uninformative)


def generality_clause(summary: dict[str, Any], m: dict[str, Any], folder: str) -> str | None:
    """One generality benchmark of one model, worded by its test (or by why it says nothing)."""
    e = m["benchmarks"].get(folder)
    if e is None or e["delta_points"] is None:
        return None
    name = tables.label(summary, folder)
    if e["scorer_failure"]:
        return f"{name} below chance (p={pval(e['below_chance_p'])}): scorer failure, not forgetting"
    base = tables.base_entry(summary, folder)
    if collapsed(e, base):
        flag = one_answer_flag(e["one_answer"], collapse=True)
        return f"{name} {pct(e['accuracy'])} ({pts(e['delta_points'])} pts): {flag}"
    if e["one_answer"]:
        return f"{name} {pct(e['accuracy'])}: {one_answer_flag(e['one_answer'])}"
    if (why := uninformative(e, base)) is not None:
        return f"{name} {pct(e['accuracy'])} ({pts(e['delta_points'])} pts, {why})"
    return f"{name} {pct(e['accuracy'])} ({pts(e['delta_points'])} pts, {generality_words(e['vs_baseline'])})"


def headline(summary: dict[str, Any]) -> list[str]:
    """One sentence per fine-tuned model: specialty change and generality change, each worded by its test."""
    spec, out = summary["specialty"], []
    for key, m in summary["models"].items():
        e = m["benchmarks"].get(spec or "")
        if m["kind"] == "baseline" or e is None or e["delta_points"] is None:
            continue
        s = (f"{key}: {tables.label(summary, spec)} {pct(e['accuracy'])} ({pts(e['delta_points'])} pts vs baseline, "
             f"{compare_words(e['vs_baseline'])})")
        diverged = summary["diverged"].get(m.get("run") or "")
        if diverged is not None:
            out.append(s + f"; training diverged at step {diverged} (NaN loss/gradient): a broken adapter, "
                           "not a result.")
            continue
        parts = [c for f in summary["generality"] if (c := generality_clause(summary, m, f))]
        if m["composite"] is not None:
            parts.append(f"composite generality {pts(m['composite']['delta_points'])} pts "
                         f"({composite_words(m['composite'])})")
        out.append("; ".join([s, *parts]) + ".")
    evaluated = {m.get("run") for m in summary["models"].values()}
    for run, step in summary["diverged"].items():
        if run not in evaluated:
            out.append(f"{run}: training diverged at step {step} (NaN loss/gradient); stopped and not evaluated.")
    for run, msg in summary["failures"].items():
        if run not in evaluated and run not in summary["diverged"]:
            out.append(f"{run}: training failed and was not evaluated ({msg}).")
    return out


def missing_text(summary: dict[str, Any]) -> list[str]:
    """Benchmarks the config names that no model has results for (the axes then leave them out)."""
    if not summary["missing_benchmarks"]:
        return []
    return [f"Named in the config but evaluated for no model: {', '.join(summary['missing_benchmarks'])}; "
            "the specialty and generality axes leave them out."]


def backend_text(summary: dict[str, Any]) -> list[str]:
    """Which backend produced the numbers; a study whose points came from different backends says so."""
    used = summary.get("backends") or []
    if len(used) == 1:
        return [f"Every model was evaluated with the {used[0]} backend."]
    if not used:
        return []
    per = ", ".join(f"{k}: {m['backend']}" for k, m in summary["models"].items() if m.get("backend"))
    return [f"Models were evaluated with different backends ({per}): differences between them include the "
            "backends' own (bf16 kernels flip a few greedy tokens and log-prob ties)."]


def keep(*ts: Table | None) -> list[Table]:
    return [t for t in ts if t is not None]


def build_sections(study: Study, summary: dict[str, Any], plots: dict[str, Path]) -> list[Section]:
    """Every section in reading order; empty ones dropped."""
    spec_tables = [tables.benchmark_table(summary, f) for f in tables.folders_on(summary, "specialty")]
    noise = tables.noise_table(summary)
    secs = [
        Section("Summary", headline(summary) or ["No fine-tuned model to compare with a baseline."]),
        Section("Specialty", tables=keep(*spec_tables)),
        Section("Execution-guided decoding", tables=keep(decoding_table(summary))),
        Section("Prompt and decoding settings", tables=keep(same_items_table(summary))),
        Section("Generality", tables=keep(tables.forgetting_table(summary), tables.composite_table(summary))),
        Section("Run against run", tables=keep(tables.pairwise_table(summary))),
        Section("Trade-off", frontier_text(summary), keep(frontier_table(summary)),
                [plots[n] for n in ("tradeoff", "curves") if n in plots]),
        Section("Training noise", ["Frontier margins smaller than the seed-to-seed range are marked in the "
                                   "trade-off table."] if noise else [], keep(noise)),
        Section("Robustness", tables=keep(tables.robustness_table(summary), robustness.robustness_table(summary),
                                        robustness.robustness_pairwise_table(summary))),
        Section("Multi-turn", tables=keep(multiturn.interaction_table(summary),
                                          multiturn.interaction_pairwise_table(summary),
                                          multiturn.turn_table(summary))),
        Section("Text-to-SQL analysis", tables=kinds.text2sql_tables(study, summary),
                plots=[plots[n] for n in ("hardness", "errors") if n in plots]),
        Section("Multiple-choice answers", tables=kinds.multiple_choice_tables(study, summary)),
        Section("Generation health", tables=keep(kinds.generation_table(study, summary))),
        Section("Other scores", tables=keep(kinds.secondary_table(study, summary))),
        Section("Coverage", missing_text(summary) + backend_text(summary), [tables.coverage_table(study, summary)]),
        Section("Training", tables=keep(tables.training_table(study, summary["diverged"]),
                                        tables.training_cost_table(study)),
                plots=[plots["loss"]] if "loss" in plots else []),
    ]
    return [s for s in secs if not s.empty()]
