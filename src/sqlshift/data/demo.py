"""The embedded demo benchmark: four small sqlite databases, Spider-format questions and an MMLU-layout quiz.

Written for sqlshift (not copied from Spider or MMLU) so that ``sqlshift run`` with no arguments can run a
complete, tiny study offline. The package ships text only (``.sql``, ``.json``, ``.csv``);
:func:`ensure_demo` turns it into the on-disk layout the real loaders expect.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

from sqlshift.data.mmlu import DEMO_SUBCATEGORIES  # noqa: F401  (demo subject -> MMLU subcategory, one definition)
from sqlshift.errors import DataError
from sqlshift.outputs import atomic_write_bytes, refuse_link

#: databases used for training; ``league`` appears only in dev, so the demo has one unseen schema.
TRAIN_DBS = ("library", "school", "shop")
DEV_DBS = ("library", "school", "shop", "league")
SUBJECTS = ("general_science", "world_geography", "everyday_math")
#: benchmark settings the demo data needs where a default assumes real data: MMLU's default (the seed preset's three
#: subjects) is not in the demo quiz, so on the demo MMLU means every subject found (what default.yaml sets)
DEMO_SETTINGS: dict[str, dict[str, str]] = {"mmlu": {"subjects": "all"}}

_SPIDER_FILES = {"train.json": "train_spider.json", "dev.json": "dev.json", "tables.json": "tables.json",
                 "dev_gold.sql": "dev_gold.sql"}


def demo_root() -> Path:
    """Folder of the shipped demo text files (inside the installed package)."""
    return Path(__file__).resolve().parent.parent / "demo"


def ensure_demo(dest: str | Path) -> Path:
    """Materialise the demo as ``dest/spider/...`` and ``dest/mmlu/...``; idempotent, returns ``dest``.

    Databases are built from the shipped ``.sql`` in a temporary file and renamed into place, so an
    interrupted build never leaves a half-filled ``.sqlite`` that later runs would trust.
    """
    dest = Path(dest)
    src = demo_root()
    if not (src / "tables.json").is_file():
        raise DataError(f"demo data missing under {src}", "reinstall sqlshift (package data was not installed)")
    spider = dest / "spider"
    spider.mkdir(parents=True, exist_ok=True)
    for name, target in _SPIDER_FILES.items():
        _copy_if_changed(src / name, spider / target)
    for sql_file in sorted((src / "databases").glob("*.sql")):
        _build_db(sql_file, spider / "database" / sql_file.stem / f"{sql_file.stem}.sqlite")
    for csv_file in sorted((src / "mmlu").rglob("*.csv")):
        _copy_if_changed(csv_file, dest / "mmlu" / csv_file.relative_to(src / "mmlu"))
    return dest


def _copy_if_changed(src: Path, dst: Path) -> None:
    """Copy unless ``dst`` already holds the same bytes (keeps reruns cheap and mtimes stable)."""
    refuse_link(dst)
    if dst.is_file() and dst.read_bytes() == src.read_bytes():
        return
    atomic_write_bytes(dst, src.read_bytes())


def _build_db(sql_file: Path, db_path: Path) -> None:
    """Create ``db_path`` from a ``.sql`` script unless it is already newer than the script."""
    if db_path.is_file() and db_path.stat().st_mtime >= sql_file.stat().st_mtime and db_path.stat().st_size > 0:
        return
    db_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".sqlite", dir=db_path.parent)
    os.close(fd)
    try:
        con = sqlite3.connect(tmp)
        try:
            con.executescript(sql_file.read_text(encoding="utf-8"))
            con.commit()
        finally:
            con.close()
        os.replace(tmp, db_path)
    except sqlite3.Error as e:
        raise DataError(f"cannot build demo database from {sql_file}: {e}", "reinstall sqlshift") from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
