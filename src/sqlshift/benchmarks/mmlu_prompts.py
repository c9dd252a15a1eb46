"""MMLU prompts and metrics, scored by log-likelihood, never by parsing generated text.

The study this project extends parsed free-form generations and reported 0.67% (far below the 25% of chance):
the scorer was broken, not the model. Here a question's prediction is the argmax of four log-likelihoods
(requests built by :class:`sqlshift.benchmarks.mmlu.MMLUBenchmark`, answered by any ``LM``):

* ``letter``: prompt with question and lettered choices ending in ``Answer:``; compare the log-probs of
  `` A`` `` B`` `` C`` `` D`` as the next token (lm-evaluation-harness MMLU convention).
* ``cloze``: log-prob of each answer text as the continuation of ``Question: ...\nAnswer:``; the prediction uses
  the character-length-normalised score (lm-eval ``acc_norm``), the plain sum is recorded too.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any

from sqlshift.benchmarks.common import BELOW_CHANCE_ALPHA, BELOW_CHANCE_MIN_N, chance_test
from sqlshift.data.mmlu import CATEGORY_NAMES, LETTERS, MMLUQuestion, question_block, subject_name
from sqlshift.errors import ConfigError, ScorerFailure
from sqlshift.stats import accuracy_summary, habit_chance

log = logging.getLogger(__name__)

MODES = ("letter", "cloze")
CHANCE = 0.25
LETTER_HEADER = "The following are multiple choice questions (with answers) about {}.\n\n"
CLOZE_HEADER = "The following are questions (with answers) about {}.\n\n"  # lm-eval mmlu_continuation


# ---------------------------------------------------------------- prompts


def letter_text(q: MMLUQuestion, with_answer: bool) -> str:
    """``question\\nA. ..\\nD. ..\\nAnswer:`` (+ `` B\\n\\n`` for a few-shot exemplar)."""
    text = question_block(q) + "\nAnswer:"
    return text + f" {q.answer}\n\n" if with_answer else text


def cloze_text(q: MMLUQuestion, with_answer: bool) -> str:
    """``Question: ...\\nAnswer:`` (+ `` <answer text>\\n\\n`` for a few-shot exemplar); choices are not shown."""
    text = f"Question: {q.question.strip()}\nAnswer:"
    return text + f" {q.answer_text}\n\n" if with_answer else text


def build_context(q: MMLUQuestion, mode: str, shots: Sequence[MMLUQuestion], chat: bool, tok: Any) -> str:
    """The text the model reads before the scored continuation; it always ends in ``Answer:``.

    With ``chat`` the header, exemplars and question form the user turn and the assistant turn opens with
    ``Answer:``, so a chat model is scored where it would answer.
    """
    fmt = letter_text if mode == "letter" else cloze_text
    header = (LETTER_HEADER if mode == "letter" else CLOZE_HEADER).format(subject_name(q.subject))
    prefix = header + "".join(fmt(s, True) for s in shots)
    if not chat:
        return prefix + fmt(q, False)
    body = question_block(q) if mode == "letter" else q.question.strip()
    user = prefix + body
    if not getattr(tok, "chat_template", None):
        raise ConfigError("chat=True but the tokenizer has no chat template", "use chat=False (--no-chat)")
    turn = tok.apply_chat_template([{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True)
    return turn + "Answer:"


# ---------------------------------------------------------------- letter tokens


def check_letter_tokens(tok: Any) -> list[int]:
    """Ids of `` A``..`` D`` as the model sees them after ``Answer:``; ScorerFailure unless 4 distinct single tokens.

    Scoring ``A`` instead of `` A`` (or a letter that splits into two tokens) compares the wrong next tokens and
    yields near-random or below-chance accuracy: the classic bug behind a broken MMLU number.
    """
    ctx = tok("Answer:", add_special_tokens=False)["input_ids"]
    ids: list[int] = []
    for L in LETTERS:
        alone = tok(" " + L, add_special_tokens=False)["input_ids"]
        full = tok("Answer: " + L, add_special_tokens=False)["input_ids"]
        if len(alone) != 1 or list(full[:-1]) != list(ctx) or full[-1] != alone[0]:
            raise ScorerFailure(f"' {L}' is not one token after 'Answer:' "
                                f"(alone: {alone}, in context: {full[len(ctx):]})", "use mode=cloze for this tokenizer")
        ids.append(int(alone[0]))
    if len(set(ids)) != 4:
        raise ScorerFailure(f"letter tokens are not distinct: {ids}", "use mode=cloze for this tokenizer")
    return ids


def argmax(xs: Sequence[float]) -> int:
    return max(range(len(xs)), key=lambda i: xs[i])


def result_row(q: MMLUQuestion, logprobs: Sequence[float], mode: str, row_id: str) -> dict[str, Any]:
    """One line of results.jsonl: the letter log-probs, or (cloze) the answer log-probs per character and summed."""
    scores = list(logprobs)
    row: dict[str, Any] = {"id": row_id, "subject": q.subject, "category": q.category, "index": q.index,
                           "gold": q.answer, "mode": mode}
    if mode == "cloze":
        row["pred_sum"] = LETTERS[argmax(scores)]
        row["scores_sum"] = [round(x, 6) for x in scores]
        scores = [x / max(1, len(c.strip())) for x, c in zip(scores, q.choices)]
    row["pred"] = LETTERS[argmax(scores)]
    row["correct"] = row["pred"] == q.answer
    row["scores"] = [round(x, 6) for x in scores]
    return row


# ---------------------------------------------------------------- metrics


def summarise(rows: Sequence[dict[str, Any]], key: str = "correct") -> dict[str, Any]:
    """``{n, n_correct, accuracy, ci95}`` of rows."""
    return accuracy_summary([bool(r[key]) for r in rows])


def group_summary(rows: Sequence[dict[str, Any]], by: str, order: Iterable[str]) -> dict[str, Any]:
    """Per-group summaries, in a stable order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r[by], []).append(r)
    return {g: summarise(groups[g]) for g in order if g in groups}


def below_chance_subjects(by_subject: dict[str, dict[str, Any]],
                          rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Subjects with n >= 50 significantly below chance (p < 0.01): a sign of a scorer bug, not of forgetting.

    Each subject is tested against the lower of 25% and its own habit chance (the model's letter shares there
    times the key's): a 0.5B model answering "B" to 89% of MMLU scored 15% on a subject whose key is 15% "B",
    which is its habit, not a broken scorer.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["subject"], []).append(r)
    out = []
    for s, m in by_subject.items():
        mine = groups.get(s, [])
        m["habit_chance"] = habit_chance([r["pred"] for r in mine], [r["gold"] for r in mine])
        p = chance_test({**m, "chance": CHANCE})["below_chance_p"]
        m["below_chance_p"] = p
        if m["n"] >= BELOW_CHANCE_MIN_N and p < BELOW_CHANCE_ALPHA:
            out.append({"subject": s, "n": m["n"], "accuracy": m["accuracy"], "habit_chance": m["habit_chance"],
                        "p": p})
    return out


def letter_bias(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Predicted vs gold letter counts, and the best constant-letter accuracy.

    A small model that always answers "A" scores the share of gold "A"s, which can sit below 25% on a sample
    without any scorer bug; these fields let a reader (and the below-chance guard) tell that apart from a broken scorer.
    """
    pred = {L: sum(r["pred"] == L for r in rows) for L in LETTERS}
    gold = {L: sum(r["gold"] == L for r in rows) for L in LETTERS}
    return {"pred_counts": pred, "gold_counts": gold,
            "constant_letter_accuracy": max(gold.values()) / len(rows) if rows else 0.0,
            "prior_corrected_accuracy": prior_corrected_accuracy(rows)}


def prior_corrected_accuracy(rows: Sequence[dict[str, Any]]) -> float | None:
    """Accuracy after dividing out the model's average probability of each letter (letter-prior calibration).

    Two models can differ on MMLU only by how much they favour one letter (fine-tuning often shifts that
    prior); if the difference survives this correction it is about the questions, not the letter habit.
    """
    if not rows or any(len(r.get("scores") or []) != len(LETTERS) for r in rows):
        return None
    probs = []
    for r in rows:
        top = max(r["scores"])
        e = [math.exp(x - top) for x in r["scores"]]
        probs.append([x / sum(e) for x in e])
    prior = [sum(p[i] for p in probs) / len(probs) for i in range(len(LETTERS))]
    hits = sum(LETTERS[argmax([math.log(p[i] / prior[i]) for i in range(len(LETTERS))])] == r["gold"]
               for p, r in zip(probs, rows))
    return hits / len(rows)


def build_metrics(rows: Sequence[dict[str, Any]], *, mode: str, k_shot: int, chat: bool) -> dict[str, Any]:
    """metrics.json content (DESIGN.md): aggregate, per subject, per category, chance guard."""
    subjects = list(dict.fromkeys(r["subject"] for r in rows))
    overall = summarise(rows)
    by_subject = group_summary(rows, "subject", subjects)
    m: dict[str, Any] = {"metric": "mmlu", "mode": mode, "k_shot": k_shot, "chat": chat, **overall,
                         "chance": CHANCE,
                         "habit_chance": habit_chance([r["pred"] for r in rows], [r["gold"] for r in rows]),
                         "by_subject": by_subject,
                         "by_category": group_summary(rows, "category", CATEGORY_NAMES),
                         "subjects": subjects}
    m.update(chance_test(m))
    m["below_chance"] = below_chance_subjects(by_subject, rows)
    m.update(letter_bias(rows))
    if mode == "cloze" and rows and all("pred_sum" in r for r in rows):
        m["cloze_sum"] = accuracy_summary([r["pred_sum"] == r["gold"] for r in rows])
    return m


# ---------------------------------------------------------------- main API


def resolve_mode(tok: Any, mode: str, warnings: list[str]) -> tuple[str, list[int] | None]:
    """Letter ids for letter mode, or the cloze fallback (with a recorded warning) when they are unusable."""
    if mode not in MODES:
        raise ConfigError(f"unknown MMLU mode '{mode}'", "use letter or cloze")
    if mode == "cloze":
        return mode, None
    try:
        return mode, check_letter_tokens(tok)
    except ScorerFailure as e:
        msg = f"letter tokens unusable ({e}); fell back to cloze scoring"
        log.warning(msg)
        warnings.append(msg)
        return "cloze", None
