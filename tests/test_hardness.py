"""Spider hardness: the official decision table, the sqlglot path, and agreement with the official parses on dev."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from sqlshift.data.spider import SpiderExample
from sqlshift.sql.hardness import (Counts, counts_from_sql, example_hardness, hardness, hardness_from_dict,
                                   hardness_from_sql, level_from_counts)


@pytest.mark.parametrize("sql,level", [
    ("SELECT count(*) FROM singer", "easy"),
    ("SELECT name FROM singer WHERE age > 20", "easy"),
    ("SELECT name, country FROM singer WHERE age > 20", "medium"),
    ("SELECT T2.name FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.stadium_id", "easy"),
    ("SELECT name FROM singer ORDER BY age DESC LIMIT 1", "medium"),
    ("SELECT country, count(*) FROM singer GROUP BY country ORDER BY count(*) DESC LIMIT 1", "hard"),
    ("SELECT name FROM singer WHERE age > (SELECT avg(age) FROM singer)", "hard"),
    ("SELECT name FROM singer WHERE country = 'France' INTERSECT SELECT name FROM singer WHERE age > 30", "hard"),
    ("SELECT name FROM singer WHERE name LIKE '%a%' OR name LIKE '%b%' AND age > 3 GROUP BY name", "extra"),
])
def test_known_levels(sql: str, level: str) -> None:
    assert hardness_from_sql(sql) == level


def test_decision_table_edges() -> None:
    assert level_from_counts(Counts(1, 0, 0)) == "easy"
    assert level_from_counts(Counts(1, 0, 2)) == "medium"
    assert level_from_counts(Counts(2, 0, 1)) == "medium"
    assert level_from_counts(Counts(2, 0, 3)) == "hard"
    assert level_from_counts(Counts(3, 0, 2)) == "hard"
    assert level_from_counts(Counts(0, 1, 0)) == "hard"
    assert level_from_counts(Counts(4, 0, 0)) == "extra"
    assert level_from_counts(Counts(1, 1, 1)) == "extra"


def test_quirks_of_the_official_counts_are_mirrored() -> None:
    # officially HAVING's AND connector counts as an aggregation (has_agg on the string 'and'): with the select's
    # count(*) that makes two, so "more than one aggregation" fires although HAVING's own aggregates do not count
    c = counts_from_sql("SELECT count(*) FROM t GROUP BY a HAVING count(*) > 1 AND sum(b) > 2")
    assert c is not None and c.others == 1
    assert counts_from_sql("SELECT count(*) FROM t GROUP BY a HAVING count(*) > 1").others == 0
    # NOT IN: one WHERE condition, one nested query
    c2 = counts_from_sql("SELECT a FROM t WHERE a NOT IN (SELECT b FROM u)")
    assert c2 == Counts(comp1=1, comp2=1, others=0)


def test_unparseable_and_fallback() -> None:
    assert hardness_from_sql("SELEC nonsense ((") == "unknown"
    assert hardness("SELECT a FROM t", {"broken": True}) == "easy"  # malformed parse falls back to the text
    ex = SpiderExample(0, "db", "q", "SELECT a, b FROM t")
    assert example_hardness(ex) == "medium"


def test_real_dev_distribution_and_agreement(data_dir: Path) -> None:
    rows = json.loads((data_dir / "spider" / "dev.json").read_text(encoding="utf-8"))
    official = [hardness_from_dict(r["sql"]) for r in rows]
    assert Counter(official) == {"easy": 248, "medium": 446, "hard": 174, "extra": 166}
    from_text = [hardness_from_sql(r["query"]) for r in rows]
    agreement = sum(a == b for a, b in zip(official, from_text)) / len(rows)
    print(f"sqlglot vs official-parse hardness agreement on dev: {agreement:.2%}")
    assert agreement >= 0.97
