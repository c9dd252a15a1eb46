"""How the vLLM backend serves LoRA adapters: what it can serve (rank, no DoRA), the engine's LoRA size fitted to
the study's adapters, and λ-scaled copies. No vLLM import: the runner and the tests use it anywhere."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlshift.errors import ConfigError, ModelError
from sqlshift.lm.models import adapter_config, adapter_rank

# vLLM 0.26's accepted max_lora_rank values (vllm/config/lora.py MaxLoRARanks), without 1
LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def publish(tmp: Path, out: Path) -> Path:
    """Move a finished folder into place atomically; a concurrent writer that got there first wins."""
    try:
        os.replace(tmp, out)
    except OSError:
        if not out.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def fitted_lora_rank(ranks: Sequence[int]) -> int | None:
    """The engine's ``max_lora_rank`` for these adapters: the smallest vLLM accepts that holds them all; None (no
    LoRA in the engine) when there are none.

    Why: vLLM pads every adapter to the engine's rank, and its LoRA kernels run at that rank on every layer of every
    step (one H100, MMLU 57 through an r = 8 adapter at the former fixed 64: 16.6-17.9 s against 12.6 s for the base
    in the same LoRA-enabled engine); an engine without LoRA skips those kernels altogether."""
    if not ranks:
        return None
    need = max(ranks)
    fit = next((r for r in LORA_RANKS if r >= need), None)
    if fit is None:
        raise ConfigError(f"an adapter of rank {need} is above the largest rank vLLM serves ({LORA_RANKS[-1]})",
                          "use the hf backend (lm.backend: hf)")
    return fit


def check_adapter(path: Path, max_lora_rank: int | None) -> dict[str, Any]:
    """The adapter's config, or a clear error for what this engine cannot serve (rank above the engine's, DoRA...)."""
    cfg = adapter_config(path)
    if not (Path(path) / "adapter_model.safetensors").is_file():
        raise ModelError(f"{path} has no adapter_model.safetensors", "save the adapter with safetensors (peft default)")
    rank = adapter_rank(cfg)
    if max_lora_rank is None:
        raise ConfigError(f"adapter {path} was asked of a vLLM engine started without LoRA (no adapter was known "
                          "when it started)", f"set lm.max_lora_rank to {fitted_lora_rank([rank])} or more")
    if rank > max_lora_rank:
        raise ConfigError(f"adapter {path} has rank {rank}, above the vLLM engine's max_lora_rank {max_lora_rank}",
                          "raise max_lora_rank (8, 16, 32, 64, 128, 256...) or use the hf backend")
    if cfg.get("use_dora") or cfg.get("modules_to_save") or cfg.get("alpha_pattern"):
        raise ConfigError(f"adapter {path} uses DoRA, modules_to_save or alpha_pattern, which vLLM does not serve",
                          "use the hf backend for this adapter")
    return cfg


def is_lora_b(name: str) -> bool:
    """Tensors that multiply last in a LoRA delta (B·A·x): scaling them by λ scales the delta by λ."""
    return "lora_B" in name or "lora_embedding_B" in name


def lora_name(fingerprint: str | None, scale: float) -> str:
    """One name per (weights, λ): vLLM caches adapters by name and id, so a new λ must never reuse one."""
    return f"{fingerprint}-x{float(scale)!r}"


def scaled_adapter(path: Path, scale: float, cache: Path, fingerprint: str | None = None) -> Path:
    """A copy of the adapter whose delta is ``scale`` times the original's (``path`` itself when scale is 1).

    Why a copy: vLLM has no per-request LoRA scale; multiplying ``lora_B`` equals peft's ``scale_lora``. Cached
    under ``<cache>/lora/<adapter hash>-x<λ>``, so each (adapter, λ) is written once."""
    from safetensors.torch import load_file, save_file

    from sqlshift.lm.models import adapter_fingerprint

    path = Path(path)
    if scale == 1.0:
        return path
    out = cache / "lora" / lora_name(fingerprint or adapter_fingerprint(path), scale)
    if (out / "adapter_model.safetensors").is_file():
        return out
    tensors = load_file(str(path / "adapter_model.safetensors"))
    scaled = {k: (v.float() * scale).to(v.dtype) if is_lora_b(k) else v for k, v in tensors.items()}
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    save_file(scaled, str(tmp / "adapter_model.safetensors"), metadata={"format": "pt"})
    shutil.copy2(path / "adapter_config.json", tmp / "adapter_config.json")
    return publish(tmp, out)
