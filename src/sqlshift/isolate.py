"""Run one function in a fresh process and hand its result or its exception back.

Why: a training run holds GPU memory that the caching allocator, peft and the optimizer never fully give back
(≈ 36 GiB after a 1.5B LoRA epoch on an H100), so an evaluation engine started after it in the same process
cannot get its share. A spawned child frees everything when it exits, and spawn (not fork) stays safe after
the parent has touched CUDA.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from sqlshift.errors import SqlshiftError

log = logging.getLogger(__name__)

#: seconds a child gets to stop on Ctrl-C (the trainer saves nothing then) before it is killed
STOP_GRACE_S = 10.0

_live: set[Any] = set()  # children running now (several when threads each run one: executor overlap)
_live_lock = threading.Lock()


def run_isolated(fn: Callable[..., Any], *args: Any, name: str = "sqlshift-child") -> Any:
    """``fn(*args)`` in a spawned process: its return value, or its exception raised here (Ctrl-C stops it too)."""
    ctx = multiprocessing.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, fn, args), name=name)
    with _live_lock:
        proc.start()
        _live.add(proc)
    send.close()
    try:
        ok, value = recv.recv()
    except EOFError:  # the child died without a word: killed, out of memory, a crash in native code
        proc.join()
        raise SqlshiftError(f"{name} died with exit code {proc.exitcode} before finishing",
                            "see run.log; exit code -9 usually means the machine ran out of memory") from None
    except KeyboardInterrupt:
        stop(proc)
        raise
    finally:
        recv.close()
        with _live_lock:
            _live.discard(proc)
    proc.join()
    if ok:
        return value
    raise value


def stop_children() -> None:
    """Stop every child still running (Ctrl-C or a failure in the parent while other threads wait on theirs), all
    within one grace period; each waiting thread then gets its child's end as an error."""
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        interrupt(proc)
    for proc in procs:
        reap(proc)


def stop(proc: Any) -> None:
    """Pass Ctrl-C on to the child, then kill it if it has not stopped within the grace period."""
    interrupt(proc)
    reap(proc)


def interrupt(proc: Any) -> None:
    if proc.is_alive() and proc.pid:
        os.kill(proc.pid, signal.SIGINT)


def reap(proc: Any) -> None:
    """Wait out the grace period for a child told to stop, then kill it."""
    proc.join(STOP_GRACE_S)
    if proc.is_alive():
        proc.kill()
        proc.join()


def _child(conn: Any, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """The child's side: run, send (ok, value) back; a failure is logged with its traceback (run.log keeps it)."""
    try:
        result: tuple[bool, Any] = (True, fn(*args))
    except KeyboardInterrupt as e:
        result = (False, e)
    except BaseException as e:  # noqa: BLE001 - every failure must reach the parent
        if not isinstance(e, SqlshiftError):
            log.exception("%s failed", multiprocessing.current_process().name)
        result = (False, e)
    try:
        conn.send(result)
    except (BrokenPipeError, EOFError):  # the parent is gone (Ctrl-C, killed): nobody to tell
        pass
    except Exception:  # an exception that does not pickle still reaches the parent as one line
        conn.send((False, SqlshiftError(f"{type(result[1]).__name__}: {result[1]}", "see run.log")))
    finally:
        conn.close()
