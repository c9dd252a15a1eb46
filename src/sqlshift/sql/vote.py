"""Execution-guided decoding: a vote over the execution results of several SQL candidates for one question.

The rule (candidate 0 is the greedy answer, 1..n the samples):

* every candidate is normalised as the EX metric normalises a prediction (:func:`sqlshift.sql.execution.normalise`)
  and executed in the sandbox (textually equal candidates run once); one that fails (error, timeout, limit, empty)
  gets no vote;
* candidates are grouped by result with the EX comparison itself (:func:`results_equal`: bags of rows up to a column
  permutation, two empty results equal), against each group's first member; row order counts when either query
  of the pair has ``ORDER BY``. The gold query is never looked at: its ``ORDER BY`` decides EX's comparison, but a
  vote that read it would use the answer key;
* the largest group wins; among equally large groups the one holding the greedy answer, else the one whose first
  member came first; the voted SQL is the winning group's first member (the greedy SQL when it is in that group);
* when no candidate executes, the greedy answer stands.

The whole vote of one question runs inside one sandbox worker (result rows never reach the parent) within one
query timeout in total: candidates left when it is spent count as timed out.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from sqlshift.sql.execution import CompareTimeout, normalise, order_matters, results_equal
from sqlshift.sql.sandbox import SqlSandbox
from sqlshift.sql.worker import ExecResult, Limits, run_query, short_message

GREEDY = 0  # the greedy answer's index among the candidates


@dataclasses.dataclass
class Vote:
    """One question's vote: the chosen candidate, the groups of equal results (candidate indices, in order of first
    appearance), the candidates that did not execute, and which part of the rule decided."""

    chosen: int
    groups: list[list[int]]
    failed: list[int]
    rule: str  # majority | tie_greedy | tie_first | no_result | vote_failed
    error: str | None = None

    def record(self) -> dict[str, Any]:
        """What results.jsonl keeps: the chosen index, the counts per distinct result, the failures."""
        rec = {"chosen": self.chosen, "counts": [len(g) for g in self.groups], "groups": self.groups,
               "failed": len(self.failed), "failed_idx": self.failed, "rule": self.rule}
        return rec | ({"error": self.error} if self.error else {})


@dataclasses.dataclass
class Executed:
    """A group's representative: its first member's index, executed text and rows."""

    index: int
    sql: str
    rows: list[tuple[Any, ...]]


def same_result(a: Executed, b: Executed, mode: str, deadline: float) -> bool:
    """EX's equality between two candidates' results; order counts when either query orders its rows."""
    ordered = mode == "official" and (order_matters(a.sql) or order_matters(b.sql))
    try:
        return results_equal(a.rows, b.rows, mode=mode, ordered=ordered, deadline=deadline)
    except (CompareTimeout, MemoryError):
        return False


def choose(groups: Sequence[Sequence[int]]) -> tuple[int, str]:
    """(chosen candidate, rule) from the groups: the largest; a tie goes to greedy's group, else the earliest."""
    if not groups:
        return GREEDY, "no_result"
    top = max(len(g) for g in groups)
    tied = [g for g in groups if len(g) == top]
    if len(tied) == 1:
        return tied[0][0], "majority"
    greedy = [g for g in tied if GREEDY in g]
    if greedy:
        return GREEDY, "tie_greedy"
    return min(g[0] for g in tied), "tie_first"


def group_candidates(db_path: str, sqls: Sequence[str], mode: str, keep_distinct: bool,
                     limits: Limits) -> tuple[list[list[int]], list[int]]:
    """(groups, failed) of the candidates: each executed once per distinct text, within one timeout in total."""
    deadline = time.monotonic() + limits.timeout_s
    reps: list[Executed] = []
    groups: list[list[int]] = []
    failed: list[int] = []
    seen: dict[str, int | None] = {}  # executed text -> its group (None: it failed)
    for i, sql in enumerate(sqls):
        text = normalise(sql, mode, keep_distinct)
        if text not in seen:
            seen[text] = place(db_path, text, i, reps, groups, mode, limits, deadline)
        if seen[text] is None:
            failed.append(i)
        elif i not in groups[seen[text]]:
            groups[seen[text]].append(i)
    return groups, failed


def place(db_path: str, text: str, i: int, reps: list[Executed], groups: list[list[int]], mode: str,
          limits: Limits, deadline: float) -> int | None:
    """Execute candidate ``i`` and put it in the first group whose result equals its own (a new group if none);
    its group's index, or None when it did not execute."""
    left = deadline - time.monotonic()
    if left <= 0:
        return None
    res: ExecResult = run_query(db_path, text, dataclasses.replace(limits, timeout_s=left))
    if not res.ok:
        return None
    me = Executed(i, text, res.rows or [])
    for k, rep in enumerate(reps):
        if same_result(rep, me, mode, deadline):
            groups[k].append(i)
            return k
    reps.append(me)
    groups.append([i])
    return len(groups) - 1


def vote_in_worker(db_path: str, sqls: Sequence[str], mode: str, keep_distinct: bool, limits: Limits) -> Vote:
    """Sandbox job: the vote of one question (only the small verdict goes back to the parent)."""
    groups, failed = group_candidates(db_path, sqls, mode, keep_distinct, limits)
    chosen, rule = choose(groups)
    return Vote(chosen, groups, failed, rule)


def vote_failed(error_type: str, message: str) -> Vote:
    """The vote of a question whose worker crashed or hung: the greedy answer stands."""
    return Vote(GREEDY, [], [], "vote_failed", short_message(f"{error_type}: {message}"))


def vote_many(questions: Sequence[tuple[str, Sequence[str]]], sandbox: SqlSandbox, *, mode: str = "official",
              keep_distinct: bool = False, progress: bool = False) -> list[Vote]:
    """The vote of each (database path, candidate SQLs), in order, one sandbox job per question."""
    jobs = [(str(db), list(sqls), mode, keep_distinct, sandbox.limits) for db, sqls in questions]
    return sandbox.run_jobs(vote_in_worker, jobs, vote_failed, progress=progress, desc="vote")
