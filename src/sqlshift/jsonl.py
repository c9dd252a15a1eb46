"""Append-only JSONL files (predictions, results): written a line at a time as results are produced.

A killed run leaves at most one torn last line; readers drop it (and, when resuming, cut it from the file so the
next append starts on a clean line). A bad line anywhere else is corruption and an error.

Lines are split on ``\\n`` only: ``str.splitlines`` also splits at U+2028, U+0085, form feeds ..., which JSON
allows raw inside strings, so it would cut a valid row in two. Each line is decoded on its own, so a torn
multi-byte character at the end is a torn line, not an unreadable file. Writers: ``sqlshift.outputs``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from sqlshift.errors import DataError
from sqlshift.inputs import MB, read_input_bytes
from sqlshift.outputs import refuse_link

log = logging.getLogger(__name__)

JSONL_MAX_BYTES = 2048 * MB  # results of 14k MMLU questions are ~10 MB; anything near this is not ours


def read_jsonl(path: str | Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """Complete rows of an append-only JSONL file; ``repair`` truncates a torn last line away."""
    path = Path(path)
    if repair:
        refuse_link(path)  # repairing truncates: never someone else's file behind a planted link
    if not path.is_file():
        return []
    raw = read_input_bytes(path, "a JSONL file", "delete the file to redo that step", JSONL_MAX_BYTES)
    lines = raw.split(b"\n")
    tail = lines.pop()  # after the last newline: b"" or a line whose write did not finish
    rows: list[dict[str, Any]] = []
    good = 0  # bytes of complete lines
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                row = json.loads(line.decode("utf-8"))
            except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
                if n == len(lines) and not tail.strip():
                    break  # the last line: torn by a crash between its bytes and its flush
                what = f"not valid JSON ({e.msg})" if isinstance(e, json.JSONDecodeError) else "not UTF-8"
                raise DataError(f"{path}:{n} is {what}", "delete the file to redo that step") from e
            rows.append(row)
        good += len(line) + 1
    if good < len(raw):
        log.warning("%s: dropping a torn last line from an interrupted run", path)
        if repair:
            os.truncate(path, good)
    return rows
