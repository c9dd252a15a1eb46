"""Writing outputs safely: atomic replaces, JSONL lines that always read back."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from sqlshift.errors import ConfigError


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write via a temp file in the same folder and rename, so a crash leaves the previous version whole."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with tmp.open("w", encoding="utf-8", errors="backslashreplace") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """JSON (ASCII-escaped: lone surrogates cannot crash it) written atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=True, default=str))


def append_jsonl(fh: IO[str], row: dict[str, Any]) -> None:
    """One JSON line, flushed; escaped to ASCII so no character inside a string can break the line."""
    fh.write(json.dumps(row, ensure_ascii=True) + "\n")
    fh.flush()


@contextlib.contextmanager
def exclusive_output(folder: str | Path, what: str = "sqlshift") -> Iterator[None]:
    """One writer per output folder: a non-blocking lock on ``<folder>/.lock``; a second process stops at once."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = str(folder.resolve())
    if key in _held:
        yield
        return
    fh = open(folder / ".lock", "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise ConfigError(f"{folder} is being written by {holder}", "wait for it to finish or choose another output")
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()} ({what}: {' '.join(sys.argv)[:200]})")
    fh.flush()
    _held.add(key)
    try:
        yield
    finally:
        _held.discard(key)
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


_held: set[str] = set()
