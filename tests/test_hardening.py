"""Issue 17, hardening round 2: each class of the adversarial audit, on small real sqlite databases.

1 parent memory flat in hostile predictions, 2 temp storage bounded, 3 huge SQL refused up front, 4 one writer per
output folder, 5 no orphaned workers, 6 JSONL sqlshift can always read back + atomic writes, 7 clear one-line
errors for malformed inputs, 8 error taxonomy. The heavy versions live in benchmarks/bench_hostile.py.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sqlshift.cli import app
from sqlshift.data.mmlu import read_mmlu_csv
from sqlshift.data.spider import SpiderExample, SpiderSplit, load_spider
from sqlshift.errors import ConfigError, DataError
from sqlshift.jsonl import read_jsonl
from sqlshift.sql.execution import GoldCache, Pair, evaluate_split, judge_pairs, read_predictions
from sqlshift.outputs import (append_jsonl, atomic_write_json, atomic_write_text, exclusive_output, json_line)
from sqlshift.sql.sandbox import MAX_SQL_BYTES, SqlSandbox, classify_error, open_readonly

SRC = str(Path(__file__).resolve().parents[1] / "src")
EMPTY_COLS = ", ".join(["''"] * 150)


def _series(n: int) -> str:
    return f"(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT {n}) SELECT x FROM c)"


@pytest.fixture(scope="module")
def spider(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Spider-layout folder: database ``h`` (table t, 300 rows) and a 3-example dev split."""
    root = tmp_path_factory.mktemp("spider")
    (root / "database" / "h").mkdir(parents=True)
    con = sqlite3.connect(root / "database" / "h" / "h.sqlite")
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"row {i:05d} " + "x" * 40) for i in range(300)])
    con.commit()
    con.close()
    dev = [{"db_id": "h", "query": "SELECT count(*) FROM t", "question": f"q{i}"} for i in range(3)]
    (root / "dev.json").write_text(json.dumps(dev))
    (root / "tables.json").write_text(json.dumps([{"db_id": "h"}]))
    return root


@pytest.fixture(scope="module")
def db(spider: Path) -> str:
    return str(spider / "database" / "h" / "h.sqlite")


@pytest.fixture(scope="module")
def sandbox() -> SqlSandbox:
    with SqlSandbox(timeout_s=5, workers=2, memory_mb=256) as sb:
        yield sb


def _judge(sandbox: SqlSandbox, db: str, pred: str, gold: str = "SELECT count(*) FROM t") -> tuple[str, str | None]:
    v = judge_pairs([Pair(db, pred, gold)], sandbox, gold_cache=GoldCache())[0]
    return v.error_type, v.error


def _vm_hwm_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


# -------------------------------------------------------------------------------------------- 1 parent memory


def test_empty_strings_count_at_their_real_cost(db: str) -> None:
    """2000 rows x 150 empty strings are ~2.5 MB of tuples: a 1 MB budget must refuse them (it counted 0 bytes)."""
    with SqlSandbox(timeout_s=5, workers=1, max_bytes=1_000_000) as sb:
        res = sb.execute(db, f"SELECT {EMPTY_COLS} FROM {_series(2000)}")
    assert res.error_type == "resource_limit" and "bytes" in (res.message or "")


def test_parent_memory_flat_in_hostile_predictions(sandbox: SqlSandbox, db: str) -> None:
    """Four predictions returning ~30 MB of rows each: verdicts only reach the parent, so its peak barely moves."""
    hostile = f"SELECT printf('%040d', x), x, x * 2, printf('%030d', x) FROM {_series(100_000)}"
    judge_pairs([Pair(db, "SELECT 1", "SELECT 1")], sandbox, gold_cache=GoldCache())  # warm up
    before = _vm_hwm_kb()
    verdicts = judge_pairs([Pair(db, hostile, "SELECT count(*) FROM t")] * 4, sandbox, gold_cache=GoldCache())
    grew_mb = (_vm_hwm_kb() - before) / 1024
    assert [v.error_type for v in verdicts] == ["wrong_result"] * 4
    assert not hasattr(verdicts[0], "rows")
    assert grew_mb < 40, f"parent peak RSS grew {grew_mb:.0f} MB"


# -------------------------------------------------------------------------------------------- 2 temp storage


def _temp_bytes(pids: list[int]) -> int:
    """Bytes of sqlite temp files (etilqs_*, unlinked but open) held by ``pids``."""
    total = 0
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if "etilqs" in os.readlink(f"/proc/{pid}/fd/{fd}"):
                    total += os.stat(f"/proc/{pid}/fd/{fd}").st_blocks * 512
            except OSError:
                pass
    return total


def test_temp_storage_stays_in_memory_under_the_heap_cap(db: str) -> None:
    """A sort over a 3-way cross join wrote GBs of temp files; now it hits the heap cap: resource_limit, 0 bytes."""
    conn = open_readonly(db)
    conn.set_authorizer(None)
    assert conn.execute("PRAGMA temp_store").fetchone() == (2,)  # MEMORY
    peak = [0]
    with SqlSandbox(timeout_s=20, workers=1, memory_mb=96) as sb:
        pids = sb.worker_pids()
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _temp_bytes(pids))
                time.sleep(0.02)

        th = threading.Thread(target=watch)
        th.start()
        try:
            res = sb.execute(db, "SELECT a.s, b.s, c.id FROM t a, t b, t c ORDER BY a.s || b.s || c.id")
        finally:
            done.set()
            th.join()
        assert res.error_type == "resource_limit", res
        assert peak[0] == 0
        assert sb.execute(db, "SELECT count(*) FROM t").rows == [(300,)]


# -------------------------------------------------------------------------------------------- 3 huge SQL


def test_huge_sql_is_refused_before_any_parsing(sandbox: SqlSandbox, db: str) -> None:
    start = time.monotonic()
    kind, msg = _judge(sandbox, db, "SELECT " + "1 + " * 2_500_000 + "1")  # 10 MB
    assert kind == "resource_limit" and "length limit" in (msg or "")
    assert time.monotonic() - start < 3
    assert sandbox.execute(db, "SELECT DISTINCT 1" + " " * 1_000_000).error_type == "resource_limit"
    assert _judge(sandbox, db, "SELECT count(*) FROM t" + " " * (MAX_SQL_BYTES - 100))[0] == "correct"


# -------------------------------------------------------------------------------------------- 4 one writer


def _holder_process(folder: Path) -> subprocess.Popen[str]:
    code = textwrap.dedent(f"""
        import sys, time
        from sqlshift.outputs import exclusive_output
        with exclusive_output({str(folder)!r}, "holder"):
            print("locked", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": SRC})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_second_writer_gets_one_line_naming_the_holder(tmp_path: Path, spider: Path) -> None:
    out = tmp_path / "out"
    proc = _holder_process(out)
    try:
        with pytest.raises(ConfigError) as e:
            with exclusive_output(out):
                pass
        msg = str(e.value)
        assert f"pid {proc.pid}" in msg and "holder" in msg and "choose another --out" in msg and "\n" not in msg
        pred = tmp_path / "p.sql"
        pred.write_text("SELECT 1\nSELECT 2\nSELECT 3\n")
        r = CliRunner().invoke(app, ["eval-sql", "--spider-dir", str(spider), "--pred", str(pred), "--out", str(out)])
        assert r.exit_code == 2 and f"pid {proc.pid}" in r.output and "Traceback" not in r.output
        assert not (out / "metrics.json").exists()
    finally:
        proc.kill()
        proc.wait()
    with exclusive_output(out):  # free again once the holder is gone
        pass


def test_lock_is_reentrant_and_not_inherited_by_workers(tmp_path: Path, db: str) -> None:
    out = tmp_path / "run"
    with exclusive_output(out), exclusive_output(out):  # a run locks its folder and evaluates inside it
        with SqlSandbox(workers=1) as sb:
            assert sb.execute(db, "SELECT 1").rows == [(1,)]  # workers forked while the lock is held
            with exclusive_output(out / "models" / "baseline"):
                pass
    with SqlSandbox(workers=1) as sb:
        with exclusive_output(out):
            sb.worker_pids()  # a worker forked under the lock...
        proc = _holder_process(out)  # ...does not keep it once the parent lets go
        proc.kill()
        proc.wait()


# -------------------------------------------------------------------------------------------- 5 orphans


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.parametrize("sig,in_thread", [(signal.SIGKILL, False), (signal.SIGTERM, False),
                                           (signal.SIGKILL, True)])
def test_workers_die_with_their_parent(tmp_path: Path, db: str, sig: int, in_thread: bool) -> None:
    code = textwrap.dedent(f"""
        import threading, time
        from sqlshift.sql.sandbox import SqlSandbox
        sb = SqlSandbox(workers=2, timeout_s=60)
        def start():
            print(" ".join(map(str, sb.worker_pids())), flush=True)
            sb.execute({db!r}, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c")
        (threading.Thread(target=start).start() if {in_thread} else start())
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": SRC})
    assert proc.stdout is not None
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert len(pids) == 2 and all(map(_alive, pids))
    time.sleep(0.3)
    proc.send_signal(sig)
    proc.wait()
    deadline = time.monotonic() + 5
    while any(map(_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(_alive, pids))


# -------------------------------------------------------------------------------------------- 6 JSONL round trips


def test_jsonl_with_line_separators_and_lone_surrogates_reads_back(tmp_path: Path) -> None:
    rows = [{"sql": "SELECT 'a\u2028b\u0085c\u2029d\x0ce\x1cf'"}, {"sql": "SELECT '\ud800'"}, {"sql": "é ✓"}]
    path = tmp_path / "r.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            append_jsonl(f, r)
    assert read_jsonl(path) == rows
    assert len(path.read_text(encoding="utf-8").splitlines()) == 3  # even a naive reader splits correctly
    assert "é ✓" in path.read_text(encoding="utf-8")  # non-ASCII stays readable
    raw = path.read_bytes()
    path.write_bytes(raw + '{"sql": "é'.encode()[:-1])  # a torn last line, cut inside a UTF-8 character
    assert read_jsonl(path, repair=True) == rows and path.read_bytes() == raw
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"a": "\xff"}\n{"a": 1}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:1 is not UTF-8"):
        read_jsonl(bad)


def test_atomic_writes_never_crash_on_text_and_leave_no_temp(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "a.txt", "lone \ud800 surrogate")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "lone \\ud800 surrogate"
    atomic_write_json(tmp_path / "m.json", {"s": "\udcff\u2028"})
    assert json.loads((tmp_path / "m.json").read_text()) == {"s": "\udcff\u2028"}
    assert json_line({"s": "\ud83d"}).endswith("\n") and "\\ud83d" in json_line({"s": "\ud83d"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "m.json"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def _toy_split(spider: Path, question: object = "q") -> SpiderSplit:
    examples = [SpiderExample(i, "h", question if i == 1 else f"q{i}", "SELECT count(*) FROM t")  # type: ignore[arg-type]
                for i in range(3)]
    return SpiderSplit("toy", examples, [], {}, {"h": {"db_id": "h"}}, [spider / "database"])


def test_lone_surrogate_prediction_is_data_and_a_failed_write_keeps_the_old_files(
        spider: Path, sandbox: SqlSandbox, tmp_path: Path) -> None:
    preds = {0: "SELECT count(*) FROM t", 1: "SELECT '\ud800'", 2: "SELECT 1 -- \u2028 \x85"}
    m = evaluate_split(_toy_split(spider), preds, tmp_path, sandbox=sandbox, progress=False)
    rows = read_jsonl(tmp_path / "results.jsonl")
    assert [r["pred_sql"] for r in rows] == [preds[0], preds[1], preds[2]]
    assert [r["error_type"] for r in rows] == ["correct", "syntax_error", "wrong_result"]
    before = {p: (tmp_path / p).read_bytes() for p in ("results.jsonl", "metrics.json")}
    with pytest.raises(TypeError):  # an unserialisable question: the write fails half-way through
        evaluate_split(_toy_split(spider, question=object()), preds, tmp_path, sandbox=sandbox, progress=False)
    assert {p: (tmp_path / p).read_bytes() for p in before} == before
    assert json.loads(before["metrics.json"]) == m
    # the verdicts of the failed run are kept for a resume (results.partial.jsonl), no temp file is left
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "metrics.json", "results.jsonl",
                                                          "results.partial.jsonl"]
    assert len(read_jsonl(tmp_path / "results.partial.jsonl")) == 3


# -------------------------------------------------------------------------------------------- 7 clear errors


def _eval_cli(spider: Path, pred: Path, out: Path, *extra: str) -> tuple[int, str]:
    r = CliRunner().invoke(app, ["eval-sql", "--spider-dir", str(spider), "--pred", str(pred), "--out", str(out),
                                 *extra])
    return r.exit_code, r.output


@pytest.mark.parametrize("content,match", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is a binary file"),
    ("SELECT 'caf\u00e9'\n".encode("latin-1") * 3, "is not UTF-8 text"),
    (b'{"index": 0, "sql": 42}\n', "'sql' is int, not a string"),
    (b'{"index": 0, "sql": ["SELECT 1"]}\n', "'sql' is list, not a string"),
    (b'[{"index": 0, "sql": "SELECT 1"}]\n', "is a JSON array, not JSONL"),
    (b'[\n  {"index": 0, "sql": "SELECT 1"},\n', "malformed"),
    (b'{"index": true, "sql": "SELECT 1"}\n', "lacks an integer 'index'"),
])
def test_malformed_prediction_files_get_one_line(spider: Path, tmp_path: Path, content: bytes, match: str) -> None:
    pred = tmp_path / "pred.jsonl"
    pred.write_bytes(content)
    code, out = _eval_cli(spider, pred, tmp_path / "out")
    assert code == 2 and match in out and "Traceback" not in out, out
    assert len(out.strip().splitlines()) == 1 or "sqlshift: error:" in out.splitlines()[0]


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf"])
def test_bad_timeout_is_refused(spider: Path, tmp_path: Path, timeout: str) -> None:
    pred = tmp_path / "p.sql"
    pred.write_text("SELECT 1\n" * 3)
    code, out = _eval_cli(spider, pred, tmp_path / "out", "--timeout", timeout)
    assert code == 2 and "--timeout" in out and "Traceback" not in out, out
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_bad_out_is_refused_before_any_work(spider: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"  # the out check comes first, so this is never read
    afile = tmp_path / "afile"
    afile.write_text("x")
    code, out = _eval_cli(spider, missing, afile)
    assert code == 2 and "is an existing file" in out
    code, out = _eval_cli(spider, missing, afile / "sub")
    assert code == 2 and "cannot create output folder" in out
    code, out = _eval_cli(spider, missing, Path("/proc/sqlshift-out"))
    assert code == 2 and "cannot create output folder" in out and "Traceback" not in out


def test_duplicates_warn_tabs_and_form_feeds_stay_inside_their_line(spider: Path, tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    split = load_spider(spider, "dev")
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"index": 0, "sql": "SELECT 1"}\n{"index": 1, "sql": "SELECT 2"}\n{"index": 0, "sql": "SELECT 3"}\n')
    with caplog.at_level(logging.WARNING):
        assert read_predictions(dup, split)[0]["sql"] == "SELECT 3"
    assert "index 0 on lines 1, 3" in caplog.text and "last line" in caplog.text
    text = tmp_path / "p.sql"
    text.write_text("SELECT\tcount(*)\tFROM\tt\nSELECT 1 \x0c FROM t\x0b\nSELECT '\u2028' \x85\th\n")
    got = read_predictions(text, split)
    # one prediction per line whatever sits inside (ends of lines are stripped, as before)
    assert [got[i]["sql"] for i in range(3)] == ["SELECT\tcount(*)\tFROM\tt", "SELECT 1 \x0c FROM t", "SELECT '\u2028'"]
    code, out = _eval_cli(spider, text, tmp_path / "out")
    assert code == 0, out


@pytest.mark.parametrize("content", [b"\xff\xfeq\x00,\x00A\x00\n", b"What?,a,b,c,d,A\n\x00\x01\x02,x,y,z,w,B\n"])
def test_unreadable_mmlu_csv_is_a_data_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x_test.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match="not UTF-8|NUL") as e:
        read_mmlu_csv(path, "x")
    assert "\n" not in str(e.value)


def test_unreadable_spider_files_are_data_errors(tmp_path: Path) -> None:
    (tmp_path / "database").mkdir()
    (tmp_path / "tables.json").write_bytes(b"[\xff]")
    (tmp_path / "dev.json").write_text("[]")
    with pytest.raises(DataError, match=r"tables\.json is not UTF-8"):
        load_spider(tmp_path, "dev")
    (tmp_path / "tables.json").write_text('{"db_id": "x"}')
    with pytest.raises(DataError, match="list of schemas"):
        load_spider(tmp_path, "dev")


# -------------------------------------------------------------------------------------------- 8 taxonomy


@pytest.mark.parametrize("pred,kind", [
    ("SELECT abs(-9223372036854775808)", "engine_error"),
    ("SELECT sum(x) FROM (SELECT 9223372036854775807 AS x UNION ALL SELECT 1)", "engine_error"),
    ("SELECT * FROM json_each('not json')", "engine_error"),
    ("SELECT json('x')", "engine_error"),
    ("SELECT " + "1+" * 1200 + "1", "resource_limit"),
    ("SELECT 1 UNION " * 600 + "SELECT 1", "resource_limit"),
    ("SELECT zeroblob(1e10)", "resource_limit"),
    ("SELEC 1", "syntax_error"),
    ("SELECT count(*) FROM t", "correct"),
])
def test_error_taxonomy_on_real_queries(sandbox: SqlSandbox, db: str, pred: str, kind: str) -> None:
    assert _judge(sandbox, db, pred)[0] == kind


@pytest.mark.parametrize("message,kind", [
    ("query string is too large", "resource_limit"), ("integer overflow", "engine_error"),
    ("vtable constructor failed: json_each", "engine_error"), ("database disk image is malformed", "engine_error"),
    ("parser stack overflow", "resource_limit"), ("near \"x\": syntax error", "syntax_error"),
])
def test_classify_messages(message: str, kind: str) -> None:
    assert classify_error(sqlite3.OperationalError(message)) == kind


def test_corrupted_database_is_still_gold_error(tmp_path: Path, sandbox: SqlSandbox) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    assert _judge(sandbox, str(bad), "SELECT 1", "SELECT * FROM t")[0] == "gold_error"
