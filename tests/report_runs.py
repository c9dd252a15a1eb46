"""Run directories written by hand for the report tests, in the run-directory contract the runner writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from sqlshift.stats import accuracy_summary, below_chance_p

N_DEV = 40
HARD = ("easy", "medium", "hard", "extra")
SUBJECTS = {"astronomy": "STEM", "philosophy": "humanities", "management": "other"}
LETTERS = "ABCD"
FAKE = "zorblax"  # a benchmark the report has never heard of

SPIDER_DEV = {"benchmark": "spider", "name": "spider-dev", "label": "EX (dev)", "axis": "specialty",
              "kind": "text2sql", "split": "dev", "mode": "official"}
SPIDER_SYN = {**SPIDER_DEV, "name": "spider-syn", "label": "EX (syn)", "split": "syn"}
MMLU = {"benchmark": "mmlu", "name": "mmlu", "label": "MMLU", "axis": "generality", "kind": "multiple_choice",
        "mode": "letter", "k_shot": 0, "chance": 0.25}
ZORBLAX = {"benchmark": FAKE, "name": FAKE, "label": "Zorblax", "axis": "generality", "kind": "generative"}

#: folder -> (model.json, dev correct, syn correct (of 20), mmlu correct (of 60), zorblax correct (of 50))
MODELS: dict[str, tuple[dict[str, Any], int, int, int | None, int | None]] = {
    "baseline": ({"key": "baseline", "kind": "baseline"}, 10, 4, 30, 25),
    "run1": ({"key": "run1", "kind": "run", "run": "run1", "step": 30}, 20, 8, 27, 22),
    "run2": ({"key": "run2", "kind": "run", "run": "run2", "step": 30}, 13, 5, 29, 25),
    "run1-seed2": ({"key": "run1-seed2", "kind": "run", "run": "run1-seed2", "step": 30}, 14, 6, 28, 23),
    "run1-step10": ({"key": "run1@10", "kind": "checkpoint", "run": "run1", "step": 10}, 12, 5, 30, 25),
    "run1-step20": ({"key": "run1@20", "kind": "checkpoint", "run": "run1", "step": 20}, 16, 6, 28, 24),
    "run1-lambda0.5": ({"key": "run1-lambda0.5", "kind": "interpolation", "run": "run1", "lambda": 0.5}, 14, 5,
                       None, None),
}
CONFIG = {"name": "fixture", "specialty": "spider-dev", "generality": ["mmlu", FAKE], "max_generality_drop": 2.0,
          "runs": [{"name": "run1", "replicate_of": None}, {"name": "run2", "replicate_of": None},
                   {"name": "run1-seed2", "replicate_of": "run1"}]}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def write_bench(mdir: Path, meta: dict[str, Any], rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """results.jsonl and a metrics.json consistent with it (gold failures excluded from n, as scorers do)."""
    scored = [r for r in rows if r.get("error_type") != "gold_error"]
    metrics = {**meta, **accuracy_summary([r["correct"] for r in scored]), **extra}
    write_jsonl(mdir / meta["name"] / "results.jsonl", rows)
    (mdir / meta["name"] / "metrics.json").write_text(json.dumps(metrics))
    return metrics


def ex_rows(k: int, n: int, with_gold_error: bool) -> list[dict[str, Any]]:
    """Items 0..k-1 right; wrong ones cycle through error types; rows written in reverse (ids pair, not order)."""
    kinds = ("wrong_result", "syntax_error", "unknown_column")
    rows = [{"id": f"q{i}", "index": i, "db_id": "shop", "question": f"question {i}?", "hardness": HARD[i % 4],
             "correct": i < k, "error_type": "correct" if i < k else kinds[i % 3],
             "error": None if i < k or i % 3 == 0 else f"error {i}", "pred_sql": f"SELECT {i}",
             "gold_sql": f"SELECT {i} FROM t"} for i in range(n)]
    if with_gold_error:
        rows.append({"id": f"q{n}", "index": n, "db_id": "shop", "question": "broken gold?", "hardness": "easy",
                     "correct": False, "error_type": "gold_error", "error": "no such table", "pred_sql": "SELECT 1",
                     "gold_sql": "SELECT * FROM nowhere"})
    return rows[::-1]


def ex_extra(rows: list[dict[str, Any]], split: str) -> dict[str, Any]:
    scored = [r for r in rows if r["error_type"] != "gold_error"]
    by_e: dict[str, int] = {}
    for r in scored:
        by_e[r["error_type"]] = by_e.get(r["error_type"], 0) + 1
    gold = [r["id"] for r in rows if r["error_type"] == "gold_error"]
    return {"by_hardness": {h: accuracy_summary([r["correct"] for r in scored if r["hardness"] == h]) for h in HARD},
            "by_error_type": by_e, "n_gold_failed": len(gold), "gold_failed": gold,
            "n_skipped": 2 if split == "dev" else 0,
            "skip_reasons": {"missing database concert": 2} if split == "dev" else {},
            "generation": {"n": len(rows), "hit_limit": 3, "multi_line_extraction": 2, "empty": 1}}


def mmlu_rows(k: int, preds: str | None = None) -> list[dict[str, Any]]:
    """60 questions, 20 per subject; the first k right; gold letters cycle A-D; wrong answers the next letter."""
    rows = []
    for j, (subject, cat) in enumerate(SUBJECTS.items()):
        for i in range(20):
            g = j * 20 + i
            gold = LETTERS[g % 4]
            pred = preds or (gold if g < k else LETTERS[(g + 1) % 4])
            rows.append({"id": f"{subject}:{i}", "subject": subject, "category": cat, "index": i, "gold": gold,
                         "pred": pred, "correct": pred == gold, "scores": [0.0, 0.0, 0.0, 0.0]})
    return rows


def mmlu_extra(rows: list[dict[str, Any]]) -> dict[str, Any]:
    s = accuracy_summary([r["correct"] for r in rows])
    pred = {L: sum(r["pred"] == L for r in rows) for L in LETTERS}
    return {"below_chance_p": below_chance_p(s["n_correct"], s["n"], 0.25),
            "pred_counts": pred, "gold_counts": {L: sum(r["gold"] == L for r in rows) for L in LETTERS},
            "by_category": {c: accuracy_summary([r["correct"] for r in rows if r["category"] == c])
                            for c in SUBJECTS.values()}}


def write_mmlu(mdir: Path, k: int, preds: str | None = None) -> None:
    rows = mmlu_rows(k, preds)
    write_bench(mdir, MMLU, rows, **mmlu_extra(rows))


def zorblax_rows(k: int, n: int = 50) -> list[dict[str, Any]]:
    return [{"id": f"z-{i:03d}", "correct": i < k, "answer": str(i)} for i in range(n)]


def make_run(root: Path, config: dict[str, Any] | None = CONFIG) -> Path:
    """A fabricated, self-consistent run directory: baseline, two runs and a seed replica, two checkpoints, one λ."""
    for name, (info, dev_k, syn_k, mmlu_k, zorb_k) in MODELS.items():
        mdir = root / "models" / name
        mdir.mkdir(parents=True)
        (mdir / "model.json").write_text(json.dumps(info))
        for meta, rows in ((SPIDER_DEV, ex_rows(dev_k, N_DEV, True)), (SPIDER_SYN, ex_rows(syn_k, 20, False))):
            write_bench(mdir, meta, rows, **ex_extra(rows, meta["split"]))
        if mmlu_k is not None:
            write_mmlu(mdir, mmlu_k)
        if zorb_k is not None:
            write_bench(mdir, ZORBLAX, zorblax_rows(zorb_k),
                        generation={"n": 50, "hit_limit": 0, "extraction_failed": 2})
    hist = [{"step": s, "loss": 2.0 / s, "epoch": s / 30} for s in range(1, 31)] + [{"step": 30, "eval_loss": 0.2}]
    for run in ("run1", "run2", "run1-seed2"):
        (root / "train" / run).mkdir(parents=True)
        (root / "train" / run / "log_history.json").write_text(json.dumps(hist))
    if config is not None:
        (root / "config.yaml").write_text(yaml.safe_dump(config))
    return root


def load_summary(run: Path) -> dict[str, Any]:
    """summary.json with its model list keyed by model key, for easy lookups."""
    s = json.loads((run / "summary.json").read_text())
    assert isinstance(s["models"], list)
    s["models"] = {m["key"]: m for m in s["models"]}
    return s
