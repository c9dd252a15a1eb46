"""Spider hardness levels (easy / medium / hard / extra), by the official component-counting rules.

The rules are those of ``evaluation.py`` in the Spider / test-suite-sql-eval repositories
(``count_component1``, ``count_component2``, ``count_others``, ``eval_hardness``), reimplemented:

* from the official parsed ``sql`` dict when an example carries one (Spider ``dev.json`` does);
* otherwise from the SQL text, with a sqlglot parse whose counts mirror the same rules, quirks included
  (e.g. the official code counts HAVING's AND/OR connectors and WHERE's ``NOT`` flags as "aggregations").

Only the top-level query is counted, as officially: a subquery or a set operation adds one "nested" component.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp

LEVELS = ("easy", "medium", "hard", "extra")
UNKNOWN = "unknown"  # SQL text that sqlglot cannot parse

_WHERE_OPS = ("not", "between", "=", ">", "<", ">=", "<=", "!=", "in", "like", "is", "exists")
_LIKE = _WHERE_OPS.index("like")
_AGGS = (exp.Max, exp.Min, exp.Count, exp.Sum, exp.Avg)
_ARITH = (exp.Add, exp.Sub, exp.Mul, exp.Div)


@dataclass(frozen=True)
class Counts:
    """The three official counts that decide the level."""

    comp1: int  # WHERE, GROUP BY, ORDER BY, LIMIT, joins, ORs, LIKEs
    comp2: int  # nested queries: subqueries in conditions and INTERSECT/UNION/EXCEPT
    others: int  # >1 aggregation, >1 select column, >1 where condition, >1 group-by column


def level_from_counts(c: Counts) -> str:
    """The official decision table of ``eval_hardness``."""
    if c.comp1 <= 1 and c.others == 0 and c.comp2 == 0:
        return "easy"
    if (c.others <= 2 and c.comp1 <= 1 and c.comp2 == 0) or (c.comp1 <= 2 and c.others < 2 and c.comp2 == 0):
        return "medium"
    if ((c.others > 2 and c.comp1 <= 2 and c.comp2 == 0) or (2 < c.comp1 <= 3 and c.others <= 2 and c.comp2 == 0)
            or (c.comp1 <= 1 and c.others == 0 and c.comp2 <= 1)):
        return "hard"
    return "extra"


# ---------------------------------------------------------------------------------------------------------
# official parsed-dict path
# ---------------------------------------------------------------------------------------------------------


def _has_agg(unit: Any) -> bool:
    # official `has_agg`: unit[0] != 0. On a cond_unit that is its NOT flag; on an 'and'/'or' string its
    # first letter (always "true") -- the quirk is kept so that levels match the published ones.
    return unit[0] != 0


def _count_agg(units: Iterable[Any]) -> int:
    return sum(1 for u in units if _has_agg(u))


def counts_from_dict(sql: dict[str, Any]) -> Counts:
    """Official counts from a parsed Spider ``sql`` dict."""
    conds = sql["from"]["conds"][::2] + sql["where"][::2] + sql["having"][::2]
    connectors = sql["from"]["conds"][1::2] + sql["where"][1::2] + sql["having"][1::2]
    comp1 = sum(1 for k in ("where", "groupBy", "orderBy") if len(sql[k]) > 0)
    comp1 += sql["limit"] is not None
    comp1 += max(0, len(sql["from"]["table_units"]) - 1)
    comp1 += sum(1 for t in connectors if t == "or")
    comp1 += sum(1 for c in conds if c[1] == _LIKE)

    comp2 = sum(isinstance(c[3], dict) + isinstance(c[4], dict) for c in conds)
    comp2 += sum(sql[k] is not None for k in ("intersect", "except", "union"))

    agg = _count_agg(sql["select"][1]) + _count_agg(sql["where"][::2]) + _count_agg(sql["groupBy"])
    if len(sql["orderBy"]) > 0:
        val_units = sql["orderBy"][1]
        agg += _count_agg([u[1] for u in val_units if u[1]] + [u[2] for u in val_units if u[2]])
    agg += _count_agg(sql["having"])
    others = (agg > 1) + (len(sql["select"][1]) > 1) + (len(sql["where"]) > 1) + (len(sql["groupBy"]) > 1)
    return Counts(int(comp1), int(comp2), int(others))


# ---------------------------------------------------------------------------------------------------------
# sqlglot path (SQL text without a parsed dict)
# ---------------------------------------------------------------------------------------------------------


def _flatten(cond: exp.Expression | None) -> tuple[list[exp.Expression], list[str]]:
    """A condition as the official flat list: leaf conditions and their 'and'/'or' connectors."""
    if cond is None:
        return [], []
    if isinstance(cond, exp.Paren):
        return _flatten(cond.this)
    if isinstance(cond, (exp.And, exp.Or)):
        ll, lc = _flatten(cond.this)
        rl, rc = _flatten(cond.expression)
        return ll + rl, lc + ["and" if isinstance(cond, exp.And) else "or"] + rc
    return [cond], []


def _strip_not(leaf: exp.Expression) -> tuple[bool, exp.Expression]:
    if isinstance(leaf, exp.Not):
        return True, leaf.this
    return False, leaf


def _n_subquery_values(leaf: exp.Expression) -> int:
    """Subqueries used as a condition's value (official val1/val2 being a dict)."""
    _, inner = _strip_not(leaf)
    values = [v for k, v in inner.args.items() if k != "this" and isinstance(v, exp.Expression)]
    values += [v for v in inner.args.get("expressions") or [] if isinstance(v, exp.Expression)]
    n = sum(isinstance(v, (exp.Subquery, exp.Select)) for v in values)
    if isinstance(inner, exp.Exists):
        n += 1
    return n


def _is_agg(e: exp.Expression) -> bool:
    return isinstance(e, _AGGS)


def _leading_agg(e: exp.Expression) -> bool:
    """Official select units keep only the aggregation written first (``max(a) - min(b)`` -> max)."""
    while isinstance(e, (exp.Paren,) + _ARITH):
        e = e.this
    return _is_agg(e)


def _order_aggs(e: exp.Expression) -> int:
    """Order-by val_unit: the aggregations of its one or two column units."""
    if isinstance(e, exp.Paren):
        return _order_aggs(e.this)
    if isinstance(e, _ARITH):
        return int(_leading_agg(e.this)) + int(_leading_agg(e.expression))
    return int(_is_agg(e))


def _top_select(tree: exp.Expression) -> tuple[exp.Select | None, int]:
    """The query whose clauses are counted, and 1 if it heads a set operation (the official nesting)."""
    if isinstance(tree, exp.SetOperation):
        left = tree
        while isinstance(left, exp.SetOperation):
            left = left.this
        inner, _ = _top_select(left)
        return inner, 1
    if isinstance(tree, exp.Subquery):
        return _top_select(tree.this)
    return (tree, 0) if isinstance(tree, exp.Select) else (None, 0)


def counts_from_sql(sql: str) -> Counts | None:
    """Counts from SQL text via sqlglot; None when it cannot be parsed."""
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return None
    sel, set_ops = _top_select(tree)
    if sel is None:
        return None
    joins = sel.args.get("joins") or []
    from_ = sel.args.get("from_") or sel.args.get("from")
    n_tables = (1 if from_ is not None else 0) + len(joins)
    on_leaves: list[exp.Expression] = []
    on_conn: list[str] = []
    for j in joins:
        lv, cn = _flatten(j.args.get("on"))
        if on_leaves and lv:
            on_conn.append("and")
        on_leaves += lv
        on_conn += cn
    where_node = sel.args.get("where")
    having_node = sel.args.get("having")
    w_leaves, w_conn = _flatten(where_node.this if where_node else None)
    h_leaves, h_conn = _flatten(having_node.this if having_node else None)
    group = (sel.args.get("group").expressions if sel.args.get("group") else [])
    order = [o.this for o in sel.args["order"].expressions] if sel.args.get("order") else []
    leaves = on_leaves + w_leaves + h_leaves

    comp1 = bool(w_leaves) + bool(group) + bool(order) + (sel.args.get("limit") is not None)
    comp1 += max(0, n_tables - 1)
    comp1 += (on_conn + w_conn + h_conn).count("or")
    comp1 += sum(isinstance(_strip_not(lf)[1], exp.Like) for lf in leaves)

    comp2 = sum(_n_subquery_values(lf) for lf in leaves) + set_ops

    projections = [p.this if isinstance(p, exp.Alias) else p for p in sel.expressions]
    agg = sum(_leading_agg(p) for p in projections)
    agg += sum(_strip_not(lf)[0] for lf in w_leaves)
    agg += sum(_is_agg(g) for g in group)
    agg += sum(_order_aggs(o) for o in order)
    agg += len(h_conn) + sum(_strip_not(lf)[0] for lf in h_leaves)
    others = (agg > 1) + (len(projections) > 1) + (len(w_leaves) > 1) + (len(group) > 1)
    return Counts(int(comp1), int(comp2), int(others))


# ---------------------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------------------


def hardness_from_dict(sql: dict[str, Any]) -> str:
    """Level from an official parsed ``sql`` dict."""
    return level_from_counts(counts_from_dict(sql))


def hardness_from_sql(sql: str) -> str:
    """Level from SQL text (sqlglot); ``"unknown"`` when the text does not parse."""
    counts = counts_from_sql(sql)
    return UNKNOWN if counts is None else level_from_counts(counts)


def hardness(query: str, parsed: dict[str, Any] | None = None) -> str:
    """Level of a gold query: from its official parse when given (exact), else from the text."""
    if parsed:
        try:
            return hardness_from_dict(parsed)
        except (KeyError, IndexError, TypeError):
            pass  # a malformed parse: fall back to the text
    return hardness_from_sql(query)


def example_hardness(example: Any) -> str:
    """Level of a :class:`~sqlshift.data.spider.SpiderExample` (uses ``example.sql`` when present)."""
    return hardness(example.query, getattr(example, "sql", None))
