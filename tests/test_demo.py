"""The embedded demo benchmark must be complete, loadable by the real loaders, and every gold query must run."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest

from sqlshift.data.demo import DEV_DBS, SUBJECTS, TRAIN_DBS, demo_root, ensure_demo
from sqlshift.data.spider import load_spider, read_gold_sql


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_demo(tmp_path_factory.mktemp("demo"))


def run_sql(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_ensure_demo_builds_layout(demo: Path) -> None:
    sp = demo / "spider"
    for name in ("train_spider.json", "dev.json", "tables.json", "dev_gold.sql"):
        assert (sp / name).is_file()
    for db in DEV_DBS:
        path = sp / "database" / db / f"{db}.sqlite"
        tables = [r[0] for r in run_sql(path, "SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert len(tables) >= 4
        for t in tables:
            assert 6 <= run_sql(path, f"SELECT count(*) FROM {t}")[0][0] <= 40
        assert run_sql(path, "PRAGMA foreign_key_check") == []
    for s in SUBJECTS:
        assert (demo / "mmlu" / "test" / f"{s}_test.csv").is_file()
        assert (demo / "mmlu" / "dev" / f"{s}_dev.csv").is_file()


def test_ensure_demo_is_idempotent(demo: Path) -> None:
    db = demo / "spider" / "database" / "shop" / "shop.sqlite"
    before = db.stat().st_mtime_ns
    assert ensure_demo(demo) == demo
    assert db.stat().st_mtime_ns == before
    assert run_sql(db, "SELECT count(*) FROM customer")[0][0] > 0


def test_load_spider_on_demo(demo: Path) -> None:
    dev, train = load_spider(demo, "dev"), load_spider(demo, "train")
    assert not dev.skipped and not train.skipped
    assert 35 <= len(dev.examples) <= 50 and 70 <= len(train.examples) <= 90
    assert {e.db_id for e in dev.examples} == set(DEV_DBS)
    assert {e.db_id for e in train.examples} == set(TRAIN_DBS)  # one dev database is unseen in training
    assert set(dev.tables) == set(DEV_DBS)
    assert len({e.question for e in train.examples} & {e.question for e in dev.examples}) == 0


@pytest.mark.parametrize("split", ["dev", "train"])
def test_every_gold_query_executes(demo: Path, split: str) -> None:
    s = load_spider(demo, split)
    empty = 0
    for e in s.examples:
        rows = run_sql(s.db_path(e.db_id), e.query)
        empty += not rows or rows in ([(None,)], [(0,)])
    assert empty <= len(s.examples) // 10


def test_dev_spans_hardness_levels(demo: Path) -> None:
    from sqlshift.sql.hardness import hardness

    levels = {hardness(e.query) for e in load_spider(demo, "dev").examples}
    assert levels == {"easy", "medium", "hard", "extra"}


def test_gold_file_matches_dev(demo: Path) -> None:
    gold = read_gold_sql(demo / "spider" / "dev_gold.sql")
    dev = json.loads((demo / "spider" / "dev.json").read_text())
    assert gold == [(r["query"], r["db_id"]) for r in dev]


def test_tables_json_matches_databases(demo: Path) -> None:
    for t in json.loads((demo_root() / "tables.json").read_text()):
        db = demo / "spider" / "database" / t["db_id"] / f"{t['db_id']}.sqlite"
        assert t["column_names"][0] == [-1, "*"] and t["column_names_original"][0] == [-1, "*"]
        n = len(t["column_names_original"])
        assert len(t["column_names"]) == len(t["column_types"]) == n
        for ti, tname in enumerate(t["table_names_original"]):
            cols = [c for i, c in t["column_names_original"][1:] if i == ti]
            assert cols == [r[1] for r in run_sql(db, f"PRAGMA table_info({tname})")]
        assert t["primary_keys"] and all(0 < k < n for k in t["primary_keys"])
        assert t["foreign_keys"] and all(0 < a < n and 0 < b < n for a, b in t["foreign_keys"])


def test_mmlu_csv_well_formed(demo: Path) -> None:
    for split, count in (("test", 20), ("dev", 5)):
        for s in SUBJECTS:
            with open(demo / "mmlu" / split / f"{s}_{split}.csv", newline="", encoding="utf-8") as f:
                rows = list(csv.reader(f))
            assert len(rows) == count
            for r in rows:
                assert len(r) == 6 and r[5] in "ABCD" and len(r[5]) == 1
                assert len(set(r[1:5])) == 4 and all(x.strip() for x in r[:5])


def test_mmlu_loader_reads_demo(demo: Path) -> None:
    from sqlshift.data.mmlu import read_mmlu_csv

    for s in SUBJECTS:
        qs = read_mmlu_csv(demo / "mmlu" / "test" / f"{s}_test.csv", s, "test")
        assert len(qs) == 20 and {q.answer for q in qs} <= set("ABCD")
