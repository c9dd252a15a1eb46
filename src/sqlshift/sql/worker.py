"""The worker side of the SQL sandbox: one bounded query, run where a blow-up costs one verdict.

Everything that touches untrusted SQL happens here, inside a worker process with an address-space cap and a
sqlite heap cap: opening the read-only connection, executing, fetching under a row and byte budget (every value
counted at its real in-memory cost), and (see ``metrics.execution``) normalising and comparing results. Temp
b-trees and sorts are kept in memory (``temp_store=MEMORY``), so they fall under the heap cap instead of writing
gigabytes of temp files. Workers die with their parent (``PR_SET_PDEATHSIG`` plus a parent-pid watchdog).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

#: verdicts the sandbox itself can return (the EX metric adds ``correct``/``wrong_result``/``gold_error``)
ERROR_TYPES = ("syntax_error", "unknown_table", "unknown_column", "timeout", "resource_limit", "engine_error",
               "forbidden", "empty_prediction")

DEFAULT_TIMEOUT_S = 30.0
MAX_TIMEOUT_S = 86_400.0  # one day per query: anything longer is a typo (``--timeout 1e8``)
DEFAULT_MAX_ROWS = 200_000
DEFAULT_MAX_BYTES = 128 * 1024 * 1024
DEFAULT_MEMORY_MB = 2048
MAX_VALUE_BYTES = 100_000_000  # SQLITE_LIMIT_LENGTH: largest string/blob a query may build
#: longest SQL (UTF-8 bytes) accepted, also sqlite's SQLITE_LIMIT_SQL_LENGTH: longer SQL gets ``resource_limit``
#: before any parsing. Spider's longest gold query is under 1 kB; normalising 10 MB of SQL cost 15-34 s and 1.3 GB.
MAX_SQL_BYTES = 100_000
PROGRESS_EVERY = 1000  # sqlite VM instructions between deadline checks
FETCH_CHUNK = 1000
MAX_MESSAGE_CHARS = 300  # error messages may quote the query (e.g. a 100 kB column name)
PARENT_POLL_S = 0.5
_TUPLE_BYTES = 56  # a row tuple's header (GC head included); each value adds an 8-byte slot plus its object

_ALLOWED_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
_DENIED_FUNCTIONS = {"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "sqlite_dbpage"}


@dataclass
class ExecResult:
    """Verdict of one query: ``rows`` when it ran, else ``error_type`` (one of ERROR_TYPES) and ``message``."""

    rows: list[tuple[Any, ...]] | None = None
    error_type: str | None = None
    message: str | None = None
    elapsed_s: float = 0.0
    columns: list[str] | None = None  # result column names (schema prompts show them above sample rows)

    @property
    def ok(self) -> bool:
        return self.error_type is None

    @classmethod
    def error(cls, error_type: str, message: str, elapsed_s: float = 0.0) -> ExecResult:
        return cls(rows=None, error_type=error_type, message=short_message(message), elapsed_s=elapsed_s)


@dataclass(frozen=True)
class Limits:
    """Per-query bounds, sent with each job so one pool can serve several settings."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    max_rows: int = DEFAULT_MAX_ROWS
    max_bytes: int = DEFAULT_MAX_BYTES


def short_message(message: str) -> str:
    """Messages are kept for every prediction until the end: bound them (a column name may be 100 kB)."""
    return message if len(message) <= MAX_MESSAGE_CHARS else message[:MAX_MESSAGE_CHARS - 3] + "..."


def precheck_sql(sql: str | None, max_bytes: int = MAX_SQL_BYTES) -> ExecResult | None:
    """The verdicts that need no database: empty SQL, or SQL over the length cap (checked before any parsing)."""
    if not sql or not sql.strip().strip(";").strip():
        return ExecResult.error("empty_prediction", "empty SQL")
    n = len(sql) if len(sql) > max_bytes else len(sql.encode("utf-8", "surrogatepass"))
    if n > max_bytes:
        return ExecResult.error("resource_limit", f"SQL is over the {max_bytes}-byte length limit ({n} long)")
    return None


# ----------------------------------------------------------------------------------------------------------
# one read-only connection per database, reused across queries
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
    """A locked-down connection: immutable read-only URI, authorizer, no extensions, tight sqlite limits.

    Temp storage (sorts, GROUP BY, DISTINCT, materialised views) lives in memory, under the worker's heap cap,
    instead of spilling unbounded temp files to disk.
    """
    path = Path(db_path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no database file {path}")
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True, isolation_level=None,
                           check_same_thread=False)
    # as the official evaluator does: undecodable text must not turn a correct query into an error
    conn.text_factory = lambda b: b.decode(errors="ignore")
    if hasattr(conn, "enable_load_extension"):
        conn.enable_load_extension(False)
    conn.execute("PRAGMA temp_store=MEMORY")  # before the authorizer, which denies every PRAGMA
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


def _chunk_bytes(rows: list[tuple[Any, ...]]) -> int:
    """In-memory size of fetched rows: each tuple's header, one 8-byte slot per value, and each value's object.

    Shared objects (``None``, ``''``, small ints) are counted as if fresh, so the bound errs on the safe side;
    counting an empty string as 0 bytes let 200k rows of 150 empty columns cost 245 MB.
    """
    return len(rows) * _TUPLE_BYTES + 8 * sum(map(len, rows)) + sum(map(sys.getsizeof, chain.from_iterable(rows)))


_RESOURCE_NAMES = {"SQLITE_NOMEM", "SQLITE_TOOBIG", "SQLITE_FULL"}
_ENGINE_NAMES = {"SQLITE_IOERR", "SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_CANTOPEN", "SQLITE_BUSY",
                 "SQLITE_LOCKED", "SQLITE_INTERNAL", "SQLITE_MISMATCH", "SQLITE_RANGE", "SQLITE_NOLFS"}
_RESOURCE_WORDS = ("too big", "too large", "too many", "out of memory", "disk is full", "stack overflow",
                   "maximum depth")
_ENGINE_WORDS = ("integer overflow", "vtable constructor failed", "malformed json", "disk i/o", "malformed",
                 "unable to open", "cannot open", "not a database", "database is locked")


def classify_error(exc: BaseException) -> str:
    """Map a sqlite/Python exception to the error taxonomy.

    ``resource_limit``: a bound of the sandbox or of sqlite was hit (memory, sizes, depth, counts).
    ``engine_error``: sqlite accepted the query but failed running it (integer overflow, a table-valued
    function's constructor, malformed JSON, I/O or a damaged file). ``syntax_error``: anything else the database
    rejects (parse errors, wrong arity, misuse of aggregates, several statements, unencodable text).
    """
    if isinstance(exc, MemoryError):
        return "resource_limit"
    name = getattr(exc, "sqlite_errorname", "") or ""
    msg = str(exc).lower()
    if name == "SQLITE_INTERRUPT" or "interrupted" in msg:
        return "timeout"
    if name in ("SQLITE_AUTH", "SQLITE_READONLY") or any(
            w in msg for w in ("not authorized", "authorization denied", "readonly", "read-only", "prohibited")):
        return "forbidden"
    if name in _RESOURCE_NAMES or any(w in msg for w in _RESOURCE_WORDS):
        return "resource_limit"
    if "no such table" in msg:
        return "unknown_table"
    if "no such column" in msg or "ambiguous column" in msg:
        return "unknown_column"
    if name in _ENGINE_NAMES or isinstance(exc, OverflowError) or any(w in msg for w in _ENGINE_WORDS):
        return "engine_error"
    return "syntax_error"


def run_query(db_path: str, sql: str, limits: Limits = Limits()) -> ExecResult:
    """Execute one query in this process with all bounds; never raises for a bad query."""
    start = time.monotonic()
    early = precheck_sql(sql)
    if early is not None:
        return early
    try:
        conn = _connection(db_path)
    except (OSError, sqlite3.Error) as e:
        return ExecResult.error("engine_error", f"cannot open database {db_path}: {e}")
    deadline = start + limits.timeout_s
    conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, PROGRESS_EVERY)
    cur = None
    try:
        cur = conn.execute(sql)
        rows, error = _fetch_bounded(cur, limits)
        if error:
            return ExecResult.error("resource_limit", error, time.monotonic() - start)
        return ExecResult(rows=rows, elapsed_s=time.monotonic() - start,
                          columns=[short_message(str(d[0])) for d in cur.description or ()])
    except (sqlite3.Error, MemoryError, OverflowError, ValueError) as e:
        kind = classify_error(e)
        msg = f"{type(e).__name__}: {ascii(str(e))[1:-1] if isinstance(e, UnicodeError) else e}"
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
        nbytes += _chunk_bytes(chunk)
        if len(rows) > limits.max_rows:
            return [], f"result has more than {limits.max_rows} rows"
        if nbytes > limits.max_bytes:
            return [], f"result is larger than {limits.max_bytes} bytes in memory"


# ----------------------------------------------------------------------------------------------------------
# worker process setup
# ----------------------------------------------------------------------------------------------------------


def _vm_size_bytes() -> int:
    """Current virtual size of this process (0 where /proc is unavailable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _die_with_parent(parent_pid: int | None, pdeathsig: bool) -> None:
    """Never outlive the parent: the kernel's parent-death signal, and a watchdog on the parent pid.

    PR_SET_PDEATHSIG fires when the *thread* that forked us exits, so the parent asks for it only when it forks
    from its main thread; the watchdog (reparenting changes ``getppid``) covers every other case.
    """
    if pdeathsig and sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if parent_pid is None:
        return
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="sqlshift-parent-watch", daemon=True).start()


def init_worker(memory_mb: int | None, parent_pid: int | None = None, pdeathsig: bool = False) -> None:
    """Set up a worker: die with the parent, ignore Ctrl-C, cap the address space and sqlite's heap.

    The cap is ``memory_mb`` on top of what the worker already maps: a forked worker inherits its parent's
    address space (possibly a loaded model), which costs no memory but counts towards RLIMIT_AS.
    """
    _die_with_parent(parent_pid, pdeathsig)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled by the parent
    _CONNECTIONS.clear()  # never share a connection inherited through fork
    if memory_mb:
        import resource

        # sqlite's own heap cap (process-wide), which also bounds in-memory temp storage
        sqlite3.connect(":memory:").execute(f"PRAGMA hard_heap_limit={memory_mb * 1024 * 1024}")
        cap = _vm_size_bytes() + memory_mb * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def worker_query(db_path: str, sql: str, limits: Limits) -> ExecResult:
    """Pool job: run one query (rows travel back to the caller)."""
    return run_query(db_path, sql, limits)


def worker_pid() -> int:
    return os.getpid()
