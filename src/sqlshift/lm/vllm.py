"""The vLLM implementation of :class:`sqlshift.lm.api.LM`: the same greedy generations and log-likelihoods, about ten
times faster on a GPU (MODELS.md: 972 Spider prompts in 2.6 s against ≈ 30 s for transformers at batch 256).

One engine per base model serves every adapter through ``LoRARequest`` (an engine start costs minutes). Requests
go in as token ids built exactly as :class:`sqlshift.lm.hf.HFLM` builds them, and generation stops at the same ids
(EOS and end-of-turn, nothing else), so the two backends differ only by their bf16 kernels. A LoRA scale λ ≠ 1 is
served as a copy of the adapter with every ``lora_B`` multiplied by λ, which is what peft's scaling does.
``import vllm`` happens only in the constructor: this module imports anywhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import functools
import importlib.metadata
import importlib.util
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from sqlshift.lm.api import BackendSettings, GenerateRequest, Generation, LoglikelihoodRequest, Sampling
from sqlshift.lm.base import TokenLM
from sqlshift.lm.vllm_lora import check_adapter, fitted_lora_rank, lora_name, publish, scaled_adapter
from sqlshift.errors import ConfigError, ModelError

log = logging.getLogger(__name__)

VLLM_INSTALL = "pip install 'sqlshift[vllm]'"
VLLM_DTYPES = {"auto": "bfloat16", "bf16": "bfloat16", "bfloat16": "bfloat16", "fp16": "float16",
               "float16": "float16", "fp32": "float32", "float32": "float32"}
LOGPROB_CHUNK = 1024  # sequences per engine call when scoring: bounds the prompt log-probs held in memory
MAX_LOGPROB_TOKEN_IDS = 128  # vLLM's cap on SamplingParams.logprob_token_ids per request
ENGINE_FIX = ("free the GPU (nvidia-smi lists what holds it), lower lm.gpu_memory_utilization, "
              "or set lm.backend: hf; vLLM printed the root cause above")


def vllm_available() -> bool:
    """Whether ``vllm`` is importable (looked up, not imported: importing it takes seconds)."""
    return importlib.util.find_spec("vllm") is not None


def installed_version() -> str | None:
    """The installed vLLM's version, read from its metadata (importing vllm takes seconds)."""
    try:
        return importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:
        return None


def require_vllm() -> None:
    """A one-line config error, not an ImportError from deep inside a run, when vLLM is asked for but missing."""
    if not vllm_available():
        raise ConfigError("backend vllm requested but vLLM is not installed", VLLM_INSTALL)


def cache_root() -> Path:
    """Exported models and λ-scaled adapters: ``$SQLSHIFT_CACHE`` or ``~/.cache/sqlshift``."""
    return Path(os.environ.get("SQLSHIFT_CACHE") or "~/.cache/sqlshift").expanduser()


def transformers_folder(spec: str | None, cache: Path) -> str:
    """What vLLM can load for a model spec: a Hub id or folder as is; a GGUF (or ``embedded``) exported once.

    vLLM's own GGUF loader covers few architectures and would run the quantized weights, while the HF backend runs
    them de-quantized; exporting with :func:`sqlshift.lm.models.export_model` (bf16 safetensors, as
    ``sqlshift export-model --dtype bf16`` and the GPU setup do) gives both backends the same weights. The export
    goes to ``<cache>/models/<stem>-<hash of path, size, mtime>`` once (de-quantizing 1.5B takes ~40 s)."""
    from sqlshift.lm.models import export_model, resolve_spec

    src = resolve_spec(spec)
    if src.gguf_file is None:
        return src.path
    gguf = Path(src.path) / src.gguf_file
    st = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
    out = cache / "models" / f"{gguf.stem}-{key}"
    if not (out / "config.json").is_file():
        log.info("exporting %s to %s for vLLM (once)", gguf, out)
        tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
        export_model(str(gguf), tmp, dtype="bf16")
        publish(tmp, out)
    return str(out)


def one_line(e: BaseException) -> str:
    """The last line of an exception's message (vLLM's engine errors span many lines)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[-1] if lines else ''}"[:300]


def visible_gpu_index() -> int | None:
    """NVML index of the GPU the engine will use (the first visible one), or None when it can't be told."""
    first = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
    return int(first) if first.isdigit() else None


def check_free_memory(utilization: float) -> None:
    """A one-line error before the engine starts when the GPU lacks the share of memory the engine will claim.

    vLLM checks this too, but inside its engine process, where the failure surfaces as "Engine core
    initialization failed" after a traceback. NVML reads the free memory without creating a CUDA context."""
    idx = visible_gpu_index()
    if idx is None:
        return
    try:
        import pynvml

        pynvml.nvmlInit()
        info = pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(idx))
    except Exception:  # noqa: BLE001 - no NVML or no such GPU: vLLM's own check still runs
        return
    free, total = info.free / 2**30, info.total / 2**30
    if free < utilization * total:
        raise ModelError(f"GPU {idx} has {free:.1f} of {total:.1f} GiB free; the vLLM engine is set to claim "
                         f"{utilization:.2f} of it ({utilization * total:.1f} GiB)",
                         f"set lm.gpu_memory_utilization to {max(0.05, free / total - 0.05):.2f} or less, or free "
                         "the GPU (nvidia-smi lists what holds it)")


def repetition_penalty(folder: str) -> float:
    """The model's generation-config repetition penalty: HF ``generate`` applies it even when greedy, so must we."""
    from transformers import GenerationConfig

    try:
        return float(GenerationConfig.from_pretrained(folder).repetition_penalty or 1.0)
    except (OSError, ValueError):
        return 1.0


class VLLMSettings(BackendSettings):
    """The vLLM backend's keys under ``lm:`` beside device and dtype."""

    gpu_memory_utilization: float = Field(0.85, gt=0, le=1)  # share of the GPU the engine may take
    max_model_len: int = Field(4096, gt=0)  # longest prompt + generation; longer prompts lose their oldest tokens
    # largest adapter rank the engine serves (null: the smallest of 8, 16, 32, 64... that holds the study's adapters;
    # no LoRA in the engine when it has none)
    max_lora_rank: int | None = Field(None, gt=0)
    # scheduling limits per engine step (null: vLLM's own, 16384 tokens / 256 sequences in 0.26)
    max_num_batched_tokens: int | None = Field(None, gt=0)  # tokens per engine step (null: vLLM's default)
    max_num_seqs: int | None = Field(None, gt=0)  # sequences per engine step (null: vLLM's default)
    kv_cache_gib: float | None = Field(None, gt=0)  # a fixed KV cache (null: sized from gpu_memory_utilization)
    enforce_eager: bool = False  # no torch.compile/CUDA graphs: starts sooner, decodes slower (5x via a LoRA)


SHARED_GPU_FIX = ("set lm.kv_cache_gib (e.g. 8: the KV cache the engine keeps) and lm.gpu_memory_utilization to "
                  "the share of the GPU left free beside the training runs (e.g. 0.3), or use executor: in-process")


def engine_options(values: dict[str, Any]) -> dict[str, Any]:
    """The engine options that are set (absent ones keep vLLM's defaults and old cache keys): tokens and sequences
    per step and a fixed KV cache size (they decide which requests share a batch), and eager mode (other kernels)."""
    out = {k: values[k] for k in ("max_num_batched_tokens", "max_num_seqs", "kv_cache_gib")
           if values.get(k) is not None}
    return {**out, "enforce_eager": True} if values.get("enforce_eager") else out


def engine_kwargs_of(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Extra engine keywords as ``vllm.LLM`` takes them: ``kv_cache_gib`` becomes ``kv_cache_memory_bytes``."""
    out = {k: v for k, v in kwargs.items() if k != "kv_cache_gib"}
    if kwargs.get("kv_cache_gib") is not None:
        out["kv_cache_memory_bytes"] = int(kwargs["kv_cache_gib"] * 2**30)
    return out


@functools.cache
def _warn_no_vllm() -> None:
    log.warning("vLLM not installed: generation falls back to transformers (%s)", VLLM_INSTALL)


class VLLMLM(TokenLM):
    """A vLLM engine on one base model; adapters are LoRA requests, switched per call without reloading."""

    backend = "vllm"
    Settings = VLLMSettings

    @classmethod
    def from_settings(cls, model: str, settings: BackendSettings, adapter_ranks: Sequence[int] = ()) -> VLLMLM:
        s = VLLMSettings.model_validate(settings.model_dump())
        rank = s.max_lora_rank or fitted_lora_rank(adapter_ranks)
        return cls(model, dtype=s.dtype, max_model_len=s.max_model_len,
                   gpu_memory_utilization=s.gpu_memory_utilization, max_lora_rank=rank,
                   **engine_options(s.model_dump()))

    @classmethod
    def cache_identity(cls, model: str, settings: BackendSettings, adapter: Path | None,
                       scale: float | None) -> dict[str, Any]:
        """The base identity plus the vLLM version and ``max_model_len`` (it decides which prompts get clipped)."""
        return {**super().cache_identity(model, settings, adapter, scale), "vllm": installed_version(),
                "max_model_len": getattr(settings, "max_model_len", None),
                **engine_options(settings.model_dump())}  # the batch a request lands in moves bf16 results a little

    @classmethod
    def check_shared_gpu(cls, settings: BackendSettings) -> None:
        """Beside training processes the engine needs a fixed KV cache (vLLM otherwise sizes it by profiling free
        memory, which the trainings take and free meanwhile) and a small ``gpu_memory_utilization`` (vLLM refuses to
        start when less than that share of the GPU is free)."""
        s = VLLMSettings.model_validate(settings.model_dump())
        if s.kv_cache_gib is None or s.gpu_memory_utilization > 0.6:
            raise ConfigError("executor: overlap starts the vLLM engine while runs train on the same GPU, so the "
                              "engine needs a fixed memory share", SHARED_GPU_FIX)

    @classmethod
    def require(cls, settings: BackendSettings) -> None:
        require_vllm()
        if settings.device == "cpu":
            raise ConfigError("backend vllm runs on a GPU, but lm.device is cpu", "set lm.backend: hf for CPU")

    @classmethod
    def suits(cls, settings: BackendSettings) -> bool:
        """On CUDA (and not device: cpu) when vLLM is installed; one warning per process when it is not."""
        import torch

        if settings.device == "cpu" or not torch.cuda.is_available():
            return False
        if not vllm_available():
            _warn_no_vllm()
            return False
        return True

    def __init__(self, model: str = "embedded", *, dtype: str = "auto", max_model_len: int = 4096,
                 gpu_memory_utilization: float = 0.8, max_lora_rank: int | None = 64, max_loras: int = 1,
                 cache_dir: str | Path | None = None, progress: bool = True, **engine_kwargs: Any) -> None:
        require_vllm()
        # spawn, not fork: the engine's worker must not inherit a CUDA context (the parent may have touched CUDA)
        os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
        # FlashInfer's top-k/top-p sampler ships as CUDA source that its first use (the engine's warm-up) compiles
        # with nvcc into ~/.cache/flashinfer: ≈ 80 s of every engine start on a fresh machine. Greedy decoding never
        # uses it and sampled votes run on vLLM's own top-k/top-p kernel; a user's explicit setting wins.
        os.environ.setdefault("VLLM_USE_FLASHINFER_SAMPLER", "0")
        import vllm

        from sqlshift.lm.models import load_tokenizer

        if dtype not in VLLM_DTYPES:
            raise ConfigError(f"unknown dtype '{dtype}' for vLLM", f"use one of {', '.join(VLLM_DTYPES)}")
        self.spec, self.dtype, self.progress = model, VLLM_DTYPES[dtype], progress
        self.settings = VLLMSettings(dtype=dtype, max_model_len=max_model_len,
                                     gpu_memory_utilization=gpu_memory_utilization, max_lora_rank=max_lora_rank,
                                     **engine_options(engine_kwargs))
        self.max_model_len, self.max_lora_rank = max_model_len, max_lora_rank
        self.cache = Path(cache_dir).expanduser() if cache_dir else cache_root()
        self.folder = transformers_folder(model, self.cache)
        self.tokenizer = load_tokenizer(self.folder)
        self.penalty = repetition_penalty(self.folder)
        self.version = vllm.__version__
        check_free_memory(gpu_memory_utilization)
        try:
            lora = {"enable_lora": True, "max_lora_rank": max_lora_rank, "max_loras": max_loras} \
                if max_lora_rank else {}  # None: an engine without LoRA (faster when no adapter is served)
            self.llm = vllm.LLM(self.folder, dtype=self.dtype, max_model_len=max_model_len, seed=0,
                                gpu_memory_utilization=gpu_memory_utilization, **lora, **engine_kwargs_of(engine_kwargs))
        except Exception as e:  # noqa: BLE001 - any engine failure is one line for the user; vLLM logged the rest
            raise ModelError(f"the vLLM engine for {self.folder} did not start: {one_line(e)}", ENGINE_FIX) from None
        self._lora: Any = None
        self._adapter: Path | None = None
        self._fingerprint: str | None = None
        self._scale = 1.0
        self._lora_ids: dict[str, int] = {}
        self.n_truncated = 0

    # ---- adapters ---------------------------------------------------------------------------------------
    @property
    def max_length(self) -> int:
        return self.max_model_len

    def stats(self) -> dict[str, Any]:
        return {"backend": self.backend, "vllm": self.version, "n_truncated": self.n_truncated}

    def close(self) -> None:
        """Stop the engine's processes now: an engine left to interpreter exit makes vLLM 0.26 abort (rc 134)."""
        import gc

        llm, self.llm = getattr(self, "llm", None), None
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
        del llm
        gc.collect()

    @contextlib.contextmanager
    def adapter(self, path: Path | None, scale: float = 1.0) -> Iterator[None]:
        """Every call inside goes with this adapter's ``LoRARequest`` (its λ-scaled copy when scale ≠ 1)."""
        if path is None:
            yield
            return
        from vllm.lora.request import LoRARequest

        from sqlshift.lm.models import adapter_fingerprint

        check_adapter(Path(path), self.max_lora_rank)
        fp = adapter_fingerprint(Path(path))
        served = scaled_adapter(Path(path), scale, self.cache, fp)
        name = lora_name(fp, scale)
        lora_id = self._lora_ids.setdefault(name, len(self._lora_ids) + 1)
        self._lora = LoRARequest(name, lora_id, str(served))
        self._adapter, self._fingerprint, self._scale = Path(path), fp, scale
        try:
            yield
        finally:
            self._lora, self._adapter, self._fingerprint, self._scale = None, None, None, 1.0

    # ---- tokenisation: TokenLM's, as the HF backend, so both score the same ids ------------------------------
    def clip(self, ids: list[int], reserve: int) -> list[int]:
        """Drop the oldest tokens so ``reserve`` more fit in the engine (it rejects longer prompts outright)."""
        room = max(1, self.max_model_len - reserve)
        if len(ids) > room:
            self.n_truncated += 1
            return ids[-room:]
        return ids

    @property
    def first_token(self) -> int:
        """What an empty context becomes: position 0 has no log-prob, so a continuation needs one token before it."""
        tok = self.tokenizer
        return int(tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id)

    def bar(self, desc: str) -> Any:
        """vLLM's progress bar under our label (vLLM passes its own ``desc``, so a partial would not do), or none."""
        from tqdm import tqdm

        return (lambda *a, **kw: tqdm(*a, **{**kw, "desc": desc})) if self.progress else False

    # ---- generation -------------------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerateRequest], *, batch_size: int | None = None,
                 desc: str = "generate") -> list[Generation]:
        """Greedy generations, all submitted at once (vLLM schedules; ``batch_size`` is ignored)."""
        return [gens[0] for gens in self.run_requests(requests, None, desc)]

    def sample(self, requests: Sequence[GenerateRequest], sampling: Sampling, *, batch_size: int | None = None,
               desc: str = "sample") -> list[list[Generation]]:
        """``sampling.n`` samples per request (``SamplingParams(n, temperature, top_p, seed)``); the seed is per
        request, so a prompt draws the same samples whatever else is in the call (a resumed run included)."""
        return self.run_requests(requests, sampling, desc)

    def run_requests(self, requests: Sequence[GenerateRequest], sampling: Sampling | None,
                     desc: str) -> list[list[Generation]]:
        """Every request's generations (one when greedy), submitted at once."""
        from vllm.inputs import TokensPrompt

        if not requests:
            return []
        stop_ids = self.stop_ids
        params: dict[tuple[int, tuple[str, ...]], Any] = {}
        for r in requests:
            if (r.max_new_tokens, r.stop) not in params:
                params[(r.max_new_tokens, r.stop)] = self.params(r, stop_ids, sampling)
        prompts = [TokensPrompt(prompt_token_ids=self.clip(ids, r.max_new_tokens))
                   for r, ids in zip(requests, self.encode_contexts([r.prompt for r in requests]))]
        outs = self.llm.generate(prompts, [params[(r.max_new_tokens, r.stop)] for r in requests],
                                 lora_request=self._lora, use_tqdm=self.bar(desc))
        return [[self.finish(list(c.token_ids), r.stop, r.max_new_tokens, stop_ids) for c in o.outputs]
                for r, o in zip(requests, outs)]

    def params(self, r: GenerateRequest, stop_ids: list[int], sampling: Sampling | None) -> Any:
        """Greedy, or seeded sampling with top-k off (0: all tokens), both stopping at our ids only (``ignore_eos``,
        as HF ``generate`` with ``eos_token_id=stop_ids`` does) under the model's repetition penalty."""
        from vllm import SamplingParams

        how: dict[str, Any] = ({"n": sampling.n, "temperature": sampling.temperature, "top_p": sampling.top_p,
                                "top_k": 0, "seed": sampling.seed} if sampling else {"temperature": 0.0})
        return SamplingParams(**how, max_tokens=r.max_new_tokens, stop=list(r.stop) or None,
                              stop_token_ids=stop_ids, ignore_eos=True, repetition_penalty=self.penalty)

    # ---- log-likelihood ---------------------------------------------------------------------------------
    def sequences(self, requests: Sequence[LoglikelihoodRequest]) -> list[tuple[tuple[int, ...], int]]:
        """(context + continuation ids, continuation length) per request, the context clipped to fit."""
        out = []
        for ctx, cont in self.encode_pairs(requests):
            ctx = self.clip(ctx, len(cont) + 1) or [self.first_token]  # + 1: the one token vLLM then samples
            out.append((tuple(ctx + cont), len(cont)))
        return out

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest], *, batch_size: int | None = None,
                      desc: str = "loglikelihood") -> list[tuple[float, bool]]:
        """One-token continuations (MMLU letters...): one decode step per context that returns just those tokens'
        log-probs; longer ones: prompt log-probs of context + continuation, identical sequences scored once."""
        pairs = self.sequences(requests)
        single: dict[tuple[int, ...], list[int]] = {}
        for seq, n in pairs:
            if n == 1:
                single.setdefault(seq[:-1], []).append(seq[-1])
        next_scores = self.next_token_scores(single, desc)
        long_scores = self.prompt_scores([p for p in pairs if p[1] > 1], desc)
        return [(0.0, True) if n == 0 else next_scores[seq[:-1]][seq[-1]] if n == 1 else long_scores[(seq, n)]
                for seq, n in pairs]

    def next_token_scores(self, wanted: dict[tuple[int, ...], list[int]],
                          desc: str) -> dict[tuple[int, ...], dict[int, tuple[float, bool]]]:
        """{context: {token: (log-prob, greedy?)}} from one generated token with ``logprob_token_ids``.

        Why: prompt log-probs make vLLM compute a full-vocabulary log-softmax at every prompt position (MMLU 57:
        67.9 s on an H100 against 45.2 s for transformers); the next-token log-probs of the wanted ids cost one
        step. Raw log-probs (before any penalty), so the values equal prompt log-probs'; greedy = the argmax token."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        jobs = [(ctx, ids[i:i + MAX_LOGPROB_TOKEN_IDS]) for ctx, toks in wanted.items()
                for ids in [sorted(set(toks))] for i in range(0, len(ids), MAX_LOGPROB_TOKEN_IDS)]
        if not jobs:
            return {}
        params = [SamplingParams(temperature=0.0, max_tokens=1, logprob_token_ids=ids, detokenize=False)
                  for _, ids in jobs]
        outs = self.llm.generate([TokensPrompt(prompt_token_ids=list(ctx)) for ctx, _ in jobs], params,
                                 lora_request=self._lora, use_tqdm=self.bar(desc))
        scores: dict[tuple[int, ...], dict[int, tuple[float, bool]]] = {}
        for (ctx, ids), o in zip(jobs, outs):
            step = o.outputs[0]
            lps, sampled = step.logprobs[0], step.token_ids[0]
            scores.setdefault(ctx, {}).update((t, (float(lps[t].logprob), t == sampled)) for t in ids)
        return scores

    def prompt_scores(self, pairs: Sequence[tuple[tuple[int, ...], int]],
                      desc: str) -> dict[tuple[tuple[int, ...], int], tuple[float, bool]]:
        """Scores of multi-token continuations from prompt log-probs, in chunks (every position is returned)."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        distinct = list(dict.fromkeys(pairs))
        sp = SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0, detokenize=False, flat_logprobs=True)
        scores: dict[tuple[tuple[int, ...], int], tuple[float, bool]] = {}
        for i in range(0, len(distinct), LOGPROB_CHUNK):
            chunk = distinct[i:i + LOGPROB_CHUNK]
            outs = self.llm.generate([TokensPrompt(prompt_token_ids=list(s)) for s, _ in chunk], sp,
                                     lora_request=self._lora, use_tqdm=self.bar(desc))
            scores.update((p, continuation_score(p[0], o.prompt_logprobs, p[1])) for p, o in zip(chunk, outs))
        return scores


def continuation_score(seq: Sequence[int], prompt_logprobs: Sequence[Any], n_cont: int) -> tuple[float, bool]:
    """(sum of the last ``n_cont`` tokens' log-probs, each of them ranked first); position 0 has none."""
    total, greedy = 0.0, True
    for pos in range(len(seq) - n_cont, len(seq)):
        lp = prompt_logprobs[pos][seq[pos]]
        total += float(lp.logprob)
        greedy = greedy and lp.rank == 1
    return total, greedy
