"""What the generative generality tasks (GSM8K, IFEval) share: one greedy generation per item on the base loop,
chat rendering, generation health, the all-empty guard."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from sqlshift.lm.api import LM, GenerateRequest, Generation
from sqlshift.benchmarks.api import Benchmark, BenchmarkSettings
from sqlshift.data.general import general_file, missing_problem
from sqlshift.errors import ConfigError, EmptyPredictions


class GenerativeSettings(BenchmarkSettings):
    """Greedy decoding limits and the data file."""

    batch_size: int = Field(8, gt=0)
    chunk: int = Field(32, gt=0)  # prompts generated per LM call and appended together: the resume granularity
    max_new_tokens: int = Field(256, gt=0)
    file: str | None = None  # the data file (absolute, or relative to data_dir); default: general/<standard name>


class GenerativeBenchmark(Benchmark):
    """A generality task scored on greedy generations from one local file (``file_key`` in data.general.FILES)."""

    axis = "generality"
    kind = "generative"
    file_key: str
    settings: GenerativeSettings

    @property
    def path(self) -> Path:
        return general_file(self.data_root, self.file_key, self.settings.file)

    def check(self) -> list[str]:
        return missing_problem(self.path)

    def problems(self, metrics: dict[str, Any]) -> list[Exception]:
        return empty_problem(metrics, self.display_name)

    def requests(self, item: Any, lm: LM) -> list[GenerateRequest]:
        return [self.request(item, lm)]

    def request(self, item: Any, lm: LM) -> GenerateRequest:
        """The one greedy generation an item asks for."""
        raise NotImplementedError

    def score(self, item: Any, answers: Sequence[Generation]) -> dict[str, Any]:
        return self.row(item, answers[0])

    def row(self, item: Any, gen: Generation) -> dict[str, Any]:
        """The result row of one item from its generation."""
        raise NotImplementedError


def chat_prompt(tok: Any, user: str) -> str:
    """``user`` as the single user turn of the tokenizer's chat template, opening the assistant turn."""
    if not getattr(tok, "chat_template", None):
        raise ConfigError("this benchmark renders a chat prompt but the tokenizer has no chat template",
                          "use the plain variant (gsm8k) or set chat: false")
    return tok.apply_chat_template([{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True)


def generation_health(rows: Sequence[dict[str, Any]], **failures: int) -> dict[str, Any]:
    """Counts the report needs to tell a broken generator from a weak model: limit hits, empties, mean length."""
    n = len(rows)
    return {"n": n, "hit_limit": sum(bool(r.get("hit_limit")) for r in rows),
            "empty": sum(not str(r.get("response", "")).strip() for r in rows),
            "mean_tokens": (sum(int(r.get("n_tokens", 0)) for r in rows) / n) if n else None, **failures}


def empty_problem(metrics: dict[str, Any], label: str) -> list[Exception]:
    """:class:`EmptyPredictions` when every generation came back empty: a broken prompt or stop, not a weak model."""
    gen = metrics.get("generation") or {}
    if gen.get("n") and gen.get("empty") == gen["n"]:
        return [EmptyPredictions(f"{label}: all {gen['n']} generations are empty",
                                 "check the prompt, the chat template and the stop sequences")]
    return []
