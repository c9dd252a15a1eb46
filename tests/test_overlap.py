"""`executor: overlap`: training children and the evaluation model share one GPU. The baseline is evaluated while
the runs train, several runs train at once, each run is evaluated when its training ends, the files and cache keys
are those of in-process, a failed run stops the others' children in seconds, and a vLLM engine that would size
itself from memory the trainings take is a config error. The engine is the CPU stand-in (tests/vllm_stand_in.py);
benchmarks/gpu/seed_protocol.sh runs the real one on a GPU."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import sqlshift.study.runner as experiment
from sqlshift import isolate
from sqlshift.errors import ConfigError, EmptyPredictions, SqlshiftError
from sqlshift.study.config import load_experiment
from vllm_stand_in import install_stand_in

TRAIN = {"max_steps": 2, "save_steps": 2, "per_device_batch_size": 2, "gradient_accumulation_steps": 1,
         "data.limit_n": 8, "max_length": 384, "prompt.max_prompt_tokens": 320}
SHARED = {"backend": "vllm", "kv_cache_gib": 4, "gpu_memory_utilization": 0.3}


def study(model_dir: Path, tmp: Path, lm: dict[str, Any], recipe: dict[str, Any] | None = None, **extra: Any) -> Path:
    """Two runs (``recipe``: training overrides of both, e.g. full fine-tuning) under ``executor: overlap``."""
    train = {**TRAIN, **(recipe or {})}
    cfg = {"name": "overlap", "model": str(model_dir), "data_dir": "demo", "lm": lm,
           "benchmarks": [{"benchmark": "spider", "split": "dev", "sample": 4, "max_new_tokens": 8},
                          {"benchmark": "mmlu", "subjects": ["everyday_math"], "mode": "letter"}],
           "specialty": "spider-dev", "generality": "mmlu", "allow_below_chance": True,
           "runs": [{"name": "slow", "config": "embedded-cpu", "overrides": {**train, "learning_rate": 1e-3}},
                    {"name": "fast", "config": "embedded-cpu", "overrides": {**train, "learning_rate": 5e-2}}],
           "executor": "overlap", **extra}
    path = tmp / f"study-{extra.get('executor', 'overlap')}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run(config: Path, run_dir: Path) -> None:
    try:
        experiment.run_experiment(config, run_dir)
    except EmptyPredictions:  # a random tiny model may write only blank SQL; raised after everything is written
        pass


def trainings_wait_for(monkeypatch: pytest.MonkeyPatch, gate: Callable[[str], Path | None], why: str) -> list[int]:
    """Hold each training (by its step name) until the file ``gate`` names exists, within a deadline; returns a
    one-item list that ends up holding the most trainings that were running at once."""
    real_isolated, lock = experiment.run_isolated, threading.Lock()
    running, most = [0], [0]

    def gated(fn: Any, *a: Any, **kw: Any) -> Any:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            wait_for = gate(kw.get("name", ""))
            deadline = time.time() + 300
            while wait_for is not None and not wait_for.is_file():
                assert time.time() < deadline, why
                time.sleep(0.2)
            return real_isolated(fn, *a, **kw)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(experiment, "run_isolated", gated)
    return most


@pytest.mark.slow  # two training children on 2 CPU cores, then the same study in-process from its cache
def test_overlap_trains_while_the_baseline_is_evaluated(tiny_model_dir: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    engine = install_stand_in(monkeypatch)
    run_dir = tmp_path / "run"
    baseline_done = run_dir / "models" / "baseline" / "mmlu" / "metrics.json"
    # each training starts only once the baseline is evaluated: a study that evaluated only after training would
    # never get there (the deadline fails it)
    most = trainings_wait_for(monkeypatch, lambda name: baseline_done,
                              "the baseline was not evaluated while the runs waited to train")
    run(study(tiny_model_dir, tmp_path, SHARED), run_dir)
    assert most[0] == 2  # overlap.trainings defaults to 2: both runs were training at once
    assert engine.started == [str(tiny_model_dir)]  # one engine for the baseline and both runs
    llm_kw = json.loads((run_dir / "summary.json").read_text())
    assert sorted(m["key"] for m in llm_kw["models"]) == ["baseline", "fast", "slow"]
    log = (run_dir / "run.log").read_text()
    assert "executor: overlap: 2 run(s) train, 2 at a time" in log
    # the same files and cache keys as in-process: in-process on this run directory finds every step done
    run(study(tiny_model_dir, tmp_path, SHARED, executor="in-process"), run_dir)
    counts = [x for x in (run_dir / "run.log").read_text().splitlines() if "steps run:" in x]
    assert "steps run: 0, cached: 8," in counts[-1], counts  # 2 trainings + 3 points x 2 benchmarks


@pytest.mark.slow  # two training children on 2 CPU cores
def test_overlap_starts_the_engine_beside_the_trainings_without_a_baseline(tiny_model_dir: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing to evaluate before the runs' points (baseline off or cached), the engine still starts while
    the runs train: a study that loaded it only at the first trained point would never get there (deadline)."""
    engine = install_stand_in(monkeypatch)
    real_isolated = experiment.run_isolated

    def training_waits_for_the_engine(fn: Any, *a: Any, **kw: Any) -> Any:
        deadline = time.time() + 120
        while not engine.started:
            assert time.time() < deadline, "the engine did not start while the runs waited to train"
            time.sleep(0.2)
        return real_isolated(fn, *a, **kw)

    monkeypatch.setattr(experiment, "run_isolated", training_waits_for_the_engine)
    run_dir = tmp_path / "run"
    run(study(tiny_model_dir, tmp_path, SHARED, baseline=False), run_dir)
    assert engine.started == [str(tiny_model_dir)]  # loaded once, before the trainings, and served both runs
    assert sorted(m["key"] for m in json.loads((run_dir / "summary.json").read_text())["models"]) == ["fast", "slow"]


@pytest.mark.slow  # two full fine-tunes of the tiny model in training children on 2 CPU cores
def test_full_fine_tunes_train_one_at_a_time_each_beside_the_point_before(tiny_model_dir: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """configs/qwen15-full-ft.yaml's schedule: ``trainings: 1`` (a full fine-tune's fp32 states leave room for one
    beside the engine), and the second run trains while the first run's model is evaluated on its own engine. A
    study that evaluated the full models only after every training would never get there (the deadline fails it)."""
    engine = install_stand_in(monkeypatch)
    run_dir = tmp_path / "run"
    first_done = run_dir / "models" / "slow" / "mmlu" / "metrics.json"
    most = trainings_wait_for(monkeypatch, lambda name: first_done if name == "train/fast" else None,
                              "the first full model was not evaluated while the second trained")
    run(study(tiny_model_dir, tmp_path, SHARED, {"lora.enabled": False}, overlap={"trainings": 1}), run_dir)
    assert most[0] == 1
    # the base for the baseline, then each full fine-tune on an engine of its own, in the study's order
    assert engine.started == [str(tiny_model_dir), str(run_dir / "train" / "slow"), str(run_dir / "train" / "fast")]
    assert "executor: overlap: 2 run(s) train, 1 at a time" in (run_dir / "run.log").read_text()


def test_a_cached_study_starts_no_engine(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    """The preload is for runs that will train: with every training cached it would load a model for nothing."""
    install_stand_in(monkeypatch)
    runner = experiment.Runner(load_experiment(study(tiny_model_dir, tmp_path, SHARED, baseline=False)),
                               tmp_path / "run")
    assert runner.trains_on_base()
    for spec in runner.cfg.runs:
        _, recipe, out, key = runner.train_step(spec)
        out.mkdir(parents=True)
        (out / recipe.marker).write_text("{}")
        runner.cache.record(f"train/{spec.name}", key)
    assert not runner.trains_on_base() and runner.cache.hits == []  # asking is not a cache hit


def test_the_engine_gets_a_fixed_kv_cache(tiny_model_dir: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlshift.lm.vllm as lv

    engine = install_stand_in(monkeypatch)
    seen: list[dict[str, Any]] = []
    real_init = engine.__init__

    def spy(self: Any, folder: str, **kw: Any) -> None:
        seen.append(kw)
        real_init(self, folder, **kw)

    monkeypatch.setattr(engine, "__init__", spy)
    lm = lv.VLLMLM.from_settings(str(tiny_model_dir), lv.VLLMSettings(dtype="fp32", kv_cache_gib=1.5,
                                                                      gpu_memory_utilization=0.3))
    assert seen[0]["kv_cache_memory_bytes"] == int(1.5 * 2**30) and seen[0]["gpu_memory_utilization"] == 0.3
    assert "kv_cache_gib" not in seen[0]
    assert lm.identity["kv_cache_gib"] == 1.5  # it decides which requests share a batch: part of the cache key


@pytest.mark.parametrize("lm,needle", [
    ({"backend": "vllm"}, "set lm.kv_cache_gib"),
    ({"backend": "vllm", "kv_cache_gib": 4}, "set lm.kv_cache_gib"),  # 0.85 of the GPU leaves none for training
])
def test_vllm_without_a_fixed_share_is_one_line_before_training(tiny_model_dir: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 lm: dict[str, Any], needle: str) -> None:
    install_stand_in(monkeypatch)
    with pytest.raises(ConfigError) as e:
        experiment.run_experiment(study(tiny_model_dir, tmp_path, lm), tmp_path / "run")
    assert needle in str(e.value) and "executor: overlap" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "run" / "train").exists()  # nothing trained


@pytest.mark.parametrize("extra,needle", [
    ({"executor": "in-process", "overlap": {"trainings": 2}}, "overlap: settings given but executor is in-process"),
    ({"overlap": {"trainings": 0}}, "overlap.trainings"),
    ({"overlap": {"trainigs": 2}}, "did you mean trainings"),
])
def test_overlap_keys_are_strict(tiny_model_dir: Path, tmp_path: Path, extra: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_experiment(study(tiny_model_dir, tmp_path, {"backend": "hf"}, **extra))
    assert needle in str(e.value)


def test_a_failed_run_stops_the_other_training_within_seconds(tiny_model_dir: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """`slow` is first in the study's order and its child would train for minutes; `fast` fails. The study stops
    with fast's error in seconds, and slow's child is gone (no orphan holding the GPU)."""
    pidfile, script = tmp_path / "child.pid", tmp_path / "child.py"
    script.write_text(f"import os, time\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n")
    real_isolated = experiment.run_isolated

    def stand_in_training(fn: Any, *a: Any, name: str = "", **kw: Any) -> Any:
        if name == "train/slow":
            import runpy

            return real_isolated(runpy.run_path, str(script), name=name)
        deadline = time.time() + 60
        while not pidfile.is_file() or not pidfile.read_text():
            assert time.time() < deadline, "slow's child never started"
            time.sleep(0.1)
        raise SqlshiftError("train/fast failed: out of memory", "lower per_device_batch_size")

    monkeypatch.setattr(experiment, "run_isolated", stand_in_training)
    t0 = time.time()
    with pytest.raises(SqlshiftError) as e:
        experiment.run_experiment(study(tiny_model_dir, tmp_path, {"backend": "hf", "device": "cpu"}),
                                  tmp_path / "run")
    assert "train/fast failed: out of memory" in str(e.value)
    assert time.time() - t0 < 90  # the baseline's evaluation, then seconds, not slow's 120 s
    with pytest.raises(ProcessLookupError):
        os.kill(int(pidfile.read_text()), 0)
    assert not isolate._live  # no child left registered


@pytest.mark.parametrize("user_value", [None, "backend:native"])
def test_a_training_child_grows_expandable_segments_unless_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      user_value: str | None) -> None:
    """Padding-free batches change shape every step; the child's allocator grows expandable segments instead of
    caching ~2x what it allocates (session 9), set before torch loads; a user's own allocator setting stays."""
    import sqlshift.train.trainer as trainer

    if user_value is None:
        monkeypatch.delenv("PYTORCH_CUDA_ALLOC_CONF", raising=False)
    else:
        monkeypatch.setenv("PYTORCH_CUDA_ALLOC_CONF", user_value)
    seen: list[str | None] = []
    monkeypatch.setattr(trainer, "train", lambda *a, **kw: seen.append(os.environ.get("PYTORCH_CUDA_ALLOC_CONF")))
    monkeypatch.setattr(experiment, "setup_logging", lambda run_dir: None)
    try:
        experiment.train_in_child(None, tmp_path / "out", "embedded", tmp_path)
    finally:
        if user_value is None:  # monkeypatch restores only what it set
            os.environ.pop("PYTORCH_CUDA_ALLOC_CONF", None)
    assert seen == [user_value or "expandable_segments:True"]
