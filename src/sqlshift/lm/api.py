"""The model contract: :class:`LM` (greedy generations, log-likelihoods, LoRA adapters around them), its request
and answer types, and the backend registry (:data:`BACKENDS`: a new backend is one module plus one line here)."""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from sqlshift.errors import ConfigError


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

    def close(self) -> None:
        """Release the model (GPU memory, engine processes); the runner calls it once it is done with the model."""


BACKENDS: dict[str, str] = {
    "hf": "sqlshift.lm.hf:HFLM",
    "vllm": "sqlshift.lm.vllm:VLLMLM",
}


def get_backend(name: str) -> type[LM]:
    """The ``LM`` class of a backend name (``hf``, ``vllm``); its module is imported on first use."""
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend '{name}'", f"use auto or one of {', '.join(BACKENDS)}")
    module, _, attr = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), attr)
