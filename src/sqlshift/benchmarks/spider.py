"""Spider Execution Accuracy (dev and the robustness variants Syn / Realistic / DK) as a :class:`Benchmark`.

The model writes one SQLite query per question (prompts from :class:`sqlshift.sql.prompts.PromptBuilder`, the same
builder training uses); predictions are appended to ``predictions.jsonl`` as produced, then every query runs in the
sandbox and is judged with the official test-suite semantics (:mod:`sqlshift.sql.execution`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from sqlshift.data.layout import HINT as LAYOUT_HINT
from sqlshift.lm.api import LM, GenerateRequest
from sqlshift.benchmarks.api import Benchmark, BenchmarkSettings
from sqlshift.benchmarks.common import sample_items, write_metrics
from sqlshift.errors import EmptyPredictions
from sqlshift.jsonl import read_jsonl
from sqlshift.outputs import open_append
from sqlshift.sql.prompts import PromptConfig

log = logging.getLogger(__name__)

CHUNK = 1024  # prompts per generate call: results reach the file at least this often


class SpiderSettings(BenchmarkSettings):
    """One Spider-format split, how SQL is generated and how it is judged."""

    split: Literal["dev", "train", "syn", "realistic", "dk"] = "dev"
    batch_size: int = Field(16, gt=0)
    max_new_tokens: int = Field(192, gt=0)
    ex_mode: Literal["official", "simple"] = "official"
    timeout_s: float = Field(30.0, gt=0)
    prompt: PromptConfig = Field(default_factory=PromptConfig)


def prediction_record(example: Any, text: str, n_tokens: int, hit_limit: bool, prompt: Any) -> dict[str, Any]:
    """One predictions.jsonl line (DESIGN.md format, plus prompt length and truncation)."""
    from sqlshift.sql.extract import extract_sql

    sql, how = extract_sql(text)
    rec = {"index": example.index, "db_id": example.db_id, "sql": sql, "raw": text, "n_new_tokens": n_tokens,
           "hit_limit": hit_limit, "extraction": how, "prompt_tokens": prompt.n_tokens}
    if prompt.truncated:
        rec["truncated"] = True
    return rec


def predict_split(lm: LM, split: Any, out_path: Path, *, prompt_cfg: PromptConfig, batch_size: int,
                  max_new_tokens: int) -> list[dict[str, Any]]:
    """Predict SQL for every example of ``split`` into ``out_path`` (resumable); returns them in split order."""
    from sqlshift.outputs import append_jsonl
    from sqlshift.sql.prompts import PromptBuilder

    out_path.parent.mkdir(parents=True, exist_ok=True)
    done = {r["index"]: r for r in read_jsonl(out_path, repair=True)}
    todo = [e for e in split.examples if e.index not in done]
    if done and todo:
        log.info("%s: %d of %d already predicted, %d to go", out_path, len(done), len(split.examples), len(todo))
    builder = PromptBuilder(lm.tokenizer, split.tables, split.db_path, prompt_cfg)
    for start in range(0, len(todo), CHUNK):
        chunk = todo[start:start + CHUNK]
        prompts = [builder.build(e) for e in chunk]
        gens = lm.generate([GenerateRequest(p.text, max_new_tokens) for p in prompts], batch_size=batch_size,
                           desc=f"generate {split.name}")
        with open_append(out_path) as fh:
            for e, p, g in zip(chunk, prompts, gens):
                rec = prediction_record(e, g.text, g.n_tokens, g.hit_limit, p)
                done[e.index] = rec
                append_jsonl(fh, rec)
    return [done[e.index] for e in split.examples]


class SpiderBenchmark(Benchmark):
    """Execution Accuracy on one Spider split; its report sections are hardness and the error taxonomy."""

    name = "spider"
    axis = "specialty"
    kind = "text2sql"
    Settings = SpiderSettings
    settings: SpiderSettings

    def default_name(self) -> str:
        return f"spider-{self.settings.split}"

    @property
    def label(self) -> str:
        return f"EX ({self.settings.split})"

    def spider_root(self) -> Path:
        """The folder ``load_spider`` reads: a data folder holding ``spider/`` or a Spider folder itself."""
        return self.data_root

    def check(self) -> list[str]:
        from sqlshift.data.spider import resolve_variant_root

        try:
            var_dir, spider_dir = resolve_variant_root(self.spider_root(), self.settings.split)
        except Exception as e:  # noqa: BLE001 - turned into one line for the up-front report
            return [f"{self.out_name}: {e}"]
        missing = [p for p in (spider_dir / "tables.json", spider_dir / "database") if not p.exists()]
        if not var_dir.is_dir():
            missing.insert(0, var_dir)
        return [f"{self.out_name}: {p} does not exist ({LAYOUT_HINT})" for p in missing]

    def size(self) -> int | None:
        return len(self.load().examples)

    def load(self) -> Any:
        """The split with the seeded ``sample`` (drawn from the evaluable examples, so it skips none) applied."""
        from sqlshift.data.spider import load_spider, restrict

        split = load_spider(self.spider_root(), self.settings.split)
        if self.settings.sample is None:
            return split
        keep = sample_items(split.examples, self.settings.sample, self.settings.sample_seed)
        return restrict(split, {e.index for e in keep})

    def evaluate(self, lm: LM, out_dir: Path) -> dict[str, Any]:
        from sqlshift.sql.execution import evaluate_split

        s = self.settings
        split = self.load()
        preds = predict_split(lm, split, out_dir / "predictions.jsonl", prompt_cfg=s.prompt,
                              batch_size=s.batch_size, max_new_tokens=s.max_new_tokens)
        metrics = evaluate_split(split, {p["index"]: p for p in preds}, out_dir, mode=s.ex_mode, timeout_s=s.timeout_s)
        empty = sum(not (p.get("sql") or "").strip() for p in preds)
        metrics.update({"benchmark": self.name, "name": self.out_name, "axis": self.axis, "kind": self.kind,
                        "label": self.label, "accuracy": metrics["execution_accuracy"], "n_empty": empty,
                        "n_predictions": len(preds), "lm": lm.stats()})
        return write_metrics(out_dir, metrics)

    def problems(self, metrics: dict[str, Any]) -> list[Exception]:
        n = metrics.get("n_predictions", 0)
        if n and metrics.get("n_empty") == n:
            return [EmptyPredictions(f"{self.out_name}: all {n} predictions are empty after SQL extraction",
                                     "check the prompt and the stop token (predictions.jsonl holds the raw text)")]
        return []
