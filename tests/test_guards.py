"""Guards that turn silent study failures into loud ones (issue 6).

Guards 2-5 are provoked in their stage's tests: mask coverage in test_train.py
(test_mask_guard_rejects_unsupervised_example), letter tokens in test_mmlu.py
(test_letters_not_single_tokens_fall_back_to_cloze), generation health and gold sanity in test_execution.py.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from sqlshift.data.demo import ensure_demo
from sqlshift.errors import ScorerFailure
from sqlshift.experiment import Runner, load_experiment
from sqlshift.guards import check_below_chance, check_predictions_parsed
from sqlshift.metrics.mmlu import below_chance_subjects
from sqlshift.metrics.stats import below_chance_p


def test_seed_studys_mmlu_score_is_flagged_as_scorer_failure() -> None:
    """0.67% of 150 (1 correct) is ~1e-17 likely under chance: that is a broken scorer, not forgetting."""
    assert below_chance_p(1, 150, 0.25) < 1e-15
    metrics = {"accuracy": 1 / 150, "n": 150, "n_correct": 1, "chance": 0.25,
               "below_chance_p": below_chance_p(1, 150, 0.25), "below_chance": []}
    msg = check_below_chance(metrics)
    assert msg and "scorer failure" in msg


def test_chance_level_and_small_subjects_are_not_flagged() -> None:
    by_subject = {"tiny": {"n": 10, "n_correct": 0, "accuracy": 0.0}}
    metrics = {"accuracy": 0.24, "n": 150, "n_correct": 36, "chance": 0.25,
               "below_chance_p": below_chance_p(36, 150, 0.25), "below_chance": below_chance_subjects(by_subject)}
    assert check_below_chance(metrics) is None


def test_all_empty_predictions_are_a_failure() -> None:
    assert check_predictions_parsed([{"sql": ""}, {"sql": "  "}])
    assert check_predictions_parsed([{"sql": ""}, {"sql": "SELECT 1"}]) is None


def misaligned_answer_key(tmp: Path, run_dir: Path) -> Path:
    """Copy the demo quiz with every gold letter moved off the model's own prediction: a broken answer key."""
    preds = {}
    for line in (run_dir / "models" / "baseline" / "mmlu" / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        preds[(r["subject"], r["index"])] = r["pred"]
    src = ensure_demo(tmp / "demo") / "mmlu"
    dst = tmp / "broken_mmlu"
    for f in (src / "test").glob("*.csv"):
        subject = f.name[: -len("_test.csv")]
        rows = list(csv.reader(f.open()))
        for i, row in enumerate(rows):
            row[5] = next(L for L in "ABCD" if L != preds[(subject, i)])
        (dst / "test").mkdir(parents=True, exist_ok=True)
        with (dst / "test" / f.name).open("w", newline="") as out:
            csv.writer(out).writerows(rows)
    return dst


def test_runner_fails_loudly_on_below_chance_mmlu(tiny_model_dir: Path, tmp_path: Path) -> None:
    base = {"name": "guard", "model": str(tiny_model_dir), "data": {"spider_dir": "demo", "mmlu_dir": "demo"},
            "spider": {"splits": []}, "mmlu": {"subjects": "all"}, "runs": []}
    path = tmp_path / "a.yaml"
    path.write_text(yaml.safe_dump(base))
    cfg, _ = load_experiment(path)
    first = tmp_path / "first"
    Runner(cfg, first).run()  # honest key: no failure expected (or allowed) here
    broken = misaligned_answer_key(tmp_path, first)
    path.write_text(yaml.safe_dump({**base, "data": {"spider_dir": "demo", "mmlu_dir": str(broken)}}))
    cfg, _ = load_experiment(path)
    with pytest.raises(ScorerFailure, match="below chance"):
        Runner(cfg, tmp_path / "second").run()
    assert (tmp_path / "second" / "report.md").is_file(), "results and report are written before the guard fails"
    cfg.allow_below_chance = True
    Runner(cfg, tmp_path / "second").run()
