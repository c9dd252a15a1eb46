"""The transformers ``LM`` (HFLM) against direct forward passes of the real tiny model.

log-likelihoods (single- and multi-token, batched = alone, greedy flag), generation (end-of-turn stop, stop strings,
the length limit) and LoRA adapters switched in and out (λ=0 is the base, λ=1 the merged adapter, leaving restores).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

from sqlshift.lm.api import LM, GenerateRequest, Generation, LoglikelihoodRequest
from sqlshift.lm.hf import HFLM, pad_batch


class CountingLM(LM):
    """A second ``LM`` that delegates to a real one and counts what it is asked (the model itself is untouched).

    Other test modules use it to check that resumed benchmarks only ask for the missing items."""

    backend = "counting"

    def __init__(self, inner: LM) -> None:
        self.inner = inner
        self.tokenizer = inner.tokenizer
        self.generate_requests = 0
        self.loglikelihood_requests = 0

    @property
    def identity(self) -> dict[str, Any]:
        return {**self.inner.identity, "backend": self.backend}

    @property
    def max_length(self) -> int:
        return self.inner.max_length

    def generate(self, requests: Sequence[GenerateRequest], *, batch_size: int | None = None,
                 desc: str = "generate") -> list[Generation]:
        self.generate_requests += len(requests)
        return self.inner.generate(requests, batch_size=batch_size, desc=desc)

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest], *, batch_size: int | None = None,
                      desc: str = "loglikelihood") -> list[tuple[float, bool]]:
        self.loglikelihood_requests += len(requests)
        return self.inner.loglikelihood(requests, batch_size=batch_size, desc=desc)

    def adapter(self, path: Path | None, scale: float = 1.0) -> contextlib.AbstractContextManager[None]:
        return self.inner.adapter(path, scale)

    def stats(self) -> dict[str, Any]:
        return self.inner.stats()


@pytest.fixture(scope="module")
def lm(tiny_model_dir: Path) -> HFLM:
    return HFLM(str(tiny_model_dir))


def direct(lm: HFLM, context: str, continuation: str) -> tuple[float, bool, list[int]]:
    """Reference: one unpadded forward pass, log_softmax, summed over the continuation tokens."""
    ctx = lm.encode_context(context)
    cont = lm.encode_continuation(continuation)
    ids = torch.tensor([ctx + cont])
    with torch.inference_mode():
        logp = torch.log_softmax(lm.model(input_ids=ids).logits.float(), dim=-1)[0]
    rows = logp[len(ctx) - 1:len(ctx) + len(cont) - 1]
    total = float(sum(rows[j, t] for j, t in enumerate(cont)))
    greedy = all(int(rows[j].argmax()) == t for j, t in enumerate(cont))
    return total, greedy, cont


def greedy_continuation(lm: HFLM, n: int) -> tuple[str, str]:
    """(context, ``n`` greedy tokens after it as text) for the first context whose greedy tokens survive a
    decode/encode round trip (a random model may repeat a token that re-encodes merged)."""
    for context in CONTEXTS + ["Once upon a time", "The answer is", "hello world"]:
        ids = lm.encode_context(context)
        new: list[int] = []
        with torch.inference_mode():
            for _ in range(n):
                new.append(int(lm.model(input_ids=torch.tensor([ids + new])).logits[0, -1].argmax()))
        text = lm.tokenizer.decode(new)
        if lm.encode_continuation(text) == new:
            return context, text
    pytest.skip("no context's greedy tokens survive a decode/encode round trip")


CONTEXTS = ["The following are multiple choice questions (with answers) about geography.\n\nAnswer:",
            "Question: which river is longest?\nAnswer:",
            "SELECT",
            "<|im_start|>user\nlist every singer older than thirty, ordered by name please<|im_end|>\n"
            "<|im_start|>assistant\nAnswer:"]


@pytest.mark.parametrize("continuation", [" A", " D", " the Nile river in Africa", " count(*) FROM singer"])
def test_loglikelihood_equals_a_direct_forward_pass(lm: HFLM, continuation: str) -> None:
    for ctx in CONTEXTS:
        want, want_greedy, cont = direct(lm, ctx, continuation)
        assert cont, "continuation must have tokens"
        (got, greedy), = lm.loglikelihood([LoglikelihoodRequest(ctx, continuation)], batch_size=1)
        assert got == pytest.approx(want, abs=1e-4)
        assert greedy == want_greedy
        assert got < 0


def test_single_token_path_is_the_next_token_log_prob(lm: HFLM) -> None:
    """" A".." D" after one context share a forward pass; each must equal its own next-token log-prob."""
    ctx = CONTEXTS[0]
    reqs = [LoglikelihoodRequest(ctx, f" {L}") for L in "ABCD"]
    assert all(len(lm.encode_continuation(r.continuation)) == 1 for r in reqs)
    got = lm.loglikelihood(reqs)
    ids = torch.tensor([lm.encode_context(ctx)])
    with torch.inference_mode():
        logp = torch.log_softmax(lm.model(input_ids=ids).logits.float()[0, -1], dim=-1)
    for r, (lp, greedy) in zip(reqs, got):
        t = lm.encode_continuation(r.continuation)[0]
        assert lp == pytest.approx(float(logp[t]), abs=1e-4)
        assert greedy == (int(logp.argmax()) == t)
    assert len({round(lp, 5) for lp, _ in got}) == 4, "four different tokens must score differently"


def test_batched_equals_unbatched_despite_padding(lm: HFLM) -> None:
    reqs = [LoglikelihoodRequest(c, k) for c in CONTEXTS for k in (" A", " C", " the Nile river", " FROM singer")]
    lengths = {len(lm.encode_context(r.context)) + len(lm.encode_continuation(r.continuation)) for r in reqs}
    assert len(lengths) > 4, "lengths must differ so a batch pads"
    batched = lm.loglikelihood(reqs, batch_size=16)
    alone = [lm.loglikelihood([r], batch_size=1)[0] for r in reqs]
    for (b, bg), (a, ag) in zip(batched, alone):
        assert b == pytest.approx(a, abs=1e-4)
        assert bg == ag
    assert lm.stats()["padding_check_max_abs_diff"] is not None
    assert lm.stats()["padding_check_max_abs_diff"] < 1e-3
    assert lm.stats()["backend"] == "hf"


def test_results_come_back_in_request_order(lm: HFLM) -> None:
    reqs = [LoglikelihoodRequest(CONTEXTS[i % 4], k) for i, k in enumerate([" A", " river", " B", " singer name"])]
    together = lm.loglikelihood(reqs, batch_size=3)
    alone = [lm.loglikelihood([r])[0] for r in reqs]
    assert [lp for lp, _ in together] == pytest.approx([lp for lp, _ in alone], abs=1e-4)
    assert [g for _, g in together] == [g for _, g in alone]
    assert lm.loglikelihood([LoglikelihoodRequest("x", "")]) == [(0.0, True)]  # nothing to score


@pytest.mark.parametrize("n", [1, 3])
def test_is_greedy_true_exactly_for_the_greedy_continuation(lm: HFLM, n: int) -> None:
    ctx, text = greedy_continuation(lm, n)
    (_, greedy), = lm.loglikelihood([LoglikelihoodRequest(ctx, text)])
    assert greedy
    other = " zebra" if text.strip() != "zebra" else " apple"
    (_, greedy), = lm.loglikelihood([LoglikelihoodRequest(ctx, other + text)])
    assert not greedy


def test_pad_batch_is_left_padded_with_positions_from_the_first_real_token() -> None:
    """RoPE is relative, so a Llama hides wrong positions; absolute-position models (GPT-2) would not."""
    ids, mask, pos = pad_batch([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert pos.tolist() == [[0, 1, 2], [0, 0, 0]]


def test_long_context_is_truncated_from_the_left(lm: HFLM) -> None:
    cont = lm.encode_continuation(" A")
    ctx = list(range(10, 10 + lm.max_length + 5))
    before = lm.n_truncated
    kept = lm.fit(ctx, cont)
    assert len(kept) + len(cont) == lm.max_length and kept == ctx[-len(kept):]
    assert lm.n_truncated == before + 1


# ---------------------------------------------------------------- generation


class Script:
    """Forward hook on lm_head forcing the tokens of ``ids`` in order (then ``after`` forever)."""

    def __init__(self, ids: list[int], after: int) -> None:
        self.ids, self.after, self.calls = ids, after, 0

    def __call__(self, module: Any, inputs: Any, output: torch.Tensor) -> torch.Tensor:
        t = self.ids[self.calls] if self.calls < len(self.ids) else self.after
        self.calls += 1
        output = output.clone()
        output[:, -1, t] += 1e4
        return output


def scripted(lm: HFLM, ids: list[int], after: int, reqs: list[GenerateRequest], **kw: Any) -> list[Generation]:
    h = lm.model.lm_head.register_forward_hook(Script(ids, after))
    try:
        return lm.generate(reqs, **kw)
    finally:
        h.remove()


CHAT = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_generation_stops_at_end_of_turn(lm: HFLM) -> None:
    from sqlshift.lm.models import stop_token_ids

    tok = lm.tokenizer
    assert stop_token_ids(tok)[0] == tok.convert_tokens_to_ids("<|im_end|>")
    sql_ids = tok("SELECT 1", add_special_tokens=False)["input_ids"]
    system = tok("system", add_special_tokens=False)["input_ids"][0]
    saved = lm.model.generation_config.eos_token_id
    lm.model.generation_config.eos_token_id = None  # the GPU pitfall: the model's own config does not stop it
    try:
        out = scripted(lm, sql_ids + [tok.eos_token_id], system, [GenerateRequest(CHAT, 12)] * 2, batch_size=2)
    finally:
        lm.model.generation_config.eos_token_id = saved
    assert out == [Generation("SELECT 1", len(sql_ids), False)] * 2


def test_generation_reports_hit_limit(lm: HFLM) -> None:
    system = lm.tokenizer("system", add_special_tokens=False)["input_ids"][0]
    (g,) = scripted(lm, [], system, [GenerateRequest("hello", 5)])
    assert g.hit_limit and g.n_tokens == 5 and "system" in g.text


def test_generation_respects_stop_strings(lm: HFLM) -> None:
    tok = lm.tokenizer
    ids = tok("SELECT a FROM t;\n\nThis query lists a", add_special_tokens=False)["input_ids"]
    (g,) = scripted(lm, ids, ids[-1], [GenerateRequest(CHAT, len(ids) + 4, stop=(";",))])
    assert g.text == "SELECT a FROM t"
    assert not g.hit_limit
    assert g.n_tokens < len(ids), "generation must stop at the stop string, not run to the end of the script"
    (free,) = scripted(lm, ids, ids[-1], [GenerateRequest(CHAT, len(ids))])  # no stop: the whole text
    assert free.text.startswith("SELECT a FROM t;\n\nThis query")


def test_generate_keeps_request_order_across_lengths_and_groups(lm: HFLM) -> None:
    reqs = [GenerateRequest("hi", 3), GenerateRequest(CHAT + "a much longer prompt than the others here", 3),
            GenerateRequest("SELECT", 2), GenerateRequest("hi", 3, stop=("zzz",))]
    together = lm.generate(reqs, batch_size=2)
    alone = [lm.generate([r], batch_size=1)[0] for r in reqs]
    assert together == alone
    assert [g.n_tokens <= r.max_new_tokens for g, r in zip(together, reqs)] == [True] * 4


# ---------------------------------------------------------------- adapters


ADAPTER_REQS = [LoglikelihoodRequest(CONTEXTS[0], " B"), LoglikelihoodRequest(CONTEXTS[3], " count(*) FROM singer")]


def scores(lm: HFLM) -> list[float]:
    return [lp for lp, _ in lm.loglikelihood(ADAPTER_REQS)]


def test_adapter_scale_zero_is_the_base_one_is_the_merged_adapter(tiny_model_dir: Path, random_adapter: Path) -> None:
    from sqlshift.lm.models import load_model

    lm = HFLM(str(tiny_model_dir))
    base = scores(lm)
    merged = scores(HFLM(str(tiny_model_dir), loaded=load_model(str(tiny_model_dir), adapter=random_adapter,
                                                                 merge_adapter=True)))
    assert base != pytest.approx(merged, abs=1e-3), "the adapter must change the model for this test to mean anything"
    with lm.adapter(random_adapter, 0.0):
        assert scores(lm) == base
    with lm.adapter(random_adapter, 1.0):
        assert scores(lm) == pytest.approx(merged, abs=1e-4)
    with lm.adapter(random_adapter, 0.5):
        half = scores(lm)
    assert half != pytest.approx(base, abs=1e-4) and half != pytest.approx(merged, abs=1e-4)
    with lm.adapter(None):
        assert scores(lm) == base


def test_leaving_the_adapter_context_restores_the_base(tiny_model_dir: Path, random_adapter: Path) -> None:
    """The runner attaches adapters to one loaded base and removes them again: nothing may leak."""
    lm = HFLM(str(tiny_model_dir))
    base, ident = scores(lm), lm.identity
    assert ident["adapter"] is None and ident["lambda"] is None
    with lm.adapter(random_adapter, 0.75):
        assert lm.identity["adapter"] and lm.identity["lambda"] == 0.75
        assert scores(lm) != pytest.approx(base, abs=1e-4)
    assert scores(lm) == base and lm.identity == ident
    with pytest.raises(RuntimeError):  # an error inside the context also restores the base
        with lm.adapter(random_adapter, 1.0):
            raise RuntimeError("boom")
    assert scores(lm) == base and lm.identity == ident
    with lm.adapter(random_adapter, 1.0):  # and the same adapter attaches again afterwards
        assert scores(lm) != pytest.approx(base, abs=1e-4)
    assert scores(lm) == base


def test_4bit_base_is_an_hf_setting_with_its_own_cache_key_and_a_one_line_cpu_error(tmp_path) -> None:  # noqa: ANN001
    """lm.load_in_4bit (backend hf) serves a QLoRA adapter on the 4-bit base it trained on: validated by the hf
    backend, part of the step cache's identity only when set, refused in one line where there is no CUDA GPU."""
    from sqlshift.errors import ConfigError, ModelError
    from sqlshift.lm.hf import HFLM, HFSettings
    from sqlshift.study.config import LMSettings

    cls, s = LMSettings(backend="hf", load_in_4bit=True, device="cuda").resolve()
    assert cls is HFLM and isinstance(s, HFSettings) and s.load_in_4bit
    plain = HFLM.cache_identity("m", HFSettings(), None, None)
    four = HFLM.cache_identity("m", HFSettings(load_in_4bit=True), None, None)
    assert "load_in_4bit" not in plain and four["load_in_4bit"] is True and plain != four
    with pytest.raises(ValueError, match="load_in_4bit.*backend hf, not of vllm"):
        LMSettings(backend="vllm", load_in_4bit=True)
    with pytest.raises(ConfigError, match="needs a CUDA GPU") as e:
        LMSettings(backend="hf", load_in_4bit=True, device="cpu").resolve()
    assert "\n" not in str(e.value)
    with pytest.raises(ModelError, match="4-bit loading needs a CUDA GPU"):  # device auto on a machine without CUDA
        HFLM("embedded", device="cpu", load_in_4bit=True)
    with pytest.raises(ValueError, match="set lm.backend: hf"):  # auto may pick vLLM, which serves the bf16 base
        LMSettings(load_in_4bit=True)
