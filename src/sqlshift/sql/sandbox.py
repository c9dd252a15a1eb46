"""Sandboxed execution of untrusted (model-written) SQL on sqlite databases.

A model's SQL is arbitrary input: it may try to write, attach other files, change pragmas, load extensions,
recurse forever or build a billion-row cross join. Every query therefore runs

* on a read-only, immutable connection (``mode=ro&immutable=1``), so the database file stays byte-identical;
* behind an authorizer that only allows what a plain ``SELECT`` / ``WITH`` needs;
* with a wall-clock deadline enforced inside sqlite (progress handler), a row and byte budget on the result,
  and sqlite limits (``SQLITE_LIMIT_LENGTH`` ...) so ``randomblob(1e9)`` fails instead of allocating;
* in a worker process with an address-space cap, so a crash or memory blow-up costs one verdict, not the run;
* with temp storage in memory (under the heap cap), SQL longer than ``MAX_SQL_BYTES`` refused up front, and
  workers that die with their parent.

This module is the parent side (the pool); ``sql_worker`` is what runs inside a worker. Callers that only need a
verdict (the EX metric) use :meth:`SqlSandbox.run_jobs` so result rows never travel back to the parent.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tqdm import tqdm

from sqlshift.sql.worker import (DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS, DEFAULT_MEMORY_MB,  # noqa: F401
                                 DEFAULT_TIMEOUT_S, ERROR_TYPES, FETCH_CHUNK, MAX_SQL_BYTES, MAX_TIMEOUT_S,
                                 MAX_VALUE_BYTES, PROGRESS_EVERY, ExecResult, Limits, classify_error, init_worker,
                                 open_readonly, precheck_sql, run_query, worker_pid, worker_query)

HARD_GRACE_S = 10.0  # extra wall time before a worker stuck outside sqlite is killed
MAX_WAIT_S = 1e7  # a future's wait is clamped under threading.TIMEOUT_MAX (a huge timeout overflowed it)

T = TypeVar("T")
#: builds a job's verdict when the job never returned: (error_type, message) -> verdict
OnFailure = Callable[[str, str], Any]
#: told each verdict as it arrives: (job index, verdict)
OnResult = Callable[[int, Any], None]


@dataclass
class SqlSandbox:
    """Pool of sandboxed sqlite workers. Use as a context manager, or call :meth:`close`.

    ``workers=None`` uses the CPU count (at most 8). ``memory_mb`` caps each worker's extra address space (and
    sqlite's heap, temp storage included).
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
        if not (isinstance(self.timeout_s, (int, float)) and 0 < self.timeout_s <= MAX_TIMEOUT_S):
            raise ValueError(f"timeout_s must be a positive number of seconds up to {MAX_TIMEOUT_S:g}, "
                             f"got {self.timeout_s!r}")

    @property
    def limits(self) -> Limits:
        return Limits(self.timeout_s, self.max_rows, self.max_bytes)

    # -- pool management --------------------------------------------------------------------------------
    def _get_pool(self) -> ProcessPoolExecutor:
        with self._lock:  # callers may share one sandbox across threads (e.g. DeepEval's async metrics)
            if self._pool is None:
                ctx = mp.get_context(self.start_method)
                # workers must die with this process: the kernel's parent-death signal only when they are forked
                # from the main thread (it fires when the forking *thread* exits), a parent-pid watchdog always
                forked_here = self.start_method in ("fork", "spawn")
                main = threading.current_thread() is threading.main_thread()
                initargs = (self.memory_mb, os.getpid() if forked_here else None, forked_here and main)
                self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                                 initializer=init_worker, initargs=initargs)
                self._pool.submit(worker_pid)  # start the workers now, from this thread (fork starts them all)
            return self._pool

    def _discard_pool(self, kill: bool = False, wait: bool = True) -> None:
        """Drop the pool (after a crash, or to stop a worker stuck past its deadline); ``kill`` SIGKILLs its workers."""
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
        pool.shutdown(wait=wait, cancel_futures=True)

    def worker_pids(self, start: bool = True) -> list[int]:
        """Process ids of the live workers; ``start`` first brings the whole pool up. For tests and diagnostics."""
        if start:
            pool = self._get_pool()
            for f in [pool.submit(worker_pid) for _ in range(self.workers or 1)]:
                f.result()
        pool = self._pool
        return list(getattr(pool, "_processes", None) or {}) if pool is not None else []

    def close(self) -> None:
        self._discard_pool()

    def abort(self) -> None:
        """Stop now: cancel queued jobs, SIGKILL the workers (a hostile query may run for its whole timeout)."""
        self._discard_pool(kill=True, wait=False)

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
        """Run queries over the pool, in input order, rows included. A worker crash costs only the guilty query.

        Empty and over-long SQL get their verdict here, without a worker (a 10 MB query is never shipped).
        """
        limits = self.limits
        early = [precheck_sql(sql) for _, sql in jobs]
        todo = [i for i, e in enumerate(early) if e is None]
        ran = self.run_jobs(worker_query, [(str(jobs[i][0]), jobs[i][1], limits) for i in todo], ExecResult.error,
                            progress=progress, desc=desc)
        for i, res in zip(todo, ran):
            early[i] = res
        return early  # type: ignore[return-value]

    def run_jobs(self, fn: Callable[..., T], args: Sequence[tuple[Any, ...]], on_failure: OnFailure,
                 progress: bool = False, desc: str = "sql", on_result: OnResult | None = None) -> list[T]:
        """``fn(*a)`` in a worker for each ``a`` of ``args``, results in input order.

        ``fn`` must be a module-level function that bounds itself (``run_query`` does). A job whose worker
        crashed gets ``on_failure("resource_limit", msg)``, one stuck past the deadline ``on_failure("timeout",
        msg)``. Return small verdicts from ``fn`` to keep the parent's memory flat. ``on_result(i, verdict)`` is
        called as each verdict arrives (e.g. to save it, so an interrupted run keeps it). On Ctrl-C the queued
        jobs are cancelled and the running workers killed before ``KeyboardInterrupt`` propagates.
        """
        if not args:
            return []
        results: list[Any] = [None] * len(args)
        todo = list(range(len(args)))
        bar = tqdm(total=len(args), desc=desc, disable=not progress, leave=False)
        try:
            # round 1: everything in parallel; round 2: survivors of a crash in parallel again;
            # after that, one at a time so the job that keeps breaking the pool is identified
            for serial in (False, False, True):
                todo = self._run_round(fn, args, todo, results, on_failure, bar, serial, on_result)
                if not todo:
                    break
        except BaseException:  # Ctrl-C (or any error) while queries run: stop in seconds, not after every query
            self.abort()
            raise
        finally:
            bar.close()
        for i in todo:  # unreachable in practice: serial rounds resolve every job
            results[i] = on_failure("resource_limit", "worker pool kept failing")
        return results

    def _run_round(self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]], todo: list[int],
                   results: list[Any], on_failure: OnFailure, bar: tqdm, serial: bool,
                   on_result: OnResult | None = None) -> list[int]:
        """Submit ``todo``; fill ``results``; return the indices lost to a broken pool (to retry)."""
        if serial:
            for i in todo:
                results[i] = self._run_alone(fn, args[i], on_failure)
                if on_result is not None:
                    on_result(i, results[i])
                bar.update(1)
            return []
        pool = self._get_pool()
        futures: dict[int, Future[Any]] = {}
        try:
            for i in todo:
                futures[i] = pool.submit(fn, *args[i])
        except BrokenProcessPool:
            pass
        lost: list[int] = [i for i in todo if i not in futures]
        for i, fut in futures.items():
            try:
                results[i] = fut.result(timeout=self._hard_timeout(len(todo)))
                if on_result is not None:
                    on_result(i, results[i])
                bar.update(1)
            except (BrokenProcessPool, CancelledError):  # cancelled: the pool was dropped under it
                lost.append(i)
            except FutureTimeout:
                self._discard_pool(kill=True)
                lost.append(i)
            futures[i] = None  # type: ignore[assignment]  # drop the finished future (and its arguments)
        if lost:
            self._discard_pool(kill=True)
        return sorted(set(lost))

    def _hard_timeout(self, n_jobs: int) -> float:
        """Wall-clock bound on waiting for one future (queueing included) before the pool is declared stuck."""
        per_worker = math.ceil(n_jobs / (self.workers or 1))
        return min((self.timeout_s + HARD_GRACE_S) * max(1, per_worker) + 30.0, MAX_WAIT_S)

    def _run_alone(self, fn: Callable[..., Any], job_args: tuple[Any, ...], on_failure: OnFailure) -> Any:
        """Run one job with the pool to itself; a crash or hang here is this job's fault."""
        pool = self._get_pool()
        try:
            return pool.submit(fn, *job_args).result(timeout=self.timeout_s + HARD_GRACE_S + 30.0)
        except (BrokenProcessPool, CancelledError):
            self._discard_pool(kill=True)
            return on_failure("resource_limit", "the query crashed its worker process (memory or sqlite crash)")
        except FutureTimeout:
            self._discard_pool(kill=True)
            return on_failure("timeout", f"query did not return within {self.timeout_s:g} s (worker killed)")


