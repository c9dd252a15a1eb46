"""Reading Spider prediction files for ``eval-sql``: JSONL ``{index, sql}`` or the official one-SQL-per-line.

Every way a file can be wrong ends in one :class:`DataError` naming the file (and line) and the fix, never a
traceback: binary or non-UTF-8 bytes, a JSON array instead of JSONL, a non-integer ``index`` (``true`` included),
an ``sql`` that is not a string. Lines are split on ``\\n`` only, so a form feed, U+2028 or U+0085 inside a
prediction never splits it, and a TAB inside the SQL never shifts it. The file is streamed under a size limit
(``PRED_MAX_BYTES``), and only after it is known to be a regular file.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sqlshift.data.spider import SpiderSplit, read_gold_sql
from sqlshift.errors import DataError
from sqlshift.inputs import MB, open_input
from sqlshift.outputs import atomic_write_text

log = logging.getLogger(__name__)

_JSONL_FIX = "each line must be one JSON object like {\"index\": 0, \"sql\": \"SELECT ...\"}"


#: largest predictions file read (Spider dev's is ~0.2 MB; 100k predictions ~30 MB): a bigger one is refused
#: before a byte is read, with a message naming this limit
PRED_MAX_BYTES = 256 * MB


def read_lines(path: Path, what: str, fix: str, max_bytes: int = PRED_MAX_BYTES) -> list[str]:
    """All lines of a UTF-8 text file (see :func:`iter_lines`)."""
    return list(iter_lines(path, what, fix, max_bytes))


def iter_lines(path: Path, what: str, fix: str, max_bytes: int = PRED_MAX_BYTES) -> Iterator[str]:
    """Lines of a UTF-8 text file, one at a time (a BOM dropped, ``\\r`` of CRLF dropped), split on ``\\n`` only.

    The file is checked first (a regular file of at most ``max_bytes``: a link to /dev/zero or a 3 GB sparse
    file is refused without reading); each line is checked for NUL bytes (binary) and decoded on its own, so the
    error names the line.
    """
    offset = 0
    with open_input(path, what, fix, max_bytes) as f:
        if b"\x00" in f.read(8192):  # binary, as git and file(1) tell: NUL bytes near the start
            raise DataError(f"{path} is a binary file, not {what} (it holds NUL bytes)", fix)
        f.seek(0)
        for n, raw in enumerate(f, 1):  # a binary file iterates on b"\n" only
            if b"\x00" in raw:
                raise DataError(f"{path} is a binary file, not {what} (it holds NUL bytes)", fix)
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw, offset = raw[3:], 3
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}:{n} is not UTF-8 text (byte {offset + e.start}: {e.reason})",
                                f"save it as UTF-8; {fix}") from None
            offset += len(raw)
            if offset > max_bytes:
                raise DataError(f"{path} grew over the {max_bytes // MB} MB limit for {what} while being read", fix)
            line = line[:-1] if line.endswith("\n") else line
            yield line[:-1] if line.endswith("\r") else line


def read_predictions(path: str | Path, split: SpiderSplit, gold_path: str | Path | None = None) -> dict[int, dict]:
    """Predictions as index -> dict with at least ``sql``.

    Accepts JSONL (``{"index": i, "sql": ...}`` per line, as generate.py writes) or the official format: one SQL
    per line aligned with the gold file (``gold_path``, lines ``SQL<TAB>db_id``) or, without it, with the split.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist", "pass --pred pointing at predictions.jsonl or a .sql file")
    lines = iter_lines(path, "predictions", "pass predictions.jsonl or a .sql file with one query per line")
    head: list[str] = []  # up to the first non-blank line, which tells the format; the rest is streamed
    for line in lines:
        head.append(line)
        if line.strip():
            break
    first = head[-1].strip() if head else ""
    stream = itertools.chain(head, lines)
    if first.startswith("["):
        _reject_json_array(path, list(stream))
    if first.startswith("{"):
        return _read_jsonl(path, stream, split)
    return _read_official(path, stream, split, gold_path)


def _reject_json_array(path: Path, lines: list[str]) -> None:
    """No SQL starts with ``[``: this is a JSON array (or a broken one), which is not JSONL."""
    try:
        kind = "a JSON array" if isinstance(json.loads("\n".join(lines)), list) else "JSON"
    except (ValueError, RecursionError):
        kind = "a (malformed) JSON array"
    raise DataError(f"{path} is {kind}, not JSONL (one object per line)",
                    f"write one object per line, e.g. `jq -c '.[]' {path.name} > predictions.jsonl`")


def _all_examples(split: SpiderSplit) -> list[Any]:
    return sorted(split.examples + split.skipped, key=lambda e: e.index)


def _parse_jsonl_row(path: Path, n: int, line: str) -> dict[str, Any]:
    """One JSONL line, checked: an object with an integer ``index`` and a string (or null) ``sql``."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{n} is not valid JSON ({e.msg})", _JSONL_FIX) from None
    except RecursionError:
        raise DataError(f"{path}:{n} is nested too deeply to read (hundreds of levels of [ or {{)",
                        _JSONL_FIX) from None
    except ValueError as e:  # an integer of thousands of digits
        raise DataError(f"{path}:{n} holds a value Python refuses ({str(e).split(';')[0]})", _JSONL_FIX) from None
    if not isinstance(row, dict) or type(row.get("index")) is not int or "sql" not in row:
        raise DataError(f"{path}:{n} lacks an integer 'index' and an 'sql' field",
                        "each line must be like {\"index\": 0, \"sql\": \"SELECT ...\"}")
    if row["sql"] is None:
        row["sql"] = ""
    if not isinstance(row["sql"], str):
        raise DataError(f"{path}:{n}: 'sql' is {type(row['sql']).__name__}, not a string",
                        "write the query as a JSON string (\"sql\": \"SELECT ...\"); null or \"\" for no answer")
    return row


def _read_jsonl(path: Path, lines: Iterable[str], split: SpiderSplit) -> dict[int, dict]:
    by_index = {e.index: e for e in _all_examples(split)}
    out: dict[int, dict] = {}
    seen: dict[int, list[int]] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        row = _parse_jsonl_row(path, n, line)
        idx = row["index"]
        if idx not in by_index:
            raise DataError(f"{path}:{n} has index {idx}, outside split '{split.name}' (0..{split.n_total - 1})",
                            "predict on the same split you evaluate (--split)")
        db = row.get("db_id")
        if db is not None and db != by_index[idx].db_id:
            if not isinstance(db, str) or db not in split.tables:
                raise DataError(f"{path}:{n} names unknown db_id {db!r}", "check the split the predictions are for")
            raise DataError(f"{path}:{n} has db_id '{db}' but example {idx} of '{split.name}' is on "
                            f"'{by_index[idx].db_id}'", "predict on the same split you evaluate (--split)")
        out[idx] = row  # a resumed file may repeat an index: the last line wins (warned below)
        seen.setdefault(idx, []).append(n)
    _warn_duplicates(path, seen)
    return out


def _warn_duplicates(path: Path, seen: dict[int, list[int]]) -> None:
    """Repeated indices are legal (a resumed file) but never silent: say which line wins."""
    dup = {i: ns for i, ns in seen.items() if len(ns) > 1}
    if dup:
        i, ns = next(iter(dup.items()))
        log.warning("%s: %d indices appear on several lines (e.g. index %d on lines %s); the last line of each "
                    "wins", path, len(dup), i, ", ".join(map(str, ns[:5])))


def _read_official(path: Path, stream: Iterable[str], split: SpiderSplit,
                   gold_path: str | Path | None) -> dict[int, dict]:
    examples = _all_examples(split)
    if gold_path is not None:
        gold = read_gold_sql(gold_path)
        _check_gold_matches(Path(gold_path), gold, split, examples)
    where = f"gold file {gold_path}" if gold_path else f"split '{split.name}'"
    fix = "write one SQL per line, in gold order (an empty line for an empty prediction)"
    lines: list[str] = []
    nonblank = 0
    for line in stream:  # stop reading as soon as there are more predictions than queries
        lines.append(line)
        nonblank += bool(line.strip())
        if nonblank > len(examples):
            raise DataError(f"{path} has more than {len(examples)} predictions but {where} has {len(examples)} "
                            "queries", fix)
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) != len(examples):
        if nonblank != len(examples):
            raise DataError(f"{path} has {len(lines)} predictions but {where} has {len(examples)} queries", fix)
        lines = [line for line in lines if line.strip()]
    out: dict[int, dict] = {}
    for n, (line, ex) in enumerate(zip(lines, examples), 1):
        sql, db = _split_db(line, split)
        if db is not None and db != ex.db_id:
            raise DataError(f"{path}:{n} is for db '{db}' but line {n} of the gold is on '{ex.db_id}'",
                            "keep predictions aligned with the gold file")
        out[ex.index] = {"index": ex.index, "db_id": ex.db_id, "sql": sql}
    return out


def _split_db(line: str, split: SpiderSplit) -> tuple[str, str | None]:
    """``SQL`` or ``SQL<TAB>db_id`` (some tools write the latter).

    Only a known db_id after the last TAB is taken as one; any other TAB is whitespace inside the SQL.
    """
    if "\t" in line:
        sql, db = line.rsplit("\t", 1)
        if db.strip() in split.tables:
            return sql.strip(), db.strip()
    return line.strip(), None


def _check_gold_matches(gold_path: Path, gold: list[tuple[str, str]], split: SpiderSplit, examples: list[Any]) -> None:
    unknown = sorted({db for _, db in gold if db not in split.tables})
    if unknown:
        raise DataError(f"{gold_path} names unknown db_id(s) {unknown[:5]}",
                        f"use the gold file of split '{split.name}' (its tables.json has no such database)")
    if len(gold) != len(examples):
        raise DataError(f"{gold_path} has {len(gold)} queries but split '{split.name}' has {len(examples)}",
                        "pass the gold file of the split you evaluate")
    for n, ((_, db), ex) in enumerate(zip(gold, examples), 1):
        if db != ex.db_id:
            raise DataError(f"{gold_path}:{n} is on '{db}' but example {ex.index} of '{split.name}' is on "
                            f"'{ex.db_id}'", "pass the gold file of the split you evaluate")


def write_official(preds: list[dict[str, Any]], path: Path) -> Path:
    """Official format: one SQL per line, in split (index) order; empty answers become an empty line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [" ".join(str(p.get("sql") or "").split()) for p in sorted(preds, key=lambda p: p["index"])]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return path
