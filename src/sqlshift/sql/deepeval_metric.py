"""Execution Accuracy as a DeepEval metric, so EX can sit beside other DeepEval metrics in one evaluation.

The score is deterministic (the sandboxed execution of :mod:`sqlshift.sql.execution`): no LLM judge, no API
key, no network. Telemetry is switched off before deepeval is imported.

deepeval is an optional extra (``pip install 'sqlshift[deepeval]'``): its exact pin and its dependencies (openai,
grpcio, opentelemetry, pytest plugins) are not needed to run or score a study, so only this module requires it.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

os.environ["DEEPEVAL_TELEMETRY_OPT_OUT"] = "YES"  # no network, whatever the environment says

try:  # noqa: E402  (telemetry must be off first)
    from deepeval.metrics import BaseMetric
    from deepeval.test_case import LLMTestCase
except ModuleNotFoundError as e:
    if (e.name or "").split(".")[0] != "deepeval":
        raise  # deepeval is there but one of its own dependencies is broken: show that error as it is
    raise ModuleNotFoundError("sqlshift.sql.deepeval_metric needs deepeval, an optional extra of sqlshift "
                              "(fix: pip install 'sqlshift[deepeval]')", name="deepeval") from e

from sqlshift.errors import DataError  # noqa: E402
from sqlshift.sql.execution import GoldCache, Pair, judge_pairs  # noqa: E402
from sqlshift.sql.sandbox import DEFAULT_TIMEOUT_S, SqlSandbox  # noqa: E402


class ExecutionAccuracy(BaseMetric):
    """1.0 when the predicted SQL (``actual_output``) returns the gold result (``expected_output``), else 0.0.

    The database comes from ``test_case.metadata`` (``additional_metadata=`` when building the test case):
    ``{"db_path": ...}``, or ``{"db_id": ...}`` with ``spider_dir`` given here (``<spider_dir>/database/<id>/<id>.sqlite``).
    ``reason`` is the error type and message (``correct`` when it matches).
    """

    def __init__(self, spider_dir: str | Path | None = None, *, mode: str = "official", keep_distinct: bool = False,
                 timeout_s: float = DEFAULT_TIMEOUT_S, threshold: float = 1.0, sandbox: SqlSandbox | None = None,
                 gold_cache: GoldCache | None = None) -> None:
        self.spider_dir = Path(spider_dir) if spider_dir else None
        self.mode = mode
        self.keep_distinct = keep_distinct
        self.timeout_s = timeout_s
        self.threshold = threshold
        self.sandbox = sandbox
        self.gold_cache = gold_cache
        self.error_type: str | None = None
        self.include_reason = True
        self.async_mode = True
        self.verbose_mode = False
        self.strict_mode = False
        self.evaluation_model = None
        self.evaluation_cost = 0.0

    def _db_path(self, test_case: LLMTestCase) -> str:
        meta: dict[str, Any] = test_case.metadata or {}
        if meta.get("db_path"):
            path = Path(meta["db_path"])
        elif meta.get("db_id") and self.spider_dir is not None:
            db = meta["db_id"]
            root = self.spider_dir / "database" if (self.spider_dir / "database").is_dir() else self.spider_dir
            path = root / db / f"{db}.sqlite"
        else:
            raise DataError("the test case names no database",
                            "set additional_metadata={'db_path': ...} or {'db_id': ...} with ExecutionAccuracy(spider_dir)")
        if not path.is_file():
            raise DataError(f"database {path} does not exist", "check db_path / db_id and spider_dir")
        return str(path)

    def measure(self, test_case: LLMTestCase, *args: Any, **kwargs: Any) -> float:
        """Execute both queries in the sandbox and compare their results."""
        if test_case.expected_output is None:
            raise DataError("ExecutionAccuracy needs expected_output (the gold SQL)", "set expected_output")
        pair = Pair(self._db_path(test_case), test_case.actual_output or "", test_case.expected_output)
        own = self.sandbox is None
        sandbox = SqlSandbox(timeout_s=self.timeout_s, workers=1) if own else self.sandbox
        try:
            verdict = judge_pairs([pair], sandbox, mode=self.mode, keep_distinct=self.keep_distinct,
                                  gold_cache=self.gold_cache)[0]
        finally:
            if own:
                sandbox.close()
        self.error_type = verdict.error_type
        self.score = 1.0 if verdict.correct else 0.0
        self.reason = verdict.error_type + (f": {verdict.error}" if verdict.error else "")
        self.error = None
        self.success = self.score >= self.threshold
        return self.score

    async def a_measure(self, test_case: LLMTestCase, *args: Any, **kwargs: Any) -> float:
        """Same as :meth:`measure`, off the event loop (execution blocks on a worker process)."""
        return await asyncio.to_thread(self.measure, test_case)

    def is_successful(self) -> bool:
        if self.error is not None or self.score is None:
            self.success = False
        else:
            self.success = self.score >= self.threshold
        return bool(self.success)

    @property
    def __name__(self) -> str:  # type: ignore[override]
        return "Execution Accuracy"
