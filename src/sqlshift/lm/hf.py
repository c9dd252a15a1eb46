"""The transformers + peft implementation of :class:`sqlshift.lm.api.LM` (CPU, tests, any machine without vLLM).

Generation is batched greedy decoding (or seeded sampling), longest prompts first, stopping at every end-of-turn
token and at the request's stop strings. Log-likelihoods are batched forward passes with left padding and position
ids counted from each sequence's first real token, so a padded sequence scores as it would alone (checked once per
call). Requests whose continuation is a single token share one forward pass per distinct context (multiple-choice
letters).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from sqlshift.errors import ConfigError
from sqlshift.lm.api import BackendSettings, GenerateRequest, Generation, LoglikelihoodRequest, Sampling
from sqlshift.lm.base import TokenLM

log = logging.getLogger(__name__)

PAD_CHECK_TOL_FP32 = 1e-3
PAD_CHECK_TOL_LOW = 0.25  # bf16/fp16 logits move this much with batch shape alone


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any, Any]:
    """Left-padded ``input_ids``, ``attention_mask`` and ``position_ids`` (0 at each sequence's first real token)."""
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, width - len(s):] = torch.tensor(list(s), dtype=torch.long)
        mask[i, width - len(s):] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, mask, pos


def read_scores(rows: Any, wanted: list[tuple[int, int, int]]) -> tuple[list[float], list[int]]:
    """(log-prob of each wanted (row, _, token), the argmax token of its row) in two device-to-host copies, not two
    per request (MMLU 57: 56168 of them)."""
    import torch

    r = torch.tensor([k for k, _, _ in wanted], device=rows.device)
    t = torch.tensor([x for _, _, x in wanted], device=rows.device)
    return rows[r, t].tolist(), rows.argmax(-1)[r].tolist()


def length_sorted(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Positions in batches of similar length, longest first (little padding; an OOM shows up at once)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]



def token_ticker(bar: Any, limit: int) -> Any:
    """A stopping criterion that never stops: it writes ``token n/limit`` into the bar every 8 decoding steps."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Ticker(StoppingCriteria):
        def __init__(self) -> None:
            self.step = 0

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            self.step += 1
            if self.step % 8 == 0:
                bar.set_postfix_str(f"token {self.step}/{limit}")
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([Ticker()])


class HFSettings(BackendSettings):
    """The transformers backend's keys under ``lm:`` beside device and dtype."""

    # it changes the numbers, so backend: auto (which may pick vLLM and its bf16 base) refuses it: name hf
    load_in_4bit: bool = Field(False, json_schema_extra={"names_backend": True})  # base in 4-bit NF4, as QLoRA trains


class HFLM(TokenLM):
    """A transformers model (Hub id, folder, GGUF or ``embedded``) with LoRA adapters attached on demand."""

    backend = "hf"
    Settings = HFSettings

    @classmethod
    def cache_identity(cls, model: str, settings: BackendSettings, adapter: Path | None,
                       scale: float | None) -> dict[str, Any]:
        """The base identity, plus the 4-bit base when asked for (unset, the keys of earlier runs stay)."""
        ident = super().cache_identity(model, settings, adapter, scale)
        return ident | ({"load_in_4bit": True} if getattr(settings, "load_in_4bit", False) else {})

    @classmethod
    def require(cls, settings: BackendSettings) -> None:
        if getattr(settings, "load_in_4bit", False) and settings.device in ("cpu", "mps"):
            raise ConfigError(f"lm.load_in_4bit needs a CUDA GPU, but lm.device is {settings.device}",
                              "set lm.load_in_4bit: false (the adapter is then served on the bf16/fp32 base)")

    def __init__(self, model: str = "embedded", *, device: str = "auto", dtype: str = "auto",
                 batch_size: int = 16, loaded: tuple[Any, Any] | None = None, load_in_4bit: bool = False) -> None:
        from sqlshift.lm.models import load_model

        self.spec = model
        self.dtype = dtype
        self.settings = HFSettings(device=device, dtype=dtype, load_in_4bit=load_in_4bit)
        self.batch_size = batch_size
        self.model, self.tokenizer = loaded or load_model(model, device=device, dtype=dtype, load_in_4bit=load_in_4bit)
        self._adapter: Path | None = None
        self._scale = 1.0
        self._pad_diff: float | None = None
        self.n_truncated = 0

    # ---- adapters ---------------------------------------------------------------------------------------
    @property
    def max_length(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 2048) or 2048)

    @contextlib.contextmanager
    def adapter(self, path: Path | None, scale: float = 1.0) -> Iterator[None]:
        """Wrap the base model with the adapter for the duration; unload restores the exact base weights."""
        if path is None:
            yield
            return
        from sqlshift.lm.models import apply_adapter

        base = self.model
        self.model = apply_adapter(base, path, scale=scale)
        self.model.eval()
        self._adapter, self._scale = Path(path), scale
        try:
            yield
        finally:
            self.model = self.model.unload()
            self._adapter, self._scale = None, 1.0

    def stats(self) -> dict[str, Any]:
        return {"backend": self.backend, "padding_check_max_abs_diff": self._pad_diff,
                "n_truncated": self.n_truncated}

    def close(self) -> None:
        import gc

        import torch

        self.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ---- generation -------------------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerateRequest], *, batch_size: int | None = None,
                 desc: str = "generate") -> list[Generation]:
        """Greedy generations; requests are grouped by (limit, stops), then batched longest first."""
        return [gens[0] for gens in self.run_batches(requests, None, batch_size or self.batch_size, desc)]

    def sample(self, requests: Sequence[GenerateRequest], sampling: Sampling, *, batch_size: int | None = None,
               desc: str = "sample") -> list[list[Generation]]:
        """``sampling.n`` samples per request. A batch holds ``batch_size // n`` prompts (as many sequences as a
        greedy batch); one seeded stream for the whole call, on a forked RNG so the global one is left as it was."""
        import torch

        dev = self.model.device
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else [], device_type=dev.type):
            torch.manual_seed(sampling.seed)
            return self.run_batches(requests, sampling, max(1, (batch_size or self.batch_size) // sampling.n), desc)

    def run_batches(self, requests: Sequence[GenerateRequest], sampling: Sampling | None, batch_size: int,
                    desc: str) -> list[list[Generation]]:
        """Every request's generations (one when greedy), grouped by (limit, stops), batched longest first."""
        from tqdm import tqdm

        out: list[list[Generation] | None] = [None] * len(requests)
        groups: dict[tuple[int, tuple[str, ...]], list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((r.max_new_tokens, r.stop), []).append(i)
        encoded = self.encode_contexts([r.prompt for r in requests])
        self.model.eval()
        with tqdm(total=len(requests), desc=desc, disable=not requests) as bar:
            for (limit, stops), members in groups.items():
                for batch in length_sorted([len(encoded[i]) for i in members], batch_size):
                    idx = [members[j] for j in batch]
                    gens = self.decode([encoded[i] for i in idx], limit, stops, progress=bar, sampling=sampling)
                    k = sampling.n if sampling else 1
                    for n, i in enumerate(idx):
                        out[i] = gens[n * k:(n + 1) * k]
                    bar.update(len(idx))
        return [g for g in out if g is not None]

    def decode(self, seqs: list[list[int]], max_new_tokens: int, stops: tuple[str, ...],
               progress: Any = None, sampling: Sampling | None = None) -> list[Generation]:
        """One batch of decoding from token ids (greedy, or ``sampling.n`` samples per sequence, each sequence's
        samples adjacent); text is cut at the first end-of-turn token or stop string.

        ``progress`` (a tqdm bar) shows the token being generated: the bar counts finished items, and the first,
        longest batch can take minutes on a CPU before any item finishes."""
        import torch

        tok = self.tokenizer
        stop_ids = self.stop_ids
        ids, mask, _ = pad_batch(seqs, self.pad_id)
        dev = self.model.device
        extra: dict[str, Any] = {"stop_strings": list(stops), "tokenizer": tok} if stops else {}
        if progress is not None:
            extra["stopping_criteria"] = token_ticker(progress, max_new_tokens)
        how = (dict(do_sample=True, num_return_sequences=sampling.n, temperature=sampling.temperature,
                    top_p=sampling.top_p, top_k=0) if sampling else
               dict(do_sample=False, temperature=None, top_p=None, top_k=None))
        with torch.inference_mode():
            gen = self.model.generate(input_ids=ids.to(dev), attention_mask=mask.to(dev),
                                      max_new_tokens=max_new_tokens, num_beams=1,
                                      eos_token_id=stop_ids, pad_token_id=tok.pad_token_id, **how, **extra)
        return [self.finish(row, stops, max_new_tokens, stop_ids) for row in gen[:, ids.shape[1]:].tolist()]

    # ---- log-likelihood ---------------------------------------------------------------------------------
    def fit(self, ctx: list[int], cont: list[int]) -> list[int]:
        """Drop the oldest context tokens when context + continuation exceed the model's length."""
        room = self.max_length - len(cont)
        if len(ctx) > room:
            self.n_truncated += 1
            return ctx[-room:]
        return ctx

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest], *, batch_size: int | None = None,
                      desc: str = "loglikelihood") -> list[tuple[float, bool]]:
        """Summed continuation log-probs; single-token continuations of one context share a forward pass."""
        from tqdm import tqdm

        enc = [(self.fit(c, k), k) for c, k in self.encode_pairs(requests)]
        out: list[tuple[float, bool] | None] = [None] * len(requests)
        single: dict[tuple[int, ...], list[int]] = {}
        multi: list[int] = []
        for i, (ctx, cont) in enumerate(enc):
            if not cont:
                out[i] = (0.0, True)
            elif len(cont) == 1:
                single.setdefault(tuple(ctx), []).append(i)
            else:
                multi.append(i)
        bs = batch_size or self.batch_size
        self.model.eval()
        with tqdm(total=len(requests), desc=desc, disable=not requests) as bar:
            contexts = list(single)
            for batch in length_sorted([len(c) for c in contexts], bs):
                rows = self.next_token_logprobs([list(contexts[j]) for j in batch])
                wanted = [(k, i, enc[i][1][0]) for k, j in enumerate(batch) for i in single[contexts[j]]]
                for (k, i, t), lp, top in zip(wanted, *read_scores(rows, wanted)):
                    out[i] = (lp, top == t)
                bar.update(len(wanted))
            for batch in length_sorted([len(enc[i][0]) + len(enc[i][1]) for i in multi], bs):
                idx = [multi[j] for j in batch]
                for i, r in zip(idx, self.continuation_logprobs([enc[i] for i in idx])):
                    out[i] = r
                bar.update(len(idx))
        return [r if r is not None else (0.0, True) for r in out]

    def forward(self, seqs: list[list[int]], keep: int) -> Any:
        """Log-softmax at the last ``keep`` positions only (memory batch x keep x vocab, not x length)."""
        import torch

        ids, mask, pos = pad_batch(seqs, self.pad_id)
        dev = self.model.device
        with torch.inference_mode():
            logits = self.model(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev),
                                use_cache=False, logits_to_keep=keep).logits
        return torch.log_softmax(logits.float(), dim=-1)

    def next_token_logprobs(self, ctxs: list[list[int]]) -> Any:
        """Next-token log-probs after each context, with the padding self-check on the first batch."""
        lp = self.forward(ctxs, keep=1)[:, -1]
        if self._pad_diff is None and len(ctxs) > 1:
            i = min(range(len(ctxs)), key=lambda j: len(ctxs[j]))
            alone = self.forward([ctxs[i]], keep=1)[0, -1]
            self._pad_diff = float((alone - lp[i]).abs().max())
            fp32 = str(next(self.model.parameters()).dtype) == "torch.float32"
            if self._pad_diff > (PAD_CHECK_TOL_FP32 if fp32 else PAD_CHECK_TOL_LOW):
                log.warning("padding check: batched and unpadded log-probs differ by %.4g", self._pad_diff)
        return lp

    def continuation_logprobs(self, pairs: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        """(summed log-prob, greedy?) of each continuation after its context."""
        keep = max(len(c) for _, c in pairs) + 1
        lp = self.forward([c + k for c, k in pairs], keep=keep)
        out = []
        for i, (_, cont) in enumerate(pairs):
            rows = lp[i, -len(cont) - 1:-1]  # logits at position t predict token t + 1
            picked = [float(rows[j, t]) for j, t in enumerate(cont)]
            greedy = all(int(rows[j].argmax()) == t for j, t in enumerate(cont))
            out.append((sum(picked), greedy))
        return out
