"""Schema serialisation and prompt rendering: golden text, sample rows, truncation rule, length stats.

``make_tiny_spider`` builds a real Spider-format folder (tables.json, json splits, sqlite files) in a temp dir;
test_generate.py and test_train.py import it from here.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from sqlshift.data.spider import load_spider
from sqlshift.sql.prompts import (BuiltPrompt, PromptBuilder, PromptConfig, build_messages, build_schema,
                                  completion_text, prompt_length_stats, render_prompt, schema_text)

TABLES = {
    "db_id": "concert",
    "table_names_original": ["singer", "concert"],
    "table_names": ["singer", "concert"],
    "column_names_original": [[-1, "*"], [0, "Singer_ID"], [0, "Name"], [0, "Age"],
                              [1, "concert_ID"], [1, "Singer_ID"], [1, "Year"], [1, "Stage Name"]],
    "column_names": [[-1, "*"], [0, "singer id"], [0, "name"], [0, "age"],
                     [1, "concert id"], [1, "singer id"], [1, "year"], [1, "stage name"]],
    "column_types": ["text", "number", "text", "number", "number", "number", "text", "text"],
    "primary_keys": [1, 4],
    "foreign_keys": [[5, 1]],
}
QUESTIONS = [
    ("How many singers are there?", "SELECT count(*) FROM singer"),
    ("What are the names of all singers?", "SELECT Name FROM singer"),
    ("List the names of singers older than 30.", "SELECT Name FROM singer WHERE Age > 30"),
    ("How many concerts are there?", "SELECT count(*) FROM concert"),
    ("Which years had concerts?", "SELECT DISTINCT Year FROM concert"),
    ("What is the average age of singers?", "SELECT avg(Age) FROM singer"),
    ("Show the name of the oldest singer.", "SELECT Name FROM singer ORDER BY Age DESC LIMIT 1"),
    ("How many concerts did each singer give?", "SELECT Singer_ID, count(*) FROM concert GROUP BY Singer_ID"),
]

EXPECTED_SCHEMA = """CREATE TABLE singer (
  Singer_ID NUMBER,
  Name TEXT,
  Age NUMBER,
  PRIMARY KEY (Singer_ID)
);

CREATE TABLE concert (
  concert_ID NUMBER,
  Singer_ID NUMBER,
  Year TEXT,
  "Stage Name" TEXT,
  PRIMARY KEY (concert_ID),
  FOREIGN KEY (Singer_ID) REFERENCES singer(Singer_ID)
);"""

SYSTEM = ("You are a Text-to-SQL assistant. Given a SQLite database schema and a question, "
          "answer with one SQLite query and nothing else.")


def make_tiny_spider(root: Path, n_repeat: int = 1) -> Path:
    """A Spider-format folder with one database (2 tables, a few rows) and train/dev splits."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "tables.json").write_text(json.dumps([TABLES]))
    rows = [{"db_id": "concert", "question": q, "query": s} for q, s in QUESTIONS] * n_repeat
    (root / "train_spider.json").write_text(json.dumps(rows))
    (root / "dev.json").write_text(json.dumps(rows))
    db = root / "database" / "concert" / "concert.sqlite"
    db.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(db)
    con.executescript("""
        CREATE TABLE singer (Singer_ID INTEGER PRIMARY KEY, Name TEXT, Age INTEGER);
        CREATE TABLE concert (concert_ID INTEGER PRIMARY KEY, Singer_ID INTEGER, Year TEXT, "Stage Name" TEXT,
                              FOREIGN KEY (Singer_ID) REFERENCES singer(Singer_ID));
        INSERT INTO singer VALUES (1, 'Joe Sharp', 52), (2, 'Timbaland', 32), (3, 'Justin Brown', 29);
        INSERT INTO concert VALUES (1, 1, '2014', 'Main'), (2, 2, '2015', 'Side');
    """)
    con.commit()
    con.close()
    return root


@pytest.fixture(scope="module")
def tok(tiny_model_dir: Path):
    from sqlshift.lm.models import load_tokenizer

    return load_tokenizer(str(tiny_model_dir))


@pytest.fixture()
def spider(tmp_path: Path):
    return load_spider(make_tiny_spider(tmp_path / "spider"), "dev")


def test_schema_text_golden() -> None:
    assert schema_text(TABLES) == EXPECTED_SCHEMA


def test_sample_rows_read_only(tmp_path: Path) -> None:
    root = make_tiny_spider(tmp_path / "s")
    db = root / "database" / "concert" / "concert.sqlite"
    before = db.stat().st_mtime_ns
    text = build_schema(TABLES, db, sample_rows=2).render()
    assert "/* 2 example rows from singer:\nSinger_ID | Name | Age\n1 | Joe Sharp | 52\n2 | Timbaland | 32\n*/" in text
    assert "/* 2 example rows from concert:\nconcert_ID | Singer_ID | Year | Stage Name\n1 | 1 | 2014 | Main" in text
    assert db.stat().st_mtime_ns == before
    assert build_schema(TABLES, tmp_path / "missing.sqlite", sample_rows=2).render() == EXPECTED_SCHEMA


def test_chat_prompt_golden(tok) -> None:
    msgs = build_messages({"question": "How many singers are there?"}, EXPECTED_SCHEMA)
    text = render_prompt(tok, msgs)
    assert text == (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\nDatabase schema:\n{EXPECTED_SCHEMA}\n\n"
                    "Question: How many singers are there?\nAnswer with one SQLite query only.<|im_end|>\n"
                    "<|im_start|>assistant\n")
    assert completion_text(tok, "SELECT  count(*)\nFROM singer") == "SELECT count(*) FROM singer<|im_end|>"


def test_plain_prompt_golden(tok) -> None:
    msgs = build_messages({"question": "How many singers?"}, "CREATE TABLE t (a TEXT);", system_prompt="Write SQL.")
    assert render_prompt(tok, msgs, chat=False) == (
        "Write SQL.\n\nDatabase schema:\nCREATE TABLE t (a TEXT);\n\nQuestion: How many singers?\n"
        "Answer with one SQLite query only.\nSQL:")
    assert completion_text(tok, "SELECT 1", chat=False) == " SELECT 1<|im_end|>"


def test_build_prompt_measures_tokens(tok, spider) -> None:
    p = PromptBuilder(tok, spider.tables, spider.db_path).build(spider.examples[0])
    assert p.n_tokens == len(tok(p.text)["input_ids"]) and not p.truncated
    assert "CREATE TABLE singer" in p.text and "How many singers are there?" in p.text


def test_truncation_rule_is_stated_and_recorded(tok, spider) -> None:
    cfg = PromptConfig(sample_rows=3)
    full = PromptBuilder(tok, spider.tables, spider.db_path, cfg).build(spider.examples[0])
    assert not full.truncated and "example rows" in full.text
    # budget just below the full prompt: sample rows go first
    p1 = PromptBuilder(tok, spider.tables, spider.db_path, cfg.model_copy(update={"max_prompt_tokens": full.n_tokens - 1})
                       ).build(spider.examples[0])
    assert p1.truncated and p1.dropped_samples and p1.dropped_tables == [] and "example rows" not in p1.text
    # tight budget: the table the question does not mention ("concert") is dropped, "singer" kept
    p2 = PromptBuilder(tok, spider.tables, spider.db_path, cfg.model_copy(update={"max_prompt_tokens": 150})
                       ).build(spider.examples[0])
    assert p2.truncated and p2.dropped_tables == ["concert"] and "CREATE TABLE singer" in p2.text
    # training protects the gold query's tables even when the question does not name them
    p3 = PromptBuilder(tok, spider.tables, spider.db_path, cfg.model_copy(update={"max_prompt_tokens": 150})
                       ).build({"db_id": "concert", "question": "How many?"}, gold_sql="SELECT count(*) FROM concert")
    assert p3.dropped_tables == ["singer"] and "CREATE TABLE concert" in p3.text


def test_prompt_length_stats() -> None:
    ps = [BuiltPrompt([], "", n, truncated=(n > 25)) for n in (10, 20, 30, 40)]
    s = prompt_length_stats(ps, limit=25)
    assert s["n"] == 4 and s["max"] == 40 and s["mean"] == 25.0 and s["n_truncated"] == 2 and s["n_over_limit"] == 2


def test_real_spider_prompts(tok, data_dir: Path) -> None:
    sp = load_spider(data_dir / "spider", "dev")
    prompts = [PromptBuilder(tok, sp.tables, sp.db_path).build(e) for e in sp.examples[:5]]
    assert all("CREATE TABLE" in p.text and "FOREIGN KEY" in p.text for p in prompts)
    assert prompt_length_stats(prompts)["n"] == 5
