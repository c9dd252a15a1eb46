"""Training rows for :mod:`sqlshift.train.trainer`: Spider prompt/completion pairs, replay mixing and the mask guard.

Prompts are rendered by :mod:`sqlshift.sql.prompts` (the same text generation sees); the completion is the bare SQL +
end-of-turn token, masked out of the loss as trl's ``completion_only_loss`` would. The rows are tokenised once, as trl
does (:func:`tokenize_rows_like_trl`); :func:`check_mask_coverage` refuses to train when an example would contribute
no supervised token or leak prompt tokens into the loss, and trl trains on exactly those ids.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlshift.errors import ConfigError, DataError, ScorerFailure
from sqlshift.lm.base import parallel_tokenizers
from sqlshift.sql.prompts import PromptBuilder, completion_text, prompt_length_stats, render_prompt, uses_chat

if TYPE_CHECKING:
    from sqlshift.train.config import TrainConfig

log = logging.getLogger("sqlshift.train.trainer")

PREPARED = "prepared-data"  # the rows of a multi-rank run, on disk for every rank (removed when training ends)



def spider_root(cfg: TrainConfig) -> Path:
    """Spider folder from the config or $SQLSHIFT_DATA_DIR."""
    d = cfg.data.spider_dir or os.environ.get("SQLSHIFT_DATA_DIR")
    if not d:
        raise ConfigError("no Spider folder for training", "set data.spider_dir or SQLSHIFT_DATA_DIR")
    return Path(d)


def select_spider_examples(split: Any, cfg: TrainConfig) -> list[Any]:
    """Training examples: all of the split (a missing database only loses sample rows), filtered, then sampled."""
    examples = sorted(split.examples + split.skipped, key=lambda e: e.index)
    if cfg.data.db_ids:
        wanted = set(cfg.data.db_ids)
        examples = [e for e in examples if e.db_id in wanted]
    if cfg.data.limit_n is not None and cfg.data.limit_n < len(examples):
        examples = sorted(random.Random(cfg.seed).sample(examples, cfg.data.limit_n), key=lambda e: e.index)
    if not examples:
        raise ConfigError("the data selection is empty", "check data.split, data.db_ids and data.limit_n")
    return examples


def spider_rows(tok: Any, split: Any, examples: list[Any], cfg: TrainConfig) -> tuple[list[dict[str, Any]], list[Any]]:
    """Prompt/completion rows for Spider examples, each prompt fitted so that prompt + SQL fit ``max_length``."""
    builder = PromptBuilder(tok, split.tables, split.db_path, cfg.prompt)
    rows, prompts = [], []
    for ex in examples:
        completion = completion_text(tok, ex.query, cfg.prompt.chat)
        n_completion = len(tok(completion, add_special_tokens=False)["input_ids"])
        budget = max(1, min(cfg.prompt.max_prompt_tokens, cfg.max_length - n_completion))
        built = builder.build(ex, gold_sql=ex.query, budget=budget)
        prompts.append(built)
        rows.append({"prompt": built.text, "completion": completion, "source": "spider", "id": f"spider:{ex.index}",
                     "truncated": built.truncated})
    return rows, prompts


def n_replay_for(fraction: float, n_spider: int) -> int:
    """Replay examples so that they make up ``fraction`` of the mixed set: round(f / (1 - f) * n_spider)."""
    return int(round(fraction / (1.0 - fraction) * n_spider)) if fraction > 0 else 0


def read_replay_jsonl(path: Path) -> list[dict[str, str]]:
    """``{"instruction"|"prompt", "response"|"completion"}`` lines as prompt/completion dicts."""
    if not path.is_file():
        raise ConfigError(f"replay file {path} does not exist", "set replay.path to a .jsonl file")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{n} is not valid JSON ({e.msg})", "one JSON object per line") from e
        prompt, completion = row.get("instruction", row.get("prompt")), row.get("response", row.get("completion"))
        if not isinstance(prompt, str) or not isinstance(completion, str):
            raise DataError(f"{path}:{n} needs instruction/prompt and response/completion strings", "fix the line")
        out.append({"prompt": prompt, "completion": completion})
    return out


def replay_source_rows(cfg: TrainConfig, n: int) -> list[dict[str, str]]:
    """Exactly ``n`` replay (prompt, completion) pairs from the configured source, sampled with the seed."""
    r = cfg.replay
    if r.source == "jsonl":
        pool = read_replay_jsonl(Path(r.path or ""))
        if len(pool) < n:
            raise ConfigError(f"replay file {r.path} has {len(pool)} rows, {n} needed for fraction {r.fraction}",
                              "lower replay.fraction or add rows")
        return random.Random(cfg.seed).sample(pool, n)
    from sqlshift.data.mmlu import mmlu_replay_examples

    mmlu_dir = Path(r.path) if r.path else spider_root(cfg).resolve().parent / "mmlu"
    if not r.path and (spider_root(cfg) / "mmlu").is_dir():
        mmlu_dir = spider_root(cfg) / "mmlu"
    rows = mmlu_replay_examples(mmlu_dir, r.subjects, n, cfg.seed, split=r.split)
    if len(rows) != n:
        raise ConfigError(f"MMLU replay gave {len(rows)} examples from {r.subjects} ({r.split}), {n} needed",
                          "add subjects, use replay.split: test, or lower replay.fraction")
    return [{"prompt": x["prompt"], "completion": x["completion"]} for x in rows]


def replay_rows(tok: Any, cfg: TrainConfig, n: int) -> list[dict[str, Any]]:
    """Replay pairs rendered the same way as Spider prompts (chat template, or plain ``Answer:`` text)."""
    if n == 0:
        return []
    chat = uses_chat(tok, cfg.prompt.chat)
    out = []
    for i, pair in enumerate(replay_source_rows(cfg, n)):
        if chat:
            prompt = render_prompt(tok, [{"role": "user", "content": pair["prompt"]}], True)
            completion = pair["completion"].strip() + (tok.eos_token or "")
        else:
            prompt = pair["prompt"].rstrip() + "\nAnswer:"
            completion = " " + pair["completion"].strip() + (tok.eos_token or "")
        out.append({"prompt": prompt, "completion": completion, "source": cfg.replay.source, "id": f"replay:{i}",
                    "truncated": False})
    return out


# ---------------------------------------------------------------- mask guard

def tokenize_like_trl(tok: Any, prompt: str, completion: str, max_length: int | None) -> tuple[list[int], list[int], int]:
    """(input_ids, labels, prompt token count) as trl's SFTTrainer builds them for a string prompt-completion row
    with completion_only_loss (EOS appended when missing, tokenise prompt and prompt+completion, mask the common
    prefix, keep_start truncation)."""
    return tokenize_rows_like_trl(tok, [{"prompt": prompt, "completion": completion}], max_length)[0]


def tokenize_rows_like_trl(tok: Any, rows: list[dict[str, Any]],
                           max_length: int | None = None) -> list[tuple[list[int], list[int], int]]:
    """:func:`tokenize_like_trl` for many rows in two batched tokenizer calls (a fast tokenizer encodes a batch on
    all cores): the training data is tokenised once, here, and trl receives the ids instead of redoing it."""
    from trl.data_utils import common_prefix_length

    eos = tok.eos_token or ""
    completions = [r["completion"] if r["completion"].endswith(eos) else r["completion"] + eos for r in rows]
    with parallel_tokenizers():
        prompt_ids = tok(text=[r["prompt"] for r in rows])["input_ids"]
        full_ids = tok(text=[r["prompt"] + c for r, c in zip(rows, completions)])["input_ids"]
    out = []
    for p_ids, ids in zip(prompt_ids, full_ids):
        n_prompt = common_prefix_length(p_ids, ids)
        labels = [-100] * n_prompt + ids[n_prompt:]
        if max_length is not None:
            ids, labels = ids[:max_length], labels[:max_length]
        out.append((list(ids), labels, len(p_ids)))
    return out


def _show(row: dict[str, Any]) -> str:
    """An offending row, shortened for an error message."""
    p = row["prompt"]
    return f"{row.get('id', '?')}: prompt ...{p[-160:]!r} completion {row['completion'][:120]!r}"


def check_mask_coverage(tok: Any, rows: list[dict[str, Any]], max_length: int | None,
                        tokenized: list[tuple[list[int], list[int], int]] | None = None) -> dict[str, Any]:
    """Refuse to train on rows with no supervised token or with prompt tokens in the loss; return coverage stats.
    ``tokenized``: the rows' :func:`tokenize_rows_like_trl` (untruncated), when the caller has it already.

    Raises ScorerFailure naming the first offending rows. Also counts completions cut by ``max_length`` (the
    model then never sees their end-of-turn token)."""
    no_target, leaked, cut = [], [], []
    supervised, lengths = [], []
    eos = tok.eos_token_id
    for row, (ids, labels, n_prompt) in zip(rows, tokenized or tokenize_rows_like_trl(tok, rows)):
        lengths.append(len(ids))
        if max_length is not None:
            ids, labels = ids[:max_length], labels[:max_length]
        n_sup = sum(1 for x in labels if x != -100)
        supervised.append(n_sup)
        if n_sup == 0:
            no_target.append(row)
        elif any(x != -100 for x in labels[: min(n_prompt, len(labels))]):
            leaked.append(row)
        elif labels[-1] != eos:
            cut.append(row)
    if no_target or leaked:
        bad, why = (no_target, "no supervised token (prompt fills max_length)") if no_target else \
            (leaked, "prompt tokens would be trained on (prompt/completion tokens merge at the boundary)")
        raise ScorerFailure(f"mask guard: {len(bad)} of {len(rows)} training examples have {why}; first: {_show(bad[0])}",
                            "raise max_length, lower prompt.max_prompt_tokens / sample_rows, or fix the data")
    if cut:
        log.warning("mask guard: %d completions cut by max_length=%s (no end-of-turn learned), e.g. %s",
                    len(cut), max_length, _show(cut[0]))
    return {"n": len(rows), "min_supervised_tokens": min(supervised, default=0),
            "mean_supervised_tokens": round(sum(supervised) / max(1, len(supervised)), 1),
            "n_completion_cut": len(cut), "max_tokens": max(lengths, default=0),
            "mean_tokens": round(sum(lengths) / max(1, len(lengths)), 1), "ok": True}


def verify_trainer_dataset(dataset: Any, tok: Any, rows: list[dict[str, Any]], max_length: int | None) -> None:
    """After trl prepared the (unpacked) data: same number of rows, same labels as the guard computed."""
    if len(dataset) != len(rows):
        raise ScorerFailure(f"trl kept {len(dataset)} of {len(rows)} training examples (fully masked rows dropped)",
                            "see the mask guard; raise max_length")
    for i in sorted({0, len(rows) // 2, len(rows) - 1}):
        _, labels, _ = tokenize_like_trl(tok, rows[i]["prompt"], rows[i]["completion"], max_length)
        if list(dataset[i]["labels"]) != labels:
            raise ScorerFailure(f"trl's labels for {rows[i].get('id')} differ from the mask guard's",
                                "the installed trl tokenises differently: update tokenize_like_trl")


def build_training_rows(tok: Any, cfg: TrainConfig) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Spider rows + replay rows (exact fraction), shuffled with the seed; and a summary for the record."""
    from sqlshift.data.spider import load_spider

    split = load_spider(spider_root(cfg), cfg.data.split)
    examples = select_spider_examples(split, cfg)
    rows, prompts = spider_rows(tok, split, examples, cfg)
    n_replay = n_replay_for(cfg.replay.fraction, len(rows))
    rows_r = replay_rows(tok, cfg, n_replay)
    mixed = rows + rows_r
    random.Random(cfg.seed).shuffle(mixed)
    summary = {"n_spider": len(rows), "n_replay": len(rows_r), "replay_source": cfg.replay.source,
               "replay_fraction_config": cfg.replay.fraction,
               "replay_fraction_actual": round(len(rows_r) / max(1, len(mixed)), 6),
               "spider_split": cfg.data.split, "spider_indices": [e.index for e in examples],
               "prompt_stats": prompt_length_stats(prompts, cfg.prompt.max_prompt_tokens),
               "truncated_ids": [r["id"] for r in rows if r["truncated"]]}
    return mixed, summary


def rows_dataset(rows: list[dict[str, Any]], args: Any, output_dir: Path,
                 tokenized: list[tuple[list[int], list[int], int]] | None = None) -> Any:
    """The rows as a ``datasets.Dataset`` for trl: their ids and labels when ``tokenized`` (what the mask guard
    checked is then exactly what trains), else prompt/completion text for trl to tokenise.

    Under several ranks, rank 0 writes them to ``<output_dir>/prepared-data/<hash>`` and every rank reads them back:
    trl tokenises rank 0 first, then the others, and only a dataset backed by files lets datasets cache that work,
    so the other ranks load rank 0's result instead of redoing it while rank 0 waits at the barrier."""
    from datasets import Dataset, load_from_disk

    if tokenized is not None:  # trl takes tokenised rows as they are (then truncates to its max_length)
        ds = Dataset.from_dict({"input_ids": [ids for ids, _, _ in tokenized],
                                "labels": [labels for _, labels, _ in tokenized]})
    else:
        ds = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    if args.world_size <= 1:
        return ds
    digest = hashlib.sha256(json.dumps([[r["prompt"], r["completion"]] for r in rows] + [tokenized is not None])
                            .encode()).hexdigest()[:16]
    folder = Path(output_dir) / PREPARED / digest
    with args.main_process_first(local=False, desc="training data"):
        if args.process_index == 0 and not (folder / "state.json").is_file():
            ds.save_to_disk(str(folder))
    return load_from_disk(str(folder))

