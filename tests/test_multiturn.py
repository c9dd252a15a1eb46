"""SParC / CoSQL benchmarks on a constructed two-interaction set with real sqlite databases (no model needed)."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from sqlshift.lm.api import LM, GenerateRequest, Generation
from sqlshift.benchmarks.api import get_benchmark
from sqlshift.benchmarks.multiturn import (HISTORY_HEADER, CoSQLBenchmark, MultiTurnSettings, SParCBenchmark,
                                           turn_prompt)
from sqlshift.data.multiturn import load_multiturn, normalise_gold
from sqlshift.errors import EmptyPredictions
from sqlshift.jsonl import read_jsonl
from sqlshift.sql.prompts import PromptBuilder, PromptConfig

DBS = {
    "shop": ("CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, price NUMBER)",
             "INSERT INTO products VALUES (1, 'pen', 2), (2, 'book', 12), (3, 'lamp', 30)"),
    "school": ("CREATE TABLE students (id INTEGER PRIMARY KEY, name TEXT, age NUMBER)",
               "INSERT INTO students VALUES (1, 'ann', 19), (2, 'bob', 23), (3, 'cy', 31)"),
}
TABLES = [
    {"db_id": "shop", "table_names_original": ["products"], "table_names": ["products"],
     "column_names_original": [[-1, "*"], [0, "id"], [0, "name"], [0, "price"]],
     "column_names": [[-1, "*"], [0, "id"], [0, "name"], [0, "price"]],
     "column_types": ["text", "number", "text", "number"], "primary_keys": [1], "foreign_keys": []},
    {"db_id": "school", "table_names_original": ["students"], "table_names": ["students"],
     "column_names_original": [[-1, "*"], [0, "id"], [0, "name"], [0, "age"]],
     "column_names": [[-1, "*"], [0, "id"], [0, "name"], [0, "age"]],
     "column_types": ["text", "number", "text", "number"], "primary_keys": [1], "foreign_keys": []},
    {"db_id": "gone", "table_names_original": ["t"], "table_names": ["t"],
     "column_names_original": [[-1, "*"], [0, "a"]], "column_names": [[-1, "*"], [0, "a"]],
     "column_types": ["text", "number"], "primary_keys": [], "foreign_keys": []},
]
INTERACTIONS = [
    ("shop", [("What are all the products?", "SELECT * FROM products"),
              ("Which of them cost more than 5?", "SELECT * FROM products WHERE price  >  5"),
              ("Give their names, not the lamp.", "SELECT name FROM products WHERE price > 5 AND name ! = 'lamp'")]),
    ("school", [("List the students.", "SELECT name FROM students"),
                ("Only those older than 20?", "SELECT name FROM students WHERE age > 20")]),
    ("gone", [("Anything here?", "SELECT a FROM t")]),  # its database is missing: skipped, and said so
]
GOLD = {q: sql for _, turns in INTERACTIONS for q, sql in turns}


def write_release(root: Path, name: str = "sparc", interactions: Sequence[Any] = INTERACTIONS) -> Path:
    """A data root in the shared layout: <root>/<name>/{dev.json,tables.json}, <root>/spider/database/."""
    for db, stmts in DBS.items():
        d = root / "spider" / "database" / db
        d.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(d / f"{db}.sqlite")) as conn:
            for s in stmts:
                conn.execute(s)
            conn.commit()
    (root / name).mkdir(parents=True, exist_ok=True)
    dev = [{"database_id": db, "interaction": [{"utterance": q, "query": sql} for q, sql in turns],
            "final": {"utterance": turns[-1][0], "query": turns[-1][1]}} for db, turns in interactions]
    (root / name / "dev.json").write_text(json.dumps(dev))
    (root / name / "tables.json").write_text(json.dumps(TABLES))
    return root


class WordTokenizer:
    """Just what prompts need from a tokenizer: no chat template, a token per whitespace-separated word."""

    chat_template = None
    eos_token = ""

    def __call__(self, text: str) -> dict[str, list[str]]:
        return {"input_ids": text.split()}


class FakeLM(LM):
    """Answers by looking up the prompt's current question; records every generate call."""

    backend = "fake"

    def __init__(self, answer: Callable[[str], str] = GOLD.__getitem__) -> None:
        self.tokenizer = WordTokenizer()
        self.answer = answer
        self.calls: list[list[str]] = []

    @property
    def identity(self) -> dict[str, Any]:
        return {"model": "fake"}

    def generate(self, requests: Sequence[GenerateRequest], *, batch_size: int | None = None,
                 desc: str = "generate") -> list[Generation]:
        self.calls.append([r.prompt for r in requests])
        out = []
        for r in requests:
            text = self.answer(current_question(r.prompt))
            out.append(Generation(text, len(text.split()), False))
        return out

    def loglikelihood(self, requests: Sequence[Any], *, batch_size: int | None = None,
                      desc: str = "loglikelihood") -> list[tuple[float, bool]]:
        raise NotImplementedError

    def adapter(self, path: Path | None, scale: float = 1.0) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


def current_question(prompt: str) -> str:
    return re.search(r"\nQuestion: (.*)\n", prompt).group(1)


def bench(root: Path, cls: type = SParCBenchmark, **kw: Any) -> SParCBenchmark:
    return cls(MultiTurnSettings(benchmark=cls.name, **kw), root)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_release(tmp_path / "data")


def rows_of(out: Path) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in read_jsonl(out / "results.jsonl")}


# ---------------------------------------------------------------- scoring


@pytest.mark.parametrize("history", ["questions", "questions+sql"])
def test_gold_answers_score_everything(root: Path, tmp_path: Path, history: str) -> None:
    m = bench(root, history=history).evaluate(FakeLM(), tmp_path / "out")
    assert (m["accuracy"], m["n"], m["interaction_accuracy"], m["interaction_n"]) == (1.0, 5, 1.0, 2)
    assert m["complete"] and m["n_requested"] == 5 and m["by_error_type"] == {"correct": 5}
    assert {g: s["n"] for g, s in m["by_turn"].items()} == {"1": 2, "2": 2, "3": 1}
    assert m["n_skipped"] == 1 and m["n_skipped_interactions"] == 1
    assert m["skip_reasons"] == {"missing database gone": 1}
    assert m["generation"] == {"n": 5, "hit_limit": 0, "empty": 0, "multi_line_extraction": 0}
    assert m["gold_normalised"] == 1 and m["n_gold_failed"] == 0 and m["label"] == "SParC QM"
    rows = rows_of(tmp_path / "out")
    assert sorted(rows) == ["0-1", "0-2", "0-3", "1-1", "1-2"]  # file order: as generated (turn by turn)
    assert rows["0-3"]["gold_sql"].endswith("name != 'lamp'") and rows["0-3"]["gold_normalised"]
    assert rows["0-1"]["hardness"] == "easy" and rows["1-2"]["db_id"] == "school"
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["accuracy"] == 1.0


def test_wrong_second_turn_counts_once_per_turn_and_sinks_its_interaction(root: Path, tmp_path: Path) -> None:
    wrong = {"Which of them cost more than 5?": "SELECT * FROM products WHERE price > 1"}
    m = bench(root).evaluate(FakeLM(lambda q: wrong.get(q, GOLD[q])), tmp_path / "out")
    assert (m["n_correct"], m["n"], m["accuracy"]) == (4, 5, 0.8)
    assert (m["interaction_n_correct"], m["interaction_n"], m["interaction_accuracy"]) == (1, 2, 0.5)
    assert [(g, s["n_correct"], s["n"]) for g, s in m["by_turn"].items()] == [("1", 2, 2), ("2", 1, 2), ("3", 1, 1)]
    assert m["by_error_type"] == {"correct": 4, "wrong_result": 1}
    assert rows_of(tmp_path / "out")["0-2"]["error_type"] == "wrong_result"


def test_fourth_and_later_turns_share_a_bucket(tmp_path: Path) -> None:
    long = [("shop", [(f"Question number {i}?", "SELECT name FROM products") for i in range(1, 6)])]
    root = write_release(tmp_path / "data", interactions=long)
    gold = FakeLM(lambda q: "SELECT name FROM products")
    m = bench(root).evaluate(gold, tmp_path / "out")
    assert {g: s["n"] for g, s in m["by_turn"].items()} == {"1": 1, "2": 1, "3": 1, "4+": 2}


# ---------------------------------------------------------------- gold normalisation


def test_normalise_gold_joins_spaced_operators_outside_strings() -> None:
    sql = "SELECT a FROM t WHERE a ! = 1 AND b < = 2 AND c >  = 3 AND d = 'x ! = y' AND e = \"< =\" AND f >= 4"
    assert normalise_gold(sql) == ("SELECT a FROM t WHERE a != 1 AND b <= 2 AND c >= 3 AND d = 'x ! = y' "
                                   "AND e = \"< =\" AND f >= 4")
    assert normalise_gold("SELECT 'it''s ! = ok' FROM t WHERE a ! = 1") == "SELECT 'it''s ! = ok' FROM t WHERE a != 1"


def test_normalised_gold_runs_even_without_the_official_fixups(root: Path, tmp_path: Path) -> None:
    """``simple`` EX executes gold as given: the spaced operator would be a gold_error without our normalisation."""
    m = bench(root, ex_mode="simple").evaluate(FakeLM(lambda q: normalise_gold(GOLD[q])), tmp_path / "out")
    assert m["accuracy"] == 1.0 and m["n_gold_failed"] == 0 and m["mode"] == "simple"
    assert rows_of(tmp_path / "out")["0-3"]["gold_sql_release"].endswith("name ! = 'lamp'")


def test_gold_that_still_fails_is_out_of_n_and_listed(tmp_path: Path) -> None:
    broken = [INTERACTIONS[0], ("school", [INTERACTIONS[1][1][0], ("Only those older than 20?",
                                                                   "SELECT nope FROM students")])]
    root = write_release(tmp_path / "data", interactions=broken)
    m = bench(root).evaluate(FakeLM(lambda q: GOLD[q]), tmp_path / "out")
    assert (m["n"], m["n_requested"], m["n_gold_failed"], m["gold_failed"]) == (4, 5, 1, ["1-2"])
    assert m["by_error_type"]["gold_error"] == 1 and m["accuracy"] == 1.0
    assert (m["interaction_n"], m["interaction_accuracy"]) == (2, 1.0)  # interaction 1 judged on its turn 1
    assert m["complete"]


# ---------------------------------------------------------------- prompts and history


def test_history_setting_changes_prompts_as_documented(root: Path, tmp_path: Path) -> None:
    q_lm, s_lm = FakeLM(), FakeLM()
    bench(root, history="questions").evaluate(q_lm, tmp_path / "q")
    bench(root, history="questions+sql").evaluate(s_lm, tmp_path / "s")
    assert [len(c) for c in q_lm.calls] == [5]  # all turns at once
    assert [len(c) for c in s_lm.calls] == [2, 2, 1]  # turn by turn, batched across interactions
    q_prompts = {current_question(p): p for c in q_lm.calls for p in c}
    s_prompts = {current_question(p): p for c in s_lm.calls for p in c}
    split = load_multiturn(root / "sparc", root / "spider" / "database")
    spider_prompt = PromptBuilder(WordTokenizer(), split.tables).build({"question": "List the students.",
                                                                       "db_id": "school"}).text
    assert q_prompts["List the students."] == s_prompts["List the students."] == spider_prompt  # turn 1 is Spider's
    third = q_prompts["Give their names, not the lamp."]
    assert (f"{HISTORY_HEADER}\n1. What are all the products?\n2. Which of them cost more than 5?\n\n"
            "Question: Give their names, not the lamp.") in third
    assert third.index("CREATE TABLE products") < third.index(HISTORY_HEADER) and "   SQL:" not in third
    third_sql = s_prompts["Give their names, not the lamp."]
    assert ("1. What are all the products?\n   SQL: SELECT * FROM products\n2. Which of them cost more than 5?\n"
            "   SQL: SELECT * FROM products WHERE price > 5\n\nQuestion:")  # extracted SQL is one line in third_sql
    assert "Only those older than 20?" not in third  # no leak across interactions


def test_history_uses_predicted_not_gold_sql(root: Path, tmp_path: Path) -> None:
    lm = FakeLM(lambda q: "SELECT 42" if q == "List the students." else GOLD[q])
    bench(root, history="questions+sql").evaluate(lm, tmp_path / "out")
    second = next(p for c in lm.calls for p in c if current_question(p) == "Only those older than 20?")
    assert "1. List the students.\n   SQL: SELECT 42\n" in second and "SELECT name FROM students\n" not in second


def test_long_history_drops_oldest_turns_to_fit_the_budget(root: Path) -> None:
    split = load_multiturn(root / "sparc", root / "spider" / "database")
    turn = split.interactions[0].turns[2]
    earlier = [(1, "What are all the products?", None), (2, "Which of them cost more than 5?", None)]
    builder = PromptBuilder(WordTokenizer(), split.tables)
    full, dropped = turn_prompt(builder, turn, earlier, False)
    assert dropped == 0 and "1. What are all" in full.text
    one = len(turn_prompt(builder, turn, earlier[1:], False)[0].text.split())
    small = PromptBuilder(WordTokenizer(), split.tables, cfg=PromptConfig(max_prompt_tokens=one))
    fitted, dropped = turn_prompt(small, turn, earlier, False)
    assert dropped == 1 and fitted.n_tokens <= one and "1. What are all" not in fitted.text
    assert "2. Which of them cost more than 5?" in fitted.text and "CREATE TABLE products" in fitted.text


# ---------------------------------------------------------------- resume, sampling, checks, guards


class Interrupted(Exception):
    pass


def test_resume_after_interruption_generates_only_the_rest(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    calls = {"n": 0}

    def dies_on_second_round(q: str) -> str:
        if calls["n"] >= 2:
            raise Interrupted
        calls["n"] += 1
        return GOLD[q]

    with pytest.raises(Interrupted):
        bench(root, history="questions+sql").evaluate(FakeLM(dies_on_second_round), out)
    assert sorted(rows_of(out)) == ["0-1", "1-1"] and not (out / "metrics.json").exists()
    with (out / "results.jsonl").open("a") as f:
        f.write('{"id": "0-2", "corr')  # a torn last line, as a kill mid-write leaves
    lm = FakeLM()
    m = bench(root, history="questions+sql").evaluate(lm, out)
    assert [len(c) for c in lm.calls] == [2, 1]  # turns 2 and 3 only
    assert "SQL: SELECT * FROM products\n" in lm.calls[0][0]  # history read back from the first run's rows
    assert (m["accuracy"], m["n"], m["interaction_accuracy"], m["complete"]) == (1.0, 5, 1.0, True)
    assert len(read_jsonl(out / "results.jsonl")) == 5


def test_sample_takes_whole_interactions(root: Path, tmp_path: Path) -> None:
    m = bench(root, sample=1, sample_seed=0).evaluate(FakeLM(), tmp_path / "out")
    rows = rows_of(tmp_path / "out")
    assert len({r["interaction"] for r in rows.values()}) == 1 and m["n_interactions"] == 1
    assert m["n_requested"] == len(rows) and m["interaction_n"] == 1 and m["sample"] == {"interactions": 1, "seed": 0}


def test_missing_files_are_named_before_any_model(tmp_path: Path) -> None:
    b = bench(tmp_path / "nowhere", CoSQLBenchmark)
    problems = b.check()
    assert any(str(tmp_path / "nowhere" / "cosql" / "dev.json") in p for p in problems)
    assert any("tables.json" in p for p in problems) and any("database" in p for p in problems)
    root = write_release(tmp_path / "data", "cosql")
    assert bench(root, CoSQLBenchmark).check() == []
    assert bench(root, SParCBenchmark).check() != []  # sparc/ is not there


def test_all_empty_predictions_are_a_problem(root: Path, tmp_path: Path) -> None:
    b = bench(root)
    m = b.evaluate(FakeLM(lambda q: ""), tmp_path / "out")
    assert m["generation"]["empty"] == 5 and m["by_error_type"] == {"empty_prediction": 5}
    assert [type(e) for e in b.problems(m)] == [EmptyPredictions]
    assert b.problems(bench(root).evaluate(FakeLM(), tmp_path / "ok")) == []


def test_registry_settings_and_names(root: Path) -> None:
    assert get_benchmark("sparc") is SParCBenchmark and get_benchmark("cosql") is CoSQLBenchmark
    assert (SParCBenchmark.axis, SParCBenchmark.kind) == ("specialty", "text2sql")
    with pytest.raises(ValueError):
        MultiTurnSettings(benchmark="sparc", histroy="questions")
    with pytest.raises(ValueError):
        MultiTurnSettings(benchmark="sparc", history="sql")
    assert bench(root).out_name == "sparc" and bench(root, history="questions+sql").out_name == "sparc-predsql"
    assert bench(root, name="x").out_name == "x"


# ---------------------------------------------------------------- the real release


@pytest.mark.data
@pytest.mark.parametrize("name,n_inter,n_turns,raw_ok,evaluable,spaced",
                         [("sparc", 422, 1203, 1140, 1144, 3), ("cosql", 293, 1007, 923, 948, 24)])
def test_real_release_counts_and_gold_normalisation(data_dir: Path, name: str, n_inter: int, n_turns: int,
                                                    raw_ok: int, evaluable: int, spaced: int) -> None:
    """The data card's counts: gold executing before normalisation, and all but one after."""
    from sqlshift.sql.sandbox import SqlSandbox

    split = load_multiturn(data_dir / name, data_dir / "spider" / "database")
    assert len(split.interactions) + len(split.skipped) == n_inter
    assert split.n_turns + split.n_skipped_turns == n_turns and split.n_turns == evaluable
    assert split.skip_reasons == {"missing database wta_1": 59}
    turns = [t for it in split.interactions for t in it.turns]
    assert sum(t.normalised for t in turns) == spaced
    with SqlSandbox() as sb:
        raw = sb.execute_many([(str(split.db_path(t.db_id)), t.raw_query) for t in turns])
        fixed = sb.execute_many([(str(split.db_path(t.db_id)), t.query) for t in turns])
    assert sum(r.ok for r in raw) == raw_ok
    assert sum(r.ok for r in fixed) == evaluable - 1  # one release error each (a missing column; a syntax error)


@pytest.mark.slow
def test_tiny_model_end_to_end_through_hflm(root: Path, tmp_path: Path, tiny_model_dir: Path) -> None:
    """A real (random, 2-layer) model behind HFLM: chat-templated prompts, turn-synchronous decoding, both files."""
    from sqlshift.lm.hf import HFLM

    lm = HFLM(str(tiny_model_dir), device="cpu", dtype="float32")
    b = bench(root, history="questions+sql", max_new_tokens=8, batch_size=2)
    m = b.evaluate(lm, tmp_path / "out")
    rows = rows_of(tmp_path / "out")
    assert m["complete"] and m["n_requested"] == 5 and m["generation"]["n"] == 5 and "lm" in m
    assert all(r["n_tokens"] <= 8 and r["prompt_tokens"] > 0 for r in rows.values())
    assert 0.0 <= m["accuracy"] <= 1.0 and m["interaction_n"] == 2
