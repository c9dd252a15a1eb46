"""What the token-level backends share (transformers and vLLM score the same ids and stop at the same places):
context/continuation encoding, the pad id, the end-of-turn stop ids, and cutting a generation at the first stop id
or stop string. A backend that is not token-level (an API, a wrapper) implements :class:`sqlshift.lm.api.LM`
directly."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

from sqlshift.lm.api import LM, Generation, LoglikelihoodRequest


@contextlib.contextmanager
def parallel_tokenizers() -> Iterator[None]:
    """Every core for one batched tokenizer call, when sqlshift itself turned tokenizers' parallelism off (the CLI
    does, so that forks stay quiet; tokenizers reads the setting at each call). A user's own
    ``TOKENIZERS_PARALLELISM`` is left alone. MMLU 57's contexts took 4.6 s on one core of an H100 host."""
    if os.environ.get("SQLSHIFT_PARALLEL_TOKENIZE") != "1":
        yield
        return
    before = os.environ.get("TOKENIZERS_PARALLELISM", "false")
    os.environ["TOKENIZERS_PARALLELISM"] = "true"
    try:
        yield
    finally:
        os.environ["TOKENIZERS_PARALLELISM"] = before  # as it was, so a call inside another leaves it on


class TokenLM(LM):
    """An ``LM`` over a Hugging Face tokenizer: the one place token ids are built and generations are cut."""

    tokenizer: Any

    def encode_context(self, text: str) -> list[int]:
        """Context ids: special tokens added unless the text already starts with the BOS text (chat templates)."""
        bos = getattr(self.tokenizer, "bos_token", None)
        add = not (bos and text.startswith(bos))
        return list(self.tokenizer(text, add_special_tokens=add)["input_ids"])

    def encode_continuation(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_contexts(self, texts: Sequence[str]) -> list[list[int]]:
        """:meth:`encode_context` of many texts in two batched tokenizer calls (a fast tokenizer spreads a batch
        over every core): the same ids, without one Python round trip per text."""
        bos = getattr(self.tokenizer, "bos_token", None)
        templated = [bool(bos and t.startswith(bos)) for t in texts]
        out: list[list[int]] = [[] for _ in texts]
        with parallel_tokenizers():
            for flag in (False, True):
                idx = [i for i, f in enumerate(templated) if f == flag]
                if idx:
                    ids = self.tokenizer([texts[i] for i in idx], add_special_tokens=not flag)["input_ids"]
                    for i, x in zip(idx, ids):
                        out[i] = list(x)
        return out

    def encode_pairs(self, requests: Sequence[LoglikelihoodRequest]) -> list[tuple[list[int], list[int]]]:
        """(context ids, continuation ids) of each request, every distinct text tokenised once: MMLU's four answer
        letters share one context, so its 56168 requests need 14042 context encodings and 4 continuation ones
        (tokenising each request's context cost ≈ 15 s of the host's time per model for MMLU 57)."""
        if not requests:
            return []
        ctxs = list(dict.fromkeys(r.context for r in requests))
        conts = list(dict.fromkeys(r.continuation for r in requests))
        with parallel_tokenizers():
            ctx_ids = dict(zip(ctxs, self.encode_contexts(ctxs)))
            cont_ids = dict(zip(conts, self.tokenizer(conts, add_special_tokens=False)["input_ids"]))
        return [(list(ctx_ids[r.context]), list(cont_ids[r.continuation])) for r in requests]

    @property
    def pad_id(self) -> int:
        tok = self.tokenizer
        return int(tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0))

    @property
    def stop_ids(self) -> list[int]:
        """EOS plus the chat template's end-of-turn tokens: generation stops at these ids and nothing else."""
        from sqlshift.lm.models import stop_token_ids

        return stop_token_ids(self.tokenizer)

    def finish(self, ids: Sequence[int], stops: Sequence[str], max_new_tokens: int,
               stop_ids: Sequence[int] | None = None) -> Generation:
        """A generation from its new token ids: the text before the first stop id, cut at the first stop string;
        ``hit_limit`` when neither stopped it and the token limit was reached."""
        stop_ids = self.stop_ids if stop_ids is None else stop_ids
        stop_at = next((i for i, t in enumerate(ids) if t in stop_ids), None)
        content = list(ids) if stop_at is None else list(ids[:stop_at])
        text = self.tokenizer.decode(content, skip_special_tokens=True)
        cut = min((text.find(s) for s in stops if s and s in text), default=-1)
        finished = stop_at is not None or cut >= 0
        return Generation(text[:cut] if cut >= 0 else text, len(content),
                          not finished and len(content) >= max_new_tokens)
