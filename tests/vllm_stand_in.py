"""A stand-in for ``vllm`` (0.26's ``LLM``/``SamplingParams``/``TokensPrompt``/``LoRARequest`` as read from its
source), computed with transformers on CPU. It tests sqlshift's logic around the engine; it does not show that the
real engine works (the GPU smoke check, benchmarks/gpu/smoke.sh, does that)."""

from __future__ import annotations

import sys
import types
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest


class FakeLLM:
    """``vllm.LLM`` as read from vLLM 0.26's source, computed with transformers on CPU: output ids keep the stop
    token, ``finish_reason`` is stop/length, prompt log-probs are ``[None, {id: Logprob(logprob, rank)}, ...]``.
    ``started`` records every engine start (the folder it served), so tests can count engines."""

    started: ClassVar[list[str]] = []

    def __init__(self, folder: str, **kw: Any) -> None:
        from sqlshift.lm.models import load_model

        self.model, _ = load_model(folder, device="cpu", dtype="fp32")
        self.kw = kw
        FakeLLM.started.append(folder)

    def generate(self, prompts: list[dict], params: Any, *, lora_request: Any = None, use_tqdm: Any = True) -> list:
        from sqlshift.lm.models import apply_adapter

        params = params if isinstance(params, list) else [params] * len(prompts)
        if lora_request:
            self.check_lora(lora_request.lora_path)
        model = apply_adapter(self.model, lora_request.lora_path) if lora_request else self.model
        try:
            return [self.one(model, p["prompt_token_ids"], sp) for p, sp in zip(prompts, params)]
        finally:
            if lora_request:
                self.model = model.unload()

    def check_lora(self, path: str) -> None:
        """vLLM refuses a LoRA request to an engine without LoRA, or above the engine's max_lora_rank."""
        from sqlshift.lm.models import adapter_config, adapter_rank

        if not self.kw.get("enable_lora"):
            raise ValueError("LoRA is not enabled!")
        if adapter_rank(adapter_config(path)) > self.kw["max_lora_rank"]:
            raise ValueError(f"LoRA rank is greater than max_lora_rank {self.kw['max_lora_rank']}")

    def one(self, model: Any, ids: list[int], sp: Any) -> Any:
        import torch

        x = torch.tensor([ids])
        with torch.inference_mode():
            if getattr(sp, "logprob_token_ids", None):  # one step; the wanted ids' raw log-probs + the sampled one
                lp = torch.log_softmax(model(input_ids=x).logits[0, -1].float(), -1)
                top = int(lp.argmax())
                got = {t: SimpleNamespace(logprob=float(lp[t]), rank=int((lp >= lp[t]).sum()))
                       for t in [*sp.logprob_token_ids, top]}
                return SimpleNamespace(prompt_logprobs=None, outputs=[
                    SimpleNamespace(token_ids=[top], logprobs=[got], finish_reason="length")])
            if sp.prompt_logprobs is not None:
                lp = torch.log_softmax(model(input_ids=x).logits[0].float(), -1)
                row = lambda i, t: SimpleNamespace(logprob=float(lp[i, t]), rank=int((lp[i] >= lp[i, t]).sum()))  # noqa
                plp = [None] + [{t: row(i - 1, t)} for i, t in enumerate(ids) if i]
                return SimpleNamespace(prompt_logprobs=plp, outputs=[])
            assert sp.ignore_eos
            new = self.decode(model, x, sp)
        return SimpleNamespace(prompt_logprobs=None, outputs=[self.done(row[len(ids):].tolist(), sp) for row in new])

    @staticmethod
    def decode(model: Any, x: Any, sp: Any) -> Any:
        """Greedy at temperature 0; else ``n`` samples (top-k off, as vLLM's 0), seeded per request as vLLM is."""
        import torch

        common = dict(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=sp.max_tokens,
                      eos_token_id=sp.stop_token_ids, pad_token_id=sp.stop_token_ids[0])
        if sp.temperature == 0.0:
            return model.generate(**common, do_sample=False)
        assert sp.top_k in (0, -1) and sp.seed is not None
        with torch.random.fork_rng(devices=[], device_type="cpu"):
            torch.manual_seed(sp.seed)
            return model.generate(**common, do_sample=True, num_return_sequences=sp.n, temperature=sp.temperature,
                                  top_p=sp.top_p, top_k=0)

    @staticmethod
    def done(out: list[int], sp: Any) -> Any:
        """One completion as vLLM returns it: ids up to and including the first stop id, and why it ended."""
        stop = next((i for i, t in enumerate(out) if t in sp.stop_token_ids), None)
        return SimpleNamespace(token_ids=out if stop is None else out[:stop + 1],
                               finish_reason="length" if stop is None else "stop")


def install_stand_in(monkeypatch: pytest.MonkeyPatch) -> type[FakeLLM]:
    """Put the stand-in modules in ``sys.modules`` as ``vllm`` for this test; returns the engine class."""
    import sqlshift.lm.vllm as lv

    mods = {n: types.ModuleType(n) for n in ("vllm", "vllm.inputs", "vllm.lora", "vllm.lora.request")}
    mods["vllm"].__version__ = "stand-in"
    mods["vllm"].LLM = FakeLLM
    mods["vllm"].SamplingParams = lambda **kw: SimpleNamespace(**{"prompt_logprobs": None, **kw})
    mods["vllm.inputs"].TokensPrompt = dict
    mods["vllm.lora.request"].LoRARequest = lambda name, lid, path: SimpleNamespace(lora_name=name, lora_int_id=lid,
                                                                                   lora_path=path)
    for n, m in mods.items():
        monkeypatch.setitem(sys.modules, n, m)
    monkeypatch.setattr(lv, "vllm_available", lambda: True)
    FakeLLM.started = []
    return FakeLLM
