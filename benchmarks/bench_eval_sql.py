"""Benchmark EX on Spider dev: golds-as-predictions and a perturbed set, cold and with gold results cached.

    SQLSHIFT_DATA_DIR=/path/to/data python benchmarks/bench_eval_sql.py [--workers N] [--mode official|simple]

Prints examples/s and wall time for each setting, and the EX / error types of the perturbed set.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlglot
from sqlglot import exp

from sqlshift.data.spider import SpiderSplit, load_spider
from sqlshift.sql.execution import GoldCache, evaluate_split
from sqlshift.sql.sandbox import SqlSandbox


def _drop(key: str) -> Callable[[exp.Expression], bool]:
    def edit(tree: exp.Expression) -> bool:
        if tree.args.get(key) is None:
            return False
        tree.set(key, None)
        return True
    return edit


def _flip_order(tree: exp.Expression) -> bool:
    ordered = list(tree.find_all(exp.Ordered))
    for o in ordered:
        o.set("desc", not o.args.get("desc"))
    return bool(ordered)


def _reverse_select(tree: exp.Expression) -> bool:
    sel = tree if isinstance(tree, exp.Select) else tree.find(exp.Select)
    if sel is None or len(sel.expressions) < 2:
        return False
    sel.set("expressions", list(reversed(sel.expressions)))
    return True


def _typo_column(tree: exp.Expression) -> bool:
    col = tree.find(exp.Column)
    if col is None:
        return False
    col.set("this", exp.to_identifier(col.name + "_x"))
    return True


def _typo_table(tree: exp.Expression) -> bool:
    table = tree.find(exp.Table)
    if table is None:
        return False
    table.set("this", exp.to_identifier(table.name + "s_x"))
    return True


def _add_distinct(tree: exp.Expression) -> bool:
    sel = tree if isinstance(tree, exp.Select) else tree.find(exp.Select)
    if sel is None:
        return False
    sel.set("distinct", exp.Distinct())
    return True


EDITS: dict[str, Callable[[exp.Expression], bool]] = {
    "drop_where": _drop("where"), "drop_limit": _drop("limit"), "drop_group": _drop("group"),
    "flip_order": _flip_order, "reverse_select": _reverse_select, "typo_column": _typo_column,
    "typo_table": _typo_table, "add_distinct": _add_distinct,
}


def perturb(sql: str, rng: random.Random) -> tuple[str, str]:
    """One random applicable clause edit (sqlglot), else a string edit; returns (sql, edit name)."""
    names = list(EDITS)
    rng.shuffle(names)
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
        for name in names:
            candidate = tree.copy()
            if EDITS[name](candidate):
                return candidate.sql(dialect="sqlite"), name
    except sqlglot.errors.SqlglotError:
        pass
    return sql.replace("=", "!=", 1) if "=" in sql else sql + " LIMIT 0", "string_edit"


def timed(split: SpiderSplit, preds: dict[int, dict], cache: GoldCache, workers: int | None, mode: str,
          sandbox: SqlSandbox | None = None) -> tuple[dict, float]:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        metrics = evaluate_split(split, preds, Path(out), mode=mode, workers=workers, sandbox=sandbox,
                                 gold_cache=cache, progress=False)
        return metrics, time.perf_counter() - start


def report(label: str, metrics: dict, wall: float) -> None:
    n = metrics["n"] + metrics["n_gold_failed"]
    print(f"{label:<34} EX {metrics['execution_accuracy']:.3f} ({metrics['n_correct']}/{metrics['n']})  "
          f"wall {wall:6.2f} s  {n / wall:7.1f} examples/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("SQLSHIFT_DATA_DIR"), help="folder holding spider/")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--mode", default="official", choices=["official", "simple"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not args.data_dir:
        raise SystemExit("set SQLSHIFT_DATA_DIR or pass --data-dir")
    split = load_spider(args.data_dir, "dev")
    print(split.skip_summary())
    golds = {e.index: {"index": e.index, "sql": e.query} for e in split.examples}
    rng = random.Random(args.seed)
    perturbed, edits = {}, {}
    for e in split.examples:
        sql, name = perturb(e.query, rng)
        perturbed[e.index] = {"index": e.index, "sql": sql}
        edits[name] = edits.get(name, 0) + 1
    print("perturbations:", ", ".join(f"{k} {v}" for k, v in sorted(edits.items())))

    cache = GoldCache()
    report("gold-as-pred, cold (pool + golds)", *timed(split, golds, cache, args.workers, args.mode))
    report("gold-as-pred, gold cached", *timed(split, golds, cache, args.workers, args.mode))
    cold = GoldCache()
    m, wall = timed(split, perturbed, cold, args.workers, args.mode)
    report("perturbed, cold", m, wall)
    with SqlSandbox(workers=args.workers) as sb:  # a warm pool too: what a runner evaluating many models sees
        timed(split, perturbed, cold, args.workers, args.mode, sb)
        m, wall = timed(split, perturbed, cold, args.workers, args.mode, sb)
    report("perturbed, gold cached, warm pool", m, wall)
    print("perturbed error types:", ", ".join(f"{k} {v}" for k, v in m["by_error_type"].items()))
    print("perturbed EX by hardness:",
          ", ".join(f"{h} {s['accuracy']:.3f} (n={s['n']})" for h, s in m["by_hardness"].items()))


if __name__ == "__main__":
    main()
