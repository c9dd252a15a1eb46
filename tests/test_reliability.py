"""Issue 27, reliability round 3: Ctrl-C in seconds, no write through a planted link, bounded reads, one-line errors.

Signals, links and the CLI are tested through a real ``python -m sqlshift`` subprocess; the heavy timing (Ctrl-C
with hostile queries, before/after) lives in benchmarks/bench_hostile.py (``--cases ctrlc``).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")
GOLD = "SELECT count(*) FROM t"
#: never returns on its own: only the per-query timeout (or a kill) ends it
ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def make_spider(root: Path, n: int = 3) -> Path:
    """Spider layout: database ``h`` (table t, 50 rows), ``n`` dev questions whose gold is ``GOLD``."""
    (root / "database" / "h").mkdir(parents=True)
    con = sqlite3.connect(root / "database" / "h" / "h.sqlite")
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"row {i}") for i in range(50)])
    con.commit()
    con.close()
    (root / "dev.json").write_text(json.dumps([{"db_id": "h", "query": GOLD, "question": f"q{i}"}
                                               for i in range(n)]))
    (root / "tables.json").write_text(json.dumps([{"db_id": "h", "table_names_original": ["t"],
                                                   "column_names_original": [[-1, "*"], [0, "id"], [0, "s"]],
                                                   "column_types": ["text", "number", "text"]}]))
    return root


def write_preds(path: Path, sqls: list[str]) -> Path:
    path.write_text("".join(json.dumps({"index": i, "sql": s}) + "\n" for i, s in enumerate(sqls)))
    return path


def sqlshift(*args: str | Path, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1", "DEEPEVAL_TELEMETRY_OPT_OUT": "YES"}
    return subprocess.run([sys.executable, "-m", "sqlshift", *map(str, args)], env=env, cwd=cwd, text=True,
                          capture_output=True, timeout=timeout)


def last_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


# -------------------------------------------------------------------------------------------- 1 Ctrl-C in seconds


def test_ctrl_c_during_hostile_queries_exits_in_seconds_keeps_verdicts_and_resumes(tmp_path: Path) -> None:
    spider = make_spider(tmp_path / "spider", n=8)
    pred = write_preds(tmp_path / "pred.jsonl", [GOLD, GOLD] + [ENDLESS] * 6)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "sqlshift", "eval-sql", "--spider-dir", str(spider), "--pred", str(pred),
           "--out", str(out), "--timeout", "120"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = out / "results.partial.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (partial.is_file() and partial.read_text().count("\n") >= 2):
        time.sleep(0.1)
    assert partial.is_file(), "the two quick verdicts were never saved"
    time.sleep(1.0)  # the endless queries are running now
    workers = _children(proc.pid)
    assert workers, "no sandbox workers running"
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    took = time.monotonic() - start
    assert proc.returncode == 130, err
    assert took < 10, f"Ctrl-C took {took:.1f} s"
    assert "rerun the same command to resume" in err.strip().splitlines()[-1]
    assert "Traceback" not in err
    time.sleep(0.5)
    assert not [w for w in workers if Path(f"/proc/{w}").exists() and "zombie" not in
                Path(f"/proc/{w}/status").read_text().lower()], "sandbox workers outlived Ctrl-C"
    saved = [json.loads(line) for line in partial.read_text().splitlines()]
    assert [r["error_type"] for r in saved] == ["correct", "correct"]
    assert not (out / "results.jsonl").exists()
    # resume: saved verdicts are reused (marked here to tell them from recomputed ones); the endless predictions
    # are replaced by quick ones so the rerun is short (a verdict's key includes its SQL)
    partial.write_text("".join(json.dumps({**r, "error": "kept"}) + "\n" for r in saved))
    quick = write_preds(tmp_path / "quick.jsonl", [GOLD, GOLD] + ["SELECT 1"] * 6)
    done = sqlshift("eval-sql", "--spider-dir", spider, "--pred", quick, "--out", out, "--timeout", "120")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["error"] for r in rows[:2]] == ["kept", "kept"]
    assert [r["error_type"] for r in rows[2:]] == ["wrong_result"] * 6
    assert not partial.exists()
