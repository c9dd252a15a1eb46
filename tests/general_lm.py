"""Small ``sqlshift.api.LM`` implementations for the general-benchmark tests.

``TinyLM`` scores with a real (tiny, random) Hugging Face model the way lm-eval's HFLM does (context/continuation
split at trailing whitespace, no BOS, one sequence at a time); ``ScriptedLM`` answers from rules, for constructed
items whose right verdict is known.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlshift.api import LM, GenerateRequest, Generation, LoglikelihoodRequest


class TinyLM(LM):
    """Greedy generation and summed continuation log-probs from a small HF causal LM on CPU."""

    backend = "test-tiny"

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model, self.tokenizer = model.eval(), tokenizer
        self.calls = 0

    @property
    def identity(self) -> dict[str, Any]:
        return {"model": "tiny", "backend": self.backend}

    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces:
            continuation, context = context[-n_spaces:] + continuation, context[:-n_spaces]
        whole = self.tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
        ctx = self.tokenizer(context, add_special_tokens=False)["input_ids"]
        return list(ctx), list(whole[len(ctx):])

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest], *, batch_size: int | None = None,
                      desc: str = "loglikelihood") -> list[tuple[float, bool]]:
        import torch

        self.calls += 1
        out = []
        for r in requests:
            ctx, cont = self._encode_pair(r.context, r.continuation)
            ctx = ctx or [self.tokenizer.eos_token_id]
            ids = torch.tensor([ctx + cont])
            with torch.no_grad():
                logp = torch.log_softmax(self.model(ids).logits[0, len(ctx) - 1:-1].float(), -1)
            tgt = torch.tensor(cont)
            out.append((float(logp.gather(1, tgt[:, None]).sum()), bool((logp.argmax(-1) == tgt).all())))
        return out

    def generate(self, requests: Sequence[GenerateRequest], *, batch_size: int | None = None,
                 desc: str = "generate") -> list[Generation]:
        import torch

        self.calls += 1
        out = []
        for r in requests:
            ids = self.tokenizer(r.prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                gen = self.model.generate(ids, max_new_tokens=r.max_new_tokens, do_sample=False,
                                          pad_token_id=self.tokenizer.pad_token_id)
            new = gen[0, ids.shape[1]:].tolist()
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            cut = [text.index(s) for s in r.stop if s and s in text]
            out.append(Generation(text[:min(cut)] if cut else text, len(new),
                                  not cut and len(new) >= r.max_new_tokens))
        return out

    @contextlib.contextmanager
    def adapter(self, path: Path | None, scale: float = 1.0) -> Iterator[None]:
        yield


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
