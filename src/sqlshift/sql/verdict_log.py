"""Verdicts saved one line at a time as they arrive, so an interrupted evaluation (Ctrl-C, a kill) resumes.

Each line is ``{"key": ..., **verdict}``; the key hashes everything the verdict depends on (a salt for the
settings plus the job's own parts), so a rerun with other inputs or settings reuses nothing stale. The log is an
append-only JSONL file (a torn last line from a kill is cut away on reading) written through the link-safe
:func:`sqlshift.outputs.open_append`; the caller removes it once the final results are written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from sqlshift.jsonl import read_jsonl
from sqlshift.outputs import append_jsonl, named, open_append


class VerdictLog:
    """``rows``: key -> saved verdict dict, read at start; :meth:`appending` adds new ones as they come."""

    def __init__(self, path: Path, salt: Any) -> None:
        self.path = Path(path)
        self._salt = json.dumps(salt, ensure_ascii=True, default=str)
        self.rows: dict[str, dict[str, Any]] = {}
        for row in read_jsonl(self.path, repair=True):
            if isinstance(row, dict) and isinstance(row.get("key"), str):
                self.rows[row["key"]] = row

    def key(self, *parts: Any) -> str:
        """Hash of the settings and one job's parts."""
        blob = json.dumps([self._salt, *parts], ensure_ascii=True, default=str)
        return hashlib.sha256(blob.encode("ascii")).hexdigest()[:24]

    @contextlib.contextmanager
    def appending(self) -> Iterator[Callable[[str, dict[str, Any]], None]]:
        """A ``keep(key, verdict)`` function that appends (and flushes) one line; the file opens on first use."""
        fh: IO[str] | None = None

        def keep(key: str, verdict: dict[str, Any]) -> None:
            nonlocal fh
            if fh is None:
                fh = open_append(self.path)
            try:
                append_jsonl(fh, {"key": key, **verdict})
            except OSError as e:  # a full disk: name the file in the one-line error
                raise named(e, self.path) from None

        try:
            yield keep
        finally:
            if fh is not None:
                fh.close()

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
