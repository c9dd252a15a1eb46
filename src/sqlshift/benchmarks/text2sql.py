"""What the Text-to-SQL benchmarks (Spider, SParC/CoSQL) share: the session that holds the prompt builder and one
SQL sandbox open for a whole evaluation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlshift.lm.api import LM
from sqlshift.sql.prompts import PromptBuilder
from sqlshift.sql.sandbox import SqlSandbox


@contextlib.contextmanager
def sql_session(lm: LM, split: Any, settings: Any) -> Iterator[tuple[PromptBuilder, SqlSandbox]]:
    """(prompt builder, sandbox) for ``split`` (its tables and databases) under ``settings.prompt`` and
    ``settings.timeout_s``; the sandbox's worker pool lives as long as the evaluation, not one chunk."""
    builder = PromptBuilder(lm.tokenizer, split.tables, split.db_path, settings.prompt)
    with SqlSandbox(timeout_s=settings.timeout_s) as sandbox:
        yield builder, sandbox
