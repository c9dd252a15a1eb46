"""What a user meets at the command line: one convention for every verb, one line per error, no traceback.

Each test runs ``python -m sqlshift`` in a subprocess, as a user would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

SRC = Path(__file__).resolve().parents[1] / "src"


def sqlshift(*args: str, cwd: Path | None = None, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m sqlshift ARGS`` with the source tree on the path; stdout and stderr captured."""
    full = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1", "COLUMNS": "200", **env}
    return subprocess.run([sys.executable, "-m", "sqlshift", *args], capture_output=True, text=True, cwd=cwd,
                          env=full, timeout=timeout)


def write_yaml(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def one_error(res: subprocess.CompletedProcess[str]) -> str:
    """The error output: exit 2, no traceback, each hint once."""
    err = res.stderr
    assert res.returncode == 2, (res.returncode, res.stdout, err)
    assert "Traceback" not in err + res.stdout
    assert err.count("(fix:") <= 1, err
    return err


# ------------------------------------------------------------------------------------------------ errors (item 9)


def test_unknown_keys_get_did_you_mean_and_training_keys_point_at_overrides(tmp_path: Path) -> None:
    cfg = write_yaml(tmp_path / "bad.yaml", {
        "model": "embedded", "learning_rate": 1e-4,
        "benchmarks": [{"benchmark": "mmlu", "batch_sz": 4}], "runs": [{"name": "r", "config": "embedded-cpu"}]})
    err = one_error(sqlshift("run", str(cfg), "-o", str(tmp_path / "out")))
    assert "batch_sz: unknown key (did you mean batch_size?)" in err
    assert "learning_rate: unknown key" in err and "overrides: {learning_rate: ...}" in err
    assert "configs/ for examples" not in err
    assert not (tmp_path / "out").exists()  # stopped before any output folder was made


def test_unset_variable_is_named_without_a_project_path(tmp_path: Path) -> None:
    cfg = write_yaml(tmp_path / "bad.yaml", {"data_dir": "${SQLSHIFT_NOPE_DIR}/x", "benchmarks": [
        {"benchmark": "mmlu"}]})
    err = one_error(sqlshift("run", str(cfg), "-o", str(tmp_path / "out")))
    assert "SQLSHIFT_NOPE_DIR" in err and "../shared" not in err and "export SQLSHIFT_NOPE_DIR=" in err


def test_failed_validation_prints_no_step_count_and_logs_the_error(tmp_path: Path) -> None:
    cfg = write_yaml(tmp_path / "study.yaml", {"data_dir": str(tmp_path / "nodata"), "benchmarks": [
        {"benchmark": "spider", "split": "dev"}]})
    res = sqlshift("run", str(cfg), "-o", str(tmp_path / "out"))
    err = one_error(res)
    assert "steps run" not in res.stdout + err
    assert "sqlshift layout" in err and "docs/DATA.md" not in err
    log = (tmp_path / "out" / "run.log").read_text()
    assert "stopped: the experiment cannot run" in log and "nodata" in log
