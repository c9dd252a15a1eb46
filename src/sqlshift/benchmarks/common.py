"""Pieces the benchmark loop (:class:`sqlshift.benchmarks.api.Benchmark`) shares: item sampling, the resumable
results file, the contract metrics, the answer habit and the below-chance guard (each computed here, once).

Other guards live where their failure happens: EmptyPredictions in the text2sql and generative benchmarks'
``problems()``, completion-mask coverage in ``sqlshift.train.data``, letter tokens in
``sqlshift.benchmarks.mmlu_prompts.check_letter_tokens``, generation health and gold sanity in the EX metrics.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlshift.errors import BelowChance
from sqlshift.jsonl import read_jsonl
from sqlshift.stats import accuracy_summary, below_chance_p, guard_chance

T = TypeVar("T")

BELOW_CHANCE_ALPHA = 0.01  # one-sided binomial test against chance
BELOW_CHANCE_MIN_N = 50  # a group needs this many items before its own test counts
ONE_ANSWER_SHARE = 0.9  # answering one option this often makes a multiple-choice axis uninformative


def sample_items(items: Sequence[T], n: int | None, seed: int) -> list[T]:
    """A seeded random subset of ``n`` items in their original order (all items when ``n`` is None or larger)."""
    if n is None or n >= len(items):
        return list(items)
    keep = sorted(random.Random(seed).sample(range(len(items)), n))
    return [items[i] for i in keep]


class ResultsFile:
    """``results.jsonl`` of one benchmark run: rows are appended as produced, so an interrupted run resumes."""

    def __init__(self, out_dir: Path) -> None:
        self.path = Path(out_dir) / "results.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows: dict[str, dict[str, Any]] = {str(r["id"]): r for r in read_jsonl(self.path, repair=True)}

    def todo(self, items: Iterable[T], item_id: Callable[[T], str]) -> list[T]:
        """Items whose id has no row yet."""
        return [it for it in items if item_id(it) not in self.rows]

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        """Add rows (each with ``id`` and ``correct``) to the file and to memory, flushed at once."""
        from sqlshift.outputs import append_jsonl, open_append

        with open_append(self.path) as fh:
            for row in rows:
                self.rows[str(row["id"])] = row
                append_jsonl(fh, row)

    def ordered(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        """Rows for ``ids`` in that order (ids without a row are skipped)."""
        return [self.rows[i] for i in ids if i in self.rows]


def accuracy_metrics(rows: Sequence[dict[str, Any]], key: str = "correct") -> dict[str, Any]:
    """``accuracy``, ``n``, ``n_correct``, ``ci95`` (Wilson) of a list of rows."""
    return accuracy_summary([bool(r[key]) for r in rows])


def write_metrics(out_dir: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """``metrics.json``, written atomically so a crash leaves the previous version whole."""
    from sqlshift.outputs import atomic_write_json

    atomic_write_json(Path(out_dir) / "metrics.json", metrics)
    return metrics


def base_metrics(bench: Any, rows: Sequence[dict[str, Any]], n_requested: int, **extra: Any) -> dict[str, Any]:
    """The contract's fields plus the benchmark's identity: every metrics.json starts from this."""
    return {"benchmark": bench.name, "name": bench.out_name, "label": getattr(bench, "label", bench.out_name),
            "axis": bench.axis, "kind": bench.kind, **accuracy_metrics(rows), "n_requested": n_requested,
            "complete": len(rows) == n_requested, **extra}


def answer_habit(preds: Iterable[Any]) -> dict[str, Any]:
    """How often the model gives each answer (position or letter) and whether one answer dominates: a model stuck
    on one answer is not measuring anything. The one place "one answer >= ONE_ANSWER_SHARE" is decided."""
    counts: dict[str, int] = {}
    for p in preds:
        counts[str(p)] = counts.get(str(p), 0) + 1
    return habit_of_counts(counts)


def habit_of_counts(counts: dict[str, int]) -> dict[str, Any]:
    """``top_position``, ``top_position_share`` and ``one_answer`` of answer counts (see :func:`answer_habit`)."""
    total = sum(int(v) for v in counts.values())
    top, top_n = max(counts.items(), key=lambda kv: int(kv[1])) if total else (None, 0)
    share = int(top_n) / total if total else None
    return {"top_position": top, "top_position_share": share,
            "one_answer": bool(share is not None and share >= ONE_ANSWER_SHARE)}


def mean_chance(n_choices: Sequence[int]) -> float | None:
    """Expected accuracy of guessing uniformly, averaged over items with these option counts."""
    return sum(1 / n for n in n_choices) / len(n_choices) if n_choices else None


def chance_test(metrics: dict[str, Any]) -> dict[str, Any]:
    """Adds ``below_chance_p``: one-sided binomial test of accuracy against ``metrics['chance']``, or against
    ``metrics['habit_chance']`` where that is lower (:func:`sqlshift.stats.guard_chance`)."""
    chance = metrics.get("chance")
    if chance is None or not metrics.get("n"):
        return {"below_chance_p": None}
    null = guard_chance(chance, metrics.get("habit_chance"))
    return {"below_chance_p": below_chance_p(metrics["n_correct"], metrics["n"], null)}


def below_chance_problem(metrics: dict[str, Any], label: str) -> list[Exception]:
    """A :class:`BelowChance` when the aggregate (n >= BELOW_CHANCE_MIN_N), or a group listed in ``below_chance``,
    is significantly below chance (the seed study's failure mode). The one below-chance guard."""
    bad = []
    p = metrics.get("below_chance_p")
    if p is not None and not (isinstance(p, float) and math.isnan(p)) and p < BELOW_CHANCE_ALPHA \
            and metrics.get("n", 0) >= BELOW_CHANCE_MIN_N:
        bad.append(f"{metrics['accuracy']:.1%} of n={metrics['n']}{habit_note(metrics)} (p={p:.1e})")
    bad += [f"{b['subject']} {b['accuracy']:.1%} of n={b['n']}{habit_note(b)} (p={b['p']:.1e})"
            for b in metrics.get("below_chance") or []]
    if not bad:
        return []
    return [BelowChance(f"{label}: significantly below chance {metrics.get('chance', 0.25):.0%} (and below what the "
                        "model's answer habit alone would score): " + "; ".join(bad)
                        + " -- a scorer failure, not forgetting" + collapse_note(metrics),
                        "fix the scorer or answer key, or pass --allow-below-chance to report it anyway")]


def habit_note(m: dict[str, Any]) -> str:
    """``, habit chance 24.7%`` where the metrics carry one: what the model's answer shares alone would score."""
    return f", habit chance {m['habit_chance']:.1%}" if m.get("habit_chance") is not None else ""


def collapse_note(metrics: dict[str, Any]) -> str:
    """Diagnosis for the message: a model giving one answer almost always is collapsed, not mis-scored."""
    if not metrics.get("one_answer"):
        return ""
    return (f" (the model gives answer {metrics.get('top_position')} to {metrics['top_position_share']:.0%} of "
            "items: it has collapsed onto one answer; check training for divergence before blaming the scorer)")
