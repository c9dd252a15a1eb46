"""End to end: `sqlshift run` on the shipped demo data with a tiny random model, its cache, its config schema
(strict keys, up-front validation before any model loads), λ points, --only parts and the study lock."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from sqlshift.study.config import load_experiment
from sqlshift.errors import ConfigError, EmptyPredictions
from sqlshift.study.runner import Runner, run_experiment, study_lock

TRAIN_OVERRIDES = {"max_steps": 2, "save_steps": 1, "per_device_batch_size": 2, "gradient_accumulation_steps": 1,
                   "data.limit_n": 8, "max_length": 384, "prompt.max_prompt_tokens": 320,
                   "learning_rate": 5e-2}  # move the random model visibly, so λ points mean something


def study_config(model_dir: Path, **extra: Any) -> dict[str, Any]:
    return {
        "name": "tiny",
        "model": str(model_dir),
        "data_dir": "demo",
        "benchmarks": [
            {"benchmark": "spider", "split": "dev", "sample": 8, "batch_size": 8, "max_new_tokens": 8},
            {"benchmark": "mmlu", "subjects": "all", "mode": "letter", "batch_size": 16},
            {"benchmark": "mmlu", "name": "mmlu-final", "subjects": ["everyday_math"], "points": "final"},
        ],
        "specialty": "spider-dev",
        "generality": "mmlu",
        "runs": [{"name": "lora", "config": "embedded-cpu", "checkpoints": "all", "lambdas": [0.0, 1.0],
                  "overrides": dict(TRAIN_OVERRIDES)}],
        "allow_below_chance": True,  # a random model may well sit below chance on 60 questions
        **extra,
    }


def write_config(tmp: Path, cfg: dict[str, Any], name: str = "exp.yaml") -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run_tolerating_empty(config: Path, run_dir: Path, **kw: Any) -> None:
    """A random tiny model may write only blank SQL: EmptyPredictions (raised after everything is written) is
    expected then; any other error is not."""
    try:
        run_experiment(config, run_dir, **kw)
    except EmptyPredictions:
        pass


@pytest.fixture(scope="module")
def study(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("study")
    cfg = write_config(tmp, study_config(tiny_model_dir))
    run_dir = tmp / "run"
    run_tolerating_empty(cfg, run_dir)
    return cfg, run_dir


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.mark.slow
def test_run_directory_has_every_artifact(study: tuple[Path, Path]) -> None:
    _, run = study
    for f in ("config.yaml", "run.log", "steps.json", "report.md", "report.html", "summary.json"):
        assert (run / f).is_file(), f
    keys = sorted(p.name for p in (run / "models").iterdir())
    # step 2 is the final adapter, evaluated once as "lora"
    assert keys == ["baseline", "lora", "lora-lambda0", "lora-lambda1", "lora-step1"]
    for key in keys:
        for f in ("spider-dev/predictions.jsonl", "spider-dev/results.jsonl", "spider-dev/metrics.json",
                  "mmlu/results.jsonl", "mmlu/metrics.json", "model.json"):
            assert (run / "models" / key / f).is_file(), f"{key}/{f}"
        for bench in ("spider-dev", "mmlu"):
            metrics = json.loads((run / "models" / key / bench / "metrics.json").read_text())
            for k in ("benchmark", "axis", "kind", "label", "accuracy", "n", "n_correct", "ci95"):
                assert k in metrics, f"{key}/{bench}: {k}"
            rows = read_rows(run / "models" / key / bench / "results.jsonl")
            assert len({r["id"] for r in rows}) == len(rows) == metrics["n"]
    assert (run / "train" / "lora" / "adapter_config.json").is_file()
    assert list((run / "plots").glob("*.png"))
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["specialty"] == "spider-dev" and cfg["generality"] == ["mmlu"]
    assert [b["benchmark"] for b in cfg["benchmarks"]] == ["spider", "mmlu", "mmlu"]


@pytest.mark.slow
def test_points_final_benchmarks_skip_checkpoints_and_lambda_points(study: tuple[Path, Path]) -> None:
    _, run = study
    have = {p.parent.parent.name for p in (run / "models").glob("*/mmlu-final/metrics.json")}
    assert have == {"baseline", "lora"}


@pytest.mark.slow
def test_report_numbers_equal_metrics_files(study: tuple[Path, Path]) -> None:
    _, run = study
    summary = json.loads((run / "summary.json").read_text())
    by_key = {m["key"]: m for m in summary["models"]}
    assert set(by_key) == {"baseline", "lora", "lora-lambda0", "lora-lambda1", "lora-step1"}
    assert summary["benchmarks"]["spider-dev"]["axis"] == "specialty"
    assert summary["benchmarks"]["mmlu"]["axis"] == "generality"
    for key, entry in by_key.items():
        for folder, n in (("spider-dev", 8), ("mmlu", 60)):
            metrics = json.loads((run / "models" / key / folder / "metrics.json").read_text())
            got = entry["benchmarks"][folder]
            assert got["accuracy"] == pytest.approx(metrics["accuracy"]), f"{key}/{folder}"
            assert got["n"] == metrics["n"] == n and got["n_correct"] == metrics["n_correct"]
            assert got["ci95"] == pytest.approx(list(metrics["ci95"]))
    assert set(by_key["baseline"]["benchmarks"]) >= {"spider-dev", "mmlu", "mmlu-final"}
    assert "mmlu-final" not in by_key["lora-step1"]["benchmarks"]


@pytest.mark.slow
def test_rerun_is_a_cache_hit_and_deleting_one_metric_redoes_only_it(study: tuple[Path, Path]) -> None:
    cfg_path, run = study
    cfg = load_experiment(cfg_path)
    runner = Runner(cfg, run)
    with pytest.raises(EmptyPredictions):  # the random tiny model writes no SQL; a cached failure still fails
        runner.run()
    assert runner.cache.ran == [] and runner.cache.hits
    before = (run / "models" / "lora" / "mmlu" / "results.jsonl").read_text()
    (run / "models" / "lora" / "mmlu" / "metrics.json").unlink()
    runner = Runner(cfg, run)
    with pytest.raises(EmptyPredictions):
        runner.run()
    assert runner.cache.ran == ["lora/mmlu"]
    assert (run / "models" / "lora" / "mmlu" / "metrics.json").is_file()
    assert (run / "models" / "lora" / "mmlu" / "results.jsonl").read_text() == before


@pytest.mark.slow
def test_lambda_points_reproduce_base_and_run_scores_exactly(study: tuple[Path, Path]) -> None:
    """WiSE-FT points through the whole runner: λ=0 scores like the base model, λ=1 like the fine-tuned run."""
    _, run = study

    def outcomes(key: str, what: str) -> list[tuple]:
        rows = read_rows(run / "models" / key / what / "results.jsonl")
        if what == "mmlu":
            return sorted((r["id"], tuple(round(s, 4) for s in r["scores"])) for r in rows)
        return sorted((r["index"], r["pred_sql"]) for r in rows)

    for what in ("mmlu", "spider-dev"):
        assert outcomes("lora-lambda0", what) == outcomes("baseline", what)
        assert outcomes("lora-lambda1", what) == outcomes("lora", what)
    assert outcomes("lora", "mmlu") != outcomes("baseline", "mmlu"), "the run must differ for the test to mean anything"
    raw = [json.loads((run / "models" / k / "spider-dev" / "predictions.jsonl").read_text().splitlines()[0])["raw"]
           for k in ("baseline", "lora-lambda0")]
    assert raw[0] == raw[1]


@pytest.mark.slow
def test_only_selects_parts_and_names_the_valid_ones(study: tuple[Path, Path]) -> None:
    from sqlshift.study.runner import select

    cfg = load_experiment(study[0])
    assert select(cfg, ["lora"]).baseline is False and [r.name for r in select(cfg, ["lora"]).runs] == ["lora"]
    assert select(cfg, ["baseline"]).runs == [] and select(cfg, ["baseline"]).baseline
    assert select(cfg, None) is cfg
    with pytest.raises(ConfigError, match="baseline, lora"):
        select(cfg, ["run9"])
    runner = Runner(select(cfg, ["baseline"]), study[1], record=cfg)
    with pytest.raises(EmptyPredictions):  # the random tiny model writes no SQL; a cached failure still fails
        runner.run()
    assert runner.cache.ran == []  # the part already done by the full run is a cache hit
    assert runner.cache.hits and all(h.startswith("baseline/") for h in runner.cache.hits)
    assert [r["name"] for r in yaml.safe_load((study[1] / "config.yaml").read_text())["runs"]] == ["lora"]


# ---------------------------------------------------------------- the config schema


def test_default_config_loads() -> None:
    cfg = load_experiment(None)
    assert cfg.model == "embedded" and cfg.runs and cfg.data_dir == "demo"
    assert [b.benchmark for b in cfg.benchmarks] == ["spider", "mmlu"]
    assert cfg.specialty == "spider-dev" and cfg.generality == "mmlu"


@pytest.mark.parametrize("where,typo", [
    ("top", {"spidr": {"splits": ["dev"]}}),
    ("top", {"max_mmlu_drop": 2.0}),  # the old key, renamed max_generality_drop
    ("benchmark", {"sampel": 3}),
    ("prompt", {"sampel_rows": 3}),
    ("benchmark-prompt", {"sampel_rows": 3}),
    ("run", {"lamdas": [0.5]}),
    ("lm", {"bakend": "hf"}),
])
def test_unknown_keys_are_errors_that_name_the_key(tmp_path: Path, tiny_model_dir: Path, where: str,
                                                   typo: dict[str, Any]) -> None:
    cfg = study_config(tiny_model_dir)
    if where == "top":
        cfg.update(typo)
    elif where == "benchmark":
        cfg["benchmarks"][1].update(typo)
    elif where == "prompt":
        cfg["prompt"] = typo
    elif where == "benchmark-prompt":
        cfg["benchmarks"][0]["prompt"] = typo
    elif where == "run":
        cfg["runs"][0].update(typo)
    else:
        cfg["lm"] = typo
    (key,) = typo
    with pytest.raises(ConfigError, match=key):
        load_experiment(write_config(tmp_path, cfg))


def test_old_schema_is_rejected_with_its_keys_named(tmp_path: Path, tiny_model_dir: Path) -> None:
    old = {"name": "old", "model": str(tiny_model_dir), "data": {"spider_dir": "demo"},
           "spider": {"splits": ["dev"]}, "mmlu": {"subjects": "all"}, "mmlu_extra": []}
    with pytest.raises(ConfigError) as e:
        load_experiment(write_config(tmp_path, old))
    for key in ("data", "spider", "mmlu_extra"):
        assert key in str(e.value)


def tripwire(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record any model load or training (neither may happen before validation has passed)."""
    import sqlshift.study.runner as experiment
    import sqlshift.train.trainer as train

    loads: list[str] = []

    def no_load(model: str, *a: Any, **kw: Any) -> Any:
        loads.append(f"load {model}")
        raise AssertionError("a model was loaded before the config was validated")

    def no_train(*a: Any, **kw: Any) -> Any:
        loads.append("train")
        raise AssertionError("training started before the config was validated")

    monkeypatch.setattr(experiment, "load_lm", no_load)
    monkeypatch.setattr(experiment, "run_isolated", no_train)  # training runs in a child process
    monkeypatch.setattr(train, "train", no_train)
    return loads


def test_all_problems_are_reported_at_once_before_any_model_loads(tmp_path: Path, tiny_model_dir: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 19: a preset typo, an override typo and a missing data folder -> ONE ConfigError, nothing loaded."""
    cfg = study_config(tiny_model_dir)
    cfg["runs"] = [{"name": "lora", "config": "embeded-cpu"},
                   {"name": "lr", "config": "embedded-cpu", "overrides": {"learning_rat": 1e-4}}]
    cfg["benchmarks"][1]["data_dir"] = str(tmp_path / "no-such-data")
    loads = tripwire(monkeypatch)
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError) as e:
        Runner(load_experiment(write_config(tmp_path, cfg)), run_dir).run()
    msg = str(e.value)
    for needle in ("embeded-cpu", "learning_rat", "no-such-data"):
        assert needle in msg, f"{needle!r} missing from: {msg}"
    assert loads == []
    assert not (run_dir / "models").exists() and not (run_dir / "train").exists()
    assert not (run_dir / "config.yaml").exists()


def test_unknown_benchmark_is_reported_with_the_other_problems(tmp_path: Path, tiny_model_dir: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 19 through `sqlshift run`: an unknown benchmark name is one more item of the same single error."""
    cfg = study_config(tiny_model_dir)
    cfg["benchmarks"].append({"benchmark": "spidr", "split": "dev"})
    cfg["runs"] = [{"name": "lora", "config": "embeded-cpu"},
                   {"name": "lr", "config": "embedded-cpu", "overrides": {"learning_rat": 1e-4}}]
    cfg["benchmarks"][1]["data_dir"] = str(tmp_path / "no-such-data")
    loads = tripwire(monkeypatch)
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError) as e:
        run_experiment(write_config(tmp_path, cfg), run_dir)
    msg = str(e.value)
    for needle in ("spidr", "embeded-cpu", "learning_rat", "no-such-data"):
        assert needle in msg, f"{needle!r} missing from: {msg}"
    assert "spider" in msg  # the suggestion for the misspelt benchmark
    assert loads == [] and not (run_dir / "models").exists()


def test_axes_must_name_configured_benchmarks(tmp_path: Path, tiny_model_dir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = study_config(tiny_model_dir, specialty="spider-syn", generality=["mmlu", "hellaswag"], runs=[])
    loads = tripwire(monkeypatch)
    with pytest.raises(ConfigError) as e:
        Runner(load_experiment(write_config(tmp_path, cfg)), tmp_path / "run").run()
    assert "spider-syn" in str(e.value) and "hellaswag" in str(e.value) and loads == []
    twice = study_config(tiny_model_dir, runs=[])
    twice["benchmarks"].append({"benchmark": "mmlu", "subjects": ["everyday_math"]})  # a second folder "mmlu"
    with pytest.raises(ConfigError, match="two benchmarks write to 'mmlu'"):
        Runner(load_experiment(write_config(tmp_path, twice)), tmp_path / "run2").run()


# ---------------------------------------------------------------- processes sharing a run directory


def test_two_processes_sharing_a_run_dir_keep_each_others_steps(tmp_path: Path) -> None:
    from sqlshift.study.runner import StepCache

    a, b = StepCache(tmp_path / "steps.json"), StepCache(tmp_path / "steps.json")  # both read an empty file
    a.record("baseline/mmlu", "k1")
    b.record("run2/mmlu", "k2")
    a.record("run1/mmlu", "k3")
    assert json.loads((tmp_path / "steps.json").read_text()) == {"baseline/mmlu": "k1", "run2/mmlu": "k2",
                                                                  "run1/mmlu": "k3"}


def test_two_runners_sharing_a_run_dir_keep_each_others_steps(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Two processes' runners, both started before either wrote steps.json, each add their steps without losing
    the other's; a third run of both parts is then all cache hits."""
    base = study_config(tiny_model_dir, runs=[])
    parts = []
    for name, subject in (("math", "everyday_math"), ("geo", "world_geography")):
        cfg = dict(base, benchmarks=[{"benchmark": "mmlu", "name": f"mmlu-{name}", "subjects": [subject]}],
                   generality=f"mmlu-{name}", specialty=None)
        parts.append(load_experiment(write_config(tmp_path, cfg, f"{name}.yaml")))
    run = tmp_path / "run"
    a, b = Runner(parts[0], run), Runner(parts[1], run)  # both read an empty steps.json
    a.run()
    b.run()
    steps = json.loads((run / "steps.json").read_text())
    assert {"baseline/mmlu-math", "baseline/mmlu-geo"} <= set(steps)
    for cfg in parts:
        again = Runner(cfg, run)
        again.run()
        assert again.cache.ran == []


def test_study_lock_one_whole_study_per_run_dir(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with study_lock(run, None):
        with pytest.raises(ConfigError, match=f"pid {os.getpid()}"):  # the holder is named
            with study_lock(run, None):
                pass
        with pytest.raises(ConfigError, match="being written by"):  # a part cannot join a whole study either
            with study_lock(run, ["lora"]):
                pass
    with study_lock(run, None):  # released on exit
        pass


def test_study_lock_parts_share_the_dir_but_not_a_part(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with study_lock(run, ["baseline"]):
        with study_lock(run, ["lora"]):
            pass
        with pytest.raises(ConfigError, match="--only baseline"):
            with study_lock(run, ["baseline"]):
                pass
        with pytest.raises(ConfigError):
            with study_lock(run, None):
                pass


def test_second_whole_study_process_gets_a_config_error_naming_the_holder(tmp_path: Path,
                                                                          tiny_model_dir: Path) -> None:
    import subprocess
    import sys

    run = tmp_path / "run"
    cfg = write_config(tmp_path, study_config(tiny_model_dir, runs=[]))
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from sqlshift.study.runner import study_lock\n"
        f"with study_lock(Path({str(run)!r}), None):\n"
        "    print('locked', flush=True); time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ConfigError) as e:
            run_experiment(cfg, run)
        assert f"pid {holder.pid}" in str(e.value)
        assert not (run / "models").exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_whole_study_blocked_by_parts_names_the_parts_not_a_finished_run(tmp_path: Path) -> None:
    """The holder named must be the live one: a finished whole study's pid left in .lock is not it."""
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").write_text("pid 999999 (sqlshift run)")  # left by an earlier, finished whole study
    with study_lock(run, ["baseline"]):
        with pytest.raises(ConfigError) as e:
            with study_lock(run, None):
                pass
    assert "999999" not in str(e.value) and "baseline" in str(e.value)


def test_training_data_is_the_experiments_data_dir_not_the_first_benchmarks(tmp_path: Path,
                                                                            tiny_model_dir: Path) -> None:
    """A generality benchmark listed first with its own data_dir must not become the training data folder."""
    from sqlshift.train.trainer import load_train_config

    data = ensure_demo_copy(tmp_path / "data")
    cfg = study_config(tiny_model_dir, data_dir=str(data))
    mmlu_only = tmp_path / "mmlu-only"
    (mmlu_only / "mmlu").mkdir(parents=True)
    cfg["benchmarks"] = [{"benchmark": "mmlu", "subjects": "all", "data_dir": str(mmlu_only)},
                         {"benchmark": "spider", "split": "dev"}]
    runner = Runner(load_experiment(write_config(tmp_path, cfg)), tmp_path / "run")
    tcfg = runner.bind_train_data(load_train_config("embedded-cpu", {}))
    assert Path(tcfg.data.spider_dir) == data


def ensure_demo_copy(dest: Path) -> Path:
    from sqlshift.data.demo import ensure_demo

    return ensure_demo(dest)
