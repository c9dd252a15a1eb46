"""Execution Accuracy (EX) on Spider-format splits, with an error taxonomy and a gold sanity guard.

``mode="official"`` (default) follows the semantics of ``exec_eval.py`` in taoyds/test-suite-sql-eval, the
reference Spider EX, reimplemented here:

* both queries get ``> =``/``< =``/``! =`` joined and ``YEAR(CURDATE())`` replaced; ``DISTINCT`` is deleted from
  both (every occurrence, as officially) unless ``keep_distinct``;
* results are bags of rows; row order matters only when the (normalised) gold query contains ``order by``;
* a permutation of the predicted columns that makes the results equal counts as equal; candidate
  permutations are pruned by per-column value sets, as officially (here over all rows, deterministically);
* two empty results are equal whatever their columns.

``mode="simple"`` is the seed study's comparison: the raw queries, results compared as bags of rows, no column
permutation, no DISTINCT removal, no ORDER BY sensitivity.

Gold results are computed once per (database, normalised gold SQL) and cached (in memory; optionally pickled).

A prediction is untrusted: it is normalised, executed *and compared with the gold result inside a sandbox
worker*, which sends back only the verdict, so the parent's memory does not grow with what predictions return.
Each verdict is appended to ``results.partial.jsonl`` as it arrives (an interrupted evaluation resumes from it);
``results.jsonl`` is then streamed to a temp file and renamed, ``metrics.json`` written atomically, and one process
at a time writes an output folder (``sqlshift.outputs``).
"""

from __future__ import annotations

import dataclasses
import math
import pickle
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot.tokens import TokenType

from sqlshift.data.spider import SpiderSplit
from sqlshift.errors import ConfigError, DataError
from sqlshift.sql.hardness import LEVELS, example_hardness
from sqlshift.sql.prediction_files import read_predictions  # noqa: F401  (public here since the start)
from sqlshift.stats import accuracy_summary
from sqlshift.sql.verdict_log import VerdictLog
from sqlshift.outputs import append_jsonl, atomic_jsonl, atomic_write_bytes, atomic_write_json, exclusive_output
from sqlshift.sql.sandbox import DEFAULT_TIMEOUT_S, ExecResult, Limits, SqlSandbox
from sqlshift.sql.worker import MAX_TIMEOUT_S, precheck_sql, run_query, short_message

MODES = ("official", "simple")
PARTIAL_NAME = "results.partial.jsonl"  # verdicts saved as they arrive, until results.jsonl is written
ERROR_TYPES = ("correct", "wrong_result", "syntax_error", "unknown_table", "unknown_column", "timeout",
               "resource_limit", "engine_error", "forbidden", "empty_prediction", "gold_error")

Row = tuple[Any, ...]

# ----------------------------------------------------------------------------------------------------------
# query normalisation (official)
# ----------------------------------------------------------------------------------------------------------

_CUR_YEAR = re.compile(r"YEAR\s*\(\s*CURDATE\s*\(\s*\)\s*\)\s*", re.IGNORECASE)


def postprocess(sql: str) -> str:
    """Official fix-ups that only undo tokenisation artefacts (``> =`` -> ``>=``) and MySQL's current year."""
    sql = sql.replace("> =", ">=").replace("< =", "<=").replace("! =", "!=")
    return _CUR_YEAR.sub("2020", sql)


def remove_distinct(sql: str) -> str:
    """Delete every DISTINCT keyword token (not inside strings/identifiers), as the official evaluator does.

    ``IS [NOT] DISTINCT FROM`` is kept: deleting it there would only turn a valid query into a syntax error.
    """
    try:
        tokens = sqlglot.tokenize(sql, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return sql
    spans = [(t.start, t.end + 1) for k, t in enumerate(tokens) if t.token_type == TokenType.DISTINCT
             and not (k > 0 and tokens[k - 1].token_type in (TokenType.IS, TokenType.NOT))]
    for start, end in reversed(spans):
        sql = sql[:start] + sql[end:]
    return sql


def normalise(sql: str, mode: str = "official", keep_distinct: bool = False) -> str:
    """The query text that is actually executed for ``mode``."""
    sql = (sql or "").strip()
    if mode == "simple":
        return sql
    sql = postprocess(sql)
    return sql if keep_distinct else remove_distinct(sql)


def order_matters(normalised_gold: str) -> bool:
    """Official rule: row order counts iff the gold query mentions ``order by`` anywhere."""
    return "order by" in normalised_gold.lower()


# ----------------------------------------------------------------------------------------------------------
# result comparison
# ----------------------------------------------------------------------------------------------------------


def _unordered(row: Row) -> Row:
    # the official sort key: str(value) + str(type(value)) keeps mixed types comparable
    return tuple(sorted(row, key=lambda v: str(v) + str(type(v))))


def _quick_check(gold: Sequence[Row], pred: Sequence[Row], ordered: bool) -> bool:
    """Necessary condition (official ``quick_rej``): same rows once each row's values are sorted."""
    g = [_unordered(r) for r in gold]
    p = [_unordered(r) for r in pred]
    return g == p if ordered else set(g) == set(p)


def _column_permutations(gold: Sequence[Row], pred: Sequence[Row]) -> Iterator[tuple[int, ...]]:
    """Injective maps gold column -> pred column whose pred values all occur in that gold column.

    Pred columns with identical contents are interchangeable, so only one of them is tried at each position.
    """
    ncols = len(gold[0])
    gold_sets = [{r[i] for r in gold} for i in range(ncols)]
    pred_cols = [tuple(r[j] for r in pred) for j in range(ncols)]
    cands = [[j for j in range(ncols) if set(pred_cols[j]) <= gold_sets[i]] for i in range(ncols)]
    used = [False] * ncols
    perm: list[int] = []

    def extend(i: int) -> Iterator[tuple[int, ...]]:
        if i == ncols:
            yield tuple(perm)
            return
        tried: set[tuple[Any, ...]] = set()
        for j in cands[i]:
            if used[j] or pred_cols[j] in tried:
                continue
            tried.add(pred_cols[j])
            used[j] = True
            perm.append(j)
            yield from extend(i + 1)
            perm.pop()
            used[j] = False

    yield from extend(0)


class CompareTimeout(Exception):
    """Comparing two results ran past the query's deadline (many candidate column permutations)."""


def results_equal_official(gold: Sequence[Row], pred: Sequence[Row], ordered: bool,
                           deadline: float | None = None) -> bool:
    """Official denotation equality: bag (or list when ``ordered``) equality up to a column permutation.

    ``deadline`` (``time.monotonic()``) bounds the permutation search: past it, CompareTimeout.
    """
    if not gold and not pred:
        return True
    if len(gold) != len(pred) or len(gold[0]) != len(pred[0]):
        return False
    if not _quick_check(gold, pred, ordered):
        return False
    gold_bag = None if ordered else Counter(gold)
    gold_list = list(gold)
    for perm in _column_permutations(gold, pred):
        if deadline is not None and time.monotonic() > deadline:
            raise CompareTimeout
        permuted = [tuple(r[j] for j in perm) for r in pred]
        if (permuted == gold_list) if ordered else (Counter(permuted) == gold_bag):
            return True
    return False


def results_equal_simple(gold: Sequence[Row], pred: Sequence[Row]) -> bool:
    """Seed-study equality: the same bag of rows, columns in the same order."""
    return Counter(gold) == Counter(pred)


def results_equal(gold: Sequence[Row], pred: Sequence[Row], *, mode: str = "official", ordered: bool = False,
                  deadline: float | None = None) -> bool:
    """Compare two results under ``mode``."""
    if mode == "simple":
        return results_equal_simple(gold, pred)
    return results_equal_official(gold, pred, ordered, deadline)


# ----------------------------------------------------------------------------------------------------------
# gold cache and per-example judging
# ----------------------------------------------------------------------------------------------------------


class GoldCache:
    """Gold results keyed by (database path, executed gold SQL); pickled to ``path`` on :meth:`save`."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self._data: dict[tuple[str, str], ExecResult] = {}
        if self.path and self.path.is_file():
            with self.path.open("rb") as f:
                self._data = pickle.load(f)

    def get(self, db_path: str, sql: str) -> ExecResult | None:
        return self._data.get((db_path, sql))

    def put(self, db_path: str, sql: str, result: ExecResult) -> None:
        if result.ok:  # failures may be transient (timeouts under load): never cache them
            self._data[(db_path, sql)] = result

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()

    def save(self) -> None:
        if self.path:
            atomic_write_bytes(self.path, pickle.dumps(self._data))


#: process-wide cache, so evaluating many models against one split runs each gold query once
DEFAULT_GOLD_CACHE = GoldCache()


@dataclass
class Judgement:
    """Outcome of one (prediction, gold) pair."""

    correct: bool
    error_type: str
    error: str | None = None


@dataclass
class Pair:
    """One prediction to judge against one gold query on one database."""

    db_path: str
    pred_sql: str
    gold_sql: str


def _describe(rows: Sequence[Row]) -> str:
    return f"{len(rows)} rows x {len(rows[0]) if rows else 0} cols"


def judge(gold: ExecResult, pred: ExecResult | None, *, mode: str, ordered: bool,
          deadline: float | None = None) -> Judgement:
    """Turn the two execution verdicts into the taxonomy (gold failures first: they are excluded from n)."""
    if not gold.ok:
        return Judgement(False, "gold_error", f"{gold.error_type}: {gold.message}")
    if pred is None:
        return Judgement(False, "empty_prediction", "empty SQL")
    if not pred.ok:
        return Judgement(False, pred.error_type or "syntax_error", pred.message)
    try:
        equal = results_equal(gold.rows or [], pred.rows or [], mode=mode, ordered=ordered, deadline=deadline)
    except CompareTimeout:
        return Judgement(False, "timeout", "comparing the results exceeded the query's time limit")
    except MemoryError:
        return Judgement(False, "resource_limit", "comparing the results ran out of memory")
    if equal:
        return Judgement(True, "correct", None)
    return Judgement(False, "wrong_result",
                     f"gold {_describe(gold.rows or [])}, predicted {_describe(pred.rows or [])}")


def judge_in_worker(db_path: str, pred_sql: str, gold: ExecResult, mode: str, keep_distinct: bool, ordered: bool,
                    limits: Limits) -> Judgement:
    """Sandbox job: normalise, execute and compare one prediction; only the small verdict goes back.

    Runs in a bounded worker, so a huge or pathological prediction costs the worker's time and memory caps, and
    its result rows never reach the parent.
    """
    start = time.monotonic()
    pred = run_query(db_path, normalise(pred_sql, mode, keep_distinct), limits)
    return judge(gold, pred, mode=mode, ordered=ordered, deadline=start + limits.timeout_s)


def _failed_judgement(error_type: str, message: str) -> Judgement:
    return Judgement(False, error_type, short_message(message))


def judge_pairs(pairs: Sequence[Pair], sandbox: SqlSandbox, *, mode: str = "official", keep_distinct: bool = False,
                gold_cache: GoldCache | None = None, progress: bool = False,
                on_verdict: Callable[[int, Judgement], None] | None = None) -> list[Judgement]:
    """Execute golds (uncached only), then judge each prediction in a worker against its gold result.

    Predictions whose gold failed are not run (``gold_error``); empty or over-long ones are judged here.
    ``on_verdict(i, verdict)`` hears each worker verdict as it arrives (pair index ``i``), so it can be saved.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    cache = DEFAULT_GOLD_CACHE if gold_cache is None else gold_cache
    golds = [normalise(p.gold_sql, mode, keep_distinct) for p in pairs]  # trusted text: normalised here
    gold_jobs = list(dict.fromkeys((p.db_path, g) for p, g in zip(pairs, golds) if cache.get(p.db_path, g) is None))
    fresh_gold = dict(zip(gold_jobs, sandbox.execute_many(gold_jobs, progress=progress, desc="gold")))
    for (db, sql), res in fresh_gold.items():
        cache.put(db, sql, res)
    out: list[Judgement | None] = [None] * len(pairs)
    todo: list[int] = []
    jobs: list[tuple[Any, ...]] = []
    limits = sandbox.limits
    for i, (p, g) in enumerate(zip(pairs, golds)):
        gold = cache.get(p.db_path, g) or fresh_gold[(p.db_path, g)]
        early = precheck_sql(p.pred_sql)
        if not gold.ok or early is not None:
            out[i] = judge(gold, early, mode=mode, ordered=False)
            continue
        todo.append(i)
        jobs.append((p.db_path, p.pred_sql, gold, mode, keep_distinct, mode == "official" and order_matters(g),
                     limits))
    heard = None if on_verdict is None else (lambda k, v: on_verdict(todo[k], v))
    for i, verdict in zip(todo, sandbox.run_jobs(judge_in_worker, jobs, _failed_judgement, progress=progress,
                                                  desc="EX", on_result=heard)):
        out[i] = verdict
    return out  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------------------
# split evaluation
# ----------------------------------------------------------------------------------------------------------


def _pred_sql(pred: Mapping[str, Any] | str | None, index: int | None = None) -> str:
    """The SQL of a prediction (a dict with ``sql``, or the SQL itself); a non-string is bad input."""
    if pred is None:
        return ""
    sql = pred if isinstance(pred, str) else pred.get("sql")
    if sql is None:
        return ""
    if not isinstance(sql, str):
        raise DataError(f"prediction {index}: 'sql' is {type(sql).__name__}, not a string",
                        "give each prediction its SQL as a string")
    return sql


def _check_coverage(split: SpiderSplit, predictions: Mapping[int, Any]) -> None:
    """Every evaluable example needs a prediction; predictions must name examples of this split."""
    known = {e.index for e in split.examples} | {e.index for e in split.skipped}
    unknown = sorted(set(predictions) - known)
    if unknown:
        raise DataError(f"{len(unknown)} predictions have indices not in split '{split.name}' "
                        f"(first: {unknown[:5]})", "predict on the same split you evaluate")
    missing = [e.index for e in split.examples if e.index not in predictions]
    if missing:
        raise DataError(f"{len(missing)} of {len(split.examples)} evaluable examples of '{split.name}' have no "
                        f"prediction (first indices: {missing[:5]})",
                        "finish or resume generation, or evaluate the split the predictions were made on")


def generation_summary(split: SpiderSplit, predictions: Mapping[int, Any]) -> dict[str, int] | None:
    """Generation health over evaluated examples, when predictions carry ``hit_limit`` / ``extraction``."""
    preds = [predictions[e.index] for e in split.examples]
    carrying = [p for p in preds if isinstance(p, Mapping) and ("hit_limit" in p or "extraction" in p)]
    if not carrying:
        return None
    return {
        "n": len(carrying),
        "hit_limit": sum(bool(p.get("hit_limit")) for p in carrying),
        "multi_line_extraction": sum("extraction" in p and p["extraction"] != "first_line" for p in carrying),
        "empty": sum(not _pred_sql(p).strip() for p in carrying),
    }


def _metrics(split: SpiderSplit, rows: list[dict[str, Any]], mode: str,
             generation: dict[str, int] | None) -> dict[str, Any]:
    scored = [r for r in rows if r["error_type"] != "gold_error"]
    summary = accuracy_summary([r["correct"] for r in scored])
    by_hardness: dict[str, Any] = {}
    for level in [*LEVELS, *sorted({r["hardness"] for r in scored} - set(LEVELS))]:
        sub = [r["correct"] for r in scored if r["hardness"] == level]
        if sub:
            by_hardness[level] = accuracy_summary(sub)
    gold_failed = [r["index"] for r in rows if r["error_type"] == "gold_error"]
    counts = Counter(r["error_type"] for r in rows)
    metrics: dict[str, Any] = {
        "metric": "execution_accuracy", "split": split.name, "mode": mode,
        "execution_accuracy": summary["accuracy"], "n": summary["n"], "n_correct": summary["n_correct"],
        "ci95": summary["ci95"], "n_skipped": len(split.skipped), "skip_reasons": dict(split.skip_reasons),
        "n_gold_failed": len(gold_failed), "gold_failed": gold_failed, "by_hardness": by_hardness,
        "by_error_type": {t: counts[t] for t in ERROR_TYPES if counts[t]},
    }
    if generation is not None:
        metrics["generation"] = generation
    return metrics


def check_timeout(timeout_s: Any) -> float:
    """The per-query timeout: a positive number of seconds up to MAX_TIMEOUT_S (0, NaN, inf, 1e8 are refused)."""
    try:
        value = float(timeout_s)
    except (TypeError, ValueError, OverflowError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"timeout {timeout_s!r} is not a positive number of seconds",
                          "pass --timeout with a value > 0, e.g. --timeout 30")
    if value > MAX_TIMEOUT_S:
        raise ConfigError(f"timeout {value:g} s is over the {MAX_TIMEOUT_S:g}-second (one day) limit per query",
                          "pass --timeout with a value up to 86400, e.g. --timeout 30")
    return value


def evaluate_split(split: SpiderSplit, predictions: Mapping[int, Mapping[str, Any] | str], out_dir: str | Path, *,
                   mode: str = "official", keep_distinct: bool = False, timeout_s: float = DEFAULT_TIMEOUT_S,
                   workers: int | None = None, sandbox: SqlSandbox | None = None,
                   gold_cache: GoldCache | None = None, progress: bool = True) -> dict[str, Any]:
    """Score ``predictions`` (index -> prediction dict or SQL) on ``split``; write results.jsonl + metrics.json.

    Predictions for skipped examples (missing database) are ignored; evaluable examples without one raise.
    ``out_dir`` is checked and locked (one writer) before any query runs; both files are replaced atomically,
    so an interrupted evaluation leaves the previous ones whole.
    """
    if mode not in MODES:
        raise DataError(f"unknown EX mode '{mode}'", f"use one of {', '.join(MODES)}")
    timeout_s = check_timeout(timeout_s)
    with exclusive_output(out_dir, "sqlshift EX evaluation") as out:
        _check_coverage(split, predictions)
        examples = split.examples
        pairs = [Pair(str(split.db_path(e.db_id)), _pred_sql(predictions[e.index], e.index), e.query)
                 for e in examples]
        own = sandbox is None
        sb = SqlSandbox(timeout_s=timeout_s, workers=workers) if own else sandbox
        saved = VerdictLog(out / PARTIAL_NAME, [mode, keep_distinct, *dataclasses.astuple(sb.limits)])
        try:
            keys = [saved.key(p.db_path, p.pred_sql, p.gold_sql) for p in pairs]
            todo = [i for i, k in enumerate(keys) if k not in saved.rows]
            with saved.appending() as keep:
                fresh = judge_pairs([pairs[i] for i in todo], sb, mode=mode, keep_distinct=keep_distinct,
                                    gold_cache=gold_cache, progress=progress,
                                    on_verdict=lambda k, v: keep(keys[todo[k]], dataclasses.asdict(v)))
        finally:
            if own:
                sb.close()
        verdicts: list[Judgement | None] = [_saved_judgement(saved.rows.get(k)) for k in keys]
        for i, v in zip(todo, fresh):
            verdicts[i] = v
        if gold_cache is not None:
            gold_cache.save()
        tallies = _write_results(out / "results.jsonl", examples, pairs, verdicts)  # type: ignore[arg-type]
        metrics = _metrics(split, tallies, mode, generation_summary(split, predictions))
        atomic_write_json(out / "metrics.json", metrics)
        saved.remove()
    return metrics


def _saved_judgement(row: Mapping[str, Any] | None) -> Judgement | None:
    if row is None:
        return None
    return Judgement(bool(row.get("correct")), str(row.get("error_type")), row.get("error"))


def _write_results(path: Path, examples: Sequence[Any], pairs: Sequence[Pair],
                   verdicts: Sequence[Judgement]) -> list[dict[str, Any]]:
    """Stream one results.jsonl row per example (temp file + rename); keep only what the metrics need."""
    tallies: list[dict[str, Any]] = []
    with atomic_jsonl(path) as f:
        for e, p, v in zip(examples, pairs, verdicts):
            row = _result_row(e, p, v)
            append_jsonl(f, row)
            tallies.append({k: row[k] for k in ("index", "hardness", "correct", "error_type")})
    return tallies


def _result_row(example: Any, pair: Pair, verdict: Judgement) -> dict[str, Any]:
    return {"id": str(example.index), "index": example.index, "db_id": example.db_id, "question": example.question,
            "hardness": example_hardness(example), "correct": verdict.correct, "error_type": verdict.error_type,
            "error": verdict.error, "pred_sql": pair.pred_sql, "gold_sql": example.query}
