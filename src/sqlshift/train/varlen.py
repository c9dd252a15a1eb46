"""Variable-length attention for the fast path's padding-free batches (CUDA).

trl's padding-free collator concatenates a micro-batch into one row and marks where each example starts
(``position_ids``, and ``cu_seq_lens_q`` / ``max_length_q`` computed on the CPU). Under SDPA, transformers turns that
into a block-diagonal mask over the whole row, and SDPA with a mask cannot use its flash kernel: it runs the
memory-efficient kernel over row x row, 56% of the GPU time of a Run 1 step on an H100 (docs/results.md, session 7).
PyTorch's ``varlen_attn`` is flash attention over cumulative sequence lengths: each example attends to itself only,
with no mask. It is registered with transformers' ``AttentionInterface`` under ``NAME`` and chosen by the fast path
when ``varlen_usable()`` (a CUDA device, a torch that has it, and one small call that matches SDPA).

No attention-mask function is registered for ``NAME``: transformers then skips building a mask (the packed-sequence
mask SDPA needs is exactly what this avoids)."""

from __future__ import annotations

import inspect
import logging
from functools import lru_cache
from typing import Any, Callable

log = logging.getLogger(__name__)

NAME = "sqlshift_varlen"


def varlen_kernel() -> Callable[..., Any]:
    """``torch.nn.attention.varlen.varlen_attn`` (a seam: CPU tests put a reference implementation here)."""
    from torch.nn.attention.varlen import varlen_attn

    return varlen_attn


def call_kernel(kernel: Callable[..., Any], q: Any, k: Any, v: Any, cu: Any, max_len: int, scale: float | None,
                half_only: bool = False) -> Any:
    """Causal varlen attention on (tokens, heads, dim) tensors, across the signatures torch has shipped: 2.10/2.11
    take ``is_causal`` and no ``scale`` or grouped-query heads; 2.12+ take ``window_size``, ``scale``, ``enable_gqa``.
    ``half_only`` (the CUDA flash kernel): fp32 inputs, as a full fine-tune's fp32 weights give under autocast once
    the rotary embedding promotes them, run in the autocast dtype (bf16 by default) and come back as fp32."""
    import torch

    if half_only and q.dtype not in (torch.float16, torch.bfloat16):
        out = call_kernel(kernel, *(t.to(half_dtype()) for t in (q, k, v)), cu, max_len, scale)
        return out.to(q.dtype)
    params = kernel_params(kernel)
    kw: dict[str, Any] = {"window_size": (-1, 0)} if "window_size" in params else {"is_causal": True}
    if scale is not None:
        if "scale" in params:
            kw["scale"] = scale
        else:  # the kernel's own scale is dim ** -0.5
            q = q * (scale * q.shape[-1] ** 0.5)
    if q.shape[1] != k.shape[1]:
        if "enable_gqa" in params:
            kw["enable_gqa"] = True
        else:
            groups = q.shape[1] // k.shape[1]
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    return kernel(q, k, v, cu, cu, max_len, max_len, **kw)


@lru_cache(maxsize=8)
def kernel_params(kernel: Callable[..., Any]) -> frozenset[str]:
    """The kernel's keyword names, read once: ``call_kernel`` runs in every attention layer of every step."""
    return frozenset(inspect.signature(kernel).parameters)


def half_dtype() -> Any:
    """The autocast dtype when CUDA autocast is on (bf16 under the Trainer's bf16), else bf16."""
    import torch

    if torch.is_autocast_enabled("cuda"):
        return torch.get_autocast_dtype("cuda")
    return torch.bfloat16


def pack_bounds(position_ids: Any, kwargs: dict[str, Any]) -> tuple[Any, int]:
    """Cumulative example lengths (int32, N + 1) and the longest example of a padding-free row: trl's collator
    computed them on the CPU; otherwise an example starts wherever ``position_ids`` is 0 (two host syncs)."""
    import torch

    if kwargs.get("cu_seq_lens_q") is not None and kwargs.get("max_length_q") is not None:
        return kwargs["cu_seq_lens_q"], int(kwargs["max_length_q"])
    pos = position_ids.reshape(-1)
    starts = (pos == 0).nonzero().reshape(-1)
    if starts.numel() == 0 or int(starts[0]) != 0:
        starts = torch.cat([starts.new_zeros(1), starts])
    cu = torch.cat([starts, starts.new_tensor([pos.numel()])]).to(torch.int32)
    return cu, int((cu[1:] - cu[:-1]).max())


def varlen_attention_forward(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                             dropout: float = 0.0, scaling: float | None = None, sliding_window: int | None = None,
                             **kwargs: Any) -> tuple[Any, None]:
    """transformers' attention signature: (1, heads, tokens, dim) in, (1, tokens, heads, dim) out."""
    if query.shape[0] != 1 or attention_mask is not None or dropout or sliding_window:
        raise RuntimeError(f"{NAME} attention serves padding-free training rows only (batch {query.shape[0]}, "
                           f"mask {attention_mask is not None}, dropout {dropout}, sliding window {sliding_window}); "
                           "fix: train with fast_path: false")
    position_ids = kwargs.get("position_ids")
    if position_ids is None:  # one example: the whole row
        import torch

        position_ids = torch.arange(query.shape[2], device=query.device)
    cu, max_len = pack_bounds(position_ids, kwargs)
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))
    out = call_kernel(varlen_kernel(), q, k, v, cu.to(q.device), max_len, scaling, half_only=q.is_cuda)
    return out.unsqueeze(0), None


def register() -> None:
    """Make ``NAME`` a valid ``attn_implementation`` for transformers models (idempotent)."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, varlen_attention_forward)


@lru_cache(maxsize=1)
def varlen_usable() -> bool:
    """True when this process can train with ``NAME``: CUDA, a torch with varlen attention, and a three-example
    probe whose output matches SDPA run on each example alone (so a kernel that fails or differs on this GPU costs
    a log line, not a training run)."""
    import torch

    if not torch.cuda.is_available():
        return False
    try:
        kernel = varlen_kernel()
        ok = probe(kernel, torch.device("cuda"))
    except Exception as exc:  # noqa: BLE001 - any failure means: use SDPA
        log.info("variable-length attention unavailable (%s: %s): SDPA with a packed mask instead",
                 type(exc).__name__, str(exc).splitlines()[0][:200])
        return False
    if not ok:
        log.warning("variable-length attention differs from SDPA on this GPU: SDPA with a packed mask instead")
    return ok


def probe(kernel: Callable[..., Any], device: Any, dtype: Any = None) -> bool:
    """Causal varlen attention over three packed examples (grouped-query heads) against SDPA on each one: the
    outputs and the gradients of q, k and v (training runs the backward kernel too)."""
    import torch
    import torch.nn.functional as F

    dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)
    gen = torch.Generator(device="cpu").manual_seed(0)
    lens = [5, 17, 9]
    shapes = [(sum(lens), 4, 64), (sum(lens), 2, 64), (sum(lens), 2, 64)]
    cu = torch.tensor([0, 5, 22, 31], dtype=torch.int32, device=device)
    weight = torch.randn(sum(lens), 4, 64, generator=gen).to(device, torch.float32)

    def run(attend: Callable[..., Any]) -> tuple[Any, list[Any]]:
        qkv = [torch.randn(*s, generator=torch.Generator().manual_seed(i)).to(device, dtype).requires_grad_()
               for i, s in enumerate(shapes)]
        out = attend(*qkv)
        (out.float() * weight).sum().backward()
        return out.detach().float(), [torch.full(t.shape, float("nan")) if t.grad is None else t.grad.float()
                                      for t in qkv]  # no gradient: the probe fails

    def per_example(q: Any, k: Any, v: Any) -> Any:
        return torch.cat([F.scaled_dot_product_attention(*(t[a:b].transpose(0, 1).unsqueeze(0) for t in (q, k, v)),
                                                         is_causal=True, scale=0.125, enable_gqa=True)[0]
                          .transpose(0, 1) for a, b in zip(cu[:-1].tolist(), cu[1:].tolist())])

    got, got_grads = run(lambda q, k, v: call_kernel(kernel, q, k, v, cu, max(lens), 0.125))
    ref, ref_grads = run(per_example)
    # relative to the tensor's norm: bf16 rounding is ≈ 0.4% per element, attention across examples is O(1)
    return all(float((x - y).norm() / y.norm().clamp_min(1e-6)) < 0.03
               for x, y in zip([got, *got_grads], [ref, *ref_grads]))
