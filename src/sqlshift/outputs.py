"""Writing outputs safely: atomic replaces, JSONL lines that always read back."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any


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
