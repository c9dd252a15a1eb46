"""Guards that turn silent study failures into loud ones (issue 6), each with its own exception.

``BelowChance`` (a multiple-choice score significantly below chance: the scorer or answer key is broken),
``EmptyPredictions`` (every generation empty after SQL extraction) and ``TrainingDiverged`` (NaN/inf loss: the
adapter is not a model). Guards 2-5 are provoked in their stage's tests: mask coverage in test_train.py
(test_mask_guard_rejects_unsupervised_example), letter tokens in test_mmlu.py
(test_letters_not_single_tokens_fall_back_to_cloze), generation health and gold sanity in test_execution.py.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from sqlshift.benchmarks.common import below_chance_problem
from sqlshift.study.config import load_experiment
from sqlshift.data.demo import ensure_demo
from sqlshift.errors import (BelowChance, EmptyPredictions, ScorerFailure, SqlshiftError, TrainingDiverged,
                             for_model, one_error)
from sqlshift.study.runner import Runner
from sqlshift.benchmarks.mmlu_prompts import below_chance_subjects
from sqlshift.stats import below_chance_p


def test_seed_studys_mmlu_score_is_flagged_as_scorer_failure() -> None:
    """0.67% of 150 (1 correct) is ~1e-17 likely under chance: that is a broken scorer, not forgetting."""
    assert below_chance_p(1, 150, 0.25) < 1e-15
    metrics = {"accuracy": 1 / 150, "n": 150, "n_correct": 1, "chance": 0.25,
               "below_chance_p": below_chance_p(1, 150, 0.25), "below_chance": []}
    (p,) = below_chance_problem(metrics, "mmlu")
    assert isinstance(p, BelowChance) and "scorer failure" in str(p) and "--allow-below-chance" in str(p)


def test_chance_level_and_small_subjects_are_not_flagged() -> None:
    by_subject = {"tiny": {"n": 10, "n_correct": 0, "accuracy": 0.0}}
    metrics = {"accuracy": 0.24, "n": 150, "n_correct": 36, "chance": 0.25,
               "below_chance_p": below_chance_p(36, 150, 0.25), "below_chance": below_chance_subjects(by_subject, [])}
    assert below_chance_problem(metrics, "mmlu") == []
    small = {"accuracy": 0.0, "n": 20, "n_correct": 0, "chance": 0.25, "below_chance_p": below_chance_p(0, 20, 0.25)}
    assert below_chance_problem(small, "x") == []  # too few items to call it a scorer failure


def test_guard_errors_are_distinct() -> None:
    assert issubclass(BelowChance, ScorerFailure) and issubclass(EmptyPredictions, ScorerFailure)
    assert issubclass(TrainingDiverged, SqlshiftError) and not issubclass(TrainingDiverged, ScorerFailure)
    assert not issubclass(BelowChance, EmptyPredictions) and not issubclass(EmptyPredictions, BelowChance)


def test_all_empty_predictions_are_a_problem_of_the_spider_benchmark() -> None:
    from sqlshift.benchmarks.spider import SpiderBenchmark, SpiderSettings

    b = SpiderBenchmark(SpiderSettings(benchmark="spider"), Path("unused"))
    (p,) = b.problems({"n_predictions": 3, "n_empty": 3})
    assert isinstance(p, EmptyPredictions) and "all 3 predictions are empty" in str(p) and "spider-dev" in str(p)
    assert b.problems({"n_predictions": 3, "n_empty": 2}) == []
    assert b.problems({"n_predictions": 0, "n_empty": 0}) == []


def test_guard_failures_name_their_model_and_come_as_one_error() -> None:
    """Three models below chance: one error that names each, the first's fix kept once at the end."""
    found = [below_chance_problem({"accuracy": 0.0, "n": 80, "n_correct": 0, "chance": 0.25,
                                   "below_chance_p": below_chance_p(0, 80, 0.25)}, "MMLU")[0] for _ in range(3)]
    named = [for_model([e], k)[0] for e, k in zip(found, ["baseline", "run1", "r64-mlp"])]
    assert all(type(e) is BelowChance for e in named)
    err = one_error(named)
    text = str(err)
    assert isinstance(err, BelowChance) and text.startswith("baseline: MMLU") and "and 2 more" in text
    assert "\n  - run1: MMLU" in text and "\n  - r64-mlp: MMLU" in text and text.count("(fix: ") == 1
    assert one_error(named[:1]) is named[0]


# ---------------------------------------------------------------- through the runner


def misaligned_answer_key(tmp: Path, run_dir: Path) -> Path:
    """Copy the demo quiz with every gold letter moved off the model's own prediction: a broken answer key."""
    preds = {}
    for line in (run_dir / "models" / "baseline" / "mmlu" / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        preds[(r["subject"], r["index"])] = r["pred"]
    src = ensure_demo(tmp / "demo") / "mmlu"
    dst = tmp / "broken"
    for f in (src / "test").glob("*.csv"):
        subject = f.name[: -len("_test.csv")]
        rows = list(csv.reader(f.open()))
        for i, row in enumerate(rows):
            row[5] = next(L for L in "ABCD" if L != preds[(subject, i)])
        (dst / "mmlu" / "test").mkdir(parents=True, exist_ok=True)
        with (dst / "mmlu" / "test" / f.name).open("w", newline="") as out:
            csv.writer(out).writerows(rows)
    return dst


def guard_config(model_dir: Path, mmlu_data: str = "demo", spider: bool = False, **extra: Any) -> dict[str, Any]:
    """Cloze scoring: in letter mode the tiny model always answers "D", and a one-letter model scores its habit
    against any key (the guard rightly sees no scorer failure in that); in cloze its answers vary."""
    benches: list[dict[str, Any]] = [{"benchmark": "mmlu", "subjects": "all", "data_dir": mmlu_data, "mode": "cloze"}]
    if spider:  # one token per question: a random tiny model writes blank SQL
        benches.insert(0, {"benchmark": "spider", "split": "dev", "sample": 4, "batch_size": 4, "max_new_tokens": 1})
    return {"name": "guard", "model": str(model_dir), "data_dir": "demo", "benchmarks": benches, "runs": [], **extra}


def load(tmp: Path, cfg: dict[str, Any], name: str) -> Any:
    p = tmp / f"{name}.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return load_experiment(p)


@pytest.fixture(scope="module")
def broken_key(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo quiz re-keyed so the tiny model gets every question wrong (after an honest run that must pass)."""
    tmp = tmp_path_factory.mktemp("guard")
    first = tmp / "first"
    Runner(load(tmp, guard_config(tiny_model_dir), "honest"), first).run()  # honest key: no failure (or allowance)
    return misaligned_answer_key(tmp, first)


@pytest.mark.slow
def test_runner_fails_loudly_on_below_chance_mmlu(broken_key: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    cfg = load(tmp_path, guard_config(tiny_model_dir, str(broken_key)), "broken")
    with pytest.raises(BelowChance, match="below chance") as e:
        Runner(cfg, tmp_path / "second").run()
    assert "mmlu" in str(e.value) and "allow-below-chance" in str(e.value)
    assert str(e.value).startswith("baseline: "), "a study scores many models: the failure names its model"
    assert (tmp_path / "second" / "report.md").is_file(), "results and report are written before the guard fails"
    metrics = json.loads((tmp_path / "second" / "models" / "baseline" / "mmlu" / "metrics.json").read_text())
    assert metrics["n"] == 60 and metrics["n_correct"] == 0
    allowed = load(tmp_path, guard_config(tiny_model_dir, str(broken_key), allow_below_chance=True), "allowed")
    Runner(allowed, tmp_path / "third").run()  # evaluated afresh (not a cache hit) and allowed
    assert (tmp_path / "third" / "models" / "baseline" / "mmlu" / "metrics.json").is_file()


@pytest.mark.slow
def test_rerunning_a_failed_study_still_fails(broken_key: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    """A guard failure must not turn into a pass just because the second run finds every step cached."""
    cfg = load(tmp_path, guard_config(tiny_model_dir, str(broken_key)), "broken")
    with pytest.raises(BelowChance):
        Runner(cfg, tmp_path / "run").run()
    with pytest.raises(BelowChance):
        Runner(cfg, tmp_path / "run").run()


@pytest.mark.slow
def test_allow_below_chance_does_not_silence_empty_predictions(broken_key: Path, tiny_model_dir: Path,
                                                               tmp_path: Path) -> None:
    cfg = load(tmp_path, guard_config(tiny_model_dir, str(broken_key), spider=True, allow_below_chance=True), "both")
    with pytest.raises(EmptyPredictions, match="predictions are empty"):
        Runner(cfg, tmp_path / "run").run()
    preds = [json.loads(x) for x in
             (tmp_path / "run" / "models" / "baseline" / "spider-dev" / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 4 and all(not p["sql"].strip() for p in preds)
    assert (tmp_path / "run" / "report.md").is_file()


def test_all_empty_predictions_fail_the_study(tiny_model_dir: Path, tmp_path: Path) -> None:
    cfg = guard_config(tiny_model_dir, spider=True)
    cfg["benchmarks"] = cfg["benchmarks"][:1]
    with pytest.raises(EmptyPredictions) as e:
        Runner(load(tmp_path, cfg, "empty"), tmp_path / "run").run()
    assert "spider-dev" in str(e.value) and not isinstance(e.value, BelowChance)


@pytest.mark.slow
def test_diverged_training_raises_training_diverged(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A run whose loss goes non-finite is recorded in failures.json, not evaluated, and fails the study loudly
    with its own message, even with allow_below_chance (it is not a scorer failure)."""
    cfg = guard_config(tiny_model_dir, allow_below_chance=True)
    cfg["benchmarks"][0]["subjects"] = ["everyday_math"]
    cfg["runs"] = [{"name": "boom", "config": "embedded-cpu",
                    "overrides": {"max_steps": 3, "save_steps": 3, "per_device_batch_size": 2,
                                  "gradient_accumulation_steps": 1, "data.limit_n": 6, "max_length": 384,
                                  "prompt.max_prompt_tokens": 320, "logging_steps": 1, "warmup_ratio": 0.0,
                                  "lr_scheduler": "constant", "learning_rate": 1e30}}]
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match="diverged") as e:
        Runner(load(tmp_path, cfg, "boom"), run).run()
    assert not isinstance(e.value, ScorerFailure)
    failures = json.loads((run / "failures.json").read_text())
    assert "boom" in failures and "diverged" in failures["boom"]
    assert not (run / "models" / "boom").exists(), "a NaN adapter must not be evaluated as a model"
    assert (run / "models" / "baseline" / "mmlu" / "metrics.json").is_file() and (run / "report.md").is_file()
