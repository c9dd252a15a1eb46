"""SQL extraction, stopping at end of turn, resumable predictions.jsonl, official output format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sqlshift.data.spider import load_spider
from sqlshift.generate import (decode_batch, extract_sql, generate_predictions, stop_token_ids,
                               write_official)
from sqlshift.jsonl import read_jsonl
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


class Script:
    """Forward hook on lm_head forcing the tokens of ``ids`` in order (then ``after`` forever)."""

    def __init__(self, ids: list[int], after: int) -> None:
        self.ids, self.after, self.calls = ids, after, 0

    def __call__(self, module, inputs, output):
        t = self.ids[self.calls] if self.calls < len(self.ids) else self.after
        self.calls += 1
        output = output.clone()
        output[:, -1, t] += 1e4
        return output


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path):
    from sqlshift.models import load_model

    return load_model(str(tiny_model_dir))


def test_generation_stops_at_end_of_turn(tiny) -> None:
    model, tok = tiny
    assert stop_token_ids(tok)[0] == tok.convert_tokens_to_ids("<|im_end|>")
    sql_ids = tok("SELECT 1", add_special_tokens=False)["input_ids"]
    system = tok("system", add_special_tokens=False)["input_ids"][0]
    model.generation_config.eos_token_id = None  # the GPU pitfall: the model's own config does not stop it
    h = model.lm_head.register_forward_hook(Script(sql_ids + [tok.eos_token_id], after=system))
    try:
        out = decode_batch(model, tok, ["<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"] * 2, 12)
    finally:
        h.remove()
    assert out == [("SELECT 1", len(sql_ids), False)] * 2
    h = model.lm_head.register_forward_hook(Script([], after=system))
    try:
        (raw, n, hit), = decode_batch(model, tok, ["hello"], 5)
    finally:
        h.remove()
    assert hit and n == 5 and "system" in raw


def test_static_cache_decodes_like_the_dynamic_cache(tiny) -> None:
    model, tok = tiny
    prompts = ["<|im_start|>user\nlist the singers<|im_end|>\n<|im_start|>assistant\n", "hello", "SELECT"]
    assert decode_batch(model, tok, prompts, 6, static_cache=True) == decode_batch(model, tok, prompts, 6)


def test_generate_resume_and_official(tiny, tmp_path: Path, monkeypatch) -> None:
    import sqlshift.generate as g

    model, tok = tiny
    split = load_spider(make_tiny_spider(tmp_path / "spider"), "dev")
    out = tmp_path / "pred" / "predictions.jsonl"
    calls: list[int] = []
    real = g.decode_batch

    def counting(model, tok, texts, max_new_tokens):
        calls.append(len(texts))
        return real(model, tok, texts, max_new_tokens)

    monkeypatch.setattr(g, "decode_batch", counting)
    first = generate_predictions(model, tok, split, out, batch_size=2, max_new_tokens=3, indices=[0, 5, 6],
                                 progress=False)
    assert [p["index"] for p in first] == [0, 5, 6] and sum(calls) == 3
    rec = first[0]
    assert set(rec) >= {"index", "db_id", "sql", "raw", "n_new_tokens", "hit_limit", "extraction"}
    assert rec["db_id"] == "concert" and rec["n_new_tokens"] <= 3
    with out.open("a") as f:
        f.write('{"index": 7, "db_')  # an interrupted write
    calls.clear()
    allp = generate_predictions(model, tok, split, out, batch_size=4, max_new_tokens=3, progress=False)
    assert sum(calls) == 5 and [p["index"] for p in allp] == list(range(8))
    lines = read_jsonl(out)
    assert sorted(r["index"] for r in lines) == list(range(8))
    assert all(json.loads(line) for line in out.read_text().splitlines())
    off = write_official([{"index": 1, "sql": "SELECT\n2"}, {"index": 0, "sql": "SELECT 1"}, {"index": 2, "sql": ""}],
                         tmp_path / "o.sql")
    assert off.read_text() == "SELECT 1\nSELECT 2\n\n"
