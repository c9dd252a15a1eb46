"""Sandboxed execution of untrusted (model-written) SQL on sqlite databases.

A model's SQL is arbitrary input: it may try to write, attach other files, change pragmas, load extensions,
recurse forever or build a billion-row cross join. Every query therefore runs

* on a read-only, immutable connection (``mode=ro&immutable=1``), so the database file stays byte-identical;
* behind an authorizer that only allows what a plain ``SELECT`` / ``WITH`` needs;
* with a wall-clock deadline enforced inside sqlite (progress handler), a row and byte budget on the result,
  and sqlite limits (``SQLITE_LIMIT_LENGTH`` ...) so ``randomblob(1e9)`` fails instead of allocating;
* in a worker process with an address-space cap, so a crash or memory blow-up costs one verdict, not the run.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

#: verdicts the sandbox itself can return (the EX metric adds ``correct``/``wrong_result``/``gold_error``)
ERROR_TYPES = ("syntax_error", "unknown_table", "unknown_column", "timeout", "resource_limit", "forbidden",
               "empty_prediction")

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_ROWS = 200_000
DEFAULT_MAX_BYTES = 128 * 1024 * 1024
DEFAULT_MEMORY_MB = 2048
MAX_VALUE_BYTES = 100_000_000  # SQLITE_LIMIT_LENGTH: largest string/blob a query may build
MAX_SQL_BYTES = 1_000_000  # SQLITE_LIMIT_SQL_LENGTH
PROGRESS_EVERY = 1000  # sqlite VM instructions between deadline checks
FETCH_CHUNK = 1000
HARD_GRACE_S = 10.0  # extra wall time before a worker stuck outside sqlite is killed

_ALLOWED_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
_DENIED_FUNCTIONS = {"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "sqlite_dbpage"}


@dataclass
class ExecResult:
    """Verdict of one query: ``rows`` when it ran, else ``error_type`` (one of ERROR_TYPES) and ``message``."""

    rows: list[tuple[Any, ...]] | None = None
    error_type: str | None = None
    message: str | None = None
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error_type is None

    @classmethod
    def error(cls, error_type: str, message: str, elapsed_s: float = 0.0) -> ExecResult:
        return cls(rows=None, error_type=error_type, message=message, elapsed_s=elapsed_s)


@dataclass(frozen=True)
class Limits:
    """Per-query bounds, sent with each job so one pool can serve several settings."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    max_rows: int = DEFAULT_MAX_ROWS
    max_bytes: int = DEFAULT_MAX_BYTES


# ----------------------------------------------------------------------------------------------------------
# worker side: one read-only connection per database, reused across queries
# ----------------------------------------------------------------------------------------------------------

_CONNECTIONS: dict[str, sqlite3.Connection] = {}


def _authorizer(action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None) -> int:
    """Allow reading and computing only; anything that could write, attach, or configure is denied."""
    if action not in _ALLOWED_ACTIONS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def open_readonly(db_path: str | Path) -> sqlite3.Connection:
    """A locked-down connection: immutable read-only URI, authorizer, no extensions, tight sqlite limits."""
    path = Path(db_path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no database file {path}")
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True, isolation_level=None,
                           check_same_thread=False)
    # as the official evaluator does: undecodable text must not turn a correct query into an error
    conn.text_factory = lambda b: b.decode(errors="ignore")
    if hasattr(conn, "enable_load_extension"):
        conn.enable_load_extension(False)
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
    conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_BYTES)
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.set_authorizer(_authorizer)
    return conn


def _connection(db_path: str) -> sqlite3.Connection:
    conn = _CONNECTIONS.get(db_path)
    if conn is None:
        conn = _CONNECTIONS[db_path] = open_readonly(db_path)
    return conn


def _row_bytes(row: tuple[Any, ...]) -> int:
    """Rough in-memory size of a row, to bound what a query may send back."""
    return sum(len(v) if isinstance(v, (str, bytes)) else 8 for v in row)


def classify_error(exc: BaseException) -> str:
    """Map a sqlite/Python exception to the error taxonomy."""
    if isinstance(exc, MemoryError):
        return "resource_limit"
    msg = str(exc).lower()
    if "interrupted" in msg:
        return "timeout"
    if "not authorized" in msg or "authorization denied" in msg or "readonly" in msg or "read-only" in msg or "prohibited" in msg:
        return "forbidden"
    if "too big" in msg or "out of memory" in msg or "too many" in msg or "disk is full" in msg:
        return "resource_limit"
    if "no such table" in msg:
        return "unknown_table"
    if "no such column" in msg or "ambiguous column" in msg:
        return "unknown_column"
    # everything else (parse errors, wrong arity, misuse of aggregates, several statements...) is an
    # invalid query for this database
    return "syntax_error"


def run_query(db_path: str, sql: str, limits: Limits = Limits()) -> ExecResult:
    """Execute one query in this process with all bounds; never raises for a bad query."""
    start = time.monotonic()
    if not sql or not sql.strip().strip(";").strip():
        return ExecResult.error("empty_prediction", "empty SQL")
    try:
        conn = _connection(db_path)
    except (OSError, sqlite3.Error) as e:
        return ExecResult.error("resource_limit", f"cannot open database {db_path}: {e}")
    deadline = start + limits.timeout_s
    conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, PROGRESS_EVERY)
    cur = None
    try:
        cur = conn.execute(sql)
        rows, error = _fetch_bounded(cur, limits)
        if error:
            return ExecResult.error("resource_limit", error, time.monotonic() - start)
        return ExecResult(rows=rows, elapsed_s=time.monotonic() - start)
    except (sqlite3.Error, MemoryError, OverflowError, ValueError) as e:
        kind = classify_error(e)
        msg = f"{type(e).__name__}: {e}"
        if kind == "timeout":
            msg = f"query exceeded {limits.timeout_s:g} s"
        return ExecResult.error(kind, msg, time.monotonic() - start)
    finally:
        if cur is not None:
            cur.close()
        conn.set_progress_handler(None, 0)


def _fetch_bounded(cur: sqlite3.Cursor, limits: Limits) -> tuple[list[tuple[Any, ...]], str | None]:
    """Fetch in chunks, stopping as soon as the row or byte budget is exceeded."""
    rows: list[tuple[Any, ...]] = []
    nbytes = 0
    while True:
        chunk = cur.fetchmany(FETCH_CHUNK)
        if not chunk:
            return rows, None
        rows.extend(chunk)
        nbytes += sum(_row_bytes(r) for r in chunk)
        if len(rows) > limits.max_rows:
            return [], f"result has more than {limits.max_rows} rows"
        if nbytes > limits.max_bytes:
            return [], f"result is larger than {limits.max_bytes} bytes"


def _vm_size_bytes() -> int:
    """Current virtual size of this process (0 where /proc is unavailable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _init_worker(memory_mb: int | None) -> None:
    """Cap the worker's address space so a runaway query fails with out-of-memory, not the machine.

    The cap is ``memory_mb`` on top of what the worker already maps: a forked worker inherits its parent's
    address space (possibly a loaded model), which costs no memory but counts towards RLIMIT_AS.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled by the parent
    _CONNECTIONS.clear()  # never share a connection inherited through fork
    if memory_mb:
        import resource

        # sqlite's own heap cap (process-wide): holds however much address space the parent left behind
        sqlite3.connect(":memory:").execute(f"PRAGMA hard_heap_limit={memory_mb * 1024 * 1024}")
        cap = _vm_size_bytes() + memory_mb * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _worker_job(db_path: str, sql: str, limits: Limits) -> ExecResult:
    return run_query(db_path, sql, limits)


def _worker_pid() -> int:
    return os.getpid()


# ----------------------------------------------------------------------------------------------------------
# parent side
# ----------------------------------------------------------------------------------------------------------


@dataclass
class SqlSandbox:
    """Pool of sandboxed sqlite workers. Use as a context manager, or call :meth:`close`.

    ``workers=None`` uses the CPU count (at most 8). ``memory_mb`` caps each worker's extra address space.
    """

    timeout_s: float = DEFAULT_TIMEOUT_S
    max_rows: int = DEFAULT_MAX_ROWS
    max_bytes: int = DEFAULT_MAX_BYTES
    memory_mb: int | None = DEFAULT_MEMORY_MB
    workers: int | None = None
    #: "fork" (default where available): workers start in milliseconds and do not re-import the caller's
    #: __main__ (spawn/forkserver would, importing e.g. the whole CLI and torch into every worker)
    start_method: str = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    _pool: ProcessPoolExecutor | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.workers is None:
            self.workers = max(1, min(8, os.cpu_count() or 1))
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")

    @property
    def limits(self) -> Limits:
        return Limits(self.timeout_s, self.max_rows, self.max_bytes)

    # -- pool management --------------------------------------------------------------------------------
    def _get_pool(self) -> ProcessPoolExecutor:
        with self._lock:  # callers may share one sandbox across threads (e.g. DeepEval's async metrics)
            if self._pool is None:
                ctx = mp.get_context(self.start_method)
                self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                                 initializer=_init_worker, initargs=(self.memory_mb,))
            return self._pool

    def _discard_pool(self, kill: bool = False) -> None:
        """Drop the pool (after a crash, or to stop a worker stuck past its deadline)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        if kill:
            for pid in list(getattr(pool, "_processes", {}) or {}):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        pool.shutdown(wait=True, cancel_futures=True)

    def worker_pids(self, start: bool = True) -> list[int]:
        """Process ids of the live workers; ``start`` first brings the whole pool up. For tests and diagnostics."""
        if start:
            pool = self._get_pool()
            for f in [pool.submit(_worker_pid) for _ in range(self.workers or 1)]:
                f.result()
        pool = self._pool
        return list(getattr(pool, "_processes", None) or {}) if pool is not None else []

    def close(self) -> None:
        self._discard_pool()

    def __enter__(self) -> SqlSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- execution --------------------------------------------------------------------------------------
    def execute(self, db_path: str | Path, sql: str) -> ExecResult:
        """Run one query in a worker."""
        return self.execute_many([(db_path, sql)])[0]

    def execute_many(self, jobs: Sequence[tuple[str | Path, str]], progress: bool = False,
                     desc: str = "sql") -> list[ExecResult]:
        """Run queries over the pool, in input order. A worker crash costs only the guilty query."""
        if not jobs:
            return []
        results: list[ExecResult | None] = [None] * len(jobs)
        todo = list(range(len(jobs)))
        bar = tqdm(total=len(jobs), desc=desc, disable=not progress, leave=False)
        try:
            # round 1: everything in parallel; round 2: survivors of a crash in parallel again;
            # after that, one at a time so the query that keeps breaking the pool is identified
            for serial in (False, False, True):
                todo = self._run_round(jobs, todo, results, bar, serial)
                if not todo:
                    break
        finally:
            bar.close()
        for i in todo:  # unreachable in practice: serial rounds resolve every job
            results[i] = ExecResult.error("resource_limit", "worker pool kept failing")
        return results  # type: ignore[return-value]

    def _run_round(self, jobs: Sequence[tuple[str | Path, str]], todo: list[int], results: list[ExecResult | None],
                   bar: tqdm, serial: bool) -> list[int]:
        """Submit ``todo``; fill ``results``; return the indices lost to a broken pool (to retry)."""
        if serial:
            for i in todo:
                results[i] = self._run_alone(jobs[i])
                bar.update(1)
            return []
        pool = self._get_pool()
        limits = self.limits
        futures: dict[int, Future[ExecResult]] = {}
        try:
            for i in todo:
                futures[i] = pool.submit(_worker_job, str(jobs[i][0]), jobs[i][1], limits)
        except BrokenProcessPool:
            pass
        lost: list[int] = [i for i in todo if i not in futures]
        for i, fut in futures.items():
            try:
                results[i] = fut.result(timeout=self._hard_timeout(len(todo)))
                bar.update(1)
            except (BrokenProcessPool, CancelledError):  # cancelled: the pool was dropped under it
                lost.append(i)
            except FutureTimeout:
                self._discard_pool(kill=True)
                lost.append(i)
        if lost:
            self._discard_pool(kill=True)
        return sorted(set(lost))

    def _hard_timeout(self, n_jobs: int) -> float:
        """Wall-clock bound on waiting for one future (queueing included) before the pool is declared stuck."""
        per_worker = math.ceil(n_jobs / (self.workers or 1))
        return (self.timeout_s + HARD_GRACE_S) * max(1, per_worker) + 30.0

    def _run_alone(self, job: tuple[str | Path, str]) -> ExecResult:
        """Run one query with the pool to itself; a crash or hang here is this query's fault."""
        pool = self._get_pool()
        try:
            return pool.submit(_worker_job, str(job[0]), job[1], self.limits).result(
                timeout=self.timeout_s + HARD_GRACE_S + 30.0)
        except (BrokenProcessPool, CancelledError):
            self._discard_pool(kill=True)
            return ExecResult.error("resource_limit", "the query crashed its worker process (memory or sqlite crash)")
        except FutureTimeout:
            self._discard_pool(kill=True)
            return ExecResult.error("timeout", f"query did not return within {self.timeout_s:g} s (worker killed)")


def execute_sql(db_path: str | Path, sql: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> ExecResult:
    """One-off convenience: run a single query in a fresh one-worker sandbox."""
    with SqlSandbox(timeout_s=timeout_s, workers=1) as sb:
        return sb.execute(db_path, sql)

