"""Multi-turn Text-to-SQL splits (SParC, CoSQL) on the Spider databases.

Both releases (editsql's ``data/sparc`` and ``data/cosql``) hold ``dev.json``: a list of interactions, each with
``database_id`` and ``interaction`` (turns with ``utterance``, ``query`` and the parsed ``sql``). The gold SQL comes
from ``dev.json`` itself: CoSQL's ``dev_gold.txt`` lists the same interactions in another order, so it cannot
serve as the key. Interactions whose database is missing (``wta_1``) are kept apart with their reason, as
:mod:`sqlshift.data.spider` does for single questions.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlshift.data.spider import SpiderSplit, find_db, load_tables, read_json
from sqlshift.errors import DataError

DATASETS = ("sparc", "cosql")
SPLIT_FILES = {"dev": "dev.json"}

#: the release's tokenisation artefacts: a comparison operator split by whitespace (``! =``, ``< =``, ``> =``)
_SPACED_OP = re.compile(r"([!<>])\s+=")
#: string literals, which normalisation must leave alone
_QUOTED = re.compile(r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")")


def normalise_gold(sql: str) -> str:
    """Gold SQL with the spaced operators joined (``! =`` -> ``!=``) outside string literals; nothing else changes.

    Only this artefact is undone: every other difference between gold and prediction is the scorer's business."""
    parts = _QUOTED.split(sql)
    return "".join(p if i % 2 else _SPACED_OP.sub(r"\1=", p) for i, p in enumerate(parts))


@dataclass
class Turn:
    """One question of an interaction; ``turn`` counts from 1, ``interaction`` is the position in dev.json."""

    interaction: int
    turn: int
    db_id: str
    question: str
    query: str  # gold SQL after :func:`normalise_gold`
    raw_query: str  # gold SQL as released
    sql: dict[str, Any] | None = None  # the release's parsed SQL (used for the official hardness)

    @property
    def id(self) -> str:
        return f"{self.interaction}-{self.turn}"

    @property
    def normalised(self) -> bool:
        return self.query != self.raw_query


@dataclass
class Interaction:
    """A sequence of context-dependent questions on one database."""

    index: int
    db_id: str
    turns: list[Turn]
    final: dict[str, Any] = field(default_factory=dict)


@dataclass
class MultiTurnSplit:
    """Evaluable interactions, the skipped ones (database missing) and where schemas and databases live."""

    name: str
    interactions: list[Interaction]
    skipped: list[Interaction]
    skip_reasons: dict[str, int]  # reason -> number of turns
    tables: dict[str, dict[str, Any]]
    db_dirs: list[Path]

    db_path = SpiderSplit.db_path  # the same lookup over db_dirs (only evaluable interactions ever reach it)

    @property
    def n_turns(self) -> int:
        return sum(len(i.turns) for i in self.interactions)

    @property
    def n_skipped_turns(self) -> int:
        return sum(len(i.turns) for i in self.skipped)

    def skip_summary(self) -> str:
        """Human-readable account of what was skipped and why (never silent)."""
        total = len(self.interactions) + len(self.skipped)
        if not self.skipped:
            return f"{self.name}: all {total} interactions evaluable"
        why = ", ".join(f"{n} turns: {r}" for r, n in sorted(self.skip_reasons.items()))
        return (f"{self.name}: {len(self.interactions)} of {total} interactions ({self.n_turns} turns) evaluable; "
                f"skipped {len(self.skipped)} interactions ({why})")


def split_files(data_dir: Path, split: str = "dev") -> list[Path]:
    """The files a split needs: examples and schemas (databases are checked separately)."""
    if split not in SPLIT_FILES:
        raise DataError(f"unknown split '{split}'", f"use one of {', '.join(SPLIT_FILES)}")
    return [Path(data_dir) / SPLIT_FILES[split], Path(data_dir) / "tables.json"]


def load_multiturn(data_dir: str | Path, db_dir: str | Path, split: str = "dev",
                   name: str | None = None) -> MultiTurnSplit:
    """Load a SParC/CoSQL split from ``data_dir`` (dev.json, tables.json) with databases under ``db_dir``."""
    data_dir, db_dir = Path(data_dir), Path(db_dir)
    examples_path, tables_path = split_files(data_dir, split)
    rows = read_json(examples_path)
    if not isinstance(rows, list):
        raise DataError(f"{examples_path} must hold a JSON list of interactions", "use the SParC/CoSQL release format")
    tables = load_tables(tables_path)
    interactions = [_interaction(i, row, examples_path) for i, row in enumerate(rows)]
    keep, skipped, reasons = [], [], Counter[str]()
    for it in interactions:
        if find_db([db_dir], it.db_id) is None:
            skipped.append(it)
            reasons[f"missing database {it.db_id}"] += len(it.turns)
        else:
            keep.append(it)
    return MultiTurnSplit(name or f"{data_dir.name}-{split}", keep, skipped, dict(reasons), tables, [db_dir])


def _interaction(index: int, row: Any, path: Path) -> Interaction:
    """One dev.json entry as an :class:`Interaction` (errors name the file and the entry)."""
    if not isinstance(row, dict) or "database_id" not in row or not isinstance(row.get("interaction"), list):
        raise DataError(f"{path}: interaction {index} lacks 'database_id' or an 'interaction' list",
                        "use the SParC/CoSQL release format")
    db_id = row["database_id"]
    turns = []
    for t, turn in enumerate(row["interaction"], 1):
        if "utterance" not in turn or "query" not in turn:
            raise DataError(f"{path}: interaction {index}, turn {t} lacks 'utterance' or 'query'",
                            "use the SParC/CoSQL release format")
        raw = turn["query"].strip()  # whitespace kept: it may sit inside a string literal
        turns.append(Turn(index, t, db_id, " ".join(turn["utterance"].split()), normalise_gold(raw), raw,
                          turn.get("sql")))
    return Interaction(index, db_id, turns, row.get("final") or {})
