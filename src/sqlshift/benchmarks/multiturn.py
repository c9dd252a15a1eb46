"""SParC and CoSQL: context-dependent Text-to-SQL, scored per turn (question match) and per interaction.

The question "does single-turn Spider fine-tuning transfer to follow-up questions?" needs the fine-tuned model to
see the prompt it was trained on. So each turn's prompt is Spider's own (:func:`sqlshift.sql.prompts.build_messages`:
same system prompt, schema serialisation and question line), with the conversation so far appended after the
schema as a numbered list of the earlier questions::

    Database schema:
    CREATE TABLE ...

    Earlier questions in this conversation (the question below may refer to them):
    1. What are all the airlines?
    2. Of these, which is Jetblue Airways?

    Question: What is the country corresponding it?
    Answer with one SQLite query only.

With ``history: questions+sql`` each earlier question is followed by ``   SQL: <the model's own prediction>``
(never the gold: that would leak answers), so turn t waits for turn t-1 and generation runs turn by turn, batched
across interactions. The first turn's prompt is exactly Spider's. Prompts are fitted to the token budget by
:func:`sqlshift.sql.prompts.fit_schema` with the tables named in the conversation protected; when that is not enough
without dropping a protected table, the oldest earlier turns go first (counted per row in ``history_dropped``);
if even no history fits that way, the prompt without history is used when it fits the budget, else the full one.

Scoring is Spider's execution semantics (:func:`sqlshift.sql.execution.judge_pairs`). The release's gold SQL
has spaced operators (``! =``, ``< =``, ``> =``) that SQLite rejects; they are joined before scoring
(:func:`sqlshift.data.multiturn.normalise_gold`), counted in ``gold_normalised``, and gold that still fails is a
``gold_error`` row: out of n, listed in ``gold_failed``.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from sqlshift.lm.api import LM, GenerateRequest, Generation
from sqlshift.benchmarks.api import Benchmark, BenchmarkSettings
from sqlshift.benchmarks.common import ResultsFile, accuracy_metrics, sample_items
from sqlshift.benchmarks.text2sql import sql_session
from sqlshift.data.multiturn import Interaction, MultiTurnSplit, Turn, load_multiturn, split_files
from sqlshift.errors import EmptyPredictions
from sqlshift.sql.extract import extract_sql
from sqlshift.sql.execution import ERROR_TYPES, Pair, judge_pairs
from sqlshift.sql.hardness import LEVELS, hardness
from sqlshift.stats import accuracy_summary
from sqlshift.sql.prompts import (BuiltPrompt, PromptBuilder, PromptConfig, Schema, fit_schema, mentioned_tables,
                                  prompt_length_stats, sql_tables)
from sqlshift.sql.sandbox import DEFAULT_TIMEOUT_S, SqlSandbox

History = Literal["questions", "questions+sql"]
HISTORY_HEADER = "Earlier questions in this conversation (the question below may refer to them):"
TURN_GROUPS = ("1", "2", "3", "4+")
CHUNK_BATCHES = 8  # batches generated and scored between two appends to results.jsonl (the resume granularity)


class MultiTurnSettings(BenchmarkSettings):
    """Settings of SParC / CoSQL; ``history`` decides whether earlier turns' predicted SQL is in the prompt."""

    split: Literal["dev"] = "dev"
    history: History = "questions"
    batch_size: int = Field(16, gt=0)
    max_new_tokens: int = Field(192, gt=0)  # as Spider's: the same model answers the same kind of query
    ex_mode: Literal["official", "simple"] = "official"
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0)
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    db_dir: str | None = None  # default: <data root>/spider/database


@dataclass
class _SchemaWithHistory(Schema):
    """A schema whose rendering ends with the conversation so far, so fit_schema counts the history's tokens."""

    history: str = ""

    def render(self, keep: Any = None, samples: bool = True) -> str:
        text = super().render(keep, samples)
        return f"{text}\n\n{self.history}" if self.history else text


def history_text(earlier: Sequence[tuple[int, str, str | None]], with_sql: bool) -> str:
    """The context block: earlier turns as ``(turn number, question, predicted SQL)``, numbered by turn."""
    if not earlier:
        return ""
    lines = [HISTORY_HEADER]
    for n, question, sql in earlier:
        lines.append(f"{n}. {question}")
        if with_sql:
            lines.append(f"   SQL: {sql or '(none)'}")
    return "\n".join(lines)


def turn_prompt(builder: PromptBuilder, turn: Turn, earlier: Sequence[tuple[int, str, str | None]],
                with_sql: bool) -> tuple[BuiltPrompt, int]:
    """(prompt, number of oldest earlier turns dropped to fit the budget) for one turn."""
    schema = builder.schema(turn.db_id)
    example = {"question": turn.question, "db_id": turn.db_id}
    budget = builder.cfg.max_prompt_tokens
    first: BuiltPrompt | None = None  # the full-history prompt: the fallback when no shorter history fits either
    for dropped in range(len(earlier) + 1):
        kept = earlier[dropped:]
        protected = set(mentioned_tables(schema, [turn.question] + [q for _, q, _ in kept]))
        if with_sql:
            protected |= {t for _, _, sql in kept if sql for t in sql_tables(sql, schema)}
        ctx = _SchemaWithHistory(schema.db_id, schema.tables, history_text(kept, with_sql))
        built = fit_schema(builder.tok, example, ctx, builder.cfg, sorted(protected), budget)
        first = first or built
        if built.n_tokens <= budget and not protected & set(built.dropped_tables):
            return built, dropped
    if built.n_tokens <= budget or first is None:
        return built, len(earlier)
    return first, 0


class MultiTurnBenchmark(Benchmark):
    """One multi-turn dataset (files under ``<data root>/<name>``) on the Spider databases."""

    axis: ClassVar[Literal["specialty"]] = "specialty"
    kind: ClassVar[str] = "text2sql"
    label: ClassVar[str] = "multi-turn QM"
    Settings: ClassVar[type[BenchmarkSettings]] = MultiTurnSettings
    settings: MultiTurnSettings

    def __init__(self, settings: BenchmarkSettings, data_root: Path) -> None:
        super().__init__(settings, data_root)
        self._split: MultiTurnSplit | None = None

    def default_name(self) -> str:
        """``sparc`` / ``cosql``; the predicted-SQL history gets its own folder so the two never mix."""
        return self.name if self.settings.history == "questions" else f"{self.name}-predsql"

    @property
    def data_dir(self) -> Path:
        return self.data_root / self.name

    @property
    def db_dir(self) -> Path:
        return Path(self.settings.db_dir) if self.settings.db_dir else self.data_root / "spider" / "database"

    def check(self) -> list[str]:
        """Missing files, each named with what to do, before any model is loaded."""
        out = [f"{self.name}: {p} does not exist (put the {self.label} release there, or set data_dir)"
               for p in split_files(self.data_dir, self.settings.split) if not p.is_file()]
        if not self.db_dir.is_dir():
            out.append(f"{self.name}: database folder {self.db_dir} does not exist (set db_dir or data_dir)")
        return out

    def load(self) -> MultiTurnSplit:
        if self._split is None:
            s = self.settings
            self._split = load_multiturn(self.data_dir, self.db_dir, s.split, f"{self.name}-{s.split}")
        return self._split

    def interactions(self) -> list[Interaction]:
        """The evaluated interactions: all evaluable ones, or a seeded sample of them (never of turns)."""
        return sample_items(self.load().interactions, self.settings.sample, self.settings.sample_seed)

    def items(self) -> list[Turn]:
        return [t for it in self.load().interactions for t in it.turns]

    def selected(self) -> list[Turn]:
        """Turns of the evaluated interactions (``sample`` draws interactions, never single turns)."""
        return [t for it in self.interactions() for t in it.turns]

    def rounds(self, items: Sequence[Turn]) -> list[Sequence[Turn]]:
        """All turns at once when only questions are history; else turn 1 of every interaction, then turn 2..."""
        if self.settings.history == "questions":
            return [items]
        return [[t for t in items if t.turn == k] for k in range(1, max((t.turn for t in items), default=0) + 1)]

    def chunk_size(self) -> int:
        return self.settings.batch_size * CHUNK_BATCHES

    @contextlib.contextmanager
    def session(self, lm: LM, out_dir: Path) -> Iterator[None]:
        with sql_session(lm, self.load(), self.settings) as (self._builder, self._sandbox):
            yield

    def score_chunk(self, lm: LM, chunk: Sequence[Turn], results: ResultsFile) -> list[dict[str, Any]]:
        desc = self.name if self.settings.history == "questions" else f"{self.name} turn {chunk[0].turn}"
        return self._run_chunk(lm, self._builder, self.load(), self.interactions(), list(chunk), results,
                               self._sandbox, desc)

    def counted(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in rows if r["error_type"] != "gold_error"]

    def _run_chunk(self, lm: LM, builder: PromptBuilder, split: MultiTurnSplit, interactions: list[Interaction],
                   chunk: list[Turn], results: ResultsFile, sandbox: SqlSandbox, desc: str) -> list[dict[str, Any]]:
        """Prompts, generations and verdicts for some turns whose earlier turns are done (when their SQL is needed)."""
        s = self.settings
        with_sql = s.history == "questions+sql"
        by_index = {it.index: it for it in interactions}
        built = []
        for t in chunk:
            earlier = [(e.turn, e.question, results.rows[e.id]["pred_sql"] if with_sql else None)
                       for e in by_index[t.interaction].turns[:t.turn - 1]]
            built.append(turn_prompt(builder, t, earlier, with_sql))
        gens = lm.generate([GenerateRequest(p.text, s.max_new_tokens) for p, _ in built], batch_size=s.batch_size,
                           desc=desc)
        preds = [extract_sql(g.text) for g in gens]
        pairs = [Pair(str(split.db_path(t.db_id)), sql, t.query) for t, (sql, _) in zip(chunk, preds)]
        verdicts = judge_pairs(pairs, sandbox, mode=s.ex_mode)
        return [_row(t, p, n_dropped, g, sql, how, v.correct, v.error_type, v.error)
                for t, (p, n_dropped), g, (sql, how), v in zip(chunk, built, gens, preds, verdicts)]

    def summary(self, rows: Sequence[dict[str, Any]], items: Sequence[Any], lm: LM | None) -> dict[str, Any]:
        """Question match, interaction match, per turn position, errors, generation, gold report."""
        s, split, interactions = self.settings, self.load(), self.interactions()
        scored = self.counted(rows)
        gold_failed = [r["id"] for r in rows if r["error_type"] == "gold_error"]
        counts = Counter(r["error_type"] for r in rows)
        inter = interaction_summary(rows, interactions)
        return dict(
            metric="question_match", question_match=accuracy_metrics(scored)["accuracy"],
            split=s.split, mode=s.ex_mode, history=s.history,
            interaction_accuracy=inter["accuracy"], interaction_n=inter["n"], interaction_n_correct=inter["n_correct"],
            interaction_ci95=inter["ci95"], n_interactions=len(interactions),
            by_turn=by_turn(scored), by_hardness=by_hardness(scored),
            by_error_type={t: counts[t] for t in ERROR_TYPES if counts[t]},
            generation=generation_health(rows),
            prompt=prompt_length_stats_rows(rows, s.prompt.max_prompt_tokens),
            n_skipped=split.n_skipped_turns, n_skipped_interactions=len(split.skipped),
            skip_reasons=dict(split.skip_reasons),
            gold_normalised=sum(bool(r.get("gold_normalised")) for r in rows), n_gold_failed=len(gold_failed),
            gold_failed=gold_failed,
            gold_normalisation="spaced operators joined in gold ('! =' -> '!=', '< =' -> '<=', '> =' -> '>='), "
                               "outside string literals; gold that still fails is excluded from n",
            sample={"interactions": s.sample, "seed": s.sample_seed} if s.sample is not None else None,
        )

    def problems(self, metrics: dict[str, Any]) -> list[Exception]:
        """EmptyPredictions when every generation came out empty: the prompt or the stop token is broken."""
        gen = metrics.get("generation") or {}
        if gen.get("n") and gen.get("empty") == gen["n"]:
            return [EmptyPredictions(f"{self.out_name}: all {gen['n']} predictions are empty after SQL extraction",
                                     "check the chat template, the stop tokens and max_new_tokens")]
        return []


class SParCBenchmark(MultiTurnBenchmark):
    """SParC dev (Yu et al., ACL 2019): 422 interactions, 1203 turns, sequential questions on Spider databases."""

    name: ClassVar[str] = "sparc"
    label: ClassVar[str] = "SParC QM"


class CoSQLBenchmark(MultiTurnBenchmark):
    """CoSQL dev (Yu et al., EMNLP 2019), its SQL-grounded turns: 293 interactions, 1007 turns."""

    name: ClassVar[str] = "cosql"
    label: ClassVar[str] = "CoSQL QM"


# ---------------------------------------------------------------- rows and summaries


def _row(t: Turn, prompt: BuiltPrompt, history_dropped: int, gen: Generation, sql: str, how: str, correct: bool,
         error_type: str, error: str | None) -> dict[str, Any]:
    """One results.jsonl line: the verdict, the raw answer beside the extracted SQL, and how the prompt was fitted."""
    row: dict[str, Any] = {
        "id": t.id, "correct": correct, "interaction": t.interaction, "turn": t.turn, "db_id": t.db_id,
        "question": t.question, "pred_sql": sql, "gold_sql": t.query, "error_type": error_type, "error": error,
        "hardness": hardness(t.query, t.sql), "raw": gen.text, "n_tokens": gen.n_tokens, "hit_limit": gen.hit_limit,
        "extraction": how, "prompt_tokens": prompt.n_tokens}
    if t.normalised:
        row.update(gold_normalised=True, gold_sql_release=t.raw_query)
    if prompt.truncated:
        row.update(truncated=True, dropped_tables=prompt.dropped_tables, dropped_samples=prompt.dropped_samples)
    if history_dropped:
        row["history_dropped"] = history_dropped
    return row


def turn_group(turn: int) -> str:
    """Turn position bucket: 1, 2, 3, 4+ (few interactions are longer)."""
    return str(turn) if turn < 4 else "4+"


def by_turn(scored: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Question match per turn position: does accuracy fall as questions lean on more context?"""
    out = {}
    for g in TURN_GROUPS:
        sub = [r for r in scored if turn_group(r["turn"]) == g]
        if sub:
            out[g] = accuracy_metrics(sub)
    return out


def by_hardness(scored: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Question match per Spider hardness level of the turn's gold SQL."""
    levels = [*LEVELS, *sorted({r["hardness"] for r in scored} - set(LEVELS))]
    return {lv: accuracy_metrics(sub) for lv in levels if (sub := [r for r in scored if r["hardness"] == lv])}


def interaction_verdicts(rows: Sequence[dict[str, Any]]) -> dict[Any, bool]:
    """interaction -> every turn whose gold executes is right (interactions with no such turn are left out)."""
    by_inter: dict[Any, list[bool]] = {}
    for r in rows:
        if r.get("error_type") != "gold_error" and r.get("correct") is not None:
            by_inter.setdefault(r["interaction"], []).append(bool(r["correct"]))
    return {k: all(v) for k, v in by_inter.items()}


def interaction_summary(rows: Sequence[dict[str, Any]], interactions: Sequence[Interaction]) -> dict[str, Any]:
    """Interaction match: an interaction counts when all of its turns are scored, and is right by
    :func:`interaction_verdicts`."""
    n_rows, verdicts = Counter(r["interaction"] for r in rows), interaction_verdicts(rows)
    return accuracy_summary([verdicts[it.index] for it in interactions
                             if n_rows[it.index] == len(it.turns) and it.index in verdicts])


def generation_health(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How generation went: answers cut by the token limit, empty after extraction, spread over several lines."""
    return {"n": len(rows), "hit_limit": sum(bool(r.get("hit_limit")) for r in rows),
            "empty": sum(not (r.get("pred_sql") or "").strip() for r in rows),
            "multi_line_extraction": sum(r.get("extraction") not in (None, "first_line") for r in rows)}


def prompt_length_stats_rows(rows: Sequence[dict[str, Any]], limit: int) -> dict[str, Any]:
    """Prompt-length summary from the rows (which may come from an earlier, resumed run)."""
    prompts = [BuiltPrompt([], "", r.get("prompt_tokens", 0), bool(r.get("truncated")), r.get("dropped_tables", []),
                           bool(r.get("dropped_samples"))) for r in rows]
    stats = prompt_length_stats(prompts, limit)
    stats["n_history_dropped"] = sum(bool(r.get("history_dropped")) for r in rows)
    return stats
