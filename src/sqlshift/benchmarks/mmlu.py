"""MMLU by log-likelihood as a :class:`Benchmark` (letter or cloze scoring, k-shot, plain or chat prompts).

Prompts and metrics live in :mod:`sqlshift.benchmarks.mmlu_prompts`; this module turns questions into ``LM.loglikelihood``
requests (four per question) and rows into ``results.jsonl`` / ``metrics.json``. The CLI ``eval-mmlu`` and the
runner both go through :meth:`MMLUBenchmark.evaluate`, so they cannot drift apart.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from sqlshift.data.layout import HINT as LAYOUT_HINT
from sqlshift.lm.api import LM, LoglikelihoodRequest
from sqlshift.benchmarks.api import Benchmark, BenchmarkSettings
from sqlshift.benchmarks.common import ONE_ANSWER_SHARE, ResultsFile, base_metrics, sample_items, write_metrics
from sqlshift.data.mmlu import LETTERS, MMLUQuestion
from sqlshift.errors import BelowChance, ConfigError

log = logging.getLogger(__name__)

CHUNK = 2048  # questions per loglikelihood call: results reach the file at least this often


class MMLUSettings(BenchmarkSettings):
    """Which MMLU questions and how they are scored."""

    subjects: str | list[str] = "seed"  # seed (the study's 3 x 50) | all | [a, b, c]
    exclude: list[str] = Field(default_factory=list)  # e.g. subjects held out for replay training
    mode: Literal["letter", "cloze"] = "letter"
    k_shot: int = Field(0, ge=0)
    chat: bool = False
    batch_size: int = Field(16, gt=0)
    split: Literal["test", "val", "dev"] = "test"


def question_id(q: MMLUQuestion) -> str:
    return f"{q.subject}:{q.index}"


class MMLUBenchmark(Benchmark):
    """MMLU accuracy; its report sections are the letter habit and the four categories."""

    name = "mmlu"
    axis = "generality"
    kind = "multiple_choice"
    label = "MMLU"
    Settings = MMLUSettings
    settings: MMLUSettings

    def mmlu_dir(self) -> Path:
        """``<data_dir>/mmlu`` of a data folder, or the folder itself when it holds the CSV splits."""
        root = self.data_root
        return root / "mmlu" if (root / "mmlu").is_dir() else root

    def check(self) -> list[str]:
        d = self.mmlu_dir() / self.settings.split
        if not d.is_dir():
            return [f"{self.out_name}: {d} does not exist (MMLU CSV folders test/, dev/, val/; {LAYOUT_HINT})"]
        try:
            names = self.subjects()
        except Exception as e:  # noqa: BLE001 - one line in the up-front report
            return [f"{self.out_name}: {e}"]
        split = self.settings.split
        missing = [d / f"{n}_{split}.csv" for n in names if not (d / f"{n}_{split}.csv").is_file()]
        return [f"{self.out_name}: {p} does not exist" for p in missing[:5]] + \
            ([f"{self.out_name}: ... and {len(missing) - 5} more missing files"] if len(missing) > 5 else [])

    def size(self) -> int | None:
        return len(self.questions())

    def subjects(self) -> list[str]:
        from sqlshift.data.mmlu import resolve_subjects

        s = self.settings
        spec = s.subjects if isinstance(s.subjects, str) else ",".join(s.subjects)
        names = resolve_subjects(spec, mmlu_dir=self.mmlu_dir(), split=s.split)
        return [n for n in names if n not in set(s.exclude)]

    def questions(self) -> list[MMLUQuestion]:
        """The protocol's questions: the seed preset's sample, or all of the subjects, then ``sample``."""
        from sqlshift.data.mmlu import load_mmlu, seed_sample

        s = self.settings
        qs = load_mmlu(self.mmlu_dir(), self.subjects(), split=s.split)
        if s.subjects == "seed":
            qs = seed_sample(qs)
        return sample_items(qs, s.sample, s.sample_seed)

    def requests(self, q: MMLUQuestion, mode: str, shots: list[MMLUQuestion], tok: Any) -> list[LoglikelihoodRequest]:
        """Four requests: `` A``..`` D`` after the lettered prompt, or each answer text after the cloze prompt."""
        from sqlshift.benchmarks.mmlu_prompts import build_context

        ctx = build_context(q, mode, shots, self.settings.chat, tok)
        conts = [f" {L}" for L in LETTERS] if mode == "letter" else [" " + c.strip() for c in q.choices]
        return [LoglikelihoodRequest(ctx, c) for c in conts]

    def evaluate(self, lm: LM, out_dir: Path) -> dict[str, Any]:
        from sqlshift.data.mmlu import load_fewshot, question_indices
        from sqlshift.benchmarks.mmlu_prompts import build_metrics, resolve_mode, result_row

        s = self.settings
        qs = self.questions()
        warnings: list[str] = []
        mode, _ = resolve_mode(lm.tokenizer, s.mode, warnings)
        subjects = list(dict.fromkeys(q.subject for q in qs))
        fewshot, note = load_fewshot(self.mmlu_dir(), subjects, s.k_shot) if s.k_shot else ({}, "0-shot")
        k_shot = s.k_shot if fewshot else 0
        results = ResultsFile(out_dir)
        other = {r.get("mode") for r in results.rows.values()} - {mode}
        if other:
            raise ConfigError(f"{results.path} holds {other.pop()}-mode results, this run is {mode}-mode",
                              "use another output folder, or delete results.jsonl")
        todo = results.todo(qs, question_id)
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start:start + CHUNK]
            reqs = [r for q in chunk for r in self.requests(q, mode, fewshot.get(q.subject, [])[:k_shot], lm.tokenizer)]
            scores = lm.loglikelihood(reqs, batch_size=s.batch_size, desc=f"mmlu {mode}")
            results.append(result_row(q, [lp for lp, _ in scores[4 * i:4 * i + 4]], mode, question_id(q))
                           for i, q in enumerate(chunk))
        rows = results.ordered(question_id(q) for q in qs)
        metrics = build_metrics(rows, mode=mode, k_shot=k_shot, chat=s.chat)
        metrics.update(base_metrics(self, rows, len(qs)))
        metrics.update({"mode_requested": s.mode, "split": s.split, "fewshot_note": note, "warnings": warnings,
                        "lm": lm.stats(), "one_answer": one_letter(metrics)})
        if s.subjects == "seed" or s.sample:
            metrics["questions"] = question_indices(qs)
        return write_metrics(out_dir, metrics)

    def problems(self, metrics: dict[str, Any]) -> list[Exception]:
        from sqlshift.benchmarks.guards import check_below_chance

        msg = check_below_chance(metrics)
        if msg:
            return [BelowChance(f"{self.out_name}: {msg}",
                                "fix the scorer or answer key, or pass --allow-below-chance to report it anyway")]
        return []


def one_letter(metrics: dict[str, Any]) -> bool:
    """True when the model gives one letter to at least 90% of questions: the axis cannot measure it."""
    counts = metrics.get("pred_counts") or {}
    total = sum(counts.values())
    return bool(total and max(counts.values()) / total >= ONE_ANSWER_SHARE)
