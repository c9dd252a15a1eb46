"""`executor: ray`: the study's runs and groups of model points as Ray tasks give the same table as in-process,
and the `executor`/`ray` keys are as strict as every other key. The Ray study runs on a local Ray instance with
CPU tasks and the tiny model; it skips where Ray is not installed (``pip install 'sqlshift[ray]'``)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from sqlshift.errors import ConfigError, EmptyPredictions
from sqlshift.study.config import load_experiment
from sqlshift.study.executors import RayExecutor, RaySettings, split
from sqlshift.study.runner import run_experiment

TRAIN = {"max_steps": 2, "save_steps": 2, "per_device_batch_size": 2, "gradient_accumulation_steps": 1,
         "data.limit_n": 8, "max_length": 384, "prompt.max_prompt_tokens": 320}


def two_run_study(model_dir: Path, tmp: Path, **extra: Any) -> Path:
    cfg = {"name": "exec", "model": str(model_dir), "data_dir": "demo", "lm": {"backend": "hf", "device": "cpu"},
           "benchmarks": [{"benchmark": "spider", "split": "dev", "sample": 4, "max_new_tokens": 8},
                          {"benchmark": "mmlu", "subjects": ["everyday_math"], "mode": "letter"}],
           "specialty": "spider-dev", "generality": "mmlu", "allow_below_chance": True,
           "runs": [{"name": "slow", "config": "embedded-cpu", "overrides": {**TRAIN, "learning_rate": 1e-3}},
                    {"name": "fast", "config": "embedded-cpu", "overrides": {**TRAIN, "learning_rate": 5e-2}}],
           **extra}
    path = tmp / f"study-{extra.get('executor', 'in-process')}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def table(run_dir: Path) -> dict[str, dict[str, tuple[float, int]]]:
    """summary.json as model -> benchmark -> (accuracy, n): what the console table shows."""
    summary = json.loads((run_dir / "summary.json").read_text())
    return {m["key"]: {b: (v["accuracy"], v["n"]) for b, v in m["benchmarks"].items()} for m in summary["models"]}


def run(config: Path, run_dir: Path) -> float:
    t0 = time.time()
    try:
        run_experiment(config, run_dir)
    except EmptyPredictions:  # a random tiny model may write only blank SQL; raised after everything is written
        pass
    return time.time() - t0


@pytest.mark.slow  # about 100 s on 2 busy cores: two studies of two training runs each, plus Ray's start
def test_ray_study_gives_the_in_process_table(tiny_model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray not installed (pip install 'sqlshift[ray]')")
    took = run(two_run_study(tiny_model_dir, tmp_path, executor="ray", ray={"eval_tasks": 2}), tmp_path / "ray")
    local = two_run_study(tiny_model_dir, tmp_path)
    run(local, tmp_path / "local")
    got, want = table(tmp_path / "ray"), table(tmp_path / "local")
    assert sorted(want) == ["baseline", "fast", "slow"]
    assert got == want
    log = (tmp_path / "ray" / "run.log").read_text()
    assert "ray: 2 training task(s), 0 GPU each" in log and "ray: 2 evaluation task(s) for 3 model point(s)" in log
    steps = json.loads((tmp_path / "ray" / "steps.json").read_text())  # the tasks' entries, merged in one file
    assert steps.keys() == json.loads((tmp_path / "local" / "steps.json").read_text()).keys()
    print(f"ray study: {took:.1f} s")
    # The tasks wrote what in-process writes: the in-process executor on the Ray run directory redoes nothing.
    run(local, tmp_path / "ray")
    counts = [x for x in (tmp_path / "ray" / "run.log").read_text().splitlines() if "steps run:" in x]
    assert "steps run: 0, cached: 8," in counts[-1], counts  # 2 trainings + 3 points x 2 benchmarks


def test_a_tasks_error_comes_back_as_itself_with_its_fix(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray not installed (pip install 'sqlshift[ray]')")
    with RayExecutor(RaySettings()) as ex:
        ref = ex.submit(load_experiment, 0, "load", tmp_path / "missing.yaml")
        with pytest.raises(ConfigError) as e:
            ex.get(ref, None, "load")
    assert "missing.yaml does not exist" in str(e.value) and e.value.fix and "\n" not in str(e.value)
    assert ex.pending == [] and not ex.started  # the local instance it started is shut down


@pytest.mark.parametrize("extra,needle", [
    ({"executor": "ray", "ray": {"adress": "auto"}}, "ray.adress: unknown key (did you mean address?)"),
    ({"executor": "dask"}, "executor"),
    ({"ray": {"eval_tasks": 2}}, "ray: settings given but executor is in-process"),
    ({"executor": "ray", "ray": {"gpus_per_run": 2}}, "ray.gpus_per_run"),
])
def test_executor_keys_are_strict(tiny_model_dir: Path, tmp_path: Path, extra: dict[str, Any], needle: str) -> None:
    pytest.importorskip("ray", reason="Ray not installed (pip install 'sqlshift[ray]')")
    with pytest.raises(ConfigError) as e:
        load_experiment(two_run_study(tiny_model_dir, tmp_path, **extra))
    assert needle in str(e.value)


def test_executor_ray_without_ray_names_the_install(tiny_model_dir: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed: find_spec and import both fail
    with pytest.raises(ConfigError) as e:
        load_experiment(two_run_study(tiny_model_dir, tmp_path, executor="ray"))
    (line,) = [x for x in str(e.value).splitlines() if "needs Ray" in x]
    assert "executor: ray needs Ray, which is not installed (pip install 'sqlshift[ray]')" in line
    assert load_experiment(two_run_study(tiny_model_dir, tmp_path)).executor == "in-process"  # the default


def test_split_keeps_order_and_never_makes_an_empty_group() -> None:
    assert split([1, 2, 3], 2) == [[1, 2], [3]]
    assert split([1, 2, 3], 5) == [[1], [2], [3]]
    assert split([1, 2, 3, 4, 5], 1) == [[1, 2, 3, 4, 5]]
    assert split([], 3) == []
