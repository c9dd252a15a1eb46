"""The vLLM backend without vLLM: import, backend choice and its errors, λ-scaled adapters equal peft's scaling,
token ids equal the HF backend's, output assembly. With vLLM and CUDA, one engine checks agreement with HF."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import sqlshift.lm.vllm as lv
from sqlshift.lm.api import GenerateRequest, LoglikelihoodRequest, get_backend
from sqlshift.errors import ConfigError, ModelError
from vllm_stand_in import install_stand_in


def test_module_imports_without_vllm_and_is_registered() -> None:
    assert get_backend("vllm") is lv.VLLMLM and lv.VLLMLM.backend == "vllm"


def fake_vllm(monkeypatch: pytest.MonkeyPatch, installed: bool, cuda: bool = True) -> None:
    """Make ``find_spec("vllm")`` and CUDA say what the test needs, whatever this machine has."""
    import importlib.util

    import torch

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (object() if installed else None) if name == "vllm" else real(name, *a))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)


def backend_of(**lm: Any) -> str:
    """The backend the study's ``lm:`` block resolves to (decided by the backends' own classes)."""
    from sqlshift.study.config import LMSettings

    return LMSettings(**lm).resolve()[0].backend


def test_vllm_requested_without_vllm_is_one_line_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_vllm(monkeypatch, installed=False)
    for call in (lambda: backend_of(backend="vllm"), lambda: lv.VLLMLM("embedded")):
        with pytest.raises(ConfigError) as e:
            call()
        assert "\n" not in str(e.value) and "pip install 'sqlshift[vllm]'" in str(e.value)


@pytest.mark.parametrize("cuda,vllm,device,want", [(False, True, "auto", "hf"), (True, True, "auto", "vllm"),
                                                   (True, True, "cpu", "hf"), (True, False, "auto", "hf")])
def test_auto_backend(monkeypatch: pytest.MonkeyPatch, cuda: bool, vllm: bool, device: str, want: str) -> None:
    fake_vllm(monkeypatch, installed=vllm, cuda=cuda)
    assert backend_of(device=device) == want
    assert backend_of(backend="hf") == "hf"


def test_missing_vllm_on_cuda_warns_once(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    fake_vllm(monkeypatch, installed=False)
    lv._warn_no_vllm.cache_clear()
    with caplog.at_level(logging.WARNING):
        assert [backend_of() for _ in range(3)] == ["hf"] * 3
    assert sum("vLLM not installed" in r.getMessage() for r in caplog.records) == 1


# ---------------------------------------------------------------- λ-scaled adapters


@pytest.fixture(scope="module")
def tiny_adapter(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rank-4 LoRA on q/v/gate with random B (peft's default B = 0 would make any λ look right)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from sqlshift.lm.models import load_model

    model, _ = load_model(str(tiny_model_dir), device="cpu", dtype="fp32")
    torch.manual_seed(1)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "gate_proj"], init_lora_weights=False)
    peft_model = get_peft_model(model, cfg)
    out = tmp_path_factory.mktemp("adapter")
    peft_model.save_pretrained(out)
    return out


def logits_with(model_dir: Path, adapter: Path, scale: float) -> Any:
    """Logits of a fixed sequence through the HF path: base + adapter at ``scale`` (peft's scale_lora)."""
    import torch

    from sqlshift.lm.models import apply_adapter, load_model

    model, _ = load_model(str(model_dir), device="cpu", dtype="fp32")
    model = apply_adapter(model, adapter, scale=scale).eval()
    ids = torch.arange(3, 40).unsqueeze(0)
    with torch.inference_mode():
        return model(input_ids=ids).logits


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.75])
def test_scaled_adapter_equals_peft_scale(tiny_model_dir: Path, tiny_adapter: Path, tmp_path: Path,
                                          lam: float) -> None:
    import torch

    served = lv.scaled_adapter(tiny_adapter, lam, tmp_path)
    assert served.parent == tmp_path / "lora" and served.name.endswith(f"-x{lam!r}")
    mine = logits_with(tiny_model_dir, served, 1.0)
    torch.testing.assert_close(mine, logits_with(tiny_model_dir, tiny_adapter, lam), atol=1e-5, rtol=1e-5)
    assert (mine - logits_with(tiny_model_dir, tiny_adapter, 1.0)).abs().max() > 1e-3  # λ changed something
    mtime = (served / "adapter_model.safetensors").stat().st_mtime_ns
    assert lv.scaled_adapter(tiny_adapter, lam, tmp_path) == served  # cached: written once
    assert (served / "adapter_model.safetensors").stat().st_mtime_ns == mtime


def test_scale_one_serves_the_adapter_itself(tiny_adapter: Path, tmp_path: Path) -> None:
    assert lv.scaled_adapter(tiny_adapter, 1.0, tmp_path) == tiny_adapter
    assert not (tmp_path / "lora").exists()


def test_check_adapter(tiny_adapter: Path, tmp_path: Path) -> None:
    assert lv.check_adapter(tiny_adapter, 64)["r"] == 4
    with pytest.raises(ConfigError, match="max_lora_rank"):
        lv.check_adapter(tiny_adapter, 1)
    with pytest.raises(ConfigError, match="without LoRA.*lm.max_lora_rank to 8"):
        lv.check_adapter(tiny_adapter, None)
    with pytest.raises(ModelError):
        lv.check_adapter(tmp_path, 64)
    bad = tmp_path / "dora"
    bad.mkdir()
    (bad / "adapter_model.safetensors").write_bytes((tiny_adapter / "adapter_model.safetensors").read_bytes())
    (bad / "adapter_config.json").write_text(json.dumps({"r": 4, "use_dora": True}))
    with pytest.raises(ConfigError, match="DoRA"):
        lv.check_adapter(bad, 64)


# ---------------------------------------------------------------- token ids and outputs, no engine


@pytest.fixture(scope="module")
def pair(tiny_model_dir: Path) -> tuple[Any, Any]:
    """(HFLM, a VLLMLM shell with the same tokenizer and no engine)."""
    from sqlshift.lm.hf import HFLM

    hf = HFLM(str(tiny_model_dir), device="cpu")
    shell = object.__new__(lv.VLLMLM)
    shell.tokenizer, shell.max_model_len, shell.n_truncated = hf.tokenizer, 4096, 0
    return hf, shell


def test_token_ids_equal_the_hf_backend(pair: tuple[Any, Any]) -> None:
    hf, vl = pair
    tok = hf.tokenizer
    chat = tok.apply_chat_template([{"role": "user", "content": "List the singers."}], tokenize=False,
                                   add_generation_prompt=True)
    reqs = [LoglikelihoodRequest(chat, "SELECT name FROM singer"),
            LoglikelihoodRequest("Question: 2+2?\nAnswer:", " B"),
            LoglikelihoodRequest(tok.bos_token + "The capital of France is", " Paris, of course.")]
    for r in reqs:
        ctx, cont = hf.encode_context(r.context), hf.encode_continuation(r.continuation)
        assert vl.encode_context(r.context) == ctx and vl.encode_continuation(r.continuation) == cont
    assert [s for s, _ in vl.sequences(reqs)] == [tuple(hf.fit(hf.encode_context(r.context),
                                                               hf.encode_continuation(r.continuation))
                                                        + hf.encode_continuation(r.continuation)) for r in reqs]
    assert [n for _, n in vl.sequences(reqs)] == [len(hf.encode_continuation(r.continuation)) for r in reqs]


def test_clip_keeps_the_latest_tokens(pair: tuple[Any, Any]) -> None:
    _, vl = pair
    vl.max_model_len, vl.n_truncated = 10, 0
    try:
        assert vl.clip(list(range(20)), 4) == list(range(14, 20)) and vl.n_truncated == 1
        assert vl.clip(list(range(5)), 4) == list(range(5)) and vl.n_truncated == 1
    finally:
        vl.max_model_len, vl.n_truncated = 4096, 0


def test_finish_cuts_at_stop_ids_and_strings(pair: tuple[Any, Any]) -> None:
    """Both backends cut generations with TokenLM.finish: at the first stop id, then at the first stop string."""
    hf, vl = pair
    tok = vl.tokenizer
    stops = vl.stop_ids
    assert stops == hf.stop_ids
    body = tok("SELECT 1;\n\nExplanation", add_special_tokens=False)["input_ids"]
    assert vl.finish(body + [stops[0]], (), 64) == lv.Generation("SELECT 1;\n\nExplanation", len(body), False)
    assert vl.finish(body + [stops[0]], ("\n\n",), 64).text == "SELECT 1;"
    assert vl.finish(body, (), len(body)).hit_limit and not vl.finish(body, ("\n\n",), len(body)).hit_limit


def test_continuation_score_sums_the_continuation_only() -> None:
    lp = lambda v, r: SimpleNamespace(logprob=v, rank=r)  # noqa: E731
    seq = (5, 6, 7, 8)
    plp = [None, {6: lp(-9.0, 3)}, {7: lp(-0.5, 1)}, {8: lp(-0.25, 1)}]
    assert lv.continuation_score(seq, plp, 2) == (-0.75, True)
    assert lv.continuation_score(seq, plp, 3) == (-9.75, False)


# ---------------------------------------------------------------- the whole class over a stand-in engine


@pytest.fixture()
def stand_in(monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path, tmp_path: Path) -> Any:
    """A VLLMLM whose ``vllm`` is the stand-in engine, on the tiny model, fp32 like the HF backend on CPU."""
    install_stand_in(monkeypatch)
    return lv.VLLMLM(str(tiny_model_dir), dtype="fp32", cache_dir=tmp_path, progress=False)


def test_one_token_continuations_take_one_step_per_context(stand_in: Any) -> None:
    """MMLU letters: one request per context asks for exactly the letters' ids, not prompt log-probs."""
    seen: list[Any] = []
    real = stand_in.llm.generate
    stand_in.llm.generate = lambda prompts, params, **kw: (seen.extend(params), real(prompts, params, **kw))[1]
    letters = [" A", " B", " C", " D"]
    reqs = [LoglikelihoodRequest(q, c) for q in ("Question one?\nAnswer:", "Question two?\nAnswer:") for c in letters]
    scores = stand_in.loglikelihood(reqs)
    assert len(seen) == 2 and all(sp.prompt_logprobs is None and sp.max_tokens == 1 for sp in seen)
    assert sorted(seen[0].logprob_token_ids) == sorted(stand_in.encode_continuation(c)[0] for c in letters)
    assert sum(g for _, g in scores[:4]) <= 1 and all(lp < 0 for lp, _ in scores)


def test_engine_start_failure_is_one_line(monkeypatch: pytest.MonkeyPatch, stand_in: Any, tiny_model_dir: Path,
                                          tmp_path: Path) -> None:
    import sys

    def broken(*a: Any, **kw: Any) -> Any:
        raise RuntimeError("Engine core initialization failed. See root cause above.\nFailed core proc(s): {}")

    monkeypatch.setattr(sys.modules["vllm"], "LLM", broken)
    with pytest.raises(ModelError) as e:
        lv.VLLMLM(str(tiny_model_dir), dtype="fp32", cache_dir=tmp_path, progress=False)
    assert "\n" not in str(e.value) and "Failed core proc" in str(e.value) and "gpu_memory_utilization" in str(e.value)


def test_too_little_free_gpu_memory_is_one_line_before_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    nvml = types.ModuleType("pynvml")
    nvml.nvmlInit = lambda: None
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i
    nvml.nvmlDeviceGetMemoryInfo = lambda h: SimpleNamespace(free=43.35 * 2**30, total=79.18 * 2**30)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    lv.check_free_memory(0.5)  # 39.6 GiB wanted, 43.35 free: fine
    with pytest.raises(ModelError) as e:
        lv.check_free_memory(0.85)
    assert "43.4 of 79.2 GiB free" in str(e.value) and "gpu_memory_utilization to 0.50" in str(e.value)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-1234")  # a UUID: no index to ask NVML about, no check
    lv.check_free_memory(0.85)


def test_engine_skips_flashinfer_sampler_unless_asked(monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path,
                                                      tmp_path: Path) -> None:
    """The engine's process inherits VLLM_USE_FLASHINFER_SAMPLER=0 (no nvcc build at warm-up); a user's value stays."""
    install_stand_in(monkeypatch)
    monkeypatch.delenv("VLLM_USE_FLASHINFER_SAMPLER", raising=False)
    lv.VLLMLM(str(tiny_model_dir), dtype="fp32", cache_dir=tmp_path, progress=False)
    assert os.environ["VLLM_USE_FLASHINFER_SAMPLER"] == "0"
    monkeypatch.setenv("VLLM_USE_FLASHINFER_SAMPLER", "1")
    lv.VLLMLM(str(tiny_model_dir), dtype="fp32", cache_dir=tmp_path, progress=False)
    assert os.environ["VLLM_USE_FLASHINFER_SAMPLER"] == "1"


def test_close_shuts_the_engine_down(stand_in: Any) -> None:
    calls: list[str] = []
    stand_in.llm.llm_engine = SimpleNamespace(engine_core=SimpleNamespace(shutdown=lambda: calls.append("down")))
    stand_in.close()
    stand_in.close()  # twice is harmless
    assert calls == ["down"] and stand_in.llm is None


def test_stand_in_engine_scores_and_generates_as_hf(stand_in: Any, pair: tuple[Any, Any], tiny_adapter: Path) -> None:
    hf, _ = pair
    ll = [LoglikelihoodRequest("The capital of France is", c) for c in (" Paris", " a city", " Paris", "")]
    ll.append(LoglikelihoodRequest("Question: 2+2?\nAnswer:", " B"))
    for lam in (None, 0.5):
        with (stand_in.adapter(tiny_adapter, lam) if lam else contextlib.nullcontext()), \
             (hf.adapter(tiny_adapter, lam) if lam else contextlib.nullcontext()):
            mine, ref = stand_in.loglikelihood(ll), hf.loglikelihood(ll, batch_size=2)
            assert stand_in.identity["lambda"] == lam and (stand_in.identity["adapter"] is None) == (lam is None)
        assert [g for _, g in mine] == [g for _, g in ref]
        assert [lp for lp, _ in mine] == pytest.approx([lp for lp, _ in ref], abs=1e-4)
    assert stand_in.identity["adapter"] is None and stand_in.identity["backend"] == "vllm"
    gen = [GenerateRequest(p, 12) for p in ("SELECT", "List the singers", "Hello")]
    assert stand_in.generate(gen) == hf.generate(gen, batch_size=1)


# ---------------------------------------------------------------- GPU: one engine against the HF backend


@pytest.mark.slow
def test_vllm_agrees_with_hf_on_gpu(tmp_path: Path) -> None:
    """Greedy SQL and scores from both backends on a real model (SQLSHIFT_VLLM_TEST_MODEL, default embedded)."""
    pytest.importorskip("vllm")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    from sqlshift.lm.hf import HFLM

    spec = os.environ.get("SQLSHIFT_VLLM_TEST_MODEL", "embedded")
    vl = lv.VLLMLM(spec, max_model_len=2048, gpu_memory_utilization=0.4, cache_dir=tmp_path, progress=False)
    hf = HFLM(vl.folder, dtype="bf16")
    tok = hf.tokenizer
    prompts = [tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
               for q in ("Write SQL to count rows in table singer.", "Name three colours.", "What is 12 * 7?")]
    gen = [GenerateRequest(p, 48) for p in prompts]
    same = sum(a.text == b.text for a, b in zip(vl.generate(gen), hf.generate(gen, batch_size=1)))
    assert same >= 2, "bf16 kernels may flip a token, not most answers"
    ll = [LoglikelihoodRequest("The capital of France is", c) for c in (" Paris", " a city in Europe", " Rome")]
    for (a, ga), (b, gb) in zip(vl.loglikelihood(ll), hf.loglikelihood(ll, batch_size=1)):
        assert abs(a - b) < 0.1 + 0.02 * abs(b)
    assert vl.identity["backend"] == "vllm" and vl.identity["adapter"] is None


def test_scheduling_limits_reach_the_engine_and_the_cache_key(monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path,
                                                              tmp_path: Path) -> None:
    """lm.max_num_batched_tokens / max_num_seqs go to vllm.LLM and into the step cache's identity; unset, neither
    the engine arguments nor the cache keys of earlier runs change."""
    install_stand_in(monkeypatch)
    s = lv.VLLMSettings(dtype="fp32", max_num_batched_tokens=65536, max_num_seqs=1024)
    lm = lv.VLLMLM.from_settings(str(tiny_model_dir), s)
    assert lm.llm.kw["max_num_batched_tokens"] == 65536 and lm.llm.kw["max_num_seqs"] == 1024
    assert lm.settings.max_num_seqs == 1024
    plain = lv.VLLMLM.cache_identity("m", lv.VLLMSettings(dtype="fp32"), None, None)
    tuned = lv.VLLMLM.cache_identity("m", s, None, None)
    assert "max_num_seqs" not in plain and tuned["max_num_seqs"] == 1024 and plain != tuned
    assert "enforce_eager" not in plain and "enforce_eager" not in lm.llm.kw
    lm.close()
    eager = lv.VLLMSettings(dtype="fp32", enforce_eager=True)
    lm = lv.VLLMLM.from_settings(str(tiny_model_dir), eager)
    assert lm.llm.kw["enforce_eager"] is True  # other kernels: another cache key
    assert lv.VLLMLM.cache_identity("m", eager, None, None)["enforce_eager"] is True
    lm.close()
    with pytest.raises(Exception, match="max_num_seqs"):
        lv.VLLMSettings(max_num_seqs=0)


def test_fitted_lora_rank() -> None:
    """The smallest rank vLLM accepts that holds every adapter; no LoRA in the engine without adapters."""
    from sqlshift.lm.vllm_lora import fitted_lora_rank

    assert fitted_lora_rank([]) is None
    assert [fitted_lora_rank(r) for r in ([4], [8], [9, 2], [8, 64], [300])] == [8, 8, 16, 64, 320]
    with pytest.raises(ConfigError, match="hf backend"):
        fitted_lora_rank([1024])


def test_engine_lora_size_fits_the_adapters(monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path,
                                            tiny_adapter: Path) -> None:
    """The engine's LoRA is sized to the adapters it was told of (an explicit lm.max_lora_rank wins), and an
    engine told of none has no LoRA: an adapter then is one line naming the setting, not vLLM's error."""
    install_stand_in(monkeypatch)
    s = lv.VLLMSettings(dtype="fp32")
    req = [GenerateRequest("SELECT", max_new_tokens=2)]
    lm = lv.VLLMLM.from_settings(str(tiny_model_dir), s, [4])
    assert lm.llm.kw["enable_lora"] is True and lm.llm.kw["max_lora_rank"] == 8
    with lm.adapter(tiny_adapter):
        assert len(lm.generate(req)) == 1  # the stand-in refuses what vLLM refuses (rank above the engine's)
    lm.close()
    lm = lv.VLLMLM.from_settings(str(tiny_model_dir), s.model_copy(update={"max_lora_rank": 32}), [4])
    assert lm.llm.kw["max_lora_rank"] == 32
    lm.close()
    lm = lv.VLLMLM.from_settings(str(tiny_model_dir), s)
    assert "enable_lora" not in lm.llm.kw and "max_lora_rank" not in lm.llm.kw
    assert len(lm.generate(req)) == 1
    with pytest.raises(ConfigError, match="lm.max_lora_rank"):
        with lm.adapter(tiny_adapter):
            pass
    lm.close()


def test_study_knows_its_adapter_ranks_before_training(tiny_adapter: Path, tmp_path: Path) -> None:
    """Trained runs by their training config (a full fine-tune has no adapter), given adapters by their files."""
    from sqlshift.study.config import ExperimentConfig, adapter_ranks

    cfg = ExperimentConfig(runs=[{"name": "a", "config": "embedded-cpu", "overrides": {"lora.r": 16}},
                                 {"name": "b", "adapter": str(tiny_adapter)},
                                 {"name": "c", "config": "embedded-cpu", "overrides": {"lora.enabled": False}}])
    assert sorted(adapter_ranks(cfg)) == [4, 16]
    assert adapter_ranks(ExperimentConfig()) == []
