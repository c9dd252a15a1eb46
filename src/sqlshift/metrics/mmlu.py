"""MMLU scored by log-likelihood, never by parsing generated text.

The study this project extends parsed free-form generations and reported 0.67% (far below the 25% of chance):
the scorer was broken, not the model. Here a question's prediction is the argmax of four log-likelihoods:

* ``letter``: prompt with question and lettered choices ending in ``Answer:``; compare the next-token log-probs
  of `` A`` `` B`` `` C`` `` D`` (lm-evaluation-harness MMLU convention, one forward pass per question).
* ``cloze``: log-prob of each answer text as the continuation of ``Question: ...\\nAnswer:``; the prediction uses
  the character-length-normalised score (lm-eval ``acc_norm``), the plain sum is recorded too.

Sequences are batched by length with left padding, an attention mask and position ids counted from the first real
token, so a padded sequence scores as it would alone (checked on the first batch of every run).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlshift.data.mmlu import (CATEGORY_NAMES, LETTERS, SEED, SEED_N, SEED_SUBJECTS, MMLUQuestion, load_fewshot,
                                load_mmlu, load_mmlu_hub, question_block, question_indices, resolve_subjects,
                                seed_sample, subject_name)
from sqlshift.errors import ConfigError, ScorerFailure
from sqlshift.jsonl import read_jsonl
from sqlshift.metrics.stats import accuracy_summary, below_chance_p

log = logging.getLogger(__name__)

MODES = ("letter", "cloze")
CHANCE = 0.25
BELOW_CHANCE_ALPHA = 0.01
BELOW_CHANCE_MIN_N = 50
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


def encode_context(tok: Any, text: str, chat: bool) -> list[int]:
    """Token ids of a context; chat text already carries its special tokens, a plain one gets the BOS if any."""
    return list(tok(text, add_special_tokens=not chat)["input_ids"])


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


# ---------------------------------------------------------------- forward passes


@dataclass
class Request:
    """One sequence to score: ``ctx`` then ``cont``; the summed log-prob of ``cont`` (or next-token log-probs)."""

    qi: int  # position of the question in the current list
    choice: int  # 0..3 in cloze mode, -1 for a letter request
    ctx: list[int]
    cont: list[int]

    @property
    def length(self) -> int:
        return len(self.ctx) + len(self.cont)


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int, side: str = "left") -> tuple[Any, Any, Any]:
    """``input_ids``, ``attention_mask`` and ``position_ids`` (0 at each sequence's first real token)."""
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        sl = slice(width - len(s), width) if side == "left" else slice(0, len(s))
        ids[i, sl] = torch.tensor(list(s), dtype=torch.long)
        mask[i, sl] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, mask, pos


def model_device(model: Any) -> Any:
    return next(model.parameters()).device


def forward_logprobs(model: Any, seqs: Sequence[Sequence[int]], pad_id: int, keep: int, side: str = "left") -> Any:
    """Log-softmax over the vocabulary at the last ``keep`` positions (left padding) or all positions (right).

    Only the kept positions go through the LM head, which keeps memory at ``batch x keep x vocab``.
    """
    import torch

    ids, mask, pos = pad_batch(seqs, pad_id, side)
    dev = model_device(model)
    kwargs: dict[str, Any] = {"input_ids": ids.to(dev), "attention_mask": mask.to(dev), "position_ids": pos.to(dev),
                              "use_cache": False}
    if side == "left":
        kwargs["logits_to_keep"] = keep
    logits = model(**kwargs).logits
    return torch.log_softmax(logits.float(), dim=-1)


def score_letter_batch(model: Any, reqs: Sequence[Request], pad_id: int, letter_ids: Sequence[int],
                       side: str = "left") -> list[list[float]]:
    """Next-token log-probs of the 4 letter tokens after each context."""
    import torch

    lp = forward_logprobs(model, [r.ctx for r in reqs], pad_id, keep=1, side=side)
    idx = torch.tensor(list(letter_ids), device=lp.device)
    out: list[list[float]] = []
    for i, r in enumerate(reqs):
        last = lp[i, -1] if side == "left" else lp[i, len(r.ctx) - 1]
        out.append(last.index_select(0, idx).tolist())
    return out


def score_cont_batch(model: Any, reqs: Sequence[Request], pad_id: int, side: str = "left") -> list[float]:
    """Summed log-prob of each continuation given its context."""
    seqs = [r.ctx + r.cont for r in reqs]
    keep = max(len(r.cont) for r in reqs) + 1
    lp = forward_logprobs(model, seqs, pad_id, keep=keep, side=side)
    out: list[float] = []
    for i, r in enumerate(reqs):
        m = len(r.cont)
        # logits at position t predict token t+1; with left padding the sequence ends at the last column
        rows = lp[i, -m - 1:-1] if side == "left" else lp[i, len(r.ctx) - 1:len(r.ctx) - 1 + m]
        out.append(float(sum(rows[j, t].item() for j, t in enumerate(r.cont))))
    return out


# ---------------------------------------------------------------- per-question scoring


@dataclass
class Scorer:
    """Everything needed to turn questions into scores: model, tokenizer, protocol."""

    model: Any
    tok: Any
    mode: str
    chat: bool
    fewshot: dict[str, list[MMLUQuestion]]
    k_shot: int
    letter_ids: list[int] | None
    max_len: int | None
    n_truncated: int = 0
    cache: dict[tuple[str, int], list[int]] = field(default_factory=dict)

    @property
    def pad_id(self) -> int:
        pid = self.tok.pad_token_id
        return int(pid if pid is not None else (self.tok.eos_token_id or 0))

    def context(self, q: MMLUQuestion) -> list[int]:
        """Context token ids, cached: batching by length needs them before scoring does."""
        if q.key not in self.cache:
            self.cache[q.key] = self.encode(q)
        return self.cache[q.key]

    def encode(self, q: MMLUQuestion) -> list[int]:
        shots = self.fewshot.get(q.subject, [])[: self.k_shot]
        ids = encode_context(self.tok, build_context(q, self.mode, shots, self.chat, self.tok), self.chat)
        if self.max_len and len(ids) > self.max_len - 64:  # keep the end (question, cue); drop old exemplars
            self.n_truncated += 1
            ids = ids[-(self.max_len - 64):]
        return ids

    def requests(self, qi: int, q: MMLUQuestion) -> list[Request]:
        ctx = self.context(q)
        if self.mode == "letter":
            return [Request(qi, -1, ctx, [])]
        return [Request(qi, c, ctx, list(self.tok(" " + text.strip(), add_special_tokens=False)["input_ids"]) or
                        [self.pad_id]) for c, text in enumerate(q.choices)]

    def score(self, questions: Sequence[MMLUQuestion], side: str = "left") -> list[dict[str, list[float]]]:
        """Scores of a batch of questions: ``{"scores": [4]}`` (+ ``"scores_sum"`` in cloze mode)."""
        reqs = [r for qi, q in enumerate(questions) for r in self.requests(qi, q)]
        if self.mode == "letter":
            assert self.letter_ids is not None
            return [{"scores": s} for s in score_letter_batch(self.model, reqs, self.pad_id, self.letter_ids, side)]
        sums = score_cont_batch(self.model, reqs, self.pad_id, side)
        out = [{"scores": [0.0] * 4, "scores_sum": [0.0] * 4} for _ in questions]
        for r, s in zip(reqs, sums):
            text = questions[r.qi].choices[r.choice].strip()
            out[r.qi]["scores_sum"][r.choice] = s
            out[r.qi]["scores"][r.choice] = s / max(1, len(text))
        return out


def argmax(xs: Sequence[float]) -> int:
    return max(range(len(xs)), key=lambda i: xs[i])


def result_row(q: MMLUQuestion, sc: dict[str, list[float]], mode: str) -> dict[str, Any]:
    """One line of results.jsonl (DESIGN.md format, plus the mode it was scored in)."""
    pred = LETTERS[argmax(sc["scores"])]
    row: dict[str, Any] = {"subject": q.subject, "category": q.category, "index": q.index, "gold": q.answer,
                           "pred": pred, "correct": pred == q.answer, "scores": [round(x, 6) for x in sc["scores"]],
                           "mode": mode}
    if "scores_sum" in sc:
        row["pred_sum"] = LETTERS[argmax(sc["scores_sum"])]
        row["scores_sum"] = [round(x, 6) for x in sc["scores_sum"]]
    return row


# ---------------------------------------------------------------- results file (resume)


def read_results(path: Path, mode: str) -> dict[tuple[str, int], dict[str, Any]]:
    """Rows already scored; a torn last line (killed mid-write) is cut from the file.

    Rows scored in another mode mean another protocol: resuming into them would mix two metrics.
    """
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for row in read_jsonl(path, repair=True):
        if row.get("mode", mode) != mode:
            raise ConfigError(f"{path} holds {row.get('mode')}-mode results, this run is {mode}-mode",
                              "use another output folder, or delete results.jsonl")
        rows[(row["subject"], int(row["index"]))] = row
    return rows


def length_batches(items: Sequence[tuple[int, int]], per_batch: int) -> Iterator[list[int]]:
    """Positions grouped ``per_batch`` at a time, longest first (similar lengths pad little; OOM shows early)."""
    order = [i for i, _ in sorted(items, key=lambda x: -x[1])]
    for start in range(0, len(order), per_batch):
        yield order[start:start + per_batch]


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


def below_chance_subjects(by_subject: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Subjects with n >= 50 significantly below chance (p < 0.01): a sign of a scorer bug, not of forgetting."""
    out = []
    for s, m in by_subject.items():
        p = below_chance_p(m["n_correct"], m["n"], CHANCE)
        m["below_chance_p"] = p
        if m["n"] >= BELOW_CHANCE_MIN_N and p < BELOW_CHANCE_ALPHA:
            out.append({"subject": s, "n": m["n"], "accuracy": m["accuracy"], "p": p})
    return out


def letter_bias(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Predicted vs gold letter counts, and the best constant-letter accuracy.

    A small model that always answers "A" scores the share of gold "A"s, which can sit below 25% on a sample
    without any scorer bug; these fields let a reader (and guards.py) tell that apart from a broken scorer.
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
                         "chance": CHANCE, "below_chance_p": below_chance_p(overall["n_correct"], overall["n"], CHANCE),
                         "by_subject": by_subject,
                         "by_category": group_summary(rows, "category", CATEGORY_NAMES),
                         "subjects": subjects}
    m["below_chance"] = below_chance_subjects(by_subject)
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


def padding_check(scorer: Scorer, batch: Sequence[MMLUQuestion], scored: Sequence[dict[str, list[float]]],
                  warnings: list[str]) -> float:
    """Re-score the shortest (most padded) question of a batch alone; a gap means padding leaks into scores."""
    i = min(range(len(batch)), key=lambda j: len(scorer.context(batch[j])))
    alone = scorer.score([batch[i]])[0]["scores"]
    diff = max(abs(a - b) for a, b in zip(alone, scored[i]["scores"]))
    fp32 = str(next(scorer.model.parameters()).dtype) == "torch.float32"
    if diff > (1e-3 if fp32 else 0.25):
        msg = f"padding check: batched and unpadded scores differ by {diff:.4g}"
        log.warning(msg)
        warnings.append(msg)
    return diff


def evaluate_mmlu(model: Any, tok: Any, questions: Sequence[MMLUQuestion], out_dir: Path, *, mode: str = "letter",
                  k_shot: int = 0, chat: bool = False, batch_size: int = 16,
                  fewshot: dict[str, list[MMLUQuestion]] | None = None, progress: bool = True,
                  extra: dict[str, Any] | None = None, limit: int | None = None) -> dict[str, Any]:
    """Score ``questions`` into ``out_dir/results.jsonl`` (resumable) and write ``out_dir/metrics.json``.

    ``limit`` stops after that many newly scored questions (an interrupted run, for tests and smoke runs);
    ``extra`` is merged into metrics.json (e.g. the sampled ``questions`` and the model name).
    """
    import torch
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    warnings: list[str] = []
    used_mode, letter_ids = resolve_mode(tok, mode, warnings)
    fewshot = fewshot or {}
    if k_shot > 0 and any(len(fewshot.get(q.subject, [])) < k_shot for q in questions):
        warnings.append(f"fewer than {k_shot} few-shot exemplars for some subjects; those use what there is")
    max_len = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    scorer = Scorer(model, tok, used_mode, chat, fewshot, k_shot, letter_ids, max_len)
    path = out_dir / "results.jsonl"
    done = read_results(path, used_mode)
    todo = [q for q in dict((q.key, q) for q in questions).values() if q.key not in done]
    if limit is not None:
        todo = todo[:limit]
    per_batch = batch_size if used_mode == "letter" else max(1, batch_size // 4)
    lengths = [(i, len(scorer.context(q))) for i, q in enumerate(todo)]
    t0 = time.perf_counter()
    pad_diff: float | None = None
    model.eval()
    with torch.inference_mode(), path.open("a", encoding="utf-8") as f, \
            tqdm(total=len(todo), desc=f"mmlu {used_mode}", disable=not progress) as bar:
        for positions in length_batches(lengths, per_batch):
            batch = [todo[i] for i in positions]
            scored = scorer.score(batch)
            if pad_diff is None and len(batch) > 1:
                pad_diff = padding_check(scorer, batch, scored, warnings)
            for q, sc in zip(batch, scored):
                row = result_row(q, sc, used_mode)
                done[q.key] = row
                f.write(json.dumps(row) + "\n")
            f.flush()
            bar.update(len(batch))
    seconds = time.perf_counter() - t0
    rows = [done[q.key] for q in questions if q.key in done]
    metrics = build_metrics(rows, mode=used_mode, k_shot=k_shot, chat=chat)
    metrics.update({"mode_requested": mode, "n_requested": len(dict.fromkeys(q.key for q in questions)),
                    "complete": len(rows) == len(dict.fromkeys(q.key for q in questions)),
                    "n_scored_this_run": len(todo), "seconds": round(seconds, 3),
                    "questions_per_s": round(len(todo) / seconds, 3) if seconds > 0 and todo else None,
                    "padding_check_max_abs_diff": pad_diff, "n_truncated": scorer.n_truncated,
                    "warnings": warnings})
    if metrics["below_chance"]:
        names = ", ".join(b["subject"] for b in metrics["below_chance"])
        warnings.append(f"subjects significantly below chance: {names}")
    metrics.update(extra or {})
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    return metrics


def load_questions(mmlu_dir: str | Path | None, subjects: str | Sequence[str], split: str = "test",
                   hub: bool = False) -> tuple[list[MMLUQuestion], dict[str, Any]]:
    """Questions of a subjects spec; ``"seed"`` applies the study's sample (3 x 50, seed 42) and says so."""
    names = resolve_subjects(subjects)
    qs = load_mmlu_hub(names, split) if hub else load_mmlu(mmlu_dir, names, split)
    info: dict[str, Any] = {"split": split, "source": "hub:cais/mmlu" if hub else "csv"}
    if isinstance(subjects, str) and subjects.strip().lower() == "seed":
        qs = seed_sample(qs, SEED_N, SEED)
        info.update({"preset": "seed", "sampling": {"n_per_subject": SEED_N, "seed": SEED,
                                                    "subjects": list(SEED_SUBJECTS)},
                     "questions": question_indices(qs)})
    return qs, info


def run_eval_mmlu(model: str, adapter: str | None, mmlu_dir: str | Path | None, subjects: str | Sequence[str] = "seed",
                  mode: str = "letter", k_shot: int = 0, chat: bool = False, out: str | Path = "mmlu-eval",
                  batch_size: int = 16, split: str = "test", *, hub: bool = False, limit: int | None = None,
                  progress: bool = True) -> dict[str, Any]:
    """``sqlshift eval-mmlu``: load model and data, score, write results and metrics, print a short table."""
    from sqlshift.models import load_model

    questions, info = load_questions(mmlu_dir, subjects, split, hub)
    fewshot, note = ({}, "0-shot (k_shot=0)")
    if k_shot > 0:
        fewshot, note = ({}, f"0-shot (Hub source: no dev exemplars loaded; {k_shot}-shot requested)") if hub else \
            load_fewshot(mmlu_dir, dict.fromkeys(q.subject for q in questions), k_shot)
        if not fewshot:
            k_shot = 0
    info["fewshot"] = note
    m, tok = load_model(model, adapter)
    info.update({"model": model, "adapter": adapter})
    metrics = evaluate_mmlu(m, tok, questions, Path(out), mode=mode, k_shot=k_shot, chat=chat,
                            batch_size=batch_size, fewshot=fewshot, progress=progress, extra=info, limit=limit)
    print_table(metrics)
    return metrics


def fmt_acc(m: dict[str, Any]) -> str:
    lo, hi = m["ci95"]
    return f"{100 * m['accuracy']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"


def print_table(metrics: dict[str, Any]) -> None:
    """Accuracy with 95% CI per subject, per category and overall."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"MMLU ({metrics['mode']}, {metrics['k_shot']}-shot, chat={metrics['chat']}; chance 25%)")
    for c in ("group", "n", "correct", "accuracy [95% CI]"):
        t.add_column(c)
    for s, m in metrics["by_subject"].items():
        t.add_row(s, str(m["n"]), str(m["n_correct"]), fmt_acc(m))
    for c, m in metrics["by_category"].items():
        t.add_row(f"[bold]{c}[/bold]", str(m["n"]), str(m["n_correct"]), fmt_acc(m))
    t.add_row("[bold]all[/bold]", str(metrics["n"]), str(metrics["n_correct"]), fmt_acc(metrics))
    console = Console()
    console.print(t)
    for w in metrics.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {w}")
    if not math.isnan(metrics["below_chance_p"]) and metrics["below_chance_p"] < BELOW_CHANCE_ALPHA:
        console.print(f"[red]accuracy is significantly below chance (p={metrics['below_chance_p']:.2g}): "
                      "suspect the scorer[/red]")
