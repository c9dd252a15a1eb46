"""Log-likelihood multiple choice, as lm-evaluation-harness scores its ``multiple_choice`` tasks.

An item is one request per option: ``(context, " " + option)`` (or, for partial scoring as in WinoGrande, one
context per option and a shared continuation). The prediction is the argmax of the summed log-probs (``acc``) or of
log-prob divided by the option's character length (``acc_norm``); ties go to the first option, as numpy's argmax.
Each task names its headline (``correct``/``accuracy``) and records the other metric beside it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from sqlshift.benchmarks.api import Benchmark, BenchmarkSettings
from sqlshift.lm.api import LM, LoglikelihoodRequest
from sqlshift.benchmarks.common import accuracy_metrics, answer_habit, mean_chance
from sqlshift.data.general import general_file, missing_problem, read_general
from sqlshift.stats import habit_chance

Metric = Literal["acc", "acc_norm"]
OTHER_KEY: dict[str, str] = {"acc": "raw", "acc_norm": "norm"}


class ChoiceSettings(BenchmarkSettings):
    """Settings of every log-likelihood multiple-choice task (zero-shot: the local files hold no train split)."""

    batch_size: int = 32
    chunk: int = 256  # items scored per LM call and appended together: the resume granularity
    file: str | None = None  # the data file (absolute, or relative to data_dir); default: general/<standard name>


@dataclass(frozen=True)
class ChoiceItem:
    """One question as log-likelihood requests: ``contexts`` has one entry (shared) or one per option."""

    id: str
    contexts: tuple[str, ...]
    continuations: tuple[str, ...]
    gold: int
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def n_choices(self) -> int:
        return max(len(self.contexts), len(self.continuations))

    def requests(self) -> list[LoglikelihoodRequest]:
        n = self.n_choices
        ctx = self.contexts * n if len(self.contexts) == 1 else self.contexts
        cont = self.continuations * n if len(self.continuations) == 1 else self.continuations
        return [LoglikelihoodRequest(c, x) for c, x in zip(ctx, cont)]


def options_item(item_id: str, context: str, options: Sequence[str], gold: int, **fields: Any) -> ChoiceItem:
    """The common shape: one context, each option scored as `` <option>`` (lm-eval's target delimiter)."""
    return ChoiceItem(item_id, (context,), tuple(" " + o for o in options), int(gold), dict(fields))


def partial_item(item_id: str, contexts: Sequence[str], continuation: str, gold: int, **fields: Any) -> ChoiceItem:
    """Partial scoring: each option completes the context, the shared rest of the sentence is scored."""
    return ChoiceItem(item_id, tuple(contexts), (" " + continuation,), int(gold), dict(fields))


def argmax(values: Sequence[float]) -> int:
    """Index of the largest value, the first one on ties (numpy.argmax semantics)."""
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


def predictions(item: ChoiceItem, lls: Sequence[float]) -> dict[str, int]:
    """``acc`` and ``acc_norm`` predictions; the norm divides by the option's length in characters (lm-eval)."""
    preds = {"acc": argmax(lls)}
    if len(item.continuations) > 1:
        lengths = [float(len(c) - 1) for c in item.continuations]  # without the leading delimiter
        preds["acc_norm"] = argmax([ll / n if n else ll for ll, n in zip(lls, lengths)])
    return preds


class ChoiceBenchmark(Benchmark):
    """Log-likelihood multiple choice on the base loop: one request per option, the argmax is the answer.

    The generality suite's tasks read one local file (``make_item`` per row); MMLU supplies its own items, requests
    and rows. Every one records the answer habit and the chance level, so the one-answer flag and the below-chance
    guard are the base's."""

    axis = "generality"
    kind = "multiple_choice"
    label: ClassVar[str]
    Settings: ClassVar[type[BenchmarkSettings]] = ChoiceSettings
    headline: ClassVar[Metric] = "acc"
    file_key: ClassVar[str | None] = None  # key in data.general.FILES when it differs from ``name``
    option_texts: ClassVar[tuple[str, ...] | None] = None  # every item's options when fixed (BoolQ: no, yes)
    settings: ChoiceSettings

    @property
    def reported(self) -> tuple[Metric, ...]:
        """The metrics the task's protocol reports (lm-eval YAML ``metric_list``): tasks headlined by acc_norm
        report acc too; WinoGrande, BoolQ and TruthfulQA MC1 report acc alone."""
        return ("acc", "acc_norm") if self.headline == "acc_norm" else ("acc",)

    @property
    def path(self) -> Path:
        return general_file(self.data_root, self.file_key or self.name, self.settings.file)

    def check(self) -> list[str]:
        return missing_problem(self.path)

    def make_item(self, row: dict[str, Any], index: int) -> ChoiceItem:
        """The item for the row at ``index`` (0-based) of the file."""
        raise NotImplementedError(f"{type(self).__name__} supplies make_item() or items()")

    def items(self) -> list[ChoiceItem]:
        """Every item of the file, in file order."""
        rows = read_general(self.file_key or self.name, self.path)
        return [self.make_item(r, i) for i, r in enumerate(rows)]

    def requests(self, item: ChoiceItem, lm: LM) -> list[LoglikelihoodRequest]:
        return item.requests()

    def score(self, item: ChoiceItem, results: Sequence[tuple[float, bool]]) -> dict[str, Any]:
        """The row of one item: headline verdict, the other reported metric, log-likelihoods."""
        lls = [float(ll) for ll, _ in results]
        preds = predictions(item, lls)
        row: dict[str, Any] = {"id": item.id, "correct": preds[self.headline] == item.gold,
                               "pred": preds[self.headline], "gold": item.gold, "n_choices": item.n_choices}
        for metric in self.reported:
            if metric != self.headline:
                row[f"correct_{OTHER_KEY[metric]}"] = preds[metric] == item.gold
                row[f"pred_{OTHER_KEY[metric]}"] = preds[metric]
        row["loglikelihoods"] = [round(x, 4) for x in lls]
        row["greedy"] = [bool(g) for _, g in results]
        return {**row, **item.fields}

    def summary(self, rows: Sequence[dict[str, Any]], items: Sequence[Any], lm: LM | None) -> dict[str, Any]:
        """The headline's name, the other metric, the answer-position habit and chance."""
        own: dict[str, Any] = {"label": self.label, "headline": self.headline, "reported": list(self.reported),
                               "lm_eval_task": self.name}
        for metric in self.reported:
            if metric != self.headline and rows:
                other = accuracy_metrics(rows, f"correct_{OTHER_KEY[metric]}")
                own[f"accuracy_{OTHER_KEY[metric]}"] = other["accuracy"]
                own[f"ci95_{OTHER_KEY[metric]}"] = other["ci95"]
        habit = answer_habit(int(r["pred"]) for r in rows)
        own["pred_position_counts"] = {str(k): v for k, v in Counter(str(int(r["pred"])) for r in rows).items()}
        own.update(habit, chance=mean_chance([int(r["n_choices"]) for r in rows]),
                   habit_chance=habit_chance([int(r["pred"]) for r in rows], [int(r["gold"]) for r in rows]))
        if self.option_texts:  # the report names answers by their text ("yes"), not by position ("B")
            own["option_labels"] = {str(i): t for i, t in enumerate(self.option_texts)}
        return own
