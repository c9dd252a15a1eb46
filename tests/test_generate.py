"""SQL extraction, resumable Spider predictions through an ``LM`` (predict_split), run_predict, official format.

Generation itself (end-of-turn stop, stop strings, the length limit) is tested on the LM in test_lm_hf.py."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from sqlshift.data.spider import load_spider
from sqlshift.sql.extract import extract_sql
from sqlshift.cli.evaluate import run_predict
from sqlshift.lm.models import stop_token_ids
from sqlshift.sql.prediction_files import write_official
from sqlshift.jsonl import read_jsonl
from sqlshift.lm.hf import HFLM
from sqlshift.sql.prompts import PromptConfig
from test_lm_hf import CountingLM
from test_prompts import make_tiny_spider


@pytest.mark.parametrize("text, sql, how", [
    ("SELECT count(*) FROM singer", "SELECT count(*) FROM singer", "first_line"),
    ("SELECT count(*) FROM singer;", "SELECT count(*) FROM singer", "first_line"),
    ("```sql\nSELECT name\nFROM singer;\n```\nThis lists names.", "SELECT name FROM singer", "code_fence"),
    ("Here you go:\n```\nSELECT 1\n```", "SELECT 1", "code_fence"),
    ("```postgresql\nSELECT 2\n```", "SELECT 2", "code_fence"),
    ("```sql SELECT 3```", "SELECT 3", "code_fence"),
    ("SELECT a FROM t\n```", "SELECT a FROM t", "statement"),
    ("SQL: SELECT name FROM singer", "SELECT name FROM singer", "sql_prefix"),
    ("Sure.\nSQL query: SELECT a FROM t WHERE b = 'x;y'; -- done", "SELECT a FROM t WHERE b = 'x;y'", "sql_prefix"),
    ("SELECT name FROM singer\nThis query returns the names of all singers.", "SELECT name FROM singer", "statement"),
    ("SELECT a FROM t; SELECT b FROM u;", "SELECT a FROM t", "statement"),
    ("To count them, use SELECT count(*) FROM singer.", "SELECT count(*) FROM singer", "statement"),
    ("SELECT name\nFROM singer\nWHERE age > 30", "SELECT name FROM singer WHERE age > 30", "multi_line"),
    ("WITH x AS (SELECT 1) SELECT * FROM x", "WITH x AS (SELECT 1) SELECT * FROM x", "first_line"),
    ("SELECT a FROM t\n\nExplanation: picks a", "SELECT a FROM t", "statement"),
    ("I don't know.", "I don't know.", "no_sql"),
    ("", "", "empty"),
    ("   \n ", "", "empty"),
    ("```sql\n```", "", "empty"),
])
def test_extract_sql(text: str, sql: str, how: str) -> None:
    assert extract_sql(text) == (sql, how)


@pytest.fixture(scope="module")
def lm(tiny_model_dir: Path) -> HFLM:
    return HFLM(str(tiny_model_dir))


def test_stop_tokens_include_the_end_of_turn(lm: HFLM) -> None:
    tok = lm.tokenizer
    ids = stop_token_ids(tok)
    assert ids[0] == tok.convert_tokens_to_ids("<|im_end|>") and tok.eos_token_id in ids


def test_predict_split_resumes_and_generates_only_missing_indices(lm: HFLM, tmp_path: Path) -> None:
    from sqlshift.benchmarks.spider import predict_split

    split = load_spider(make_tiny_spider(tmp_path / "spider"), "dev")
    assert len(split.examples) == 8
    out = tmp_path / "pred" / "predictions.jsonl"
    first_three = dataclasses.replace(split, examples=[split.examples[i] for i in (0, 5, 6)])
    counting = CountingLM(lm)
    first = predict_split(counting, first_three, out, prompt_cfg=PromptConfig(), batch_size=2, max_new_tokens=3)
    assert [p["index"] for p in first] == [0, 5, 6] and counting.generate_requests == 3
    rec = first[0]
    assert set(rec) >= {"index", "db_id", "sql", "raw", "n_new_tokens", "hit_limit", "extraction", "prompt_tokens"}
    assert rec["db_id"] == "concert" and rec["n_new_tokens"] <= 3 and rec["prompt_tokens"] > 0
    assert (rec["sql"], rec["extraction"]) == extract_sql(rec["raw"])
    with out.open("a") as f:
        f.write('{"index": 7, "db_')  # an interrupted write
    counting = CountingLM(lm)
    allp = predict_split(counting, split, out, prompt_cfg=PromptConfig(), batch_size=4, max_new_tokens=3)
    assert counting.generate_requests == 5, "only the 5 missing indices are generated"
    assert [p["index"] for p in allp] == list(range(8))
    assert [p for p in allp if p["index"] in (0, 5, 6)] == first  # earlier predictions are kept, not redone
    lines = read_jsonl(out)
    assert sorted(r["index"] for r in lines) == list(range(8))
    assert all(json.loads(line) for line in out.read_text().splitlines())
    counting = CountingLM(lm)
    assert predict_split(counting, split, out, prompt_cfg=PromptConfig(), batch_size=4, max_new_tokens=3) == allp
    assert counting.generate_requests == 0


def test_predictions_equal_a_fresh_run_and_the_lm_generations(lm: HFLM, tmp_path: Path) -> None:
    """What predict_split records is the LM's greedy generation for the builder's prompt, batched or not."""
    from sqlshift.lm.api import GenerateRequest
    from sqlshift.benchmarks.spider import predict_split
    from sqlshift.sql.prompts import PromptBuilder

    split = load_spider(make_tiny_spider(tmp_path / "spider"), "dev")
    split = dataclasses.replace(split, examples=split.examples[:3])
    a = predict_split(lm, split, tmp_path / "a.jsonl", prompt_cfg=PromptConfig(), batch_size=3, max_new_tokens=4)
    b = predict_split(lm, split, tmp_path / "b.jsonl", prompt_cfg=PromptConfig(), batch_size=1, max_new_tokens=4)
    assert a == b
    builder = PromptBuilder(lm.tokenizer, split.tables, split.db_path, PromptConfig())
    gens = lm.generate([GenerateRequest(builder.build(e).text, 4) for e in split.examples])
    assert [p["raw"] for p in a] == [g.text for g in gens]
    assert [p["hit_limit"] for p in a] == [g.hit_limit for g in gens]


def test_official_format() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        off = write_official([{"index": 1, "sql": "SELECT\n2"}, {"index": 0, "sql": "SELECT 1"}, {"index": 2, "sql": ""}],
                             Path(d) / "o.sql")
        assert off.read_text() == "SELECT 1\nSELECT 2\n\n"


def test_run_predict_writes_predictions_and_official_sql(tiny_model_dir: Path, tmp_path: Path) -> None:
    spider = make_tiny_spider(tmp_path / "spider")
    path = run_predict(str(tiny_model_dir), None, spider, split="dev", sample=3, out=tmp_path / "p", batch_size=2,
                       max_new_tokens=3)
    assert path == tmp_path / "p" / "predictions.jsonl"
    preds = read_jsonl(path)
    assert len(preds) == 3 and len({p["index"] for p in preds}) == 3
    official = (tmp_path / "p" / "predictions.sql").read_text().splitlines()
    assert official == [" ".join(p["sql"].split()) for p in sorted(preds, key=lambda p: p["index"])]
    assert not (tmp_path / "p" / "metrics.json").exists(), "without score nothing is judged"
    # the same sample as the benchmark's seeded subset
    from sqlshift.benchmarks.common import sample_items

    assert sorted(p["index"] for p in preds) == [e.index for e in sample_items(load_spider(spider, "dev").examples,
                                                                               3, 42)]


def test_run_predict_with_score_writes_results_and_metrics(tiny_model_dir: Path, tmp_path: Path) -> None:
    spider = make_tiny_spider(tmp_path / "spider")
    run_predict(str(tiny_model_dir), None, spider, split="dev", sample=4, out=tmp_path / "s", batch_size=4,
                max_new_tokens=3, score=True)
    out = tmp_path / "s"
    for f in ("predictions.jsonl", "predictions.sql", "results.jsonl", "metrics.json"):
        assert (out / f).is_file(), f
    metrics = json.loads((out / "metrics.json").read_text())
    rows = read_jsonl(out / "results.jsonl")
    assert metrics["n"] == len(rows) == 4 and metrics["benchmark"] == "spider" and metrics["axis"] == "specialty"
    assert metrics["accuracy"] == metrics["execution_accuracy"] == sum(r["correct"] for r in rows) / 4
    assert all(r["id"] == str(r["index"]) for r in rows)
    assert len((out / "predictions.sql").read_text().splitlines()) == 4


def test_spider_benchmark_evaluate_resumes_and_writes_the_contract(lm: HFLM, tmp_path: Path) -> None:
    from sqlshift.benchmarks.spider import SpiderBenchmark, SpiderSettings

    spider = make_tiny_spider(tmp_path / "spider")
    b = SpiderBenchmark(SpiderSettings(benchmark="spider", split="dev", sample=5, batch_size=4, max_new_tokens=3),
                        spider)
    assert b.check() == [] and b.out_name == "spider-dev" and b.label == "EX (dev)"
    out = tmp_path / "spider-dev"
    counting = CountingLM(lm)
    m = b.evaluate(counting, out)
    assert counting.generate_requests == 5
    for k in ("benchmark", "axis", "kind", "label", "accuracy", "n", "n_correct", "ci95", "n_empty", "n_predictions"):
        assert k in m, k
    assert (m["benchmark"], m["axis"], m["kind"], m["label"]) == ("spider", "specialty", "text2sql", "EX (dev)")
    rows = read_jsonl(out / "results.jsonl")
    assert m["n"] == len(rows) == 5 and m["n_correct"] == sum(r["correct"] for r in rows)
    assert sorted(r["id"] for r in rows) == sorted(str(r["index"]) for r in rows)
    assert json.loads((out / "metrics.json").read_text())["accuracy"] == m["accuracy"]
    preds = read_jsonl(out / "predictions.jsonl")
    assert m["n_empty"] == sum(not p["sql"].strip() for p in preds)
    assert bool(b.problems(m)) == (m["n_empty"] == m["n_predictions"] == 5)
    again = CountingLM(lm)
    assert b.evaluate(again, out)["n"] == 5 and again.generate_requests == 0  # predictions are reused
    (problem,) = SpiderBenchmark(SpiderSettings(benchmark="spider", split="syn"), spider).check()
    assert "spider-syn" in problem
