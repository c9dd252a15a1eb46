"""The model contract: :class:`LM` (greedy generations, seeded samples, log-likelihoods, LoRA adapters around
them), its request and answer types, and the backend registry (:data:`BACKENDS`: a new backend is one module plus
one line here)."""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from sqlshift.errors import ConfigError
from sqlshift.strict import Strict


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
class Sampling:
    """How :meth:`LM.sample` draws: ``n`` continuations per prompt at ``temperature`` with nucleus ``top_p`` (no
    top-k: a model's own generation config does not narrow it), seeded so the same call draws the same samples."""

    n: int
    temperature: float
    top_p: float = 1.0
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class LoglikelihoodRequest:
    """Log-probability of ``continuation`` given ``context`` (the continuation usually starts with a space)."""

    context: str
    continuation: str


class BackendSettings(Strict):
    """The keys every backend takes under ``lm:``; a backend's ``Settings`` subclass adds its own."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    dtype: str = "auto"  # auto | bf16 | fp16 | fp32


class LM(abc.ABC):
    """A causal language model behind two calls, with LoRA adapters switched in and out around it.

    ``tokenizer`` is a Hugging Face tokenizer (benchmarks render chat templates and count tokens with it). A backend
    is built from its own strict ``Settings`` (:meth:`from_settings`) and says, before anything loads, what its
    outputs depend on (:meth:`cache_identity`: the step cache hashes it), so the runner never names a backend.
    """

    tokenizer: Any
    backend: ClassVar[str] = "?"
    Settings: ClassVar[type[BackendSettings]] = BackendSettings

    @classmethod
    def from_settings(cls, model: str, settings: BackendSettings, adapter_ranks: Sequence[int] = ()) -> LM:
        """The backend on a base model, built from its validated ``lm:`` settings; ``adapter_ranks`` are the LoRA
        ranks of the adapters it will serve, known before they exist (a backend may size itself to them)."""
        return cls(model, **settings.model_dump())

    @classmethod
    def cache_identity(cls, model: str, settings: BackendSettings, adapter: Path | None,
                       scale: float | None) -> dict[str, Any]:
        """Everything a model point's outputs depend on, known before loading: model, adapter fingerprint, λ,
        precision and backend (a backend adds its own, e.g. its version)."""
        from sqlshift.lm.models import adapter_fingerprint

        return {"model": model, "adapter": adapter_fingerprint(adapter), "lambda": scale, "dtype": settings.dtype,
                "backend": cls.backend}

    @classmethod
    def require(cls, settings: BackendSettings) -> None:
        """Raise a one-line ConfigError when this backend cannot run here (asked for by name)."""

    @classmethod
    def check_shared_gpu(cls, settings: BackendSettings) -> None:
        """Raise a one-line ConfigError when this backend, so configured, cannot share its GPU with training
        processes (``executor: overlap``); a backend that takes memory as it goes (transformers) always can."""

    @classmethod
    def suits(cls, settings: BackendSettings) -> bool:
        """Whether ``backend: auto`` should pick this backend here (the first in :data:`AUTO_ORDER` that does)."""
        return True

    @property
    def identity(self) -> dict[str, Any]:
        """The loaded model's :meth:`cache_identity` with the adapter in use now."""
        adapter = getattr(self, "_adapter", None)
        return type(self).cache_identity(self.spec, self.settings, adapter,
                                         getattr(self, "_scale", 1.0) if adapter else None)

    @property
    def max_length(self) -> int:
        """Longest sequence (prompt + continuation) the model takes."""
        return 2048

    @abc.abstractmethod
    def generate(self, requests: Sequence[GenerateRequest], *, batch_size: int | None = None,
                 desc: str = "generate") -> list[Generation]:
        """Greedy generations, in request order (``batch_size`` is a hint; a backend may schedule its own)."""

    def sample(self, requests: Sequence[GenerateRequest], sampling: Sampling, *, batch_size: int | None = None,
               desc: str = "sample") -> list[list[Generation]]:
        """``sampling.n`` sampled generations per request, in request order (each cut as :meth:`generate` cuts).
        Not abstract: a backend that cannot sample says so when a benchmark asks it to."""
        raise ConfigError(f"backend {self.backend} cannot sample (a benchmark's decoding.samples asks it to)",
                          "use backend hf or vllm, or set decoding.samples: 0")

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

    def close(self) -> None:
        """Release the model (GPU memory, engine processes); the runner calls it once it is done with the model."""


BACKENDS: dict[str, str] = {
    "hf": "sqlshift.lm.hf:HFLM",
    "vllm": "sqlshift.lm.vllm:VLLMLM",
}


AUTO_ORDER: tuple[str, ...] = ("vllm", "hf")  # backend: auto takes the first whose class suits the machine


def get_backend(name: str) -> type[LM]:
    """The ``LM`` class of a backend name (``hf``, ``vllm``); its module is imported on first use."""
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend '{name}'", f"use auto or one of {', '.join(BACKENDS)}")
    module, _, attr = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def resolve_backend(name: str, settings: BackendSettings) -> str:
    """The backend to use: a named one (checked it can run), or for ``auto`` the first in :data:`AUTO_ORDER` whose
    class suits this machine and these settings (vLLM on CUDA when installed, else transformers)."""
    if name != "auto":
        get_backend(name).require(settings)
        return name
    return next((b for b in AUTO_ORDER if get_backend(b).suits(settings)), AUTO_ORDER[-1])
