"""The token-level backends tokenise a batch of requests once per distinct text, in batched calls: the ids must be
exactly those of one call per request (the scores depend on nothing else), with and without a chat template's BOS."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from sqlshift.lm.api import LoglikelihoodRequest


def bench_encode() -> Any:
    """benchmarks/bench_encode.py (its ``Tokens`` is the encoding side of a token-level backend)."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_encode.py"
    spec = importlib.util.spec_from_file_location("bench_encode", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_batched_encoding_gives_the_ids_of_one_call_per_request() -> None:
    from sqlshift.lm.models import load_tokenizer

    tok = load_tokenizer("embedded")
    tok.bos_token = tok.bos_token or "<|im_start|>"  # a template that starts with BOS takes no special tokens
    lm = bench_encode().Tokens(tok)
    contexts = ["Question: 2 + 2 =\nAnswer:", f"{tok.bos_token}user\nWhich city?\nAnswer:", "", "  spaced\tout "]
    reqs = [LoglikelihoodRequest(c, x) for c in contexts for x in (" A", " B", " Paris", "")]
    calls: list[int] = []
    real = tok.__class__.__call__

    def counting(self: Any, text: Any, *a: Any, **k: Any) -> Any:
        calls.append(len(text) if isinstance(text, list) else 1)
        return real(self, text, *a, **k)

    tok.__class__.__call__ = counting
    try:
        got = lm.encode_pairs(reqs)
        n_batched = len(calls)
        want = [(lm.encode_context(r.context), lm.encode_continuation(r.continuation)) for r in reqs]
    finally:
        tok.__class__.__call__ = real
    assert got == want
    assert n_batched == 3  # contexts without BOS, contexts with it, continuations: not one call per request
    assert lm.encode_contexts(contexts) == [lm.encode_context(c) for c in contexts]
    assert lm.encode_pairs([]) == []


def test_bench_encode_reports_identical_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from sqlshift.data.demo import ensure_demo

    monkeypatch.setattr(sys, "argv", ["bench_encode.py", "--mmlu-dir", str(ensure_demo(tmp_path) / "mmlu")])
    bench_encode().main()
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["identical_ids"] is True and row["requests"] == 4 * row["questions"] > 0
