"""ExecutionAccuracy as a DeepEval metric: deterministic score and reason, no API key, no network.

deepeval is the optional extra ``sqlshift[deepeval]``: the metric's tests skip without it, while the test that
``sqlshift.sql`` imports without it (and that the metric module names the extra) always runs.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import sqlshift
from sqlshift.errors import DataError
from sqlshift.sql.sandbox import SqlSandbox

INSTALL_HINT = "pip install 'sqlshift[deepeval]'"


@pytest.fixture(scope="module")
def metric_cls() -> type:
    """The ExecutionAccuracy class; skips the test when deepeval is not installed."""
    pytest.importorskip("deepeval", reason=f"deepeval is an optional extra: {INSTALL_HINT}")
    from sqlshift.sql.deepeval_metric import ExecutionAccuracy

    return ExecutionAccuracy


def test_metrics_import_without_deepeval() -> None:
    """With deepeval unimportable, every scorer still imports and the metric module says how to get deepeval."""
    code = textwrap.dedent("""
        import sys
        sys.modules["deepeval"] = None  # any `import deepeval...` now fails as if it were not installed
        import sqlshift.sql, sqlshift.sql.execution, sqlshift.benchmarks.mmlu_prompts, sqlshift.stats
        import sqlshift.cli, sqlshift.study.runner, sqlshift.report
        assert not any(m.startswith("deepeval") for m in sys.modules if sys.modules[m] is not None)
        try:
            import sqlshift.sql.deepeval_metric
        except ModuleNotFoundError as e:
            print(f"{e.name}|{e}")
    """)
    src = str(Path(sqlshift.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    name, message = res.stdout.strip().split("|", 1)
    assert name == "deepeval" and INSTALL_HINT in message


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


def test_scores_and_reasons(metric_cls: type, spider_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("OPENAI_API_KEY", "CONFIDENT_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    with SqlSandbox(timeout_s=2, workers=1) as sb:
        metric = metric_cls(spider_dir, sandbox=sb)
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


def test_missing_database_is_a_clear_error(metric_cls: type, spider_dir: Path) -> None:
    with pytest.raises(DataError, match="names no database"):
        metric_cls().measure(case("SELECT 1", "SELECT 1"))
    with pytest.raises(DataError, match="does not exist"):
        metric_cls(spider_dir).measure(case("SELECT 1", "SELECT 1", db_id="nowhere"))


def test_works_inside_deepeval_evaluate(metric_cls: type, spider_dir: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The metric runs through deepeval's own evaluate() offline (no judge model is constructed)."""
    from deepeval import evaluate
    from deepeval.evaluate.configs import AsyncConfig, CacheConfig, DisplayConfig

    monkeypatch.chdir(tmp_path)  # deepeval writes its run files under ./.deepeval

    metric = metric_cls(spider_dir, timeout_s=2)
    result = evaluate([case("SELECT name FROM animal", "SELECT name FROM animal", db_id="zoo")], [metric],
                      async_config=AsyncConfig(run_async=False),
                      cache_config=CacheConfig(write_cache=False, use_cache=False),
                      display_config=DisplayConfig(show_indicator=False, print_results=False))
    data = result.test_results[0].metrics_data[0]
    assert data.score == 1.0 and data.success
