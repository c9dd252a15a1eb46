"""Batched greedy decoding of Spider questions, robust SQL extraction, and a resumable predictions.jsonl.

Each line of ``predictions.jsonl`` (DESIGN.md) keeps the model's raw answer beside the extracted SQL, so a scorer
failure can always be told apart from a model failure. Lines are appended and flushed per batch; a rerun skips
the indices already present.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Iterable

from sqlshift.jsonl import read_jsonl
from sqlshift.models import END_OF_TURN_TOKENS
from sqlshift.prompts import BuiltPrompt, PromptBuilder, PromptConfig

log = logging.getLogger(__name__)

_FENCE = re.compile(r"```[ \t]*(?:[A-Za-z]*[ \t]*\n|(?i:sqlite|sql)\b)?(.*?)(?:```|$)", re.S)
_PREFIX = re.compile(r"(?im)^[ \t>*#]*(?:sql(?:ite)?(?:[ \t]+query)?|query|answer)[ \t]*:[ \t]*")
_START = re.compile(r"(?i)\b(select|with)\b")
_PROSE = re.compile(r"(?i)^(this|the|here|note|explanation|it|we|i|in|to|output|result|answer|these|that|where\s+\w+\s+is)\b"
                    r"(?!\s*\()")
_SQL_LINE = re.compile(r"(?i)^(select|from|where|group|order|having|limit|join|inner|left|right|outer|on|and|or|union|"
                       r"intersect|except|with|as|not|in|exists|case|when|then|else|end|by|desc|asc|\(|\)|,)")


def _cut_statement(s: str) -> str:
    """Text up to the first ``;`` outside quotes."""
    quote: str | None = None
    for i, ch in enumerate(s):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"`":
            quote = ch
        elif ch == ";":
            return s[:i]
    return s


def _is_prose(line: str) -> bool:
    """A line that reads like an explanation rather than a continuation of the query."""
    line = line.strip()
    if not line or _SQL_LINE.match(line):
        return False
    return bool(_PROSE.match(line)) or (line.endswith((".", ":")) and len(line.split()) >= 5)


def first_statement(s: str) -> tuple[str, bool, bool]:
    """(first statement on one line, spanned several lines, something after it was dropped)."""
    s = s.strip()
    stmt = _cut_statement(s)
    lines: list[str] = []
    for i, line in enumerate(stmt.splitlines()):
        if line.strip().startswith("```") or (i > 0 and (not line.strip() or _is_prose(line))):
            break
        lines.append(line)
    kept = "\n".join(lines)
    joined = " ".join(kept.split())
    rest = s[len(kept):].strip().lstrip(";").strip()
    return joined, len([ln for ln in lines if ln.strip()]) > 1, bool(rest)


def extract_sql(text: str) -> tuple[str, str]:
    """(SQL, how) from a model answer; ``how`` says which rule applied.

    ``code_fence``: the first fenced block; ``sql_prefix``: after an ``SQL:``/``Query:`` label; ``first_line``: the
    whole answer is one SQL line; ``statement``: a statement found in prose, or cut at ``;`` / trailing prose;
    ``multi_line``: a query spread over several lines, joined; ``no_sql``: no SELECT/WITH anywhere (first line kept);
    ``empty``: nothing. Of several statements the first is kept."""
    t = (text or "").strip()
    if not t:
        return "", "empty"
    m = _FENCE.search(t)
    if m and (m.group(1).strip() or not _START.search(t[:m.start()])):  # a stray closing fence is not a block
        sql = first_statement(m.group(1))[0]
        return (sql, "code_fence") if sql else ("", "empty")
    m = _PREFIX.search(t)
    if m and _START.match(t[m.end():].lstrip()):
        return first_statement(t[m.end():])[0], "sql_prefix"
    start = _START.search(t)
    if start is None:
        return t.splitlines()[0].strip(), "no_sql"
    sql, multi, cut = first_statement(t[start.start():])
    if start.start() > 0 or cut:
        return re.sub(r"(?<=[^\d\s])\.$", "", sql), "statement"  # a sentence's full stop is not SQL
    return sql, ("multi_line" if multi else "first_line")


def stop_token_ids(tok: Any) -> list[int]:
    """EOS plus any end-of-turn token the chat template uses: generation must stop at the end of the turn."""
    ids = [tok.eos_token_id] if tok.eos_token_id is not None else []
    vocab = tok.get_vocab()
    template = getattr(tok, "chat_template", None) or ""
    for t in END_OF_TURN_TOKENS:
        if t in vocab and t in template and vocab[t] not in ids:
            ids.append(vocab[t])
    return ids


def select_examples(examples: list[Any], limit: int | None = None, indices: Iterable[int] | None = None) -> list[Any]:
    """Examples whose ``index`` is in ``indices`` (all when None), then the first ``limit`` of them."""
    if indices is not None:
        wanted = set(indices)
        examples = [e for e in examples if e.index in wanted]
    return examples[:limit] if limit is not None else examples


def length_sorted_batches(prompts: list[BuiltPrompt], batch_size: int) -> list[list[int]]:
    """Positions grouped into batches of similar length (longest first: an OOM shows up at once)."""
    order = sorted(range(len(prompts)), key=lambda i: (-prompts[i].n_tokens, i))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def decode_batch(model: Any, tok: Any, texts: list[str], max_new_tokens: int,
                 static_cache: bool = False) -> list[tuple[str, int, bool]]:
    """Greedy-decode a batch; (raw answer up to the stop token, new tokens, hit the limit) per prompt.

    ``static_cache``: a preallocated KV cache that transformers compiles the decode step for (CUDA); prompts are
    padded to a multiple of 256 tokens so few distinct shapes (recompilations) occur."""
    import torch

    stops = stop_token_ids(tok)
    extra: dict[str, Any] = {"cache_implementation": "static"} if static_cache else {}
    enc = tok(texts, return_tensors="pt", padding=True, pad_to_multiple_of=256 if static_cache else None)
    enc = enc.to(model.device)
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                             eos_token_id=stops, pad_token_id=tok.pad_token_id,
                             temperature=None, top_p=None, top_k=None, **extra)
    new = out[:, enc["input_ids"].shape[1]:].tolist()
    results = []
    for ids in new:
        stop_at = next((i for i, t in enumerate(ids) if t in stops), None)
        content = ids if stop_at is None else ids[:stop_at]
        results.append((tok.decode(content, skip_special_tokens=True), len(content), stop_at is None))
    return results


def prediction_record(example: Any, raw: str, n_new: int, hit_limit: bool, prompt: BuiltPrompt) -> dict[str, Any]:
    """One predictions.jsonl line (DESIGN.md format, plus prompt length and truncation)."""
    sql, how = extract_sql(raw)
    rec = {"index": example.index, "db_id": example.db_id, "sql": sql, "raw": raw, "n_new_tokens": n_new,
           "hit_limit": hit_limit, "extraction": how, "prompt_tokens": prompt.n_tokens}
    if prompt.truncated:
        rec["truncated"] = True
    return rec


def generate_predictions(model: Any, tok: Any, split: Any, out_path: Path, *, prompt_cfg: PromptConfig | None = None,
                         batch_size: int = 16, max_new_tokens: int = 256, limit: int | None = None,
                         indices: Iterable[int] | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Predict SQL for a split's examples, appending to ``out_path``; returns the selected examples' predictions.

    Indices already in ``out_path`` are not generated again (resume)."""
    from tqdm import tqdm

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    examples = select_examples(split.examples, limit, indices)
    done = {r["index"]: r for r in read_jsonl(out_path, repair=True)}  # a torn last line is cut
    todo = [e for e in examples if e.index not in done]
    if done:
        log.info("%s: %d of %d already predicted, %d to go", out_path, len(examples) - len(todo), len(examples), len(todo))
    builder = PromptBuilder(tok, split.tables, split.db_path, prompt_cfg)
    prompts = [builder.build(e) for e in todo]
    was_training = getattr(model, "training", False)
    model.eval()
    with out_path.open("a", encoding="utf-8") as f, tqdm(total=len(todo), disable=not progress, desc="generate") as bar:
        for batch in length_sorted_batches(prompts, batch_size):
            answers = decode_batch(model, tok, [prompts[i].text for i in batch], max_new_tokens)
            for i, (raw, n_new, hit) in zip(batch, answers):
                rec = prediction_record(todo[i], raw, n_new, hit, prompts[i])
                done[rec["index"]] = rec
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            f.flush()
            bar.update(len(batch))
    if was_training:
        model.train()
    return [done[e.index] for e in examples]


def write_official(preds: list[dict[str, Any]], path: Path) -> Path:
    """Official format: one SQL per line, in split (index) order; empty answers become an empty line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [" ".join(str(p.get("sql") or "").split()) for p in sorted(preds, key=lambda p: p["index"])]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def run_predict(model: str | None, adapter: str | Path | None, spider_dir: str | Path, split: str = "dev",
                limit: int | None = None, out: str | Path = Path("predictions"), batch_size: int = 16,
                max_new_tokens: int = 256, score: bool = False, sample_rows: int = 0) -> Path:
    """CLI entry: load model (+ adapter), predict a Spider split into ``out``/predictions.jsonl, optionally score.

    ``out`` is a folder (or a ``.jsonl`` path whose folder is used); also writes ``predictions.sql`` (official
    format) and, with ``score``, the EX results.jsonl / metrics.json beside them."""
    from sqlshift.data.spider import load_spider
    from sqlshift.models import load_model

    out = Path(out)
    pred_path = out if out.suffix == ".jsonl" else out / "predictions.jsonl"
    out_dir = pred_path.parent
    sp = load_spider(spider_dir, split)
    log.info(sp.skip_summary())
    mdl, tok = load_model(model, adapter=adapter)
    preds = generate_predictions(mdl, tok, sp, pred_path, prompt_cfg=PromptConfig(sample_rows=sample_rows),
                                 batch_size=batch_size, max_new_tokens=max_new_tokens, limit=limit)
    write_official(preds, out_dir / "predictions.sql")
    if score:
        from sqlshift.metrics.execution import evaluate_split

        import dataclasses

        scored = dataclasses.replace(sp, examples=select_examples(sp.examples, limit))  # only what was predicted
        evaluate_split(scored, {p["index"]: p for p in preds}, out_dir)
    return pred_path
