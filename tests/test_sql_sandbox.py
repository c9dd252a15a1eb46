"""The sandbox against adversarial SQL: every attack gets its verdict within the bound, the db stays identical."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from sqlshift.sql.sandbox import ExecResult, SqlSandbox, classify_error, run_query

TIMEOUT = 1.5


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sandbox") / "t.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, f"n{i}", i / 2) for i in range(40)])
    con.commit()
    con.close()
    return path


@pytest.fixture(scope="module")
def sandbox() -> SqlSandbox:
    with SqlSandbox(timeout_s=TIMEOUT, workers=2, max_rows=50_000, memory_mb=512) as sb:
        yield sb


def test_plain_select(sandbox: SqlSandbox, db: Path) -> None:
    res = sandbox.execute(db, "SELECT count(*), max(score) FROM t")
    assert res.ok and res.rows == [(40, 19.5)]
    with_cte = sandbox.execute(db, "WITH a AS (SELECT id FROM t WHERE id < 3) SELECT * FROM a ORDER BY id")
    assert with_cte.rows == [(0,), (1,), (2,)]


ATTACKS = [
    ("DROP TABLE t", "forbidden"),
    ("DELETE FROM t", "forbidden"),
    ("UPDATE t SET name = 'x'", "forbidden"),
    ("INSERT INTO t VALUES (100, 'x', 1.0)", "forbidden"),
    ("CREATE TABLE evil (a)", "forbidden"),
    ("CREATE TEMP VIEW v AS SELECT 1", "forbidden"),
    ("ATTACH DATABASE ':memory:' AS other", "forbidden"),
    ("DETACH DATABASE main", "forbidden"),
    ("PRAGMA writable_schema=1", "forbidden"),
    ("PRAGMA table_info(t)", "forbidden"),
    ("SELECT load_extension('/tmp/evil.so')", "forbidden"),
    ("VACUUM", "forbidden"),
    ("BEGIN IMMEDIATE", "forbidden"),
    ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c", "timeout"),
    ("SELECT count(*) FROM t a, t b, t c, t d, t e, t f", "timeout"),
    ("SELECT a.* FROM t a, t b, t c, t d, t e, t f", "resource_limit"),
    ("SELECT length(randomblob(1e9))", "resource_limit"),
    ("SELECT zeroblob(1e9)", "resource_limit"),
    ("SELECT nme FROM t", "unknown_column"),
    ("SELECT * FROM nosuch", "unknown_table"),
    ("SELEC 1", "syntax_error"),
    ("SELECT 1; DROP TABLE t", "syntax_error"),
    ("   ;", "empty_prediction"),
]


def test_attacks_get_their_verdict_in_bound_and_leave_db_identical(sandbox: SqlSandbox, db: Path) -> None:
    before = _sha(db)
    start = time.monotonic()
    results = sandbox.execute_many([(db, sql) for sql, _ in ATTACKS])
    wall = time.monotonic() - start
    got = {sql: r.error_type for (sql, _), r in zip(ATTACKS, results)}
    assert got == {sql: want for sql, want in ATTACKS}
    assert all(r.elapsed_s < TIMEOUT + 1.0 for r in results)
    assert wall < 3 * (TIMEOUT + 1.0) + 5  # three timeouts over two workers, plus slack for a busy machine
    assert _sha(db) == before
    assert sandbox.execute(db, "SELECT count(*) FROM t").rows == [(40,)]  # still usable afterwards


def test_row_and_byte_bounds(db: Path) -> None:
    with SqlSandbox(timeout_s=5, workers=1, max_rows=100, max_bytes=10_000) as sb:
        assert sb.execute(db, "SELECT * FROM t").ok  # 40 rows, well under both bounds
        rows = sb.execute(db, "SELECT a.id FROM t a, t b")
        assert rows.error_type == "resource_limit" and "rows" in (rows.message or "")
        big = sb.execute(db, "SELECT hex(randomblob(20000))")
        assert big.error_type == "resource_limit" and "bytes" in (big.message or "")


def test_memory_cap_gives_resource_limit(db: Path) -> None:
    with SqlSandbox(timeout_s=10, workers=1, memory_mb=64) as sb:
        res = sb.execute(db, "SELECT length(group_concat(randomblob(1000000))) FROM "
                             "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 95) SELECT x FROM c)")
        assert res.error_type == "resource_limit"
        assert sb.execute(db, "SELECT 1").rows == [(1,)]


def test_killed_worker_is_recovered(db: Path) -> None:
    with SqlSandbox(timeout_s=TIMEOUT, workers=2) as sb:
        pids = sb.worker_pids()
        out: dict[str, list[ExecResult]] = {}
        runaway = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c"
        th = threading.Thread(target=lambda: out.update(r=sb.execute_many([(db, runaway), (db, "SELECT 7")])))
        th.start()
        time.sleep(0.3)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        th.join(timeout=30)
        assert [r.error_type for r in out["r"]] == ["timeout", None]
        assert out["r"][1].rows == [(7,)]
        assert set(sb.worker_pids()).isdisjoint(pids)  # a fresh pool
        assert sb.execute(db, "SELECT count(*) FROM t").rows == [(40,)]


def test_query_that_keeps_crashing_its_worker_gets_resource_limit(db: Path) -> None:
    """Kill every worker that shows up while the runaway runs: the sandbox must give up on that query only."""
    with SqlSandbox(timeout_s=5, workers=1) as sb:
        done = threading.Event()

        def killer() -> None:
            while not done.is_set():
                for pid in sb.worker_pids(start=False):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.05)

        th = threading.Thread(target=killer)
        th.start()
        try:
            res = sb.execute(db, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c")
        finally:
            done.set()
            th.join()
        assert res.error_type == "resource_limit" and "crashed" in (res.message or "")
        assert sb.execute(db, "SELECT 2").rows == [(2,)]


def test_connection_is_read_only_in_process(db: Path) -> None:
    """run_query also works in-process (no pool) with the same guards."""
    before = _sha(db)
    assert run_query(str(db), "SELECT count(*) FROM t").rows == [(40,)]
    assert run_query(str(db), "DELETE FROM t").error_type == "forbidden"
    assert _sha(db) == before


@pytest.mark.parametrize("message,kind", [
    ("interrupted", "timeout"), ("not authorized", "forbidden"), ("attempt to write a readonly database", "forbidden"),
    ("string or blob too big", "resource_limit"), ("no such table: x", "unknown_table"),
    ("ambiguous column name: id", "unknown_column"), ("misuse of aggregate: count()", "syntax_error"),
])
def test_classify_error(message: str, kind: str) -> None:
    assert classify_error(sqlite3.OperationalError(message)) == kind
