"""LoRA scaling (WiSE-FT-style interpolation): λ=0 is the base model exactly, λ=1 the merged adapter."""

from __future__ import annotations

from pathlib import Path

import torch

from sqlshift.lm.models import apply_adapter, load_model


def logits(model: torch.nn.Module, tok, text: str = "SELECT count(*) FROM singer") -> torch.Tensor:
    batch = tok(text, return_tensors="pt")
    with torch.inference_mode():
        return model(**batch).logits


def test_lambda_zero_is_base_and_one_is_merged(tiny_model_dir: Path, random_adapter: Path) -> None:
    base, tok = load_model(str(tiny_model_dir))
    ref_base = logits(base, tok)
    merged, _ = load_model(str(tiny_model_dir), adapter=random_adapter, merge_adapter=True)
    ref_merged = logits(merged, tok)
    assert not torch.allclose(ref_base, ref_merged), "the adapter must change the model for this test to mean anything"

    at0 = apply_adapter(load_model(str(tiny_model_dir))[0], random_adapter, scale=0.0)
    assert torch.equal(logits(at0, tok), ref_base)
    at1 = apply_adapter(load_model(str(tiny_model_dir))[0], random_adapter, scale=1.0)
    assert torch.allclose(logits(at1, tok), ref_merged, atol=1e-5)
    half = apply_adapter(load_model(str(tiny_model_dir))[0], random_adapter, scale=0.5)
    mid = logits(half, tok)
    assert not torch.allclose(mid, ref_base) and not torch.allclose(mid, ref_merged)


def test_unload_restores_the_base(tiny_model_dir: Path, random_adapter: Path) -> None:
    """The runner attaches adapters to one loaded base and removes them again: nothing may leak."""
    base, tok = load_model(str(tiny_model_dir))
    ref = logits(base, tok)
    wrapped = apply_adapter(base, random_adapter, scale=0.75)
    assert not torch.allclose(logits(wrapped, tok), ref)
    restored = wrapped.unload()
    assert torch.equal(logits(restored, tok), ref)
