"""Variable-length attention for padding-free training (sqlshift.train.varlen).

PyTorch's varlen kernel runs on CUDA only, so on CPU a reference kernel (SDPA on each example, causal) stands in
for it: these tests check the logic around the kernel (sequence bounds, layouts, the two signatures torch has
shipped, grouped-query heads, the transformers registration and trl's padding-free batches), not the kernel's speed
or its numbers on a GPU (benchmarks/bench_train.py --variants fast,fast-varlen and the GPU smoke check do that)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqlshift.train import varlen


def _segments(q, k, v, cu, scale, causal=True):  # noqa: ANN001, ANN202
    import torch
    import torch.nn.functional as F

    outs = []
    for a, b in zip(cu[:-1].tolist(), cu[1:].tolist()):
        qs, ks, vs = (t[a:b].transpose(0, 1).unsqueeze(0) for t in (q, k, v))
        outs.append(F.scaled_dot_product_attention(qs, ks, vs, is_causal=causal, scale=scale,
                                                   enable_gqa=True)[0].transpose(0, 1))
    return torch.cat(outs)


def kernel_2_12(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, *, return_aux=None, scale=None,  # noqa: ANN001, ANN201
                window_size=(-1, -1), enable_gqa=False, seqused_k=None, block_table=None, num_splits=None):
    """torch >= 2.12's signature: window_size (-1, 0) is causal; grouped-query heads only with enable_gqa."""
    assert window_size in ((-1, -1), (-1, 0))
    assert enable_gqa or query.shape[1] == key.shape[1]
    return _segments(query, key, value, cu_seq_q, scale, causal=window_size == (-1, 0))


def kernel_2_10(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, is_causal=False, return_aux=None):  # noqa: ANN001, ANN201
    """torch 2.10/2.11's signature: is_causal, the default scale, as many key/value heads as query heads."""
    assert query.shape[1] == key.shape[1], "this signature has no grouped-query attention"
    return _segments(query, key, value, cu_seq_q, None, causal=is_causal)


@pytest.mark.parametrize("kernel", [kernel_2_12, kernel_2_10], ids=["torch-2.12+", "torch-2.10/2.11"])
def test_both_kernel_signatures_match_sdpa_per_example(kernel) -> None:  # noqa: ANN001
    import torch

    assert varlen.probe(kernel, torch.device("cpu"))


def test_probe_fails_a_kernel_that_attends_across_examples() -> None:
    """The probe is what keeps a wrong kernel from training: attention over the whole pack must not pass."""
    import torch

    def whole_pack(q, k, v, cu_q, cu_k, max_q, max_k, *, scale=None, window_size=(-1, -1), enable_gqa=False):  # noqa: ANN001, ANN202
        n = torch.tensor([0, q.shape[0]], dtype=torch.int32)
        return _segments(q, k, v, n, scale)

    assert not varlen.probe(whole_pack, torch.device("cpu"))


def test_probe_fails_a_kernel_whose_backward_is_wrong() -> None:
    """Right outputs are not enough: training also runs the backward (here no gradient reaches k and v)."""
    import torch

    def no_kv_grad(q, k, v, cu_q, cu_k, max_q, max_k, *, scale=None, window_size=(-1, -1), enable_gqa=False):  # noqa: ANN001, ANN202
        return kernel_2_12(q, k.detach(), v.detach(), cu_q, cu_k, max_q, max_k, scale=scale, window_size=window_size,
                           enable_gqa=enable_gqa)

    assert varlen.probe(kernel_2_12, torch.device("cpu")) and not varlen.probe(no_kv_grad, torch.device("cpu"))


def test_pack_bounds_from_position_ids_and_from_the_collator() -> None:
    import torch

    pos = torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3, 0, 0]])  # three rows, then two padding tokens (position 0)
    cu, longest = varlen.pack_bounds(pos, {})
    assert cu.tolist() == [0, 3, 5, 9, 10, 11] and cu.dtype == torch.int32 and longest == 4
    given = torch.tensor([0, 3, 11], dtype=torch.int32)
    assert varlen.pack_bounds(pos, {"cu_seq_lens_q": given, "max_length_q": 8}) == (given, 8)


def test_padded_batches_are_refused_with_the_fix() -> None:
    import torch

    q = torch.zeros(2, 4, 3, 8)
    with pytest.raises(RuntimeError, match="fast_path: false"):
        varlen.varlen_attention_forward(None, q, q, q, None)


def test_not_usable_without_cuda() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the CPU answer")
    assert varlen.varlen_usable() is False


def test_padding_free_batch_through_the_registered_attention_gives_the_per_example_losses(
        tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """A real (tiny, grouped-query) Llama loaded with attn_implementation=NAME, trained-batch style through trl's
    padding-free collator: the packed batch's summed loss equals the rows' losses alone under SDPA."""
    import torch
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from sqlshift.lm.models import load_model

    monkeypatch.setattr(varlen, "varlen_kernel", lambda: kernel_2_12)
    varlen.register()
    model, tok = load_model(str(tiny_model_dir), attn_implementation=varlen.NAME)
    ref, _ = load_model(str(tiny_model_dir), attn_implementation="sdpa")
    assert model.config._attn_implementation == varlen.NAME
    gen = torch.Generator().manual_seed(0)
    rows = [torch.randint(5, len(tok), (n,), generator=gen).tolist() for n in (7, 13, 4)]
    feats = [{"input_ids": r, "labels": [-100] * 2 + r[2:]} for r in rows]  # a prompt of 2 tokens, then the answer
    collate = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id, padding_free=True)
    packed = collate(feats)
    assert packed["input_ids"].shape[0] == 1 and "cu_seq_lens_q" in packed

    def nll(m, batch) -> float:  # noqa: ANN001
        with torch.no_grad():
            out = m(**batch)
        n = int((batch["labels"][:, 1:] != -100).sum())
        return float(out.loss) * n

    alone = sum(nll(ref, collate([f])) for f in feats)
    assert nll(model, packed) == pytest.approx(alone, rel=1e-5)
    without_bounds = {k: v for k, v in packed.items() if k not in ("cu_seq_lens_q", "cu_seq_lens_k",
                                                                   "max_length_q", "max_length_k")}
    assert nll(model, without_bounds) == pytest.approx(alone, rel=1e-5)  # bounds derived from position_ids


def test_fp32_inputs_run_in_half_precision_where_the_kernel_needs_it() -> None:
    """A full fine-tune's fp32 weights reach attention as fp32 (rotary promotes bf16 q/k): the flash kernel takes
    bf16 only, so they go in as bf16 and the output comes back as fp32."""
    import torch

    seen = []

    def bf16_only(q, k, v, cu_q, cu_k, max_q, max_k, *, scale=None, window_size=(-1, -1), enable_gqa=False):  # noqa: ANN001, ANN202
        seen.append(q.dtype)
        assert q.dtype == k.dtype == v.dtype == torch.bfloat16
        return kernel_2_12(q, k, v, cu_q, cu_k, max_q, max_k, scale=scale, window_size=window_size, enable_gqa=enable_gqa)

    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(12, h, 16, generator=gen) for h in (4, 2, 2))
    cu = torch.tensor([0, 5, 12], dtype=torch.int32)
    out = varlen.call_kernel(bf16_only, q, k, v, cu, 7, None, half_only=True)
    ref = _segments(q, k, v, cu, None)
    assert seen == [torch.bfloat16] and out.dtype == torch.float32
    assert torch.allclose(out, ref, atol=3e-2) and not torch.equal(out, ref)  # bf16 rounding, then back to fp32


def test_full_fine_tuning_keeps_fp32_master_weights_on_the_fast_path(monkeypatch) -> None:  # noqa: ANN001
    import sqlshift.train.trainer as trainer
    from sqlshift.train.config import TrainConfig

    monkeypatch.setattr(trainer, "cuda_available", lambda: True)
    monkeypatch.setattr(varlen, "varlen_usable", lambda: False)
    lora = trainer.resolve_speed_path(TrainConfig(fast_path=True))
    full = trainer.resolve_speed_path(TrainConfig(fast_path=True, lora={"enabled": False}))
    assert lora.fast and lora.base_dtype == "bf16" and lora.attn_implementation == "sdpa"
    assert full.fast and full.base_dtype == "fp32" and full.padding_free


def test_qlora_speed_path_names_the_4bit_base(monkeypatch) -> None:  # noqa: ANN001
    """The report's training-cost table shows this line: a QLoRA run must not read as a bf16 base."""
    import sqlshift.train.trainer as trainer
    from sqlshift.train.config import TrainConfig

    monkeypatch.setattr(trainer, "cuda_available", lambda: True)
    monkeypatch.setattr(varlen, "varlen_usable", lambda: False)
    q4 = trainer.resolve_speed_path(TrainConfig(fast_path=True), q4=True)
    assert q4.quantized and q4.describe().startswith("fast path: 4-bit NF4 base (bf16 compute), sdpa attention")
    assert "bf16 base" in trainer.resolve_speed_path(TrainConfig(fast_path=True)).describe()
    assert "4-bit NF4 base" in trainer.resolve_speed_path(TrainConfig(fast_path=False), q4=True).describe()


def test_varlen_false_keeps_sdpa_where_the_probe_would_pass(monkeypatch) -> None:  # noqa: ANN001
    import sqlshift.train.trainer as trainer
    from sqlshift.train.config import TrainConfig

    monkeypatch.setattr(trainer, "cuda_available", lambda: True)
    monkeypatch.setattr(varlen, "varlen_usable", lambda: True)
    monkeypatch.setattr(varlen, "register", lambda: None)
    assert trainer.resolve_speed_path(TrainConfig(fast_path=True)).attn_implementation == varlen.NAME
    assert trainer.resolve_speed_path(TrainConfig(fast_path=True, varlen=False)).attn_implementation == "sdpa"
