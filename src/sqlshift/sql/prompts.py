"""Schema serialisation and the one prompt builder shared by training and inference.

Training and generation must see byte-identical prompts, so both go through :class:`PromptBuilder`:
schema text (CREATE TABLE with types and keys, optional sample rows) -> chat messages -> rendered text through the
tokenizer's chat template (plain text ending in ``SQL:`` when there is none). Prompts longer than
``max_prompt_tokens`` are shortened by one stated, deterministic rule (see :func:`fit_schema`) and marked
``truncated``; nothing is dropped silently.
"""

from __future__ import annotations

import logging
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field

from sqlshift.errors import DataError
from sqlshift.sql.sandbox import SqlSandbox

DEFAULT_SYSTEM_PROMPT = (
    "You are a Text-to-SQL assistant. Given a SQLite database schema and a question, "
    "answer with one SQLite query and nothing else."
)
#: tables.json column types -> SQL type names shown in CREATE TABLE ("others" has no SQL meaning: shown as TEXT)
TYPE_NAMES = {"text": "TEXT", "number": "NUMBER", "time": "TIME", "boolean": "BOOLEAN", "others": "TEXT"}
log = logging.getLogger(__name__)

SAMPLE_VALUE_CHARS = 40
SAMPLE_TIMEOUT_S = 5.0  # per sample-rows query (a table may be a never-ending view)
SAMPLE_MAX_BYTES = 16 * 1024 * 1024  # result budget of one sample-rows query
SAMPLE_MEMORY_MB = 512
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class PromptConfig(BaseModel):
    """How prompts are built; the same object drives training and inference."""

    model_config = ConfigDict(extra="forbid")

    sample_rows: int = Field(0, ge=0, description="sample rows per table, read from the sqlite file")
    max_prompt_tokens: int = Field(2048, gt=0, description="longer prompts are shortened (see fit_schema)")
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    chat: Literal["auto"] | bool = Field("auto", description="use the chat template (auto: when the tokenizer has one)")


@dataclass
class TableBlock:
    """One table of a serialised schema: its CREATE TABLE text and (optionally) its sample-rows comment."""

    name: str
    natural_name: str
    create: str
    samples: str = ""


@dataclass
class Schema:
    """A database schema as separate table blocks, so truncation can drop pieces deterministically."""

    db_id: str
    tables: list[TableBlock]

    def render(self, keep: Iterable[str] | None = None, samples: bool = True) -> str:
        """Schema text with only the ``keep`` tables (all when None), with or without sample rows."""
        keep_set = None if keep is None else set(keep)
        parts = []
        for t in self.tables:
            if keep_set is not None and t.name not in keep_set:
                continue
            parts.append(t.create + ("\n" + t.samples if samples and t.samples else ""))
        return "\n\n".join(parts)


@dataclass
class BuiltPrompt:
    """A rendered prompt with its length and what truncation removed (recorded per example)."""

    messages: list[dict[str, str]]
    text: str
    n_tokens: int
    truncated: bool = False
    dropped_tables: list[str] = field(default_factory=list)
    dropped_samples: bool = False


def quote_ident(name: str) -> str:
    """Identifier as written in SQL: bare when it is a plain word, double-quoted otherwise."""
    return name if _IDENT.match(name) else '"' + name.replace('"', '""') + '"'


def _flat_keys(keys: list[Any]) -> list[int]:
    """Primary keys are ints in Spider, lists of ints (composite keys) in some variants: flatten both."""
    out: list[int] = []
    for k in keys:
        out.extend(k if isinstance(k, list) else [k])
    return out


def create_table_statements(entry: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(original name, natural name, CREATE TABLE text) per table of one tables.json entry.

    A malformed entry (an index out of range, a number where a name belongs) is one DataError naming it.
    """
    try:
        return _create_table_statements(entry)
    except (IndexError, TypeError, ValueError, AttributeError) as e:
        raise DataError(f"tables.json entry '{entry.get('db_id')}' is malformed ({type(e).__name__}: {e})",
                        "restore tables.json from the Spider release") from None


def _create_table_statements(entry: dict[str, Any]) -> list[tuple[str, str, str]]:
    try:
        tnames = entry["table_names_original"]
        natural = entry.get("table_names") or tnames
        cols = entry["column_names_original"]
        types = entry["column_types"]
    except KeyError as e:
        raise DataError(f"tables.json entry '{entry.get('db_id')}' lacks {e}", "use the Spider tables.json format") from e
    pks = set(_flat_keys(entry.get("primary_keys", [])))
    fks_by_table: dict[int, list[tuple[int, int]]] = {}
    for src, dst in entry.get("foreign_keys", []):
        fks_by_table.setdefault(cols[src][0], []).append((src, dst))
    out = []
    for ti, tname in enumerate(tnames):
        lines = [f"  {quote_ident(c[1])} {TYPE_NAMES.get(types[ci], types[ci].upper())}"
                 for ci, c in enumerate(cols) if c[0] == ti]
        pk_cols = [quote_ident(cols[ci][1]) for ci in sorted(pks) if cols[ci][0] == ti]
        if pk_cols:
            lines.append(f"  PRIMARY KEY ({', '.join(pk_cols)})")
        for src, dst in fks_by_table.get(ti, []):
            lines.append(f"  FOREIGN KEY ({quote_ident(cols[src][1])}) REFERENCES "
                         f"{quote_ident(tnames[cols[dst][0]])}({quote_ident(cols[dst][1])})")
        out.append((tname, natural[ti], f"CREATE TABLE {quote_ident(tname)} (\n" + ",\n".join(lines) + "\n);"))
    return out


def _cell(value: Any) -> str:
    """One sample value, shortened so a long text column cannot blow up the prompt."""
    s = "NULL" if value is None else (f"<{len(value)} bytes>" if isinstance(value, bytes) else str(value))
    s = " ".join(s.split())
    return s if len(s) <= SAMPLE_VALUE_CHARS else s[: SAMPLE_VALUE_CHARS - 3] + "..."


def sample_rows_texts(db_path: Path, tables: list[str], n: int) -> dict[str, str]:
    """``/* n example rows ... */`` comment per table, each query run in the SQL sandbox under its bounds.

    A user's database is untrusted like a model's SQL: a table may be a never-ending view or hold huge values,
    so every sample query gets the sandbox's time, row and memory limits (``SAMPLE_TIMEOUT_S`` ...). A table
    that cannot be read in time gets no sample rows (logged), never a hang.
    """
    jobs = [(db_path, f"SELECT * FROM {quote_ident(t)} LIMIT {int(n)}") for t in tables]
    with SqlSandbox(timeout_s=SAMPLE_TIMEOUT_S, max_rows=n, max_bytes=SAMPLE_MAX_BYTES, memory_mb=SAMPLE_MEMORY_MB,
                    workers=1) as sandbox:
        results = sandbox.execute_many(jobs)
    out = {}
    for table, res in zip(tables, results):
        if not res.ok:
            log.warning("%s: no sample rows for table %s (%s: %s)", db_path, table, res.error_type, res.message)
        out[table] = _samples_comment(table, res.columns or [], res.rows or []) if res.ok else ""
    return out


def _samples_comment(table: str, header: list[str], rows: list[tuple[Any, ...]]) -> str:
    if not rows:
        return ""
    body = "\n".join(" | ".join(_cell(v) for v in r) for r in rows)
    return f"/* {len(rows)} example rows from {table}:\n{' | '.join(header)}\n{body}\n*/"


def build_schema(entry: dict[str, Any], db_path: Path | None = None, sample_rows: int = 0) -> Schema:
    """Serialise one tables.json entry; sample rows come from ``db_path`` (through the sandbox) when present."""
    stmts = create_table_statements(entry)
    samples = {name: "" for name, _, _ in stmts}
    if sample_rows > 0 and db_path is not None and Path(db_path).is_file():
        samples = sample_rows_texts(Path(db_path), [name for name, _, _ in stmts], sample_rows)
    return Schema(entry.get("db_id", ""), [TableBlock(n, nat, c, samples[n]) for n, nat, c in stmts])


def schema_text(entry: dict[str, Any], db_path: Path | None = None, sample_rows: int = 0) -> str:
    """Whole schema as text (no truncation)."""
    return build_schema(entry, db_path, sample_rows).render()


def _question(example: Any) -> str:
    return example["question"] if isinstance(example, dict) else example.question


def build_messages(example: Any, schema_text: str, system_prompt: str = DEFAULT_SYSTEM_PROMPT) -> list[dict[str, str]]:
    """System + user messages for one question (``example`` is a SpiderExample or a dict with ``question``)."""
    user = (f"Database schema:\n{schema_text}\n\n"
            f"Question: {_question(example).strip()}\n"
            "Answer with one SQLite query only.")
    return [{"role": "system", "content": system_prompt}, {"role": "user", "content": user}]


def uses_chat(tok: Any, chat: Literal["auto"] | bool = "auto") -> bool:
    """Whether prompts go through the chat template."""
    has = bool(getattr(tok, "chat_template", None))
    if chat == "auto":
        return has
    if chat and not has:
        raise DataError("prompt.chat is true but the tokenizer has no chat template", "set prompt.chat: auto or false")
    return bool(chat)


def render_prompt(tok: Any, messages: list[dict[str, str]], chat: Literal["auto"] | bool = "auto") -> str:
    """Prompt text the model sees, up to where its answer starts.

    Chat template with the generation prompt when available; otherwise plain text ending in ``SQL:``. A BOS token
    that the template writes and the tokenizer would add again is removed from the text, so that ``tok(text)``
    (what trl and generation both call) yields exactly one."""
    if uses_chat(tok, chat):
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        bos = getattr(tok, "bos_token", None)
        if bos and text.startswith(bos) and tok("a")["input_ids"][:1] == [tok.bos_token_id]:
            text = text[len(bos):]
        return text
    return "\n\n".join(m["content"] for m in messages) + "\nSQL:"


def completion_text(tok: Any, sql: str, chat: Literal["auto"] | bool = "auto") -> str:
    """Training target: the bare SQL followed by the end-of-turn token (a space first in plain-text mode)."""
    sql = " ".join(sql.split())
    eos = tok.eos_token or ""
    return (sql if uses_chat(tok, chat) else " " + sql) + eos


def count_tokens(tok: Any, text: str) -> int:
    """Length of ``text`` as the trainer and generate tokenise it."""
    return len(tok(text)["input_ids"])


def _words(text: str) -> set[str]:
    """Lower-case words with a trailing plural 's' removed, for loose mention matching."""
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in re.findall(r"[a-z0-9]+", text.lower())}


def mentioned_tables(schema: Schema, texts: Iterable[str]) -> list[str]:
    """Tables whose name (original or natural, any word of >2 letters) occurs in ``texts``."""
    words = set().union(*(_words(t) for t in texts)) if texts else set()
    out = []
    for t in schema.tables:
        names = _words(t.name.replace("_", " ")) | _words(t.natural_name)
        if any(len(w) > 2 and w in words for w in names):
            out.append(t.name)
    return out


def fit_schema(tok: Any, example: Any, schema: Schema, cfg: PromptConfig,
               keep_tables: Iterable[str] = (), budget: int | None = None) -> BuiltPrompt:
    """Render the prompt, shortening the schema until it fits the token budget.

    The rule, applied in order until the prompt fits ``budget`` (default ``cfg.max_prompt_tokens``):
    1. drop all sample rows;
    2. drop tables not mentioned in the question (nor in ``keep_tables``, e.g. the gold query's tables during
       training), last table first;
    3. drop the remaining tables except the protected ones, last first; never drop the last table.
    A prompt that still does not fit is returned as is, marked truncated (the training mask guard reports it).
    """
    budget = budget or cfg.max_prompt_tokens

    def render(keep: list[str], samples: bool) -> tuple[list[dict[str, str]], str, int]:
        msgs = build_messages(example, schema.render(keep, samples), cfg.system_prompt)
        text = render_prompt(tok, msgs, cfg.chat)
        return msgs, text, count_tokens(tok, text)

    keep = [t.name for t in schema.tables]
    samples = any(t.samples for t in schema.tables)
    msgs, text, n = render(keep, samples)
    if n <= budget:
        return BuiltPrompt(msgs, text, n)
    if samples:
        samples = False
        msgs, text, n = render(keep, samples)
    protected = set(keep_tables) | set(mentioned_tables(schema, [_question(example)]))
    order = [t for t in reversed(keep) if t not in protected] + [t for t in reversed(keep) if t in protected]
    for name in order:
        if n <= budget or len(keep) == 1:
            break
        if name in set(keep_tables) and len(set(keep) & set(keep_tables)) <= 1:
            continue  # keep at least one table the target needs
        keep.remove(name)
        msgs, text, n = render(keep, samples)
    dropped = [t.name for t in schema.tables if t.name not in keep]
    return BuiltPrompt(msgs, text, n, truncated=True, dropped_tables=dropped,
                       dropped_samples=any(t.samples for t in schema.tables))


def sql_tables(sql: str, schema: Schema) -> list[str]:
    """Schema tables that a SQL query names (word match, case-insensitive): protected from truncation in training."""
    words = set(re.findall(r"[a-z0-9_]+", sql.lower()))
    return [t.name for t in schema.tables if t.name.lower() in words]


class PromptBuilder:
    """Builds prompts for the examples of one split, caching each database's schema."""

    def __init__(self, tok: Any, tables: dict[str, dict[str, Any]], db_path: Any = None,
                 cfg: PromptConfig | None = None) -> None:
        self.tok, self.tables, self.db_path = tok, tables, db_path
        self.cfg = cfg or PromptConfig()
        self._schemas: dict[str, Schema] = {}

    def schema(self, db_id: str) -> Schema:
        """Schema of ``db_id`` (tables.json), with sample rows when its sqlite file exists."""
        if db_id not in self._schemas:
            if db_id not in self.tables:
                raise DataError(f"database '{db_id}' is not in tables.json", "use the tables.json of the same release")
            path = None
            if self.cfg.sample_rows > 0 and self.db_path is not None:
                try:
                    path = self.db_path(db_id)
                except DataError:
                    path = None  # schema from tables.json only; no sample rows for this database
            self._schemas[db_id] = build_schema(self.tables[db_id], path, self.cfg.sample_rows)
        return self._schemas[db_id]

    def build(self, example: Any, gold_sql: str | None = None, budget: int | None = None) -> BuiltPrompt:
        """Prompt for one example; ``gold_sql`` (training only) protects the tables the target uses."""
        db_id = example["db_id"] if isinstance(example, dict) else example.db_id
        schema = self.schema(db_id)
        keep = sql_tables(gold_sql, schema) if gold_sql else []
        return fit_schema(self.tok, example, schema, self.cfg, keep, budget)


def prompt_length_stats(prompts: list[BuiltPrompt], limit: int | None = None) -> dict[str, Any]:
    """Token-length summary for reports: n, mean, median, p90, p99, max, and how many were truncated."""
    lengths = sorted(p.n_tokens for p in prompts)
    if not lengths:
        return {"n": 0, "n_truncated": 0}

    def pct(q: float) -> int:
        return lengths[min(len(lengths) - 1, int(round(q * (len(lengths) - 1))))]

    out: dict[str, Any] = {"n": len(lengths), "mean": round(statistics.fmean(lengths), 1), "median": pct(0.5),
                           "p90": pct(0.9), "p99": pct(0.99), "max": lengths[-1],
                           "n_truncated": sum(p.truncated for p in prompts),
                           "n_dropped_samples": sum(p.dropped_samples for p in prompts),
                           "n_dropped_tables": sum(len(p.dropped_tables) for p in prompts)}
    if limit is not None:
        out["limit"] = limit
        out["n_over_limit"] = sum(n > limit for n in lengths)
    return out
