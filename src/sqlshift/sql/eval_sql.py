"""``sqlshift eval-sql``: check options and paths, lock the output folder, load, evaluate, print a short table.

Everything that can be refused is refused before a query runs: the timeout, the mode, a ``--pred`` that is one of
the files the evaluation would replace, an output folder held by another process.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlshift.benchmarks.common import sample_items
from sqlshift.data.spider import SpiderSplit, load_spider, restrict
from sqlshift.errors import ConfigError
from sqlshift.sql.execution import MODES, PARTIAL_NAME, check_timeout, evaluate_split
from sqlshift.sql.prediction_files import read_predictions
from sqlshift.outputs import LOCK_NAME, exclusive_output
from sqlshift.sql.sandbox import DEFAULT_TIMEOUT_S

#: what eval-sql writes into its output folder: an input there would be overwritten before it is read
WRITTEN = ("results.jsonl", "metrics.json", PARTIAL_NAME, LOCK_NAME)


def check_not_overwritten(inputs: Mapping[str, str | Path | None], out: str | Path) -> None:
    """ConfigError when an input file is one of the files the evaluation writes into ``out``."""
    targets = {(Path(out) / name).resolve() for name in WRITTEN}
    for option, path in inputs.items():
        if path is not None and Path(path).resolve() in targets:
            raise ConfigError(f"{option} {path} is inside the output folder {out}, which eval-sql overwrites",
                              f"move {Path(path).name} elsewhere or choose another --out")


def run_eval_sql(spider_dir: str | Path, pred: str | Path, out: str | Path, gold: str | Path | None = None,
                 split: str = "dev", mode: str = "official", keep_distinct: bool = False,
                 timeout_s: float = DEFAULT_TIMEOUT_S, only_predicted: bool = False,
                 sample: int | None = None, sample_seed: int = 42) -> dict[str, Any]:
    """``sqlshift eval-sql``: load the split and predictions, evaluate, print a short table, return metrics.

    Options and the output folder are checked, and the folder locked, before anything is loaded or run.
    """
    timeout_s = check_timeout(timeout_s)
    if mode not in MODES:
        raise ConfigError(f"unknown EX mode '{mode}'", f"use one of {', '.join(MODES)}")
    check_not_overwritten({"--pred": pred, "--gold": gold}, out)
    with exclusive_output(out, "sqlshift eval-sql"):
        data = load_spider(spider_dir, split)
        predictions = read_predictions(pred, data, gold)
        data, predictions = select_examples(data, predictions, only_predicted, sample, sample_seed)
        metrics = evaluate_split(data, predictions, out, mode=mode, keep_distinct=keep_distinct, timeout_s=timeout_s)
    print_metrics(metrics, data.skip_summary())
    return metrics


def select_examples(data: SpiderSplit, predictions: dict[int, Any], only_predicted: bool, sample: int | None,
                    seed: int) -> tuple[SpiderSplit, dict[int, Any]]:
    """The examples to score: those predicted (``--only-predicted``) and/or the seeded sample ``predict --sample``
    and a config's ``sample:`` draw; predictions for the others are set aside."""
    if not only_predicted and sample is None:
        return data, predictions
    keep = {e.index for e in data.examples} | {e.index for e in data.skipped}
    if only_predicted:
        keep &= set(predictions)
    if sample is not None:
        drawn = sample_items([e for e in data.examples if e.index in keep], sample, seed)
        keep = {e.index for e in drawn}
    data = restrict(data, keep)
    if not data.examples:
        raise ConfigError("no example is left to score", "check --pred is for this --split, or drop --only-predicted")
    return data, {i: p for i, p in predictions.items() if i in keep}


def print_metrics(metrics: Mapping[str, Any], skip_line: str = "") -> None:
    """Rich table: EX with CI and n, per hardness, per error type."""
    from rich.console import Console
    from rich.table import Table

    def fmt(s: Mapping[str, Any]) -> str:
        lo, hi = s["ci95"]
        return f"{s['accuracy']:.3f} [{lo:.3f}, {hi:.3f}]"

    table = Table(title=f"Execution accuracy ({metrics['split']}, {metrics['mode']})")
    table.add_column("group")
    table.add_column("EX [95% CI]", justify="right")
    table.add_column("n", justify="right")
    table.add_row("all", fmt({"accuracy": metrics["execution_accuracy"], "ci95": metrics["ci95"]}), str(metrics["n"]))
    for level, s in metrics["by_hardness"].items():
        table.add_row(level, fmt(s), str(s["n"]))
    console = Console()
    console.print(table)
    errors = ", ".join(f"{t} {c}" for t, c in metrics["by_error_type"].items())
    console.print(f"error types: {errors}")
    console.print(f"skipped: {metrics['n_skipped']}" + (f" ({skip_line})" if skip_line else ""))
    if metrics["n_gold_failed"]:
        console.print(f"[red]gold queries failed: {metrics['n_gold_failed']} (indices {metrics['gold_failed'][:10]})")
