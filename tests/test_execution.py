"""Execution Accuracy: each official rule where it matters, the simple mode's differences, file formats, real dev."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from sqlshift.data.spider import SpiderExample, SpiderSplit
from sqlshift.errors import DataError
from sqlshift.sql.eval_sql import run_eval_sql
from sqlshift.sql.execution import (ERROR_TYPES, GoldCache, Pair, evaluate_split, judge_pairs, normalise,
                                    read_predictions, remove_distinct, results_equal)
from sqlshift.sql.sandbox import SqlSandbox

RESULT_KEYS = {"id", "index", "db_id", "question", "hardness", "correct", "error_type", "error", "pred_sql", "gold_sql"}
METRIC_KEYS = {"metric", "split", "mode", "execution_accuracy", "n", "n_correct", "ci95", "n_skipped", "skip_reasons",
               "n_gold_failed", "gold_failed", "by_hardness", "by_error_type"}


@pytest.fixture(scope="module")
def spider_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Spider-layout folder with one small database ``shop``."""
    root = tmp_path_factory.mktemp("spider")
    (root / "database" / "shop").mkdir(parents=True)
    con = sqlite3.connect(root / "database" / "shop" / "shop.sqlite")
    con.executescript("""
        CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, price REAL, qty INTEGER, note TEXT);
        INSERT INTO item VALUES (1, 'pen', 1.5, 10, NULL), (2, 'ink', 3.0, 5, 'blue'), (3, 'pen', 2.0, 10, NULL),
                                (4, 'pad', 4.0, 0, 'a4');
        CREATE TABLE wide (a INT, b INT, c INT, d INT, e INT);
        INSERT INTO wide VALUES (1, 2, 3, 4, 5), (1, 2, 3, 4, 6), (7, 7, 7, 7, 7);
    """)
    con.commit()
    con.close()
    return root


@pytest.fixture(scope="module")
def db(spider_root: Path) -> str:
    return str(spider_root / "database" / "shop" / "shop.sqlite")


@pytest.fixture(scope="module")
def sandbox() -> SqlSandbox:
    with SqlSandbox(timeout_s=2, workers=2) as sb:
        yield sb


def verdict(sandbox: SqlSandbox, db: str, pred: str, gold: str, **kw: object) -> str:
    return judge_pairs([Pair(db, pred, gold)], sandbox, gold_cache=GoldCache(), **kw)[0].error_type  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------- semantics

def test_order_matters_only_when_gold_orders(sandbox: SqlSandbox, db: str) -> None:
    asc, desc = "SELECT id FROM item ORDER BY id", "SELECT id FROM item ORDER BY id DESC"
    assert verdict(sandbox, db, desc, asc) == "wrong_result"
    assert verdict(sandbox, db, desc, "SELECT id FROM item") == "correct"
    assert verdict(sandbox, db, desc, asc, mode="simple") == "correct"  # the seed paper ignores order


def test_column_permutation(sandbox: SqlSandbox, db: str) -> None:
    gold, pred = "SELECT name, price FROM item", "SELECT price, name FROM item"
    assert verdict(sandbox, db, pred, gold) == "correct"
    assert verdict(sandbox, db, pred, gold, mode="simple") == "wrong_result"
    # permuted columns and ordered rows together
    assert verdict(sandbox, db, "SELECT price, id FROM item ORDER BY id", "SELECT id, price FROM item ORDER BY id") == "correct"


def test_bags_not_sets(sandbox: SqlSandbox, db: str) -> None:
    # same set {pen, ink, pad} but different multiplicities
    gold = "SELECT name FROM item"
    pred = "SELECT name FROM item WHERE id != 3 UNION ALL SELECT 'ink'"
    assert verdict(sandbox, db, pred, gold) == "wrong_result"
    assert verdict(sandbox, db, pred, gold, mode="simple") == "wrong_result"


def test_distinct_removed_unless_kept(sandbox: SqlSandbox, db: str) -> None:
    gold, pred = "SELECT name FROM item", "SELECT DISTINCT name FROM item"
    assert verdict(sandbox, db, pred, gold) == "correct"
    assert verdict(sandbox, db, pred, gold, keep_distinct=True) == "wrong_result"
    assert verdict(sandbox, db, pred, gold, mode="simple") == "wrong_result"
    # officially every DISTINCT token goes, aggregates included
    assert verdict(sandbox, db, "SELECT count(name) FROM item", "SELECT count(DISTINCT name) FROM item") == "correct"
    assert remove_distinct("SELECT DISTINCT a FROM t WHERE b = 'distinct'") == "SELECT  a FROM t WHERE b = 'distinct'"
    assert remove_distinct("SELECT a IS NOT DISTINCT FROM b") == "SELECT a IS NOT DISTINCT FROM b"


def test_nulls_and_floats(sandbox: SqlSandbox, db: str) -> None:
    assert verdict(sandbox, db, "SELECT note FROM item WHERE id = 1", "SELECT NULL") == "correct"
    assert verdict(sandbox, db, "SELECT 0", "SELECT note FROM item WHERE id = 1") == "wrong_result"
    assert verdict(sandbox, db, "SELECT 3", "SELECT avg(price) FROM item WHERE id IN (2, 4)") == "wrong_result"  # 3.5
    assert verdict(sandbox, db, "SELECT 3", "SELECT avg(price) FROM item WHERE id IN (2, 2)") == "correct"  # 3.0 == 3
    assert verdict(sandbox, db, "SELECT 0.1 + 0.2", "SELECT 0.3") == "wrong_result"  # exact, as officially


def test_empty_results_equal_whatever_columns(sandbox: SqlSandbox, db: str) -> None:
    assert verdict(sandbox, db, "SELECT id, name FROM item WHERE 0", "SELECT name FROM item WHERE price > 100") == "correct"


def test_spacing_normalised_in_official_only(sandbox: SqlSandbox, db: str) -> None:
    gold = "SELECT id FROM item WHERE qty >= 5"
    assert verdict(sandbox, db, "SELECT id FROM item WHERE qty > = 5", gold) == "correct"
    assert verdict(sandbox, db, "SELECT id FROM item WHERE qty > = 5", gold, mode="simple") == "syntax_error"
    assert normalise("a ! = b AND c < = d") == "a != b AND c <= d"


def test_error_taxonomy(sandbox: SqlSandbox, db: str) -> None:
    gold = "SELECT name FROM item"
    assert verdict(sandbox, db, "", gold) == "empty_prediction"
    assert verdict(sandbox, db, "SELECT nam FROM item", gold) == "unknown_column"
    assert verdict(sandbox, db, "SELECT name FROM items", gold) == "unknown_table"
    assert verdict(sandbox, db, "SELECT name FROM", gold) == "syntax_error"
    assert verdict(sandbox, db, "DELETE FROM item", gold) == "forbidden"
    assert verdict(sandbox, db, "SELECT name FROM item", "SELECT nope FROM item") == "gold_error"
    runaway = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c"
    assert verdict(sandbox, db, runaway, gold) == "timeout"


def test_results_equal_permutation_pruning() -> None:
    gold = [(1, 2, 3, 4, 5), (1, 2, 3, 4, 6)]
    pred = [(5, 4, 3, 2, 1), (6, 4, 3, 2, 1)]
    assert results_equal(gold, pred)
    assert not results_equal(gold, pred, mode="simple")
    # identical columns: many candidate permutations, one is enough
    assert results_equal([(7,) * 8] * 3, [(7,) * 8] * 3)
    assert not results_equal([(1, 2)], [(1, 2, 3)])
    assert not results_equal([(1, 2), (2, 1)], [(1, 2), (1, 2)])  # rows must match as a bag, not per value
    assert results_equal([(1, "a"), (2, "b")], [("a", 1), ("b", 2)], ordered=True)
    assert not results_equal([(1, "a"), (2, "b")], [("b", 2), ("a", 1)], ordered=True)


def test_gold_cache_avoids_rerunning_gold(sandbox: SqlSandbox, db: str, tmp_path: Path) -> None:
    cache = GoldCache(tmp_path / "gold.pkl")
    judge_pairs([Pair(db, "SELECT 1", "SELECT name FROM item")], sandbox, gold_cache=cache)
    assert len(cache) == 1
    cache.save()
    again = GoldCache(tmp_path / "gold.pkl")
    assert again.get(db, "SELECT name FROM item") is not None
    judge_pairs([Pair(db, "SELECT 1", "SELECT nope FROM item")], sandbox, gold_cache=again)
    assert len(again) == 1  # failures are not cached


# ------------------------------------------------------------------------------------------------ split + files

def make_split(spider_root: Path) -> SpiderSplit:
    rows = [("How many items?", "SELECT count(*) FROM item"),
            ("Names?", "SELECT name FROM item"),
            ("Cheapest?", "SELECT name FROM item ORDER BY price LIMIT 1"),
            ("Broken gold", "SELECT nope FROM item")]
    examples = [SpiderExample(i, "shop", q, sql) for i, (q, sql) in enumerate(rows)]
    skipped = [SpiderExample(4, "gone", "Lost?", "SELECT 1")]
    tables = {"shop": {"db_id": "shop"}, "gone": {"db_id": "gone"}}
    return SpiderSplit("toy", examples, skipped, {"missing database gone": 1}, tables, [spider_root / "database"])


def test_evaluate_split_writes_contract_files(spider_root: Path, sandbox: SqlSandbox, tmp_path: Path) -> None:
    split = make_split(spider_root)
    preds = {0: {"index": 0, "sql": "SELECT count(*) FROM item", "hit_limit": False, "extraction": "first_line"},
             1: {"index": 1, "sql": "SELECT nam FROM item", "hit_limit": True, "extraction": "code_block"},
             2: {"index": 2, "sql": "", "hit_limit": False, "extraction": "first_line"},
             3: "SELECT 1",
             4: {"index": 4, "sql": "SELECT 1"}}  # skipped example: ignored
    m = evaluate_split(split, preds, tmp_path, sandbox=sandbox, progress=False)
    assert set(m) == METRIC_KEYS | {"generation"}
    assert (m["n"], m["n_correct"], m["n_gold_failed"], m["gold_failed"]) == (3, 1, 1, [3])
    assert m["n_skipped"] == 1 and m["skip_reasons"] == {"missing database gone": 1}
    assert m["by_error_type"] == {"correct": 1, "unknown_column": 1, "empty_prediction": 1, "gold_error": 1}
    assert m["generation"] == {"n": 3, "hit_limit": 1, "multi_line_extraction": 1, "empty": 1}
    assert sum(s["n"] for s in m["by_hardness"].values()) == 3
    assert m["ci95"][0] < 1 / 3 < m["ci95"][1]
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2, 3]
    assert all(set(r) == RESULT_KEYS and r["error_type"] in ERROR_TYPES for r in rows)
    assert rows[0]["error"] is None and rows[1]["error"].startswith("OperationalError")
    assert json.loads((tmp_path / "metrics.json").read_text()) == m


def test_evaluate_split_without_generation_fields(spider_root: Path, sandbox: SqlSandbox, tmp_path: Path) -> None:
    split = make_split(spider_root)
    m = evaluate_split(split, {e.index: e.query for e in split.examples}, tmp_path, sandbox=sandbox, progress=False)
    assert "generation" not in m and m["n_correct"] == 3


def test_evaluate_split_rejects_missing_and_foreign_predictions(spider_root: Path, sandbox: SqlSandbox,
                                                               tmp_path: Path) -> None:
    split = make_split(spider_root)
    with pytest.raises(DataError, match="have no prediction"):
        evaluate_split(split, {0: "SELECT 1"}, tmp_path, sandbox=sandbox)
    with pytest.raises(DataError, match="not in split"):
        evaluate_split(split, {i: "SELECT 1" for i in range(4)} | {99: "SELECT 1"}, tmp_path, sandbox=sandbox)


def test_read_predictions_jsonl(spider_root: Path, tmp_path: Path) -> None:
    split = make_split(spider_root)
    p = tmp_path / "p.jsonl"
    p.write_text('{"index": 0, "sql": "SELECT 1"}\n\n{"index": 0, "db_id": "shop", "sql": "SELECT 2", "raw": "x"}\n')
    assert read_predictions(p, split) == {0: {"index": 0, "db_id": "shop", "sql": "SELECT 2", "raw": "x"}}


@pytest.mark.parametrize("content,match", [
    ('{"index": 0, "sql": "SELECT 1"}\n{"index": 1, "sql": \n', r"p\.jsonl:2 is not valid JSON"),
    ('{"index": "0", "sql": "SELECT 1"}\n', r"p\.jsonl:1 lacks an integer 'index'"),
    ('{"index": 0}\n', r"lacks an integer 'index' and an 'sql'"),
    ('{"index": 7, "sql": "SELECT 1"}\n', r"index 7, outside split 'toy' \(0\.\.4\)"),
    ('{"index": 0, "db_id": "nowhere", "sql": "SELECT 1"}\n', r"unknown db_id 'nowhere'"),
    ('{"index": 0, "db_id": "gone", "sql": "SELECT 1"}\n', r"example 0 of 'toy' is on 'shop'"),
])
def test_read_predictions_jsonl_errors(spider_root: Path, tmp_path: Path, content: str, match: str) -> None:
    p = tmp_path / "p.jsonl"
    p.write_text(content)
    with pytest.raises(DataError, match=match) as e:
        read_predictions(p, make_split(spider_root))
    assert e.value.fix and "\n" not in str(e.value)


def test_read_predictions_official_format(spider_root: Path, tmp_path: Path) -> None:
    split = make_split(spider_root)
    gold = tmp_path / "gold.sql"
    gold.write_text("".join(f"{e.query}\t{e.db_id}\n" for e in sorted(split.examples + split.skipped, key=lambda e: e.index)))
    pred = tmp_path / "pred.sql"
    pred.write_text("SELECT 1\nSELECT 2\n\nSELECT 4\tshop\nSELECT 5\n")
    got = read_predictions(pred, split, gold)
    assert [got[i]["sql"] for i in range(5)] == ["SELECT 1", "SELECT 2", "", "SELECT 4", "SELECT 5"]
    assert read_predictions(pred, split) == got  # aligned with the split when no gold file is given
    short = tmp_path / "short.sql"
    short.write_text("SELECT 1\nSELECT 2\n")
    with pytest.raises(DataError, match=r"short\.sql has 2 predictions but gold file .* has 5"):
        read_predictions(short, split, gold)
    bad_gold = tmp_path / "bad_gold.sql"
    bad_gold.write_text(gold.read_text().replace("\tgone", "\tatlantis"))
    with pytest.raises(DataError, match="unknown db_id"):
        read_predictions(pred, split, bad_gold)
    wrong_db = tmp_path / "wrong_db.sql"
    wrong_db.write_text("SELECT 1\tgone\nSELECT 2\n\nSELECT 4\nSELECT 5\n")
    with pytest.raises(DataError, match="is for db 'gone'"):
        read_predictions(wrong_db, split, gold)
    with pytest.raises(DataError, match="does not exist"):
        read_predictions(tmp_path / "missing.jsonl", split)


# ------------------------------------------------------------------------------------------------------ real dev

def test_real_dev_gold_against_itself(data_dir: Path, tmp_path: Path) -> None:
    """Every evaluable dev gold query is correct against itself (972/972); wta_1's 62 are skipped, not scored."""
    spider = data_dir / "spider"
    pred = tmp_path / "pred.sql"  # official format: one SQL per line, including the skipped examples' lines
    pred.write_text("".join(line.rsplit("\t", 1)[0] + "\n" for line in
                            (spider / "dev_gold.sql").read_text(encoding="utf-8").splitlines() if line.strip()))
    m = run_eval_sql(spider, pred, tmp_path / "official", gold=spider / "dev_gold.sql")
    assert (m["n"], m["n_correct"], m["n_skipped"], m["n_gold_failed"]) == (972, 972, 62, 0)
    assert m["skip_reasons"] == {"missing database wta_1": 62}
    assert {h: s["n"] for h, s in m["by_hardness"].items()} == {"easy": 232, "medium": 416, "hard": 160, "extra": 164}
    simple = run_eval_sql(spider, pred, tmp_path / "simple", mode="simple")
    assert simple["n_correct"] == 972
