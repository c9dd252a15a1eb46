"""SQL out of a model's answer: robust extraction, end-of-turn stop tokens, the official predictions format.

Each line of ``predictions.jsonl`` (DESIGN.md) keeps the model's raw answer beside the extracted SQL, so a scorer
failure can always be told apart from a model failure. Generation itself goes through an ``LM``
(:func:`sqlshift.benchmarks.spider.predict_split`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from sqlshift.jsonl import read_jsonl
from sqlshift.models import END_OF_TURN_TOKENS
from sqlshift.prompts import PromptConfig

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


def stop_token_ids(tok: Any) -> list[int]:
    """EOS plus any end-of-turn token the chat template uses: generation must stop at the end of the turn."""
    ids = [tok.eos_token_id] if tok.eos_token_id is not None else []
    vocab = tok.get_vocab()
    template = getattr(tok, "chat_template", None) or ""
    for t in END_OF_TURN_TOKENS:
        if t in vocab and t in template and vocab[t] not in ids:
            ids.append(vocab[t])
    return ids


def write_official(preds: list[dict[str, Any]], path: Path) -> Path:
    """Official format: one SQL per line, in split (index) order; empty answers become an empty line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [" ".join(str(p.get("sql") or "").split()) for p in sorted(preds, key=lambda p: p["index"])]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def run_predict(model: str | None, adapter: str | Path | None, spider_dir: str | Path, split: str = "dev",
                sample: int | None = None, out: str | Path = Path("predictions"), batch_size: int = 16,
                max_new_tokens: int = 256, score: bool = False, sample_rows: int = 0) -> Path:
    """CLI entry: the runner's Spider benchmark on one model (+ adapter); ``score`` also judges the predictions.

    ``out`` is a folder (or a ``.jsonl`` path whose folder is used); also writes ``predictions.sql`` (official
    format). ``sample`` is the same seeded random subset an experiment config's ``sample`` takes."""
    from sqlshift.benchmarks.spider import SpiderBenchmark, SpiderSettings, predict_split
    from sqlshift.errors import DataError
    from sqlshift.lm_hf import HFLM
    from sqlshift.outputs import exclusive_output

    out = Path(out)
    pred_path = out if out.suffix == ".jsonl" else out / "predictions.jsonl"
    out_dir = pred_path.parent
    settings = SpiderSettings(benchmark="spider", split=split, sample=sample, batch_size=batch_size,
                              max_new_tokens=max_new_tokens, prompt=PromptConfig(sample_rows=sample_rows))
    bench = SpiderBenchmark(settings, Path(spider_dir))
    problems = bench.check()
    if problems:
        raise DataError("; ".join(problems), "pass --spider-dir with the Spider folders (docs/DATA.md)")
    split_data = bench.load()
    log.info(split_data.skip_summary())
    out_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_output(out_dir):
        lm = HFLM(model or "embedded")
        with lm.adapter(Path(adapter) if adapter else None):
            if score:
                bench.evaluate(lm, out_dir)
                preds = read_jsonl(pred_path)
            else:
                preds = predict_split(lm, split_data, pred_path, prompt_cfg=settings.prompt, batch_size=batch_size,
                                      max_new_tokens=max_new_tokens)
    write_official(preds, out_dir / "predictions.sql")
    return pred_path
