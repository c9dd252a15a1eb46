"""One model on some registered benchmarks, as ``lm_eval --model ... --tasks ...`` users expect (``sqlshift eval``):
a study with no training, so it writes exactly what the runner writes (``models/<key>/<benchmark>/`` files,
``model.json``, ``steps.json``, the report), resumes and caches the same way, on any registered backend."""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlshift.benchmarks.api import available, get_benchmark
from sqlshift.errors import ConfigError
from sqlshift.lm.api import LM
from sqlshift.study.config import ExperimentConfig


def benchmark_entry(name: str, sample: int | None) -> dict[str, Any]:
    """A ``benchmarks:`` entry from a name: a registered benchmark (``hellaswag``), or one with its split
    (``spider-dev``, ``spider-syn``: the folder name the runner gives it)."""
    entry: dict[str, Any] = {"benchmark": name}
    if name not in available() and "-" in name:
        base, _, split = name.rpartition("-")
        if base in available() and "split" in get_benchmark(base).Settings.model_fields:
            entry = {"benchmark": base, "split": split}
    if entry["benchmark"] not in available():
        raise ConfigError(f"unknown benchmark '{name}'", f"use one of {', '.join(available())} "
                                                        "(spider-dev style names pick a split); see 'sqlshift benchmarks'")
    return entry | ({"sample": sample} if sample is not None else {})


def eval_config(model: str, benchmarks: list[str], *, adapter: str | Path | None = None, backend: str = "auto",
                sample: int | None = None, data_dir: str | Path | None = None) -> ExperimentConfig:
    """The study ``sqlshift eval`` runs: the base model (or, with ``adapter``, the adapted model) on each benchmark.

    ``data_dir`` defaults to ``$SQLSHIFT_DATA_DIR``, else the embedded demo data."""
    if not benchmarks:
        raise ConfigError("no benchmarks named", "pass --benchmarks, e.g. --benchmarks spider-dev,hellaswag")
    root = str(data_dir or os.environ.get("SQLSHIFT_DATA_DIR") or "demo")
    raw: dict[str, Any] = {"name": "eval", "model": model, "lm": {"backend": backend},
                           "data_dir": str(Path(root).expanduser().resolve()) if root != "demo" else "demo",
                           "benchmarks": [benchmark_entry(b, sample) for b in benchmarks]}
    if adapter is not None:
        raw |= {"baseline": False, "runs": [{"name": "adapter", "adapter": str(Path(adapter).expanduser().resolve())}]}
    from pydantic import ValidationError

    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"sqlshift eval: {problems}", "check --benchmarks, --backend and --sample") from None


def benchmark_listing() -> list[str]:
    """``sqlshift benchmarks``: every registered benchmark, its axis and kind, and its own settings with defaults."""
    from sqlshift.benchmarks.api import BenchmarkSettings
    from sqlshift.study.reference import default_of, type_name

    common = set(BenchmarkSettings.model_fields)
    lines = ["every benchmark also takes: " + ", ".join(
        f"{k} = {default_of(f)}" for k, f in BenchmarkSettings.model_fields.items() if k != "benchmark")]
    for name in available():
        try:
            cls = get_benchmark(name)
        except ImportError as e:  # an optional package is missing: listed, not fatal
            lines += ["", f"{name}: unavailable ({e})"]
            continue
        doc = (inspect.getdoc(cls) or "").splitlines()[0]
        lines += ["", f"{name}  [{cls.axis}, {cls.kind}]  {doc}"]
        lines += [f"    {k}: {type_name(f.annotation)} = {default_of(f)}"
                  for k, f in cls.Settings.model_fields.items() if k not in common]
    return lines


@contextlib.contextmanager
def open_lm(model: str, adapter: str | Path | None = None, backend: str = "auto") -> Iterator[LM]:
    """The model as the runner loads it (the configured backend, from its own settings), with the adapter in,
    closed at the end: what ``predict`` and ``eval-mmlu`` score with, so they match ``eval`` and ``run``."""
    from sqlshift.study.config import LMSettings
    from sqlshift.study.runner import load_lm

    lm = load_lm(model, LMSettings(backend=backend))
    try:
        with lm.adapter(Path(adapter) if adapter else None):
            yield lm
    finally:
        lm.close()
