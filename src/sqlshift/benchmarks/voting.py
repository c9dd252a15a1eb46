"""Execution-guided decoding for the Spider benchmark: its ``decoding:`` settings, the samples and their vote, the
paired greedy/voted fields of each results row and of ``metrics.json``. The vote rule: :mod:`sqlshift.sql.vote`.

A voting benchmark scores the voted SQL (``correct``, ``pred_sql``: what its setting asks for) and keeps the greedy
answer's verdict beside it in every row, so greedy and voted are paired by construction (same questions, same
greedy generation, same sandbox).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from sqlshift.lm.api import LM, GenerateRequest, Sampling
from sqlshift.strict import Strict


class DecodingSettings(Strict):
    """Greedy alone (samples: 0), or greedy plus `samples` seeded samples and a vote over their execution results.

    The rule: :mod:`sqlshift.sql.vote` and docs/DESIGN.md, "Execution-guided decoding"."""

    samples: int = Field(0, ge=0, le=64)  # sampled answers per question beside the greedy one; 0: greedy only
    temperature: float = Field(0.7, gt=0, le=2)  # sampling temperature
    top_p: float = Field(1.0, gt=0, le=1)  # nucleus sampling (1: off); top-k is always off
    seed: int = 0  # the same seed draws the same samples

    @property
    def voting(self) -> bool:
        return self.samples > 0

    def sampling(self) -> Sampling:
        return Sampling(n=self.samples, temperature=self.temperature, top_p=self.top_p, seed=self.seed)


@dataclasses.dataclass
class Candidates:
    """A chunk's samples (extracted SQL per question), their votes and the seconds each stage took."""

    samples: list[list[str]]
    votes: list[Any]
    seconds: dict[str, float]

    def voted(self, i: int, greedy_sql: str) -> str:
        """Question ``i``'s voted SQL (candidate 0 is the greedy one)."""
        return [greedy_sql, *self.samples[i]][self.votes[i].chosen]


def sample_and_vote(lm: LM, requests: Sequence[GenerateRequest], dbs: Sequence[str], greedy: Sequence[str],
                    decoding: DecodingSettings, sandbox: Any, mode: str, batch_size: int, desc: str) -> Candidates:
    """Draw the samples of every request in one LM call, then vote per question in the sandbox."""
    from sqlshift.sql.extract import extract_sql
    from sqlshift.sql.vote import vote_many

    t0 = time.monotonic()
    gens = lm.sample(requests, decoding.sampling(), batch_size=batch_size, desc=f"sample {desc}")
    t1 = time.monotonic()
    samples = [[extract_sql(g.text)[0] for g in per] for per in gens]
    votes = vote_many([(db, [g, *s]) for db, g, s in zip(dbs, greedy, samples)], sandbox, mode=mode)
    return Candidates(samples, votes, {"sample": t1 - t0, "vote": time.monotonic() - t1})


def judge_candidates(dbs: Sequence[str], golds: Sequence[str], candidates: Sequence[Sequence[str]], sandbox: Any,
                     mode: str) -> list[dict[str, Any]]:
    """EX verdict of every distinct candidate SQL per question (greedy and samples), after the vote: the voted
    SQL's verdict is its score, the greedy one's the pair, and the samples' say whether any candidate was right
    (the ceiling of any rule that picks among them). The vote itself never sees these verdicts."""
    from sqlshift.sql.execution import Pair, judge_pairs

    keys = [(i, sql) for i, cands in enumerate(candidates) for sql in dict.fromkeys(cands)]
    verdicts = judge_pairs([Pair(dbs[i], sql, golds[i]) for i, sql in keys], sandbox, mode=mode)
    out: list[dict[str, Any]] = [{} for _ in candidates]
    for (i, sql), v in zip(keys, verdicts):
        out[i][sql] = v
    return out


def paired_fields(greedy_sql: str, greedy_verdict: Any, samples: list[str], vote: Any, seconds: dict[str, float],
                  samples_correct: list[bool]) -> dict[str, Any]:
    """The row's greedy answer and verdict, the samples and theirs, the vote and this question's share of the
    seconds."""
    return {"greedy_sql": greedy_sql, "greedy_correct": greedy_verdict.correct,
            "greedy_error_type": greedy_verdict.error_type, "greedy_error": greedy_verdict.error,
            "samples": samples, "samples_correct": samples_correct, "vote": vote.record(),
            "seconds": {k: round(v, 4) for k, v in seconds.items()}}


def ceiling(scored: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """How often any candidate (greedy or a sample) was right, and the mean EX of one sample alone; None for rows
    written before samples were judged."""
    from sqlshift.stats import accuracy_summary

    if not scored or not all(isinstance(r.get("samples_correct"), list) for r in scored):
        return None
    per_sample = [c for r in scored for c in r["samples_correct"]]
    return {**accuracy_summary([bool(r["greedy_correct"]) or any(r["samples_correct"]) for r in scored]),
            "mean_sample_accuracy": sum(per_sample) / len(per_sample) if per_sample else None}


def vote_summary(rows: Sequence[dict[str, Any]], scored: Sequence[dict[str, Any]],
                 decoding: DecodingSettings) -> dict[str, Any]:
    """metrics.json fields of a voting benchmark: the greedy EX beside the voted one, the paired test, how the
    votes went and the seconds each stage took (summed over rows, so a resumed run counts every chunk)."""
    from sqlshift.benchmarks.common import accuracy_metrics
    from sqlshift.stats import mcnemar

    greedy = accuracy_metrics(scored, key="greedy_correct")
    paired = mcnemar([bool(r["correct"]) for r in scored], [bool(r["greedy_correct"]) for r in scored])
    votes = [r["vote"] for r in rows]
    seconds = Counter[str]()
    for r in rows:
        seconds.update(r.get("seconds") or {})
    return {"decoding": decoding.model_dump(), "greedy_accuracy": greedy["accuracy"], "greedy": greedy,
            "vote": {"paired": {"voted_only": paired["a_only"], "greedy_only": paired["b_only"],
                                "p_value": paired["p_value"]},
                     "n_changed": sum(r["pred_sql"] != r["greedy_sql"] for r in rows),
                     "rules": dict(Counter(v["rule"] for v in votes)),
                     "mean_failed": sum(v["failed"] for v in votes) / len(votes) if votes else None,
                     "mean_distinct_results": sum(len(v["counts"]) for v in votes) / len(votes) if votes else None,
                     "any_candidate": ceiling(scored)},
            "seconds": {k: round(v, 2) for k, v in seconds.items()}}
