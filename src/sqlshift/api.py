"""The two contracts every stage goes through: a model backend (:class:`LM`) and a benchmark (:class:`Benchmark`).

A benchmark turns items into requests, asks an ``LM`` for generations or log-likelihoods, scores them and writes
``results.jsonl`` (one row per item: a stable ``id``, ``correct``, plus its own fields) and ``metrics.json``
(at least ``accuracy``, ``n``, ``n_correct``, ``ci95``). The runner only knows these two shapes, so a new backend is
one module implementing ``LM`` and a new benchmark is one module plus one line in :data:`BUILTIN`.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import importlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from sqlshift.errors import ConfigError

Axis = Literal["specialty", "generality"]


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a config must never be silently ignored."""

    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- model backends


@dataclasses.dataclass(frozen=True)
class GenerateRequest:
    """Greedy continuation of ``prompt`` (already rendered, chat template included) up to a stop or the limit."""

    prompt: str
    max_new_tokens: int
    stop: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Generation:
    """What came back: the text before any stop, its token count, and whether the limit cut it."""

    text: str
    n_tokens: int
    hit_limit: bool


@dataclasses.dataclass(frozen=True)
class LoglikelihoodRequest:
    """Log-probability of ``continuation`` given ``context`` (the continuation usually starts with a space)."""

    context: str
    continuation: str


class LM(abc.ABC):
    """A causal language model behind two calls, with LoRA adapters switched in and out around it.

    ``tokenizer`` is a Hugging Face tokenizer (benchmarks render chat templates and count tokens with it);
    ``identity`` is what the step cache hashes, so it must change whenever outputs could.
    """

    tokenizer: Any
    backend: ClassVar[str] = "?"

    @property
    @abc.abstractmethod
    def identity(self) -> dict[str, Any]:
        """Model, adapter fingerprint, LoRA scale, dtype, backend: everything that changes outputs."""

    @property
    def max_length(self) -> int:
        """Longest sequence (prompt + continuation) the model takes."""
        return 2048

    @abc.abstractmethod
    def generate(self, requests: Sequence[GenerateRequest], *, batch_size: int | None = None,
                 desc: str = "generate") -> list[Generation]:
        """Greedy generations, in request order (``batch_size`` is a hint; a backend may schedule its own)."""

    @abc.abstractmethod
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest], *, batch_size: int | None = None,
                      desc: str = "loglikelihood") -> list[tuple[float, bool]]:
        """(summed log-prob of the continuation, whether greedy decoding would produce it), in request order."""

    @abc.abstractmethod
    def adapter(self, path: Path | None, scale: float = 1.0) -> contextlib.AbstractContextManager[None]:
        """Context in which calls go to the base model with this LoRA adapter at scale ``scale`` (None: the base)."""

    def stats(self) -> dict[str, Any]:
        """Backend facts worth recording in metrics.json (e.g. a padding self-check); empty by default."""
        return {}


# ---------------------------------------------------------------- benchmarks


class BenchmarkSettings(Strict):
    """Settings every benchmark takes; each benchmark subclasses this with its own."""

    benchmark: str
    name: str | None = None  # output folder and report label; default: the benchmark's own default_name()
    sample: int | None = None  # a seeded random subset of this many items (None: all)
    sample_seed: int = 42
    points: Literal["all", "final"] = "all"  # "final": baseline and final runs only, not checkpoints or λ points
    data_dir: str | None = None  # default: the experiment's data_dir


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

BACKENDS: dict[str, str] = {
    "hf": "sqlshift.lm_hf:HFLM",
    "vllm": "sqlshift.lm_vllm:VLLMLM",
}

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


def get_backend(name: str) -> type[LM]:
    """The ``LM`` class of a backend name (``hf``, ``vllm``); its module is imported on first use."""
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend '{name}'", f"use auto or one of {', '.join(BACKENDS)}")
    module, _, attr = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def iter_registered() -> Iterator[type[Benchmark]]:
    """Classes of every importable benchmark (skipping built-ins whose optional packages are missing)."""
    for name in available():
        try:
            yield get_benchmark(name)
        except ImportError:
            continue
