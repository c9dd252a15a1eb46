"""GSM8K grade-school maths with chain of thought, scored as lm-evaluation-harness 0.4.13's ``gsm8k`` task.

``gsm8k``: k-shot (5) ``Question: ...\\nAnswer: <worked solution> #### N`` exemplars, greedy until ``Question:``,
``</s>`` or ``<|im_end|>`` (256 new tokens), then lm-eval's two extractions -- ``strict-match`` (the number after
``#### ``) and ``flexible-extract`` (the last number in the text) -- each compared to the gold number by lm-eval's
``exact_match`` (commas, ``$``, a trailing ``.`` ignored, case-insensitive). Headline: strict-match.
Exemplars: the local files hold only the test split, so by default each item's k exemplars are drawn (seeded, per
item) from the other test items -- lm-eval does the same when the few-shot split is the eval split; set
``fewshot_file`` to a GSM8K train JSONL for the standard train-split exemplars.
``gsm8k_chat``: 0-shot for instruct models, the question as the user turn of the chat template with an instruction
to end on ``#### N``. Headline: flexible-extract (chat models often drop the ``####`` marker).
"""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from sqlshift.lm.api import LM, GenerateRequest, Generation
from sqlshift.benchmarks.generative import (GenerativeBenchmark, GenerativeSettings, chat_prompt, generation_health)
from sqlshift.data.general import general_file, missing_problem, read_general

STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
IGNORE = (",", "\\$", "(?s).*#### ", "\\.$")  # lm-eval gsm8k metric_list regexes_to_ignore
INVALID = "[invalid]"
STOPS = ("Question:", "</s>", "<|im_end|>")
CHAT_INSTRUCTION = ("Solve the problem step by step. End your answer with the final number on its own line, "
                    "written as: #### <number>")


def extract(text: str, pattern: re.Pattern[str], group_select: int) -> str:
    """lm-eval's ``RegexFilter``: the selected match (first non-empty group), stripped, or ``[invalid]``."""
    matches = pattern.findall(text)
    if not matches:
        return INVALID
    match = matches[group_select]
    if isinstance(match, tuple):
        match = next((m for m in match if m), INVALID)
    return match.strip()


def extract_strict(text: str) -> str:
    return extract(text, STRICT, 0)


def extract_flexible(text: str) -> str:
    return extract(text, FLEXIBLE, -1)


def normalise(text: str) -> str:
    """lm-eval's ``exact_match`` preprocessing: drop the ignored patterns in order, lower-case."""
    for pattern in IGNORE:
        text = re.sub(pattern, "", text)
    return text.lower()


def gold_number(answer: str) -> str:
    return normalise(answer)


def exact_match(pred: str, answer: str) -> bool:
    return normalise(pred) == gold_number(answer)


class GSM8KSettings(GenerativeSettings):
    num_fewshot: int = Field(5, ge=0)
    fewshot_file: str | None = None  # GSM8K train JSONL (question, answer); default: other test items
    fewshot_seed: int = 1234


class GSM8K(GenerativeBenchmark):
    """5-shot chain-of-thought GSM8K with lm-eval's strict and flexible answer extraction."""

    name = "gsm8k"
    label = "GSM8K"
    file_key = "gsm8k"
    Settings: ClassVar[type[GSM8KSettings]] = GSM8KSettings
    headline: ClassVar[Literal["strict", "flexible"]] = "strict"
    settings: GSM8KSettings

    def check(self) -> list[str]:
        extra = self.settings.fewshot_file
        return super().check() + (missing_problem(general_file(self.data_root, "gsm8k", extra)) if extra else [])

    def items(self) -> list[dict[str, Any]]:
        return [{**r, "id": str(r["id"])} for r in read_general("gsm8k", self.path)]

    def exemplar_pool(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.settings.fewshot_file:
            return read_general("gsm8k", general_file(self.data_root, "gsm8k", self.settings.fewshot_file))
        return items

    def prompt(self, item: dict[str, Any], pool: list[dict[str, Any]], tok: Any) -> str:
        """``Question: q\\nAnswer: a`` exemplars joined by blank lines, then the question, ending in ``Answer:``."""
        k = self.settings.num_fewshot
        others = [p for p in pool if p["question"] != item["question"]]
        shots = random.Random(f"{self.settings.fewshot_seed}:{item['id']}").sample(others, min(k, len(others)))
        blocks = [f"Question: {s['question']}\nAnswer: {s['answer']}" for s in shots]
        return "\n\n".join(blocks + [f"Question: {item['question']}\nAnswer:"])

    @contextlib.contextmanager
    def session(self, lm: LM, out_dir: Path) -> Iterator[None]:
        """The few-shot exemplar pool (the whole file, or ``fewshot_file``), read once per evaluation."""
        self._pool = self.exemplar_pool(self.items())
        yield

    def request(self, item: dict[str, Any], lm: LM) -> GenerateRequest:
        return GenerateRequest(self.prompt(item, self._pool, lm.tokenizer), self.settings.max_new_tokens, self.stops)

    stops: ClassVar[tuple[str, ...]] = STOPS

    def row(self, item: dict[str, Any], gen: Generation) -> dict[str, Any]:
        strict, flexible = extract_strict(gen.text), extract_flexible(gen.text)
        verdicts = {"strict": exact_match(strict, item["answer"]), "flexible": exact_match(flexible, item["answer"])}
        other = "flexible" if self.headline == "strict" else "strict"
        return {"id": item["id"], "correct": verdicts[self.headline], f"correct_{other}": verdicts[other],
                "target": gold_number(item["answer"]), "extracted_strict": strict, "extracted_flexible": flexible,
                "response": gen.text, "n_tokens": gen.n_tokens, "hit_limit": gen.hit_limit}

    def summary(self, rows: Sequence[dict[str, Any]], items: Sequence[Any], lm: LM | None) -> dict[str, Any]:
        other = "flexible" if self.headline == "strict" else "strict"
        n = len(rows)
        health = generation_health(
            rows, extraction_failures_strict=sum(r["extracted_strict"] == INVALID for r in rows),
            extraction_failures_flexible=sum(r["extracted_flexible"] == INVALID for r in rows))
        own = {"headline": f"{self.headline}-match" if self.headline == "strict" else "flexible-extract",
               f"accuracy_{other}": (sum(bool(r[f"correct_{other}"]) for r in rows) / n) if n else None,
               "num_fewshot": self.num_fewshot(), "fewshot_source": self.fewshot_source(),
               "generation": health, "lm_eval_task": "gsm8k"}
        return own

    def num_fewshot(self) -> int:
        return self.settings.num_fewshot

    def fewshot_source(self) -> str:
        if not self.settings.num_fewshot:
            return "none"
        return self.settings.fewshot_file or "other test items (seeded per item)"


class GSM8KChatSettings(GSM8KSettings):
    num_fewshot: int = Field(0, ge=0, le=0)
    max_new_tokens: int = Field(512, gt=0)
    instruction: str = CHAT_INSTRUCTION


class GSM8KChat(GSM8K):
    """0-shot GSM8K for instruct models, in the chat template; the last number counts (flexible-extract)."""

    name = "gsm8k_chat"
    label = "GSM8K (chat, 0-shot)"
    Settings: ClassVar[type[GSM8KSettings]] = GSM8KChatSettings
    headline = "flexible"
    settings: GSM8KChatSettings

    def prompt(self, item: dict[str, Any], pool: list[dict[str, Any]], tok: Any) -> str:
        return chat_prompt(tok, f"{item['question']}\n\n{self.settings.instruction}")

    stops: ClassVar[tuple[str, ...]] = ()
