"""The GPU path's orchestration on CPU: every run trains in a child process before the evaluation model loads, one
engine serves every point of the study, the engine is shut down at the end, and an engine that cannot start is
one line from `sqlshift run`. The engine here is a stand-in (tests/vllm_stand_in.py); benchmarks/gpu/smoke.sh
runs the real one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

import sqlshift.study.runner as experiment
from sqlshift.errors import ConfigError, EmptyPredictions, SqlshiftError
from sqlshift.isolate import run_isolated
from vllm_stand_in import install_stand_in

TRAIN = {"max_steps": 2, "save_steps": 1, "per_device_batch_size": 2, "gradient_accumulation_steps": 1,
         "data.limit_n": 8, "max_length": 384, "prompt.max_prompt_tokens": 320}


def tiny_study(model_dir: Path, tmp: Path, backend: str = "vllm", **extra: Any) -> Path:
    cfg = {"name": "gpu-path", "model": str(model_dir), "data_dir": "demo", "lm": {"backend": backend},
           "benchmarks": [{"benchmark": "spider", "split": "dev", "sample": 4, "max_new_tokens": 8},
                          {"benchmark": "mmlu", "subjects": ["everyday_math"], "mode": "letter"}],
           "specialty": "spider-dev", "generality": "mmlu", "allow_below_chance": True,
           "runs": [{"name": "lora", "config": "embedded-cpu", "lambdas": [0.5], "overrides": dict(TRAIN)}], **extra}
    path = tmp / "study.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


# ---------------------------------------------------------------- run_isolated


def test_run_isolated_returns_the_childs_result_from_another_process() -> None:
    assert run_isolated(os.getpid) != os.getpid()
    assert run_isolated(sum, [1, 2, 3]) == 6


def test_run_isolated_raises_the_childs_error_with_its_fix(tmp_path: Path) -> None:
    from sqlshift.study.config import load_experiment

    with pytest.raises(ConfigError) as e:
        run_isolated(load_experiment, tmp_path / "missing.yaml")
    assert "missing.yaml" in str(e.value) and e.value.fix  # the fix survived the process boundary


def test_run_isolated_reports_a_dead_child_in_one_line() -> None:
    with pytest.raises(SqlshiftError) as e:
        run_isolated(os._exit, 3, name="train/x")
    assert "train/x died with exit code 3" in str(e.value) and "\n" not in str(e.value)


def test_ctrl_c_stops_parent_and_child_within_seconds(tmp_path: Path) -> None:
    """SIGINT to the parent alone (as `kill -INT`) reaches the child too; both are gone in seconds."""
    pidfile, script = tmp_path / "child.pid", tmp_path / "child.py"
    script.write_text(f"import os, time\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n")
    code = f"import runpy\nfrom sqlshift.isolate import run_isolated\nrun_isolated(runpy.run_path, {str(script)!r})\n"
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    deadline = time.time() + 60
    while not pidfile.is_file() or not pidfile.read_text():
        assert time.time() < deadline, "the child never started"
        time.sleep(0.2)
    child = int(pidfile.read_text())
    t0 = time.time()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    assert time.time() - t0 < 15 and proc.returncode != 0
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


# ---------------------------------------------------------------- the runner: train first, one engine, close


@pytest.mark.slow
def test_study_trains_first_then_one_engine_serves_every_point(tiny_model_dir: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    engine = install_stand_in(monkeypatch)
    events: list[str] = []
    real_isolated, real_init = experiment.run_isolated, engine.__init__

    def spy_isolated(fn: Any, *a: Any, **kw: Any) -> Any:
        events.append(f"train {kw.get('name')}")
        return real_isolated(fn, *a, **kw)

    def spy_init(self: Any, folder: str, **kw: Any) -> None:
        events.append("engine start")
        real_init(self, folder, **kw)
        self.llm_engine = type("E", (), {"engine_core": type("C", (), {"shutdown": lambda s: events.append("engine stop")})()})()

    monkeypatch.setattr(experiment, "run_isolated", spy_isolated)
    monkeypatch.setattr(engine, "__init__", spy_init)
    run_dir = tmp_path / "run"
    try:
        experiment.run_experiment(tiny_study(tiny_model_dir, tmp_path), run_dir)
    except EmptyPredictions:  # a random tiny model may write only blank SQL; raised after everything is written
        pass
    assert events == ["train train/lora", "engine start", "engine stop"]
    assert engine.started == [str(tiny_model_dir)]
    points = sorted(p.name for p in (run_dir / "models").iterdir())
    assert points == ["baseline", "lora", "lora-lambda0.5"]
    for point in points:
        metrics = (run_dir / "models" / point / "spider-dev" / "metrics.json").read_text()
        assert '"backend": "vllm"' in metrics
    assert "training in a child process" in (run_dir / "run.log").read_text()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["backends"] == ["vllm"] and {m["backend"] for m in summary["models"]} == {"vllm"}
    assert "Every model was evaluated with the vllm backend." in (run_dir / "report.md").read_text()


def test_report_says_when_points_come_from_different_backends() -> None:
    from sqlshift.report.sections import backend_text

    models = {"baseline": {"backend": "hf"}, "run1": {"backend": "vllm"}}
    (line,) = backend_text({"backends": ["hf", "vllm"], "models": models})
    assert "different backends" in line and "baseline: hf" in line and "run1: vllm" in line
    assert backend_text({"backends": [], "models": {}}) == []


def fake_vllm_package(root: Path, error: str) -> Path:
    """An importable ``vllm`` whose engine fails to start the way vLLM 0.26 fails (for a CLI subprocess)."""
    pkg = root / "vllm"
    (pkg / "lora").mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "__version__ = 'broken'\n"
        "class LLM:\n"
        "    def __init__(self, *a, **kw):\n"
        f"        raise RuntimeError({error!r})\n"
        "class SamplingParams:\n"
        "    pass\n")
    (pkg / "inputs.py").write_text("TokensPrompt = dict\n")
    (pkg / "lora" / "__init__.py").write_text("")
    (pkg / "lora" / "request.py").write_text("class LoRARequest:\n    pass\n")
    return root


def test_engine_start_failure_in_sqlshift_run_is_one_line(tiny_model_dir: Path, tmp_path: Path) -> None:
    site = fake_vllm_package(tmp_path / "site", "Engine core initialization failed. See root cause above. "
                                                "Failed core proc(s): {}")
    cfg = tiny_study(tiny_model_dir, tmp_path, runs=[])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    res = subprocess.run([sys.executable, "-m", "sqlshift", "run", str(cfg), "-o", str(tmp_path / "run")],
                         capture_output=True, text=True, env=env, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 2, out
    assert "Traceback" not in out
    lines = [ln for ln in out.splitlines() if "did not start" in ln]
    assert len(lines) == 1 and "Engine core initialization failed" in lines[0], out
