"""``sqlshift predict`` (Spider) and ``sqlshift eval-mmlu`` (MMLU): thin views of ``sqlshift eval`` for one
benchmark. Each builds the runner's own benchmark, loads the model as the runner does (the same backend choice,
:func:`sqlshift.study.evaluate.open_lm`) and writes that benchmark's files flat into OUT."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlshift.benchmarks.common import BELOW_CHANCE_ALPHA
from sqlshift.data.mmlu import resolve_mmlu_dir
from sqlshift.data.layout import HINT as LAYOUT_HINT
from sqlshift.errors import ConfigError, DataError
from sqlshift.jsonl import read_jsonl
from sqlshift.sql.prediction_files import write_official
from sqlshift.sql.prompts import PromptConfig
from sqlshift.stats import format_ci



def run_predict(model: str | None, adapter: str | Path | None, spider_dir: str | Path, split: str = "dev",
                sample: int | None = None, out: str | Path = Path("predictions"), batch_size: int = 16,
                max_new_tokens: int = 256, score: bool = False, sample_rows: int = 0) -> Path:
    """CLI entry: the runner's Spider benchmark on one model (+ adapter); ``score`` also judges the predictions.

    ``out`` is a folder: predictions.jsonl and predictions.sql (official format) go there, with ``score`` also
    results.jsonl and metrics.json; a file name is refused rather than silently replaced by the folder's standard
    names. ``sample`` is the same seeded random subset an experiment config's ``sample`` takes."""
    from sqlshift.benchmarks.spider import SpiderBenchmark, SpiderSettings, predict_split
    from sqlshift.outputs import exclusive_output
    from sqlshift.study.evaluate import open_lm

    out_dir = Path(out)
    if out_dir.suffix in FILE_SUFFIXES and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir} names a file, but predict writes a folder (predictions.jsonl, "
                          "predictions.sql, with --score results.jsonl and metrics.json)",
                          f"pass the folder, e.g. --out {out_dir.parent / out_dir.stem}")
    pred_path = out_dir / "predictions.jsonl"
    settings = SpiderSettings(benchmark="spider", split=split, sample=sample, batch_size=batch_size,
                              max_new_tokens=max_new_tokens, prompt=PromptConfig(sample_rows=sample_rows))
    bench = SpiderBenchmark(settings, Path(spider_dir))
    problems = bench.check()
    if problems:
        raise DataError("; ".join(problems), f"pass --spider-dir with the Spider folders ({LAYOUT_HINT})")
    split_data = bench.load()
    out_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_output(out_dir), open_lm(model or "embedded", adapter) as lm:
        metrics = bench.evaluate(lm, out_dir) if score else None
        preds = read_jsonl(pred_path) if score else predict_split(
            lm, split_data, pred_path, prompt_cfg=settings.prompt, batch_size=batch_size, max_new_tokens=max_new_tokens)
    write_official(preds, out_dir / "predictions.sql")
    print_predicted(pred_path, out_dir / "predictions.sql", split_data, metrics)
    return pred_path


FILE_SUFFIXES = (".jsonl", ".json", ".sql", ".txt", ".csv")


def print_predicted(pred_path: Path, sql_path: Path, split: Any, metrics: dict[str, Any] | None) -> None:
    """What predict wrote, how many examples it covered and skipped, and with ``--score`` the EX."""
    print(f"predictions: {pred_path} ({len(split.examples)} examples; {split.skip_summary()})")
    print(f"official format (one SQL per line): {sql_path}")
    if metrics is not None:
        lo, hi = metrics["ci95"]
        print(f"EX: {100 * metrics['accuracy']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] (n={metrics['n']}, "
              f"skipped {metrics['n_skipped']}): {pred_path.parent / 'metrics.json'}")


def run_eval_mmlu(model: str, adapter: str | None, mmlu_dir: str | Path | None, subjects: str | Sequence[str] = "seed",
                  mode: str = "letter", k_shot: int = 0, chat: bool = False, out: str | Path = "mmlu-eval",
                  batch_size: int = 16, split: str = "test") -> dict[str, Any]:
    """``sqlshift eval-mmlu``: the runner's MMLU benchmark on one model, then a short table."""
    from sqlshift.benchmarks.mmlu import MMLUBenchmark, MMLUSettings
    from sqlshift.outputs import exclusive_output
    from sqlshift.study.evaluate import open_lm

    settings = MMLUSettings(benchmark="mmlu", subjects=subjects if isinstance(subjects, str) else list(subjects),
                            mode=mode, k_shot=k_shot, chat=chat, batch_size=batch_size, split=split)
    bench = MMLUBenchmark(settings, resolve_mmlu_dir(mmlu_dir))
    problems = bench.check()
    if problems:
        raise DataError("; ".join(problems), f"pass --mmlu-dir with the MMLU CSV folders ({LAYOUT_HINT})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with exclusive_output(out), open_lm(model, adapter) as lm:
        metrics = bench.evaluate(lm, out)
    print_table(metrics)
    for problem in bench.problems(metrics):
        raise problem
    return metrics


def print_table(metrics: dict[str, Any]) -> None:
    """Accuracy with 95% CI per subject, per category and overall."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"MMLU ({metrics['mode']}, {metrics['k_shot']}-shot, chat={metrics['chat']}; chance 25%)")
    for c in ("group", "n", "correct", "accuracy [95% CI]"):
        t.add_column(c)
    for s, m in metrics["by_subject"].items():
        t.add_row(s, str(m["n"]), str(m["n_correct"]), format_ci(m))
    for c, m in metrics["by_category"].items():
        t.add_row(f"[bold]{c}[/bold]", str(m["n"]), str(m["n_correct"]), format_ci(m))
    t.add_row("[bold]all[/bold]", str(metrics["n"]), str(metrics["n_correct"]), format_ci(metrics))
    console = Console()
    console.print(t)
    for w in metrics.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {w}")
    if not math.isnan(metrics["below_chance_p"]) and metrics["below_chance_p"] < BELOW_CHANCE_ALPHA:
        console.print(f"[red]accuracy is significantly below chance (p={metrics['below_chance_p']:.2g}): "
                      "suspect the scorer[/red]")
