"""A rule-driven ``sqlshift.lm.api.LM`` for the general-benchmark tests: constructed items whose verdict is known."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlshift.lm.api import LM, GenerateRequest, Generation, LoglikelihoodRequest


class ScriptedLM(LM):
    """Log-likelihood from ``score(context, continuation)``; generations from ``reply(prompt)``."""

    backend = "test-scripted"

    def __init__(self, score: Callable[[str, str], float] | None = None,
                 reply: Callable[[str], str] | None = None, tokenizer: Any = None) -> None:
        self.score, self.reply, self.tokenizer = score, reply, tokenizer
        self.requests: list[Any] = []

    @property
    def identity(self) -> dict[str, Any]:
        return {"model": "scripted"}

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest], *, batch_size: int | None = None,
                      desc: str = "loglikelihood") -> list[tuple[float, bool]]:
        assert self.score is not None
        self.requests.extend(requests)
        return [(float(self.score(r.context, r.continuation)), False) for r in requests]

    def generate(self, requests: Sequence[GenerateRequest], *, batch_size: int | None = None,
                 desc: str = "generate") -> list[Generation]:
        assert self.reply is not None
        self.requests.extend(requests)
        return [Generation(self.reply(r.prompt), 7, False) for r in requests]

    @contextlib.contextmanager
    def adapter(self, path: Path | None, scale: float = 1.0) -> Iterator[None]:
        yield
