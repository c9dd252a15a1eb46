"""Heavy hostile cases for ``sqlshift eval-sql`` (issues 17, 27): parent memory, temp-file spill, a 10 MB
prediction, and how long Ctrl-C takes while hostile queries run.

    python benchmarks/bench_hostile.py [--cases memory,tempspill,hugesql,ctrlc] [--timeout 30] [--workers 2]
                                       [--src OTHER/src]    # e.g. an older checkout, for a before/after
                                       [--before-src OLD/src]   # ctrlc: run it on OLD too, in this same process

Each case runs the real CLI (``sqlshift eval-sql``) in a child process on a generated Spider-layout folder (one
sqlite database, 10 examples) and prints: the verdicts, the child's peak RSS (VmHWM of the parent process
alone), the peak bytes of sqlite temp files held by its workers (open ``etilqs_*`` files, which sqlite unlinks at
once, plus anything left in the child's private TMPDIR), the largest worker RSS seen, and the wall time.

* memory-N: N of the 10 predictions return 200k rows of 150 empty strings (the audit's case; ``--rows``,
  ``--cols``); the others are correct. Parent peak RSS must not grow with N.
* tempspill: ORDER BY and GROUP BY over a three-way cross join of a 1000-row table (sqlite sorts spill to temp
  files); peak temp bytes must stay bounded.
* hugesql: one 10 MB prediction.
* bigpred: a 100 MB predictions file, as JSONL (the 10 predictions repeated, as a resumed file may) and as one
  SQL per line (far more lines than questions); parent peak RSS and wall time, before/after with ``--before-src``.
* ctrlc: 2 quick predictions then 8 that never end on their own (only ``--timeout`` stops them); SIGINT goes to
  the child once every worker is busy on them; reported: seconds from SIGINT to exit, exit code, workers still
  alive 1 s after, verdicts kept in ``results.partial.jsonl``. With ``--before-src`` the same case runs on that
  checkout first, so before and after are measured in one run of this script.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

N_EXAMPLES = 10
GOLD = "SELECT count(*) FROM t"


def hostile_rows(rows: int = 200_000, cols: int = 150) -> str:
    """``rows`` rows of ``cols`` empty strings: the result budget used to count them as 0 bytes."""
    return (f"SELECT {', '.join([chr(39) * 2] * cols)} FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
            f"SELECT x + 1 FROM c LIMIT {rows}) SELECT x FROM c)")


SPILL = ["SELECT a.s, b.s, c.id FROM t a, t b, t c ORDER BY a.s || b.s || c.id",
         "SELECT a.s || b.s || c.id AS k, count(*) FROM t a, t b, t c GROUP BY k"]
HUGE = "SELECT " + "1 + " * 2_500_000 + "1"  # 10 MB
ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def build_spider(root: Path) -> Path:
    """Spider layout: database h (table t, 1000 rows of ~50 bytes) and N_EXAMPLES dev questions on it."""
    (root / "database" / "h").mkdir(parents=True)
    con = sqlite3.connect(root / "database" / "h" / "h.sqlite")
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"row {i:05d} " + "x" * 40) for i in range(1000)])
    con.commit()
    con.close()
    dev = [{"db_id": "h", "query": GOLD, "question": f"q{i}"} for i in range(N_EXAMPLES)]
    (root / "dev.json").write_text(json.dumps(dev))
    (root / "tables.json").write_text(json.dumps([{"db_id": "h"}]))
    return root


def write_predictions(path: Path, hostile: list[str]) -> Path:
    sqls = hostile + [GOLD] * (N_EXAMPLES - len(hostile))
    with path.open("w", encoding="utf-8") as f:
        for i, sql in enumerate(sqls):
            f.write(json.dumps({"index": i, "sql": sql}) + "\n")
    return path


def big_predictions(path: Path, jsonl: bool, size: int = 100_000_000) -> Path:
    """About ``size`` bytes of predictions: JSONL repeating indices 0..N-1, or one (padded) SQL per line."""
    with path.open("w", encoding="utf-8") as f:
        written, i = 0, 0
        while written < size:
            line = (json.dumps({"index": i % N_EXAMPLES, "sql": GOLD + " -- " + "x" * 60}) if jsonl
                    else GOLD + " -- " + "x" * 80) + "\n"
            f.write(line)
            written += len(line)
            i += 1
    return path


def _temp_bytes(procs: list[psutil.Process], tmpdir: Path) -> int:
    """Bytes of sqlite temp files: open etilqs_* files of ``procs`` (sqlite unlinks them at once) + any other
    file left in ``tmpdir``."""
    total = sum(p.stat().st_blocks * 512 for p in tmpdir.rglob("*") if p.is_file() and "etilqs" not in p.name)
    for proc in procs:
        try:
            fds = os.listdir(f"/proc/{proc.pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{proc.pid}/fd/{fd}")
                if "etilqs" in link:
                    total += os.stat(f"/proc/{proc.pid}/fd/{fd}").st_blocks * 512
            except OSError:
                pass
    return total


def run_case(name: str, spider: Path, pred: Path, work: Path, timeout: float, workers: int,
             src: str | None) -> dict:
    """Run eval-sql in a child; poll its workers' temp files and RSS; the child reports its own VmHWM."""
    out, tmpdir = work / f"out-{name}", work / f"tmp-{name}"
    tmpdir.mkdir()
    env = {**os.environ, "TMPDIR": str(tmpdir), "SQLITE_TMPDIR": str(tmpdir), "SQLSHIFT_BENCH_WORKERS": str(workers)}
    if src:
        env["PYTHONPATH"] = src
    cmd = [sys.executable, __file__, "--child", "eval-sql", "--spider-dir", str(spider), "--pred", str(pred),
           "--out", str(out), "--timeout", str(timeout)]
    peak = {"temp": 0, "worker_rss": 0}
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def watch() -> None:
        me = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                kids = me.children(recursive=True)
                peak["temp"] = max(peak["temp"], _temp_bytes(kids, tmpdir))
                peak["worker_rss"] = max([peak["worker_rss"], *(k.memory_info().rss for k in kids)])
            except psutil.Error:
                pass
            time.sleep(0.05)

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    _, err = proc.communicate()
    wall = time.monotonic() - start
    done.set()
    th.join()
    report = next((json.loads(line[6:]) for line in err.splitlines() if line.startswith("BENCH ")), {})
    verdicts: dict[str, int] = {}
    if (out / "results.jsonl").is_file():
        for line in (out / "results.jsonl").read_text(encoding="utf-8").split("\n"):
            if line.strip():
                t = json.loads(line)["error_type"]
                verdicts[t] = verdicts.get(t, 0) + 1
    return {"case": name, "rc": proc.returncode, "verdicts": verdicts,
            "parent_peak_rss_mb": report.get("vm_hwm_kb", 0) / 1024, "peak_temp_mb": peak["temp"] / 1e6,
            "max_worker_rss_mb": peak["worker_rss"] / 2**20, "wall_s": wall,
            "stderr_tail": [line for line in err.strip().splitlines() if not line.startswith("BENCH ")][-1:]
            if proc.returncode else []}


def _busy_workers(pid: int) -> list[psutil.Process]:
    try:
        kids = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    return [k for k in kids if k.is_running() and k.status() == psutil.STATUS_RUNNING]


def run_ctrlc(name: str, spider: Path, pred: Path, work: Path, timeout: float, workers: int,
              src: str | None) -> dict:
    """eval-sql on endless predictions; SIGINT once ``workers`` workers run them; time until the child exits."""
    out = work / f"out-{name}"
    env = {**os.environ, "SQLSHIFT_BENCH_WORKERS": str(workers), "PYTHONPATH": src or os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, __file__, "--child", "eval-sql", "--spider-dir", str(spider), "--pred", str(pred),
           "--out", str(out), "--timeout", str(timeout)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60 and len(_busy_workers(proc.pid)) < workers:
        time.sleep(0.1)
    time.sleep(2.0)  # every worker is inside an endless query now
    pids = [k.pid for k in psutil.Process(proc.pid).children(recursive=True)]
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate()
    took = time.monotonic() - start
    time.sleep(1.0)
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    partial = out / "results.partial.jsonl"
    kept = len(partial.read_text().splitlines()) if partial.is_file() else 0
    lines = [line for line in err.strip().splitlines() if line.strip() and not line.startswith("BENCH ")]
    return {"case": name, "rc": proc.returncode, "exit_after_sigint_s": took, "workers_alive_after_1s": len(alive),
            "verdicts_kept": kept, "last_line": lines[-1][:160] if lines else ""}


def child(argv: list[str]) -> None:
    """Run the CLI in this process and report its own peak RSS (VmHWM excludes the workers)."""
    import atexit

    def report() -> None:
        hwm = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                   if line.startswith("VmHWM:"))
        print("BENCH " + json.dumps({"vm_hwm_kb": hwm}), file=sys.stderr, flush=True)

    atexit.register(report)
    workers = int(os.environ.get("SQLSHIFT_BENCH_WORKERS", "0"))
    if workers:  # eval-sql sizes its pool by the CPU count: pin it, so runs on other machines compare
        os.cpu_count = lambda: workers
    from sqlshift.cli import app

    app(argv, prog_name="sqlshift")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="memory,tempspill,hugesql")
    ap.add_argument("--timeout", type=float, default=30.0, help="eval-sql --timeout (seconds per query)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rows", type=int, default=200_000, help="rows of the memory case's hostile query")
    ap.add_argument("--cols", type=int, default=150, help="empty-string columns of the memory case's hostile query")
    ap.add_argument("--src", default=None, help="PYTHONPATH for the child (another checkout's src/)")
    ap.add_argument("--before-src", default=None, help="ctrlc: also run on this checkout's src/ (before), first")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args()
    cases = args.cases.split(",")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        work = Path(tmp)
        spider = build_spider(work / "spider")
        plan: list[tuple[str, list[str]]] = []
        if "memory" in cases:
            hostile = hostile_rows(args.rows, args.cols)
            plan += [("memory-1", [hostile]), ("memory-10", [hostile] * 10)]
        if "tempspill" in cases:
            plan.append(("tempspill", SPILL))
        if "hugesql" in cases:
            plan.append(("hugesql", [HUGE]))
        if "ctrlc" in cases:
            pred = write_predictions(work / "ctrlc.jsonl", [GOLD, GOLD] + [ENDLESS] * (N_EXAMPLES - 2))
            runs = ([("ctrlc-before", args.before_src)] if args.before_src else []) + [("ctrlc", args.src)]
            for name, src in runs:
                row = run_ctrlc(name, spider, pred, work, args.timeout, args.workers, src)
                rows.append(row)
                print(f"{row['case']:<12} rc={row['rc']} SIGINT -> exit {row['exit_after_sigint_s']:6.1f} s | "
                      f"workers alive 1 s later: {row['workers_alive_after_1s']} | verdicts kept: "
                      f"{row['verdicts_kept']} | {row['last_line']}", flush=True)
        if "bigpred" in cases:
            for name, pred in (("bigpred-jsonl", big_predictions(work / "big.jsonl", jsonl=True)),
                               ("bigpred-sql", big_predictions(work / "big.sql", jsonl=False))):
                for tag, src in ([("-before", args.before_src)] if args.before_src else []) + [("", args.src)]:
                    row = run_case(name + tag, spider, pred, work, args.timeout, args.workers, src)
                    rows.append(row)
                    print(f"{row['case']:<20} rc={row['rc']} parent peak RSS {row['parent_peak_rss_mb']:7.0f} MB | "
                          f"wall {row['wall_s']:6.1f} s | {row['verdicts']} {' '.join(row['stderr_tail'])[:150]}",
                          flush=True)
        for name, hostile in plan:
            pred = write_predictions(work / f"{name}.jsonl", hostile)
            row = run_case(name, spider, pred, work, args.timeout, args.workers, args.src)
            rows.append(row)
            print(f"{row['case']:<10} rc={row['rc']} parent peak RSS {row['parent_peak_rss_mb']:7.0f} MB | "
                  f"peak temp {row['peak_temp_mb']:8.1f} MB | max worker RSS {row['max_worker_rss_mb']:6.0f} MB | "
                  f"wall {row['wall_s']:6.1f} s | {row['verdicts']} {' '.join(row['stderr_tail'])}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        main()
