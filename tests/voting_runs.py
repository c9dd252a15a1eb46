"""A stand-in LM with fixed greedy and sampled answers per question, and run directories whose Spider benchmarks
it drove through the real benchmark code (prompts, SQL sandbox, vote, results and metrics files)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlshift.benchmarks.spider import SpiderBenchmark, SpiderSettings
from sqlshift.lm.api import LM, GenerateRequest, Generation, Sampling

Script = dict[str, tuple[str, list[str]]]  # question -> (greedy SQL, sampled SQL)
WRONG = "SELECT -12345"  # executes, and no demo question's gold result is this one row


class WordTokenizer:
    """What prompts need from a tokenizer: no chat template, a token per word."""

    chat_template = None
    eos_token = ""

    def __call__(self, text: str, **kw: Any) -> dict[str, list[str]]:
        return {"input_ids": text.split()}


class FixedSamples(LM):
    """A stand-in engine: greedy and sampled answers fixed per question (the gold query unless scripted)."""

    backend = "fixed-samples"

    def __init__(self, gold: dict[str, str], script: Script) -> None:
        self.tokenizer, self.gold, self.script = WordTokenizer(), gold, script
        self.sampled: list[Sampling] = []

    def answers(self, prompt: str) -> tuple[str, list[str]]:
        q = prompt.split("\nQuestion: ")[1].split("\n")[0]
        return self.script.get(q, (self.gold[q], [self.gold[q], "SELEC broken"]))

    def generate(self, requests: Sequence[GenerateRequest], **kw: Any) -> list[Generation]:
        return [Generation(self.answers(r.prompt)[0], 5, False) for r in requests]

    def sample(self, requests: Sequence[GenerateRequest], sampling: Sampling, **kw: Any) -> list[list[Generation]]:
        self.sampled.append(sampling)
        return [[Generation(t, 5, False) for t in self.answers(r.prompt)[1][:sampling.n]] for r in requests]

    def loglikelihood(self, requests: Any, **kw: Any) -> list[tuple[float, bool]]:
        raise NotImplementedError

    def adapter(self, path: Path | None, scale: float = 1.0) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


def demo_gold(demo: Path) -> dict[str, str]:
    """question -> gold SQL of the demo's Spider dev split."""
    return {e["question"]: e["query"] for e in json.loads((demo / "spider" / "dev.json").read_text())}


def gains_and_losses(demo: Path, gained: int, lost: int, tied: int = 0) -> Script:
    """A script: the first ``gained`` questions greedy-wrong and voted right (two gold samples), the next ``lost``
    greedy right and voted wrong (two equal wrong samples), the next ``tied`` greedy wrong with one gold sample and
    one that fails (a tie the greedy answer wins: wrong both ways); the last question runs nothing at all."""
    gold = demo_gold(demo)
    qs = list(gold)
    script: Script = {q: (WRONG, [gold[q], gold[q]]) for q in qs[:gained]}
    script |= {q: (gold[q], [WRONG, WRONG]) for q in qs[gained:gained + lost]}
    script |= {q: (WRONG, [gold[q], "SELEC"]) for q in qs[gained + lost:gained + lost + tied]}
    return script | {qs[-1]: ("SELECT bogus FROM nowhere", ["", "SELEC"])}


def write_model(run: Path, demo: Path, key: str, kind: str, script: Script, samples: int = 2) -> Path:
    """``models/<key>/`` with a greedy ``spider-dev`` and a voted ``spider-dev-vote<samples>``, both from ``script``."""
    mdir = run / "models" / key
    mdir.mkdir(parents=True)
    (mdir / "model.json").write_text(json.dumps({"key": key, "kind": kind, "run": None if kind == "baseline" else key}))
    for decoding in ({}, {"samples": samples, "temperature": 0.7, "seed": 1}):
        bench = SpiderBenchmark(SpiderSettings(benchmark="spider", decoding=decoding), demo)
        bench.evaluate(FixedSamples(demo_gold(demo), script), mdir / bench.out_name)
    return mdir
