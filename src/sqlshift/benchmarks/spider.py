"""Spider Execution Accuracy (dev and the robustness variants Syn / Realistic / DK) as a :class:`Benchmark`.

The model writes one SQLite query per question (prompts from :class:`sqlshift.sql.prompts.PromptBuilder`, the same
builder training uses); on the base loop, each chunk of questions is generated, then every query runs in the sandbox
and is judged with the official test-suite semantics (:mod:`sqlshift.sql.execution`); its rows are appended to
``results.jsonl`` as produced. ``predictions.jsonl`` (what ``eval-sql`` reads) is derived from the rows at the end;
:func:`predict_split` writes it directly for ``sqlshift predict`` without scoring.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from sqlshift.data.layout import HINT as LAYOUT_HINT
from sqlshift.lm.api import LM, GenerateRequest
from sqlshift.benchmarks.api import Benchmark, BenchmarkSettings
from sqlshift.benchmarks.voting import DecodingSettings
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
    decoding: DecodingSettings = Field(default_factory=DecodingSettings)  # greedy, or samples and a vote


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
        d = self.settings.decoding
        return f"spider-{self.settings.split}" + (f"-vote{d.samples}" if d.voting else "")

    @property
    def label(self) -> str:
        """E.g. ``EX (dev, 3 sample rows, voted over greedy + 8 samples)``: the split and what changes the answers."""
        d, rows = self.settings.decoding, self.settings.prompt.sample_rows
        parts = [self.settings.split, *([f"{rows} sample rows"] if rows else []),
                 *([f"voted over greedy + {d.samples} samples"] if d.voting else [])]
        return f"EX ({', '.join(parts)})"

    def fingerprint(self) -> dict[str, Any]:
        """Greedy decoding leaves ``decoding`` out, so the cache keys of studies from before the option hold."""
        fp = super().fingerprint()
        if not self.settings.decoding.voting:
            fp["settings"].pop("decoding", None)
        return fp

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
        return len(self.selected())

    def split_data(self) -> Any:
        """The whole split (skip accounting included), read once."""
        from sqlshift.data.spider import load_spider

        if getattr(self, "_split", None) is None:
            self._split = load_spider(self.spider_root(), self.settings.split)
        return self._split

    def items(self) -> list[Any]:
        return list(self.split_data().examples)

    def item_id(self, item: Any) -> str:
        return str(item.index)

    def load(self) -> Any:
        """The split with the seeded ``sample`` (drawn from the evaluable examples, so it skips none) applied."""
        from sqlshift.data.spider import restrict

        split = self.split_data()
        return split if self.settings.sample is None else restrict(split, {e.index for e in self.selected()})

    @contextlib.contextmanager
    def session(self, lm: LM, out_dir: Path) -> Iterator[None]:
        """The prompt builder and one SQL sandbox (a pool of workers) for the whole evaluation."""
        from sqlshift.benchmarks.text2sql import sql_session

        with sql_session(lm, self.split_data(), self.settings) as (self._builder, self._sandbox):
            yield

    def score_chunk(self, lm: LM, chunk: Sequence[Any], results: Any) -> list[dict[str, Any]]:
        """Generate SQL for some questions, then judge all of them at once in the sandbox."""
        from sqlshift.sql.execution import Pair, judge_pairs

        s, split = self.settings, self.split_data()
        t0 = time.monotonic()
        prompts = [self._builder.build(e) for e in chunk]
        requests = [GenerateRequest(p.text, s.max_new_tokens) for p in prompts]
        gens = lm.generate(requests, batch_size=s.batch_size, desc=f"generate {split.name}")
        recs = [prediction_record(e, g.text, g.n_tokens, g.hit_limit, p) for e, p, g in zip(chunk, prompts, gens)]
        if s.decoding.voting:
            return self.with_dev_index(self.voted_rows(lm, chunk, requests, recs, time.monotonic() - t0))
        pairs = [Pair(str(split.db_path(e.db_id)), r["sql"], e.query) for e, r in zip(chunk, recs)]
        verdicts = judge_pairs(pairs, self._sandbox, mode=s.ex_mode)
        return self.with_dev_index([ex_row(e, r, v) for e, r, v in zip(chunk, recs, verdicts)])

    def with_dev_index(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A variant split's rows carry ``dev_index``, the dev item each rewords (None: unpaired), so the report can
        pair them with the same model's dev verdicts from the results alone (:mod:`sqlshift.data.pairing`)."""
        from sqlshift.data.pairing import PAIRED_SPLITS, dev_pairing
        from sqlshift.errors import DataError

        if self.settings.split not in PAIRED_SPLITS:
            return rows
        try:
            pairs = dev_pairing(self.spider_root(), self.settings.split).pairs
        except DataError as e:  # no spider/dev.json beside the variant: rows without a pairing, said once
            if not getattr(self, "_pairing_warned", False):
                log.warning("%s: no dev pairing for the robustness table (%s)", self.out_name, e)
                self._pairing_warned = True
            return rows
        return [r | {"dev_index": pairs.get(r["index"])} for r in rows]

    def voted_rows(self, lm: LM, chunk: Sequence[Any], requests: Sequence[GenerateRequest],
                   recs: Sequence[dict[str, Any]], greedy_s: float) -> list[dict[str, Any]]:
        """Rows scoring the voted SQL, each with the greedy SQL's verdict, the samples and the vote beside it."""
        from sqlshift.benchmarks.voting import judge_candidates, paired_fields, sample_and_vote

        s, split = self.settings, self.split_data()
        dbs = [str(split.db_path(e.db_id)) for e in chunk]
        greedy = [r["sql"] for r in recs]
        cand = sample_and_vote(lm, requests, dbs, greedy, s.decoding, self._sandbox, s.ex_mode, s.batch_size,
                               split.name)
        voted = [cand.voted(i, g) for i, g in enumerate(greedy)]
        judged = judge_candidates(dbs, [e.query for e in chunk], [[g, *c] for g, c in zip(greedy, cand.samples)],
                                  self._sandbox, s.ex_mode)
        share = {k: v / len(chunk) for k, v in {"greedy": greedy_s, **cand.seconds}.items()}
        return [ex_row(e, r | {"sql": voted[i]}, v[voted[i]])
                | paired_fields(r["sql"], v[r["sql"]], cand.samples[i], cand.votes[i], share,
                                [v[c].correct for c in cand.samples[i]])
                for i, (e, r, v) in enumerate(zip(chunk, recs, judged))]

    def counted(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Gold SQL that fails on its own database judges nothing: those rows are listed, not counted."""
        return [r for r in rows if r["error_type"] != "gold_error"]

    def export(self, rows: Sequence[dict[str, Any]], out_dir: Path) -> None:
        """``predictions.jsonl`` (DESIGN.md format: what ``eval-sql`` and ``predict`` read and write)."""
        from sqlshift.outputs import atomic_jsonl, append_jsonl

        with atomic_jsonl(out_dir / "predictions.jsonl") as fh:
            for r in rows:
                append_jsonl(fh, {k: r[k] for k in PREDICTION_KEYS if k in r} | {"sql": r["pred_sql"]})

    def summary(self, rows: Sequence[dict[str, Any]], items: Sequence[Any], lm: LM | None) -> dict[str, Any]:
        """EX metrics (DESIGN.md): hardness, error types, gold failures, skips, generation health."""
        from sqlshift.benchmarks.common import accuracy_metrics
        from sqlshift.sql.execution import ERROR_TYPES
        from sqlshift.sql.hardness import LEVELS

        split, scored = self.load(), self.counted(rows)
        counts = Counter(r["error_type"] for r in rows)
        levels = [*LEVELS, *sorted({r["hardness"] for r in scored} - set(LEVELS))]
        empty = sum(not (r.get("pred_sql") or "").strip() for r in rows)
        gold_failed = [r["index"] for r in rows if r["error_type"] == "gold_error"]
        return {"metric": "execution_accuracy", "split": split.name, "mode": self.settings.ex_mode,
                "execution_accuracy": accuracy_metrics(scored)["accuracy"], "n_skipped": len(split.skipped),
                "skip_reasons": dict(split.skip_reasons), "n_gold_failed": len(gold_failed), "gold_failed": gold_failed,
                "by_hardness": {lv: accuracy_metrics(sub) for lv in levels
                                if (sub := [r for r in scored if r["hardness"] == lv])},
                "by_error_type": {t: counts[t] for t in ERROR_TYPES if counts[t]},
                "generation": {"n": len(rows), "hit_limit": sum(bool(r.get("hit_limit")) for r in rows),
                               "multi_line_extraction": sum(r.get("extraction") != "first_line" for r in rows),
                               "empty": empty},
                "n_empty": empty, "n_predictions": len(rows)} | self.vote_fields(rows, scored)

    def vote_fields(self, rows: Sequence[dict[str, Any]], scored: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """A voting benchmark's greedy EX, paired test, vote counts and seconds (nothing when greedy)."""
        from sqlshift.benchmarks.voting import vote_summary

        return vote_summary(rows, scored, self.settings.decoding) if self.settings.decoding.voting else {}

    def problems(self, metrics: dict[str, Any]) -> list[Exception]:
        n = metrics.get("n_predictions", 0)
        if n and metrics.get("n_empty") == n:
            return [EmptyPredictions(f"{self.out_name}: all {n} predictions are empty after SQL extraction",
                                     "check the prompt and the stop token (predictions.jsonl holds the raw text)")]
        return []


PREDICTION_KEYS = ("index", "db_id", "sql", "raw", "n_new_tokens", "hit_limit", "extraction", "prompt_tokens",
                   "truncated", "greedy_sql", "samples", "vote")


def ex_row(example: Any, rec: dict[str, Any], verdict: Any) -> dict[str, Any]:
    """One EX results.jsonl row (DESIGN.md), with the prediction record's generation facts beside it."""
    from sqlshift.sql.hardness import example_hardness

    row = {"id": str(example.index), "index": example.index, "db_id": example.db_id, "question": example.question,
           "hardness": example_hardness(example), "correct": verdict.correct, "error_type": verdict.error_type,
           "error": verdict.error, "pred_sql": rec["sql"], "gold_sql": example.query}
    return row | {k: rec[k] for k in PREDICTION_KEYS if k in rec and k not in ("index", "db_id", "sql")}
