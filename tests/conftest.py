"""Shared fixtures: a tiny random Llama with the embedded tokenizer, and the real data folder when present."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DEEPEVAL_TELEMETRY_OPT_OUT", "YES")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    # a shell that starts the tests in the background (`pytest &`) makes them ignore SIGINT, and every process they
    # start inherits that: the Ctrl-C tests need processes that take SIGINT, as a terminal's foreground job does
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real benchmark copies (SQLSHIFT_DATA_DIR); tests that need them skip without."""
    d = os.environ.get("SQLSHIFT_DATA_DIR")
    if not d or not (Path(d) / "spider" / "dev.json").is_file():
        pytest.skip("SQLSHIFT_DATA_DIR not set or holds no spider/dev.json")
    return Path(d)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer Llama saved with the embedded tokenizer: loads in well under a second."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from sqlshift.lm.models import load_tokenizer

    out = tmp_path_factory.mktemp("tiny-llama")
    tok = load_tokenizer("embedded")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def random_adapter(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter on the tiny model with non-zero random B matrices, so it really changes the model."""
    import torch
    from peft import LoraConfig, get_peft_model

    from sqlshift.lm.models import load_model

    model, _ = load_model(str(tiny_model_dir))
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    torch.manual_seed(1)
    peft_model = get_peft_model(model, cfg)
    out = tmp_path_factory.mktemp("adapter")
    peft_model.save_pretrained(out)
    return out
