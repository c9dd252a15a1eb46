"""The benchmark contract (:class:`Benchmark`, its strict :class:`BenchmarkSettings`) and the benchmark registry.

A benchmark turns items into requests, asks an ``LM`` (:mod:`sqlshift.lm.api`) for generations or log-likelihoods,
scores them and writes ``results.jsonl`` (one row per item: a stable ``id``, ``correct``, plus its own fields) and
``metrics.json`` (at least ``accuracy``, ``n``, ``n_correct``, ``ci95``). The runner only knows this shape and the
``LM`` one, so a new benchmark is one module plus one line in :data:`BUILTIN`.
"""

from __future__ import annotations

import abc
import contextlib
import importlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import field_validator

from sqlshift.errors import ConfigError
from sqlshift.inputs import plain_name
from sqlshift.lm.api import LM, GenerateRequest, LoglikelihoodRequest
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
    """One evaluation: items from local files, requests to an ``LM``, per-item verdicts, metrics.

    The base class owns the loop (:meth:`evaluate`): the seeded ``sample``, resume from ``results.jsonl``, chunked
    LM calls whose rows are appended as produced, the contract fields of ``metrics.json`` and the below-chance
    guard. A subclass supplies :meth:`items`, :meth:`requests`, :meth:`score` (or :meth:`score_chunk` when it
    judges a chunk at once) and :meth:`summary` (its own metrics fields).
    """

    name: ClassVar[str]
    axis: ClassVar[Axis]
    kind: ClassVar[str]  # text2sql | multiple_choice | generative: which report sections apply
    Settings: ClassVar[type[BenchmarkSettings]] = BenchmarkSettings
    chunk: ClassVar[int] = 256  # items per LM call (the resume granularity) unless the settings say ``chunk``

    def __init__(self, settings: BenchmarkSettings, data_root: Path) -> None:
        self.settings = settings
        self.data_root = Path(data_root)

    @property
    def out_name(self) -> str:
        """Folder under ``models/<key>/`` and the label in the report."""
        return self.settings.name or self.default_name()

    @property
    def label(self) -> str:
        """How the report names this benchmark."""
        return self.out_name

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

    def problems(self, metrics: dict[str, Any]) -> list[Exception]:
        """Guard failures in finished metrics: raised by the runner after the report is written. The base checks
        the below-chance test of any benchmark that reports a ``chance``."""
        from sqlshift.benchmarks.common import below_chance_problem

        return below_chance_problem(metrics, self.display_name)

    @property
    def display_name(self) -> str:
        """The label and, when it differs, the folder: how an error message names this benchmark."""
        return self.label if self.label == self.out_name else f"{self.label} ({self.out_name})"

    # ---- what a subclass supplies ------------------------------------------------------------------------
    def items(self) -> Sequence[Any]:
        """Every item, in a stable order (before ``sample``)."""
        raise NotImplementedError(f"{type(self).__name__} supplies items() or its own evaluate()")

    def item_id(self, item: Any) -> str:
        """The stable string id of an item (its row's ``id``)."""
        return str(item["id"] if isinstance(item, dict) else item.id)

    def requests(self, item: Any, lm: LM) -> Sequence[GenerateRequest] | Sequence[LoglikelihoodRequest]:
        """The LM requests of one item (all of one kind)."""
        raise NotImplementedError(f"{type(self).__name__} supplies requests() or score_chunk()")

    def score(self, item: Any, answers: Sequence[Any]) -> dict[str, Any]:
        """The result row of one item (``id``, ``correct`` and its own fields) from the answers to its requests."""
        raise NotImplementedError(f"{type(self).__name__} supplies score() or score_chunk()")

    def summary(self, rows: Sequence[dict[str, Any]], items: Sequence[Any], lm: LM | None) -> dict[str, Any]:
        """The benchmark's own metrics fields, beside the contract's."""
        return {}

    # ---- the loop ----------------------------------------------------------------------------------------
    def selected(self) -> list[Any]:
        """The evaluated items: all of them, or the seeded ``sample`` of them."""
        from sqlshift.benchmarks.common import sample_items

        return sample_items(self.items(), self.settings.sample, self.settings.sample_seed)

    def rounds(self, items: Sequence[Any]) -> list[Sequence[Any]]:
        """Items in the order they can be asked; later rounds may read earlier rows (multi-turn history)."""
        return [items]

    def chunk_size(self) -> int:
        return int(getattr(self.settings, "chunk", None) or self.chunk)

    def session(self, lm: LM, out_dir: Path) -> contextlib.AbstractContextManager[Any]:
        """What one evaluation holds open (a SQL sandbox, a prompt builder, a resolved scoring mode); nothing by
        default. Entered before any item is asked."""
        return contextlib.nullcontext()

    def counted(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows that count in ``n`` (e.g. not those whose gold answer is broken)."""
        return list(rows)

    def evaluate(self, lm: LM, out_dir: Path) -> dict[str, Any]:
        """Write ``results.jsonl`` (resumable, appended per chunk) and ``metrics.json`` into ``out_dir``."""
        from sqlshift.benchmarks.common import ResultsFile, write_metrics

        items = self.selected()
        results = ResultsFile(out_dir)
        with self.session(lm, Path(out_dir)):
            for group in self.rounds(items):
                todo = results.todo(group, self.item_id)
                step = self.chunk_size()
                for start in range(0, len(todo), step):
                    results.append(self.score_chunk(lm, todo[start:start + step], results))
        rows = results.ordered([self.item_id(it) for it in items])
        self.export(rows, Path(out_dir))
        return write_metrics(out_dir, self.metrics(rows, items, lm))

    def score_chunk(self, lm: LM, chunk: Sequence[Any], results: Any) -> list[dict[str, Any]]:
        """Rows of some items: their requests in one LM call, each item scored from its share of the answers."""
        per_item = [list(self.requests(it, lm)) for it in chunk]
        flat = [r for reqs in per_item for r in reqs]
        answers = ask(lm, flat, getattr(self.settings, "batch_size", None), self.out_name)
        rows, k = [], 0
        for it, reqs in zip(chunk, per_item):
            rows.append(self.score(it, answers[k:k + len(reqs)]))
            k += len(reqs)
        return rows

    def export(self, rows: Sequence[dict[str, Any]], out_dir: Path) -> None:
        """Files derived from the rows, written before ``metrics.json`` (Spider's predictions); none by default."""

    def metrics(self, rows: Sequence[dict[str, Any]], items: Sequence[Any], lm: LM | None = None) -> dict[str, Any]:
        """The contract's fields (over :meth:`counted` rows), the benchmark's own, the chance test, backend facts."""
        from sqlshift.benchmarks.common import base_metrics, chance_test

        own = self.summary(rows, items, lm)
        metrics = base_metrics(self, self.counted(rows), len(items), **own)
        metrics["complete"] = len(rows) == len(items)
        if "chance" in metrics:
            metrics.update(chance_test(metrics))
        if lm is not None:
            metrics["lm"] = lm.stats()
        return metrics


def ask(lm: LM, requests: Sequence[Any], batch_size: int | None, desc: str) -> list[Any]:
    """Send requests of one kind to the LM: generations or (log-prob, is-greedy) pairs, in request order."""
    if not requests:
        return []
    if all(isinstance(r, GenerateRequest) for r in requests):
        return list(lm.generate(requests, batch_size=batch_size, desc=desc))
    if all(isinstance(r, LoglikelihoodRequest) for r in requests):
        return list(lm.loglikelihood(requests, batch_size=batch_size, desc=desc))
    raise TypeError("one chunk mixes generation and log-likelihood requests")


# ---------------------------------------------------------------- registry

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
