"""Pieces every benchmark shares: item sampling, the resumable results file, metrics, the below-chance guard."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlshift.errors import BelowChance
from sqlshift.jsonl import read_jsonl
from sqlshift.stats import accuracy_summary, below_chance_p

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
            "axis": bench.axis, "kind": bench.kind, **accuracy_metrics(rows), "n_requested": n_requested, "complete": len(rows) == n_requested, **extra}


def choice_habit(preds: Sequence[int], n_choices: Sequence[int]) -> dict[str, Any]:
    """How often the model picks each option position: a model stuck on one is not measuring anything."""
    counts: dict[str, int] = {}
    for p in preds:
        counts[str(p)] = counts.get(str(p), 0) + 1
    total = len(preds)
    top, top_n = max(counts.items(), key=lambda kv: kv[1]) if counts else (None, 0)
    fixed = [n for n in n_choices]
    return {"pred_position_counts": counts, "top_position": top,
            "top_position_share": top_n / total if total else None,
            "one_answer": bool(total and top_n / total >= ONE_ANSWER_SHARE),
            "chance": sum(1 / n for n in fixed) / len(fixed) if fixed else None}


def chance_test(metrics: dict[str, Any]) -> dict[str, Any]:
    """Adds ``below_chance_p`` (one-sided binomial test of accuracy against ``metrics['chance']``)."""
    chance = metrics.get("chance")
    if chance is None or not metrics.get("n"):
        return {"below_chance_p": None}
    return {"below_chance_p": below_chance_p(metrics["n_correct"], metrics["n"], chance)}


def below_chance_problem(metrics: dict[str, Any], label: str) -> list[Exception]:
    """A :class:`BelowChance` when the aggregate is significantly below chance (the seed study's failure mode)."""
    p = metrics.get("below_chance_p")
    if p is None or (isinstance(p, float) and math.isnan(p)) or p >= BELOW_CHANCE_ALPHA:
        return []
    if metrics.get("n", 0) < BELOW_CHANCE_MIN_N:
        return []
    note = ""
    if metrics.get("one_answer"):
        note = (f" (the model gives answer position {metrics.get('top_position')} to "
                f"{metrics['top_position_share']:.0%} of items: it has collapsed; check training for divergence)")
    return [BelowChance(f"{label}: {metrics['accuracy']:.1%} of n={metrics['n']} is significantly below chance "
                        f"{metrics['chance']:.0%} (p={p:.1e}) -- a scorer failure, not forgetting{note}",
                        "fix the scorer or answer key, or pass --allow-below-chance to report it anyway")]

