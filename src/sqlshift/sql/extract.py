"""SQL out of a model's answer: robust extraction of the first statement (code fences, prefixes, prose around it).

Each line of ``predictions.jsonl`` (DESIGN.md) keeps the model's raw answer beside the extracted SQL, so a scorer
failure can always be told apart from a model failure. Generation itself goes through an ``LM``
(:func:`sqlshift.benchmarks.spider.predict_split`).
"""

from __future__ import annotations

import logging
import re


log = logging.getLogger(__name__)

_FENCE = re.compile(r"```[ \t]*(?:[A-Za-z]*[ \t]*\n|(?i:sqlite|sql)\b)?(.*?)(?:```|$)", re.S)
_PREFIX = re.compile(r"(?im)^[ \t>*#]*(?:sql(?:ite)?(?:[ \t]+query)?|query|answer)[ \t]*:[ \t]*")
_START = re.compile(r"(?i)\b(select|with)\b")
_PROSE = re.compile(r"(?i)^(this|the|here|note|explanation|it|we|i|in|to|output|result|answer|these|that|where\s+\w+\s+is)\b"
                    r"(?!\s*\()")
_SQL_LINE = re.compile(r"(?i)^(select|from|where|group|order|having|limit|join|inner|left|right|outer|on|and|or|union|"
                       r"intersect|except|with|as|not|in|exists|case|when|then|else|end|by|desc|asc|\(|\)|,)")


def _cut_statement(s: str) -> str:
    """Text up to the first ``;`` outside quotes."""
    quote: str | None = None
    for i, ch in enumerate(s):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"`":
            quote = ch
        elif ch == ";":
            return s[:i]
    return s


def _is_prose(line: str) -> bool:
    """A line that reads like an explanation rather than a continuation of the query."""
    line = line.strip()
    if not line or _SQL_LINE.match(line):
        return False
    return bool(_PROSE.match(line)) or (line.endswith((".", ":")) and len(line.split()) >= 5)


def first_statement(s: str) -> tuple[str, bool, bool]:
    """(first statement on one line, spanned several lines, something after it was dropped)."""
    s = s.strip()
    stmt = _cut_statement(s)
    lines: list[str] = []
    for i, line in enumerate(stmt.splitlines()):
        if line.strip().startswith("```") or (i > 0 and (not line.strip() or _is_prose(line))):
            break
        lines.append(line)
    kept = "\n".join(lines)
    joined = " ".join(kept.split())
    rest = s[len(kept):].strip().lstrip(";").strip()
    return joined, len([ln for ln in lines if ln.strip()]) > 1, bool(rest)


def extract_sql(text: str) -> tuple[str, str]:
    """(SQL, how) from a model answer; ``how`` says which rule applied.

    ``code_fence``: the first fenced block; ``sql_prefix``: after an ``SQL:``/``Query:`` label; ``first_line``: the
    whole answer is one SQL line; ``statement``: a statement found in prose, or cut at ``;`` / trailing prose;
    ``multi_line``: a query spread over several lines, joined; ``no_sql``: no SELECT/WITH anywhere (first line kept);
    ``empty``: nothing. Of several statements the first is kept."""
    t = (text or "").strip()
    if not t:
        return "", "empty"
    m = _FENCE.search(t)
    if m and (m.group(1).strip() or not _START.search(t[:m.start()])):  # a stray closing fence is not a block
        sql = first_statement(m.group(1))[0]
        return (sql, "code_fence") if sql else ("", "empty")
    m = _PREFIX.search(t)
    if m and _START.match(t[m.end():].lstrip()):
        return first_statement(t[m.end():])[0], "sql_prefix"
    start = _START.search(t)
    if start is None:
        return t.splitlines()[0].strip(), "no_sql"
    sql, multi, cut = first_statement(t[start.start():])
    if start.start() > 0 or cut:
        return re.sub(r"(?<=[^\d\s])\.$", "", sql), "statement"  # a sentence's full stop is not SQL
    return sql, ("multi_line" if multi else "first_line")
