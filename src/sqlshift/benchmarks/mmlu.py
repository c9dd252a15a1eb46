"""MMLU by log-likelihood as a :class:`ChoiceBenchmark` (letter or cloze scoring, k-shot, plain or chat prompts).

Prompts and metrics live in :mod:`sqlshift.benchmarks.mmlu_prompts`; this module turns questions into
``LM.loglikelihood`` requests (four per question) and rows; the base loop writes ``results.jsonl`` /
``metrics.json``. The CLI ``eval-mmlu`` and the runner both go through :meth:`MMLUBenchmark.evaluate`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from sqlshift.data.layout import HINT as LAYOUT_HINT
from sqlshift.benchmarks.api import BenchmarkSettings
from sqlshift.benchmarks.choice import ChoiceBenchmark
from sqlshift.benchmarks.common import ResultsFile, answer_habit
from sqlshift.data.mmlu import LETTERS, MMLUQuestion
from sqlshift.errors import ConfigError
from sqlshift.lm.api import LM, LoglikelihoodRequest

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


class MMLUBenchmark(ChoiceBenchmark):
    """MMLU accuracy; its report sections are the letter habit and the four categories."""

    name = "mmlu"
    label = "MMLU"
    Settings = MMLUSettings
    chunk = CHUNK
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
        if self.settings.subjects == "seed" and len(missing) == len(names):  # e.g. the demo quiz: not MMLU's subjects
            return [f"{self.out_name}: {d} has none of the seed preset's subjects ({', '.join(names)}; the default): "
                    f"set subjects: all for every subject there (sqlshift eval: --set {self.name}.subjects=all)"]
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

    def items(self) -> list[MMLUQuestion]:
        """The protocol's questions before ``sample``: the seed preset's 3 x 50, or all of the subjects."""
        from sqlshift.data.mmlu import load_mmlu, seed_sample

        s = self.settings
        qs = load_mmlu(self.mmlu_dir(), self.subjects(), split=s.split)
        return seed_sample(qs) if s.subjects == "seed" else qs

    def questions(self) -> list[MMLUQuestion]:
        """The evaluated questions (``sample`` applied)."""
        return self.selected()

    def item_id(self, item: MMLUQuestion) -> str:
        return question_id(item)

    @contextlib.contextmanager
    def session(self, lm: LM, out_dir: Path) -> Iterator[None]:
        """Scoring mode (letter, or the cloze fallback), few-shot exemplars; results of another mode are refused."""
        from sqlshift.benchmarks.mmlu_prompts import resolve_mode
        from sqlshift.data.mmlu import load_fewshot

        s = self.settings
        warnings: list[str] = []
        mode, _ = resolve_mode(lm.tokenizer, s.mode, warnings)
        other = {r.get("mode") for r in ResultsFile(out_dir).rows.values()} - {mode}
        if other:
            raise ConfigError(f"{out_dir / 'results.jsonl'} holds {other.pop()}-mode results, this run is {mode}-mode",
                              "use another output folder, or delete results.jsonl")
        subjects = list(dict.fromkeys(q.subject for q in self.questions()))
        fewshot, note = load_fewshot(self.mmlu_dir(), subjects, s.k_shot) if s.k_shot else ({}, "0-shot")
        self._run = {"mode": mode, "warnings": warnings, "fewshot": fewshot, "note": note,
                     "k_shot": s.k_shot if fewshot else 0, "tok": lm.tokenizer}
        try:
            yield
        finally:
            self._run.pop("tok", None)

    def requests(self, q: MMLUQuestion, lm: LM) -> list[LoglikelihoodRequest]:
        """Four requests: `` A``..`` D`` after the lettered prompt, or each answer text after the cloze prompt."""
        from sqlshift.benchmarks.mmlu_prompts import build_context

        run = self._run
        shots = run["fewshot"].get(q.subject, [])[:run["k_shot"]]
        ctx = build_context(q, run["mode"], shots, self.settings.chat, lm.tokenizer)
        conts = [f" {L}" for L in LETTERS] if run["mode"] == "letter" else [" " + c.strip() for c in q.choices]
        return [LoglikelihoodRequest(ctx, c) for c in conts]

    def score(self, q: MMLUQuestion, results: Sequence[tuple[float, bool]]) -> dict[str, Any]:
        from sqlshift.benchmarks.mmlu_prompts import result_row

        return result_row(q, [lp for lp, _ in results], self._run["mode"], question_id(q))

    def summary(self, rows: Sequence[dict[str, Any]], items: Sequence[Any], lm: LM | None) -> dict[str, Any]:
        """Per subject and category, letter counts and habit, mode and few-shot facts (DESIGN.md)."""
        from sqlshift.benchmarks.mmlu_prompts import build_metrics
        from sqlshift.data.mmlu import question_indices

        s, run = self.settings, self._run
        own = build_metrics(rows, mode=run["mode"], k_shot=run["k_shot"], chat=s.chat)
        own.update(answer_habit(r["pred"] for r in rows))
        own.update({"mode_requested": s.mode, "split": s.split, "fewshot_note": run["note"],
                    "warnings": run["warnings"]})
        if s.subjects == "seed" or s.sample:
            own["questions"] = question_indices(list(items))
        return own
