"""ExecutionAccuracy as a DeepEval metric: deterministic score and reason, no API key, no network."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from sqlshift.errors import DataError
from sqlshift.metrics.deepeval_metric import ExecutionAccuracy
from sqlshift.sql import SqlSandbox


@pytest.fixture(scope="module")
def spider_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("spider")
    (root / "database" / "zoo").mkdir(parents=True)
    con = sqlite3.connect(root / "database" / "zoo" / "zoo.sqlite")
    con.executescript("CREATE TABLE animal (id INT, name TEXT, legs INT);"
                      "INSERT INTO animal VALUES (1, 'cat', 4), (2, 'hen', 2), (3, 'ant', 6);")
    con.commit()
    con.close()
    return root


def case(pred: str, gold: str, **meta: str):
    from deepeval.test_case import LLMTestCase

    return LLMTestCase(input="question", actual_output=pred, expected_output=gold, additional_metadata=meta)


def test_scores_and_reasons(spider_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("OPENAI_API_KEY", "CONFIDENT_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    with SqlSandbox(timeout_s=2, workers=1) as sb:
        metric = ExecutionAccuracy(spider_dir, sandbox=sb)
        assert metric.__name__ == "Execution Accuracy"
        assert metric.measure(case("SELECT legs, name FROM animal", "SELECT name, legs FROM animal", db_id="zoo")) == 1.0
        assert metric.success and metric.is_successful() and metric.reason == "correct"
        assert metric.measure(case("SELECT name FROM animal WHERE legs > 2", "SELECT name FROM animal",
                                   db_id="zoo")) == 0.0
        assert not metric.is_successful() and metric.reason.startswith("wrong_result")
        db_path = str(spider_dir / "database" / "zoo" / "zoo.sqlite")
        assert metric.measure(case("SELECT nme FROM animal", "SELECT name FROM animal", db_path=db_path)) == 0.0
        assert metric.reason.startswith("unknown_column") and "nme" in metric.reason
        assert metric.measure(case("DROP TABLE animal", "SELECT name FROM animal", db_path=db_path)) == 0.0
        assert metric.reason.startswith("forbidden")
        score = asyncio.run(metric.a_measure(case("SELECT count(*) FROM animal", "SELECT 3", db_id="zoo")))
        assert score == 1.0 and metric.is_successful()


def test_missing_database_is_a_clear_error(spider_dir: Path) -> None:
    with pytest.raises(DataError, match="names no database"):
        ExecutionAccuracy().measure(case("SELECT 1", "SELECT 1"))
    with pytest.raises(DataError, match="does not exist"):
        ExecutionAccuracy(spider_dir).measure(case("SELECT 1", "SELECT 1", db_id="nowhere"))


def test_works_inside_deepeval_evaluate(spider_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The metric runs through deepeval's own evaluate() offline (no judge model is constructed)."""
    from deepeval import evaluate
    from deepeval.evaluate.configs import AsyncConfig, CacheConfig, DisplayConfig

    monkeypatch.chdir(tmp_path)  # deepeval writes its run files under ./.deepeval

    metric = ExecutionAccuracy(spider_dir, timeout_s=2)
    result = evaluate([case("SELECT name FROM animal", "SELECT name FROM animal", db_id="zoo")], [metric],
                      async_config=AsyncConfig(run_async=False),
                      cache_config=CacheConfig(write_cache=False, use_cache=False),
                      display_config=DisplayConfig(show_indicator=False, print_results=False))
    data = result.test_results[0].metrics_data[0]
    assert data.score == 1.0 and data.success
