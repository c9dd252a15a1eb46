"""Checks against the known silent failures of this kind of study (each runs inside the normal commands).

1. Below-chance scorer: MMLU significantly below chance is a scorer bug, not forgetting (the seed study's
   0.67% of n=150 has p ~ 1e-17).                                                  -> here (``BelowChance``)
2. No prediction could be parsed into SQL.                           -> ``SpiderBenchmark.problems`` (``EmptyPredictions``)
3. Completion-only mask coverage before training.                                  -> ``sqlshift.train.trainer.check_mask_coverage``
4. Answer-letter tokens are four distinct single tokens, else cloze fallback.      -> ``sqlshift.benchmarks.mmlu_prompts.check_letter_tokens``
5. Generation stop / extraction health in every EX ``metrics.json`` ("generation").  -> ``sqlshift.sql.execution``
6. Gold queries that fail on their database are excluded and listed ("gold_failed"). -> ``sqlshift.sql.execution``
"""

from __future__ import annotations

from typing import Any

from sqlshift.benchmarks.common import BELOW_CHANCE_ALPHA, ONE_ANSWER_SHARE


def check_below_chance(metrics: dict[str, Any]) -> str | None:
    """A message when MMLU accuracy (aggregate, or a subject with n >= 50) is significantly below chance.

    Reads the test the MMLU scorer already ran (``below_chance_p``, ``below_chance``; p < 0.01, one-sided binomial).
    """
    chance = float(metrics.get("chance", 0.25))
    bad = []
    p = float(metrics["below_chance_p"])
    if p < BELOW_CHANCE_ALPHA:
        bad.append(f"aggregate {metrics['accuracy']:.1%} of n={metrics['n']} (p={p:.1e})")
    bad += [f"{b['subject']} {b['accuracy']:.1%} of n={b['n']} (p={b['p']:.1e})" for b in metrics.get("below_chance", [])]
    if not bad:
        return None
    return (f"MMLU significantly below chance {chance:.0%}: " + "; ".join(bad)
            + " -- a scorer failure, not forgetting" + collapse_note(metrics))


def collapse_note(metrics: dict[str, Any]) -> str:
    """Diagnosis for the message: a model answering one letter almost always is collapsed, not mis-scored."""
    counts = metrics.get("pred_counts") or {}
    total = sum(counts.values())
    if not total:
        return ""
    letter, n = max(counts.items(), key=lambda kv: kv[1])
    if n / total < ONE_ANSWER_SHARE:
        return ""
    return (f" (the model answers '{letter}' to {n / total:.0%} of questions: it has collapsed onto one letter;"
            " check training for divergence before blaming the scorer)")
