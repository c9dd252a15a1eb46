"""``sqlshift eval`` (any registered benchmark on any backend, the runner's files) and ``sqlshift benchmarks``
(what is registered, with settings and defaults). Registered on the app by ``sqlshift.cli``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from sqlshift.cli.options import check_model, need, out_folder, out_option


def eval_verb(model: str = typer.Option("embedded", help="Hub id, local folder, .gguf file or 'embedded'"),
              benchmarks: str = typer.Option(..., help="comma list of registered benchmarks ('sqlshift benchmarks'): "
                                                       "e.g. spider-dev,mmlu,hellaswag,gsm8k_chat"),
              adapter: Optional[Path] = typer.Option(None, help="LoRA adapter folder: score the adapted model"),
              backend: str = typer.Option("auto", help="auto (vLLM on CUDA when installed, else transformers), "
                                                       "hf, vllm or another registered backend"),
              sample: Optional[int] = typer.Option(None, help="a seeded random subset of N items per benchmark"),
              sets: Optional[list[str]] = typer.Option(None, "--set", metavar="BENCH.KEY=VALUE",
                                                       help="a benchmark's setting, repeatable: BENCH is a name from "
                                                            "--benchmarks (or its registered benchmark, e.g. spider "
                                                            "for every spider split), KEY one of its settings "
                                                            "('sqlshift benchmarks'; dotted for nested ones), VALUE "
                                                            "YAML; e.g. --set mmlu.subjects=all --set "
                                                            "spider-dev.batch_size=8; lm.KEY=VALUE sets the "
                                                            "backend's, e.g. --set lm.load_in_4bit=true"),
              data_dir: Optional[Path] = typer.Option(None, help="data folder ('sqlshift layout'); default: "
                                                                 "$SQLSHIFT_DATA_DIR, else the embedded demo"),
              out: Optional[Path] = out_option("run directory: models/<key>/<benchmark>/ results.jsonl and "
                                               "metrics.json, the report"),
              allow_below_chance: bool = typer.Option(False, help="report a score significantly below chance "
                                                                  "instead of failing with exit code 3")) -> None:
    """Score one model on some benchmarks (no training) and write what 'sqlshift run' writes.

    The same files, cache and report as a study with only a baseline (or, with --adapter, only that adapted
    model): rerun the same command to resume. Each benchmark runs with its defaults ('sqlshift benchmarks' lists
    them) unless --set changes one, e.g.

    \b
      sqlshift eval --benchmarks spider-dev,mmlu --set mmlu.subjects=all --set spider-dev.batch_size=8 -o OUT

    On the embedded demo data MMLU scores every demo subject (its default, the seed preset's three subjects,
    needs the real MMLU folder)."""
    from sqlshift.study.evaluate import eval_config
    from sqlshift.study.runner import run_study

    out = out_folder(need(out), "run directory")
    check_model(model)
    names = [b.strip() for b in benchmarks.split(",") if b.strip()]
    cfg = eval_config(model, names, adapter=adapter, backend=backend, sample=sample, data_dir=data_dir,
                      sets=sets or [])
    run_study(cfg, out, allow_below_chance=allow_below_chance)


def benchmarks_verb() -> None:
    """List the registered benchmarks: axis, kind, and each one's settings with their defaults."""
    from sqlshift.study.evaluate import benchmark_listing

    typer.echo("\n".join(benchmark_listing()))
