"""The token-level backends tokenise a batch of requests once per distinct text, in batched calls: the ids must be
exactly those of one call per request (the scores depend on nothing else), with and without a chat template's BOS."""

from __future__ import annotations

import importlib.util
import json
import os
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
    for var in ("TOKENIZERS_PARALLELISM", "SQLSHIFT_PARALLEL_TOKENIZE"):  # the script sets both: restored after
        monkeypatch.setenv(var, "false")
    bench_encode().main()
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["identical_ids"] is True and row["requests"] == 4 * row["questions"] > 0
    assert row["encode_pairs_one_core_s"] >= 0 and row["encode_pairs_s"] >= 0


@pytest.mark.parametrize("user_set", [False, True])
def test_batched_calls_use_every_core_unless_the_user_said_otherwise(monkeypatch: pytest.MonkeyPatch,
                                                                    user_set: bool) -> None:
    """The CLI turns tokenizers' parallelism off (forks stay quiet) but the batched calls turn it on for their
    duration, and off again; a user's own TOKENIZERS_PARALLELISM=false is honoured in them too."""
    from sqlshift.lm.models import load_tokenizer

    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    if user_set:
        monkeypatch.delenv("SQLSHIFT_PARALLEL_TOKENIZE", raising=False)
    else:
        monkeypatch.setenv("SQLSHIFT_PARALLEL_TOKENIZE", "1")  # as the CLI leaves it when the user set nothing
    real = load_tokenizer("embedded")
    seen: list[str | None] = []

    def spy(*a: Any, **kw: Any) -> Any:
        seen.append(os.environ.get("TOKENIZERS_PARALLELISM"))
        return real(*a, **kw)

    lm = bench_encode().Tokens(spy)
    lm.encode_pairs([LoglikelihoodRequest("Question: 2 + 2 =", " 4"), LoglikelihoodRequest("Q", " A")])
    assert seen and set(seen) == {"false" if user_set else "true"}
    assert os.environ["TOKENIZERS_PARALLELISM"] == "false"  # later forks see it configured: no warning


def test_the_cli_marks_its_own_default() -> None:
    """Importing the CLI with no TOKENIZERS_PARALLELISM set leaves it off and marks it as sqlshift's default; a
    user's value is kept unmarked."""
    import subprocess

    code = ("import os; import sqlshift.cli; print(os.environ['TOKENIZERS_PARALLELISM'], "
            "os.environ.get('SQLSHIFT_PARALLEL_TOKENIZE'))")
    env = {k: v for k, v in os.environ.items() if k not in ("TOKENIZERS_PARALLELISM", "SQLSHIFT_PARALLEL_TOKENIZE")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["false", "1"]
    env["TOKENIZERS_PARALLELISM"] = "false"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["false", "None"]
