"""Append-only JSONL files (predictions, results): written a line at a time as results are produced.

A killed run leaves at most one torn last line; readers drop it (and, when resuming, cut it from the file so the
next append starts on a clean line). A bad line anywhere else is corruption and an error.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from sqlshift.errors import DataError

log = logging.getLogger(__name__)


def read_jsonl(path: str | Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """Complete rows of an append-only JSONL file; ``repair`` truncates a torn last line away."""
    path = Path(path)
    if not path.is_file():
        return []
    raw = path.read_text(encoding="utf-8")
    lines = raw.splitlines(keepends=True)
    rows: list[dict[str, Any]] = []
    good = 0  # characters of complete lines
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                if n == len(lines):
                    break
                raise DataError(f"{path}:{n} is not valid JSON ({e.msg})", "delete the file to redo that step") from e
            if not line.endswith("\n"):  # cut before its newline: the write did not finish
                break
            rows.append(row)
        good += len(line)
    if good < len(raw):
        log.warning("%s: dropping a torn last line from an interrupted run", path)
        if repair:
            path.write_text(raw[:good], encoding="utf-8")
    return rows
