"""The benchmark contract (:class:`Benchmark`, its strict :class:`BenchmarkSettings`) and the benchmark registry.

A benchmark turns items into requests, asks an ``LM`` (:mod:`sqlshift.lm.api`) for generations or log-likelihoods,
scores them and writes ``results.jsonl`` (one row per item: a stable ``id``, ``correct``, plus its own fields) and
``metrics.json`` (at least ``accuracy``, ``n``, ``n_correct``, ``ci95``). The runner only knows this shape and the
``LM`` one, so a new benchmark is one module plus one line in :data:`BUILTIN`.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import field_validator

from sqlshift.errors import ConfigError
from sqlshift.inputs import plain_name
from sqlshift.lm.api import LM
from sqlshift.strict import Strict

Axis = Literal["specialty", "generality"]


class BenchmarkSettings(Strict):
    """Settings every benchmark takes; each benchmark subclasses this with its own."""

    benchmark: str
    name: str | None = None  # output folder and report label; default: the benchmark's own default_name()
    sample: int | None = None  # a seeded random subset of this many items (None: all)
    sample_seed: int = 42
    points: Literal["all", "final"] = "all"  # "final": baseline and final runs only, not checkpoints or λ points
    data_dir: str | None = None  # default: the experiment's data_dir

    @field_validator("name")  # it becomes models/<key>/<name>
    @classmethod
    def _plain_name(cls, v: str | None) -> str | None:
        return plain_name(v)


class Benchmark(abc.ABC):
    """One evaluation: items from local files, requests to an ``LM``, per-item verdicts, metrics."""

    name: ClassVar[str]
    axis: ClassVar[Axis]
    kind: ClassVar[str]  # text2sql | multiple_choice | generative: which report sections apply
    Settings: ClassVar[type[BenchmarkSettings]] = BenchmarkSettings

    def __init__(self, settings: BenchmarkSettings, data_root: Path) -> None:
        self.settings = settings
        self.data_root = Path(data_root)

    @property
    def out_name(self) -> str:
        """Folder under ``models/<key>/`` and the label in the report."""
        return self.settings.name or self.default_name()

    def default_name(self) -> str:
        return self.name

    def check(self) -> list[str]:
        """Problems that would stop this benchmark, found before any model is loaded (missing files...)."""
        return []

    def size(self) -> int | None:
        """Number of items an evaluation will score (after ``sample``), when cheap to know; for time estimates."""
        return None

    def fingerprint(self) -> dict[str, Any]:
        """The step-cache inputs besides the model: settings and where the data is."""
        return {"benchmark": self.name, "settings": self.settings.model_dump(mode="json"), "data": str(self.data_root)}

    @abc.abstractmethod
    def evaluate(self, lm: LM, out_dir: Path) -> dict[str, Any]:
        """Write ``results.jsonl`` (resumable) and ``metrics.json`` into ``out_dir``; return the metrics."""

    def problems(self, metrics: dict[str, Any]) -> list[Exception]:
        """Guard failures in finished metrics (e.g. below chance): raised by the runner after the report is written."""
        return []


# ---------------------------------------------------------------- registries

BUILTIN: dict[str, str] = {
    "spider": "sqlshift.benchmarks.spider:SpiderBenchmark",
    "mmlu": "sqlshift.benchmarks.mmlu:MMLUBenchmark",
    "sparc": "sqlshift.benchmarks.multiturn:SParCBenchmark",
    "cosql": "sqlshift.benchmarks.multiturn:CoSQLBenchmark",
    "hellaswag": "sqlshift.benchmarks.general:HellaSwag",
    "arc_challenge": "sqlshift.benchmarks.general:ARCChallenge",
    "arc_easy": "sqlshift.benchmarks.general:ARCEasy",
    "winogrande": "sqlshift.benchmarks.general:WinoGrande",
    "boolq": "sqlshift.benchmarks.general:BoolQ",
    "piqa": "sqlshift.benchmarks.general:PIQA",
    "truthfulqa_mc1": "sqlshift.benchmarks.general:TruthfulQAMC1",
    "gsm8k": "sqlshift.benchmarks.gsm8k:GSM8K",
    "gsm8k_chat": "sqlshift.benchmarks.gsm8k:GSM8KChat",
    "ifeval": "sqlshift.benchmarks.ifeval:IFEval",
}
_registered: dict[str, type[Benchmark]] = {}


def register(cls: type[Benchmark]) -> type[Benchmark]:
    """Add a benchmark class under its ``name`` (a plugin or a test can register its own)."""
    _registered[cls.name] = cls
    return cls


def available() -> list[str]:
    """Every benchmark name a config may use."""
    return sorted(set(BUILTIN) | set(_registered))


def get_benchmark(name: str) -> type[Benchmark]:
    """The class registered under ``name``; built-ins are imported on first use."""
    if name in _registered:
        return _registered[name]
    if name not in BUILTIN:
        raise ConfigError(f"unknown benchmark '{name}'", f"use one of {', '.join(available())}")
    module, _, attr = BUILTIN[name].partition(":")
    cls = getattr(importlib.import_module(module), attr)
    _registered[name] = cls
    return cls


def iter_registered() -> Iterator[type[Benchmark]]:
    """Classes of every importable benchmark (skipping built-ins whose optional packages are missing)."""
    for name in available():
        try:
            yield get_benchmark(name)
        except ImportError:
            continue
