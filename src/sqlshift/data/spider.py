"""Spider-format datasets: Spider dev/train, its robustness variants and the embedded demo.

Every loader returns a :class:`SpiderSplit` holding only the examples whose sqlite database exists,
plus the skipped ones with their reason, so callers can always report "n evaluated, m skipped".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlshift.errors import DataError
from sqlshift.inputs import MB, check_name, read_input_bytes, read_json_file

#: split name -> (examples file relative to the variant folder, question field, tables file, extra db folders)
VARIANTS: dict[str, tuple[str, str, str]] = {
    "dev": ("spider", "dev.json", "question"),
    "train": ("spider", "train_spider.json", "question"),
    "syn": ("spider_syn", "dev.json", "SpiderSynQuestion"),
    "realistic": ("spider_realistic", "spider-realistic.json", "question"),
    "dk": ("spider_dk", "Spider-DK.json", "question"),
}


@dataclass
class SpiderExample:
    """One question with its gold SQL. ``index`` is the position in the source file (stable id)."""

    index: int
    db_id: str
    question: str
    query: str
    sql: dict[str, Any] | None = None  # the official parsed SQL when the file carries it (dev.json)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SpiderSplit:
    """Evaluable examples of one split, the skipped ones, and where schemas and databases live."""

    name: str
    examples: list[SpiderExample]
    skipped: list[SpiderExample]
    skip_reasons: dict[str, int]
    tables: dict[str, dict[str, Any]]
    db_dirs: list[Path]

    def db_path(self, db_id: str) -> Path:
        """Path of ``db_id``'s sqlite file; raises DataError when no folder holds it."""
        path = find_db(self.db_dirs, db_id)
        if path is None:
            raise DataError(f"database '{db_id}' not found under {', '.join(map(str, self.db_dirs))}",
                            "check --spider-dir, or the db_id in your predictions")
        return path

    @property
    def n_total(self) -> int:
        return len(self.examples) + len(self.skipped)

    def skip_summary(self) -> str:
        """Human-readable account of what was skipped and why (never silent)."""
        if not self.skipped:
            return f"{self.name}: all {self.n_total} examples evaluable"
        why = ", ".join(f"{n} {r}" for r, n in sorted(self.skip_reasons.items()))
        return f"{self.name}: {len(self.examples)} of {self.n_total} evaluable; skipped {why}"


def restrict(split: SpiderSplit, keep: set[int]) -> SpiderSplit:
    """The split cut down to the examples with these indices, its skip accounting counting only those.

    A sample of 5 examples reports the examples of those 5 that were skipped, not every skipped one of the split."""
    skipped = [e for e in split.skipped if e.index in keep]
    return SpiderSplit(split.name, [e for e in split.examples if e.index in keep], skipped,
                       dict(Counter(f"missing database {e.db_id}" for e in skipped)), split.tables, split.db_dirs)


def find_db(db_dirs: list[Path], db_id: str) -> Path | None:
    """First ``<dir>/<db_id>/<db_id>.sqlite`` that exists, searching ``db_dirs`` in order.

    A db_id that is not a plain name (``/abs/x``, ``../x``) would lead outside the data folder: DataError.
    """
    check_name(db_id, "db_id", "db_ids are plain names of folders under database/")
    for d in db_dirs:
        p = Path(d) / db_id / f"{db_id}.sqlite"
        if p.is_file():
            return p
    return None


def read_json(path: Path) -> Any:
    """A bounded JSON file with one-line errors naming the file and the fix (deep nesting and huge ints too)."""
    return read_json_file(path, "a Spider JSON file", "restore the file from the release (or point --spider-dir / "
                          "data settings at a Spider folder)")


def load_tables(path: Path) -> dict[str, dict[str, Any]]:
    """``tables.json`` as a dict keyed by db_id."""
    tables = read_json(path)
    if not isinstance(tables, list) or not all(isinstance(t, dict) and isinstance(t.get("db_id"), str) for t in tables):
        raise DataError(f"{path} must hold a JSON list of schemas with a 'db_id' each",
                        "restore tables.json from the Spider release")
    fix = "restore tables.json from the Spider release"
    return {check_name(t["db_id"], f"{path}: db_id", fix): t for t in tables}


def resolve_variant_root(root: Path, split: str) -> tuple[Path, Path]:
    """(folder holding the split file, the Spider folder holding tables.json and database/).

    ``root`` may be a Spider folder itself (holding ``dev.json``) or a data folder holding ``spider/``,
    ``spider_syn/`` ... as in the shared data card.
    """
    root = Path(root)
    if split not in VARIANTS:
        raise DataError(f"unknown split '{split}'", f"use one of {', '.join(VARIANTS)}")
    sub, _, _ = VARIANTS[split]
    if (root / "spider").is_dir():
        return root / sub, root / "spider"
    if sub == "spider":
        return root, root
    sibling = root.parent / sub
    if sibling.is_dir():
        return sibling, root
    raise DataError(f"no folder '{sub}' beside {root}", f"put the {split} set in {sibling} or pass the data folder")


def load_spider(root: str | Path, split: str = "dev", file: str | Path | None = None) -> SpiderSplit:
    """Load a Spider-format split from a local folder.

    ``split`` is ``dev``/``train`` or a robustness variant (``syn``, ``realistic``, ``dk``); ``file`` overrides
    the examples file (any JSON list with ``db_id``, ``query`` and ``question``).
    """
    var_dir, spider_dir = resolve_variant_root(Path(root), split)
    _, fname, qfield = VARIANTS[split]
    path = Path(file) if file else var_dir / fname
    tables_path = var_dir / "tables.json" if (var_dir / "tables.json").is_file() else spider_dir / "tables.json"
    tables = load_tables(tables_path)
    db_dirs = [d for d in (var_dir / "database", spider_dir / "database") if d.is_dir()]
    db_dirs = list(dict.fromkeys(db_dirs))
    rows = read_json(path)
    if not isinstance(rows, list):
        raise DataError(f"{path} must hold a JSON list of examples", "use the Spider release format")
    return build_split(split, rows, qfield, tables, db_dirs, path)


def build_split(name: str, rows: list[dict], qfield: str, tables: dict, db_dirs: list[Path], path: Path) -> SpiderSplit:
    """Turn raw rows into examples, separating those whose database file is missing."""
    examples: list[SpiderExample] = []
    skipped: list[SpiderExample] = []
    reasons: Counter[str] = Counter()
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataError(f"{path}: example {i} is not a JSON object", "use the Spider release format")
        missing = [k for k in ("db_id", "query") if k not in row]
        if missing or (qfield not in row and "question" not in row):
            raise DataError(f"{path}: example {i} lacks {missing or [qfield]}", "each example needs db_id, query, question")
        _check_example(path, i, row, qfield)
        ex = SpiderExample(index=i, db_id=row["db_id"], question=row.get(qfield) or row["question"],
                           query=row["query"], sql=row.get("sql"),
                           extra={k: v for k, v in row.items() if k in ("type", "SpiderQuestion")})
        if find_db(db_dirs, ex.db_id) is None:
            skipped.append(ex)
            reasons[f"missing database {ex.db_id}"] += 1
        else:
            examples.append(ex)
    return SpiderSplit(name, examples, skipped, dict(reasons), tables, db_dirs)


def _check_example(path: Path, i: int, row: dict[str, Any], qfield: str) -> None:
    """db_id a plain name (it becomes a path), query and question strings: one line instead of a traceback later."""
    fix = "each example needs db_id, query and question as strings, as in the Spider release"
    check_name(row["db_id"], f"{path}: example {i}'s db_id", fix)
    question = row.get(qfield) or row.get("question")
    for key, value in (("query", row["query"]), ("question", question)):
        if not isinstance(value, str):
            raise DataError(f"{path}: example {i}'s {key} is {type(value).__name__}, not a string", fix)


def read_gold_sql(path: str | Path) -> list[tuple[str, str]]:
    """Official gold file: one ``SQL<TAB>db_id`` per line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist", "pass --gold pointing at dev_gold.sql")
    try:
        fix = "pass --gold pointing at dev_gold.sql"
        text = read_input_bytes(path, "a gold SQL file", fix, 256 * MB).decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text (byte {e.start}: {e.reason})",
                        "pass the official gold file (SQL<TAB>db_id per line, UTF-8)") from e
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if "\t" not in line:
            raise DataError(f"{path}:{n} has no TAB between SQL and db_id", "each line must be 'SQL<TAB>db_id'")
        sql, db = line.rsplit("\t", 1)
        out.append((sql.strip(), db.strip()))
    return out
