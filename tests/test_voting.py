"""Execution-guided decoding: the vote rule on the demo's real sqlite databases, the Spider benchmark's paired
greedy/voted rows with a stand-in LM that returns fixed samples, seeded sampling in both backends, and one
``sqlshift run`` on the embedded SmolLM2 with two samples per question."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sqlshift.benchmarks.spider import SpiderBenchmark, SpiderSettings
from sqlshift.data.demo import ensure_demo
from sqlshift.jsonl import read_jsonl
from sqlshift.lm.api import GenerateRequest, Sampling
from sqlshift.sql.sandbox import SqlSandbox
from sqlshift.sql.vote import choose, vote_many
from voting_runs import FixedSamples

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SqlSandbox]:
    with SqlSandbox(timeout_s=10, workers=1) as sb:
        yield sb


def library(demo: Path) -> str:
    return str(demo / "spider" / "database" / "library" / "library.sqlite")


def vote(demo: Path, sandbox: SqlSandbox, *sqls: str, mode: str = "official") -> Any:
    return vote_many([(library(demo), list(sqls))], sandbox, mode=mode)[0]


# ------------------------------------------------------------------------------------------------ the rule


def test_choose_largest_group_then_greedy_then_earliest() -> None:
    assert choose([[0], [1, 2]]) == (1, "majority")
    assert choose([[1], [0, 2]]) == (0, "majority")
    assert choose([[0, 3], [1, 2]]) == (0, "tie_greedy")
    assert choose([[2], [1]]) == (1, "tie_first")  # greedy failed: the tied group whose first member came first
    assert choose([]) == (0, "no_result")


def test_majority_of_equal_results_beats_the_greedy_answer(demo: Path, sandbox: SqlSandbox) -> None:
    v = vote(demo, sandbox, "SELECT count(*) FROM book", "SELECT count(*) FROM author",
             "SELECT COUNT(author_id) FROM author")
    assert (v.chosen, v.rule, v.groups, v.failed) == (1, "majority", [[0], [1, 2]], [])
    assert v.record()["counts"] == [1, 2] and v.record()["failed"] == 0


def test_a_tie_goes_to_the_greedy_answer(demo: Path, sandbox: SqlSandbox) -> None:
    v = vote(demo, sandbox, "SELECT count(*) FROM book", "SELECT count(*) FROM author", "SELECT nope FROM author")
    assert (v.chosen, v.rule, v.record()["counts"], v.failed) == (0, "tie_greedy", [1, 1], [2])


def test_when_greedy_fails_a_tie_goes_to_the_earliest_sample(demo: Path, sandbox: SqlSandbox) -> None:
    v = vote(demo, sandbox, "SELEC broken", "SELECT count(*) FROM book", "SELECT count(*) FROM author")
    assert (v.chosen, v.rule, v.failed) == (1, "tie_first", [0])


def test_nothing_executes_the_greedy_answer_stands(demo: Path, sandbox: SqlSandbox) -> None:
    v = vote(demo, sandbox, "SELECT bogus FROM author", "", "SELEC x", "SELECT * FROM no_such_table")
    assert (v.chosen, v.rule, v.groups, v.failed) == (0, "no_result", [], [0, 1, 2, 3])


def test_results_compare_as_ex_does_row_order_and_columns_and_distinct(demo: Path, sandbox: SqlSandbox) -> None:
    # no ORDER BY in either query: the same bag of rows in another order is the same result
    assert vote(demo, sandbox, "SELECT name FROM author", "SELECT name FROM author GROUP BY name").groups == [[0, 1]]
    # a column permutation is the same result (the official comparison), and DISTINCT is deleted as EX deletes it
    swapped = vote(demo, sandbox, "SELECT name, country FROM author", "SELECT country, name FROM author")
    assert swapped.groups == [[0, 1]]
    assert vote(demo, sandbox, "SELECT DISTINCT country FROM author", "SELECT country FROM author").groups == [[0, 1]]
    # the seed's simple mode keeps DISTINCT and column order
    assert vote(demo, sandbox, "SELECT name, country FROM author", "SELECT country, name FROM author",
                mode="simple").groups == [[0], [1]]
    # a query that orders its rows: order counts, so the reverse order is another result
    v = vote(demo, sandbox, "SELECT name FROM author ORDER BY name", "SELECT name FROM author ORDER BY name DESC",
             "SELECT name FROM author ORDER BY name ASC")
    assert v.groups == [[0, 2], [1]] and v.chosen == 0


def test_empty_results_are_one_result_whatever_their_columns(demo: Path, sandbox: SqlSandbox) -> None:
    v = vote(demo, sandbox, "SELECT name FROM author WHERE 0", "SELECT name, country FROM author WHERE 1 = 0",
             "SELECT count(*) FROM author")
    assert (v.groups, v.chosen, v.rule) == ([[0, 1], [2]], 0, "majority")


def test_a_vote_on_a_real_spider_database(data_dir: Path, sandbox: SqlSandbox) -> None:
    db = str(data_dir / "spider" / "database" / "concert_singer" / "concert_singer.sqlite")
    sqls = ["SELECT name FROM singer", "SELECT count(*) FROM singer", "SELECT COUNT(singer_id) FROM singer",
            "SELECT count(*) FROM singers", "SELECT count(DISTINCT singer_id) FROM singer"]
    v = vote_many([(db, sqls)], sandbox)[0]
    assert (v.chosen, v.rule, v.groups, v.failed) == (1, "majority", [[0], [1, 2, 4]], [3])


def test_textually_equal_candidates_each_count(demo: Path, sandbox: SqlSandbox) -> None:
    v = vote(demo, sandbox, "SELECT count(*) FROM book", "SELECT count(*) FROM author", "SELECT count(*) FROM author",
             "SELECT count(*) FROM author")
    assert v.groups == [[0], [1, 2, 3]] and v.chosen == 1


# ------------------------------------------------------------------------------------------------ the benchmark

GREEDY_WRONG = "How many authors are there?"
TIE = "What are the names of members from Lakeside?"
LOST = "List the titles of mystery books."
NONE_RUNS = "Which countries have more than one author?"


def voting_bench(demo: Path, **decoding: Any) -> SpiderBenchmark:
    return SpiderBenchmark(SpiderSettings(benchmark="spider", decoding=decoding), demo)


def test_the_benchmark_scores_the_vote_and_keeps_greedy_paired(demo: Path, tmp_path: Path) -> None:
    gold = {e["question"]: e["query"] for e in json.loads((demo / "spider" / "dev.json").read_text())}
    lm = FixedSamples(gold, {
        GREEDY_WRONG: ("SELECT count(*) FROM book", ["SELECT count(*) FROM author", "SELECT COUNT(*) FROM author"]),
        TIE: (gold[TIE], ["SELECT name FROM member", "SELECT name FROM member WHERE city = 'Nowhere'"]),
        LOST: (gold[LOST], ["SELECT title FROM book", "SELECT title FROM book"]),
        NONE_RUNS: ("SELECT bogus FROM author", ["", "SELEC"])})
    bench = voting_bench(demo, samples=2, temperature=0.7, seed=3)
    assert bench.out_name == "spider-dev-vote2" and "greedy + 2 samples" in bench.label
    metrics = bench.evaluate(lm, tmp_path)
    assert lm.sampled[0] == Sampling(n=2, temperature=0.7, top_p=1.0, seed=3)
    rows = {r["question"]: r for r in read_jsonl(tmp_path / "results.jsonl")}
    gained, tie, lost, none = rows[GREEDY_WRONG], rows[TIE], rows[LOST], rows[NONE_RUNS]
    assert (gained["greedy_correct"], gained["correct"]) == (False, True)
    assert gained["pred_sql"] == "SELECT count(*) FROM author"
    assert gained["greedy_sql"] == "SELECT count(*) FROM book" and gained["greedy_error_type"] == "wrong_result"
    assert gained["vote"]["counts"] == [1, 2] and gained["vote"]["rule"] == "majority"
    assert (tie["correct"], tie["vote"]["rule"], tie["pred_sql"]) == (True, "tie_greedy", gold[TIE])
    assert (lost["greedy_correct"], lost["correct"], lost["vote"]["counts"]) == (True, False, [1, 2])
    assert (none["vote"]["rule"], none["vote"]["failed"]) == ("no_result", 3)
    assert none["pred_sql"] == "SELECT bogus FROM author"
    assert none["samples"] == ["", "SELEC"] and set(none["seconds"]) == {"greedy", "sample", "vote"}
    # every sample judged after the vote: the ceiling of any rule that picks among the candidates
    assert (gained["samples_correct"], lost["samples_correct"], none["samples_correct"]) == (
        [True, True], [False, False], [False, False])
    assert all(r["samples_correct"] == [True, False] for q, r in rows.items() if q not in (GREEDY_WRONG, TIE, LOST,
                                                                                             NONE_RUNS))
    n = len(rows)
    assert metrics["greedy"]["n_correct"] == n - 2 and metrics["n_correct"] == n - 2  # one gained, one lost
    assert metrics["accuracy"] == metrics["execution_accuracy"] and metrics["greedy_accuracy"] == (n - 2) / n
    assert metrics["vote"]["paired"] == {"voted_only": 1, "greedy_only": 1, "p_value": 1.0}
    assert metrics["vote"]["n_changed"] == 2 and metrics["vote"]["rules"]["no_result"] == 1
    assert metrics["decoding"]["samples"] == 2 and set(metrics["seconds"]) == {"greedy", "sample", "vote"}
    ceiling = metrics["vote"]["any_candidate"]
    assert ceiling["n_correct"] == n - 1 and ceiling["n"] == n  # only NONE_RUNS has no right candidate
    assert ceiling["mean_sample_accuracy"] == sum(sum(r["samples_correct"]) for r in rows.values()) / (2 * n)
    pred = {p["index"]: p for p in read_jsonl(tmp_path / "predictions.jsonl")}[gained["index"]]
    assert pred["sql"] == gained["pred_sql"] and pred["greedy_sql"] == gained["greedy_sql"] and pred["vote"]


def test_decoding_settings_are_strict_and_enter_the_cache_key(demo: Path) -> None:
    from pydantic import ValidationError

    for bad in ({"samples": 8, "temperature": 0}, {"samples": -1}, {"sample": 8}, {"top_p": 1.5}):
        with pytest.raises(ValidationError):
            SpiderSettings(benchmark="spider", decoding=bad)
    greedy = SpiderBenchmark(SpiderSettings(benchmark="spider"), demo)
    assert "decoding" not in greedy.fingerprint()["settings"] and greedy.out_name == "spider-dev"
    keys = {json.dumps(voting_bench(demo, **d).fingerprint(), sort_keys=True)
            for d in ({"samples": 8}, {"samples": 8, "temperature": 0.5}, {"samples": 8, "seed": 1}, {"samples": 4})}
    assert len(keys) == 4 and json.dumps(greedy.fingerprint(), sort_keys=True) not in keys


# ------------------------------------------------------------------------------------------------ the backends

PROMPTS = [GenerateRequest("SELECT name FROM", 6), GenerateRequest("Question: how many?\nSQL:", 6)]


def test_hf_samples_are_seeded_per_call_and_leave_the_global_rng_alone(tiny_model_dir: Path) -> None:
    import torch

    from sqlshift.lm.hf import HFLM

    lm = HFLM(str(tiny_model_dir), device="cpu", dtype="fp32")
    before = torch.random.get_rng_state()
    a = lm.sample(PROMPTS, Sampling(n=3, temperature=1.0, seed=7))
    assert torch.equal(torch.random.get_rng_state(), before)
    assert [len(x) for x in a] == [3, 3] and a == lm.sample(PROMPTS, Sampling(n=3, temperature=1.0, seed=7))
    assert a != lm.sample(PROMPTS, Sampling(n=3, temperature=1.0, seed=8))
    assert len({g.text for g in a[0]}) > 1  # a random tiny model at T=1 draws different continuations
    greedy = lm.generate(PROMPTS)
    assert [g.text for g in greedy] == [g.text for g in lm.generate(PROMPTS)]


def test_vllm_samples_go_through_sampling_params(monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path,
                                                 tmp_path: Path) -> None:
    import sqlshift.lm.vllm as lv
    from vllm_stand_in import install_stand_in

    install_stand_in(monkeypatch)
    lm = lv.VLLMLM(str(tiny_model_dir), dtype="fp32", cache_dir=tmp_path, progress=False)
    seen: list[Any] = []
    real = lm.llm.generate
    lm.llm.generate = lambda prompts, params, **kw: (seen.extend(params), real(prompts, params, **kw))[1]
    a = lm.sample(PROMPTS, Sampling(n=3, temperature=0.7, top_p=0.9, seed=5))
    sp = seen[0]
    assert (sp.n, sp.temperature, sp.top_p, sp.top_k, sp.seed, sp.ignore_eos) == (3, 0.7, 0.9, 0, 5, True)
    assert [len(x) for x in a] == [3, 3] and a == lm.sample(PROMPTS, Sampling(n=3, temperature=0.7, top_p=0.9, seed=5))
    assert len(lm.generate(PROMPTS)) == 2 and seen[-1].temperature == 0.0 and not hasattr(seen[-1], "n")


# ------------------------------------------------------------------------------------------------ end to end


@pytest.mark.slow
def test_run_on_the_embedded_model_writes_greedy_and_voted_verdicts(tmp_path: Path) -> None:
    cfg = tmp_path / "vote.yaml"
    cfg.write_text(yaml.safe_dump({"name": "vote", "model": "embedded", "data_dir": "demo", "benchmarks": [
        {"benchmark": "spider", "split": "dev", "sample": 4, "batch_size": 4, "max_new_tokens": 48,
         "decoding": {"samples": 2, "temperature": 0.7}}]}))
    out = tmp_path / "out"
    env = {"PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    res = subprocess.run([sys.executable, "-m", "sqlshift", "run", str(cfg), "-o", str(out)], capture_output=True,
                         text=True, env=env, timeout=600)
    assert res.returncode in (0, 3), res.stderr[-2000:]  # 3: a guard after every file is written
    bench = out / "models" / "baseline" / "spider-dev-vote2"
    rows = list(read_jsonl(bench / "results.jsonl"))
    assert len(rows) == 4
    for r in rows:
        assert isinstance(r["correct"], bool) and isinstance(r["greedy_correct"], bool) and r["greedy_error_type"]
        assert len(r["samples"]) == 2 and sum(r["vote"]["counts"]) + r["vote"]["failed"] == 3
        assert r["pred_sql"] == [r["greedy_sql"], *r["samples"]][r["vote"]["chosen"]]
    metrics = json.loads((bench / "metrics.json").read_text())
    assert metrics["n"] == 4 and metrics["accuracy"] == sum(r["correct"] for r in rows) / 4
    assert metrics["greedy_accuracy"] == sum(r["greedy_correct"] for r in rows) / 4
    assert metrics["seconds"]["sample"] > 0 and metrics["decoding"]["samples"] == 2
    assert all("vote" in p for p in read_jsonl(bench / "predictions.jsonl"))
