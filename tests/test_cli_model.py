"""CLI verbs that load a model, on the tiny random Llama (conftest): what predict prints and writes, scoring
exactly what was predicted, and Ctrl-C (one line that says how to resume, no traceback)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_cli import SRC, sqlshift

from sqlshift.data.demo import ensure_demo


def demo_with_a_missing_database(tmp_path: Path) -> Path:
    """The demo benchmark with one database removed: its dev examples are skipped."""
    root = ensure_demo(tmp_path / "demo")
    dbs = sorted((root / "spider" / "database").iterdir())
    shutil.rmtree(dbs[0])
    return root


def test_predict_sample_prints_what_it_wrote_and_eval_sql_scores_exactly_that(tmp_path: Path,
                                                                             tiny_model_dir: Path) -> None:
    data = demo_with_a_missing_database(tmp_path)
    out = tmp_path / "pred"
    res = sqlshift("predict", "--model", str(tiny_model_dir), "--spider-dir", str(data), "--sample", "4",
                   "--max-new-tokens", "8", "--score", "-o", str(out))
    assert res.returncode in (0, 3), res.stderr  # 3: a random model may give only empty SQL (the guard)
    assert f"predictions: {out / 'predictions.jsonl'} (4 examples" in res.stdout
    assert f"official format (one SQL per line): {out / 'predictions.sql'}" in res.stdout
    assert len((out / "predictions.sql").read_text().splitlines()) == 4
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 4 and metrics["n_skipped"] == 0  # the sample skipped none of its 4
    if res.returncode == 0:
        assert "EX: " in res.stdout and "(n=4, skipped 0)" in res.stdout

    full = sqlshift("eval-sql", "--spider-dir", str(data), "--pred", str(out / "predictions.jsonl"),
                    "-o", str(tmp_path / "e0"))
    assert full.returncode == 2 and "have no prediction" in full.stderr
    for flag, folder in ((["--only-predicted"], "e1"), (["--sample", "4"], "e2")):
        res = sqlshift("eval-sql", "--spider-dir", str(data), "--pred", str(out / "predictions.jsonl"), *flag,
                       "-o", str(tmp_path / folder))
        assert res.returncode == 0, res.stderr
        scored = json.loads((tmp_path / folder / "metrics.json").read_text())
        assert (scored["n"], scored["n_skipped"], scored["n_correct"]) == (4, 0, metrics["n_correct"]), flag


def interrupt(args: list[str], cwd: Path, wait_for: str, timeout: float = 90) -> tuple[int, str]:
    """Start ``sqlshift ARGS``, send SIGINT once ``wait_for`` shows in its output (or after the timeout)."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "sqlshift", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    seen, t0 = b"", time.monotonic()
    while wait_for.encode() not in seen and time.monotonic() - t0 < timeout and proc.poll() is None:
        try:
            seen += os.read(fd, 65536)
        except BlockingIOError:
            time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    t1 = time.monotonic()
    os.set_blocking(fd, True)
    rest, _ = proc.communicate(timeout=60)
    assert time.monotonic() - t1 < 30, "Ctrl-C took more than 30 s"
    return proc.returncode, (seen + rest).decode(errors="replace")


def test_ctrl_c_in_predict_is_one_line_that_says_how_to_resume(tmp_path: Path, tiny_model_dir: Path) -> None:
    data = ensure_demo(tmp_path / "demo")
    rc, text = interrupt(["predict", "--model", str(tiny_model_dir), "--spider-dir", str(data), "--batch-size", "1",
                          "--max-new-tokens", "256", "-o", str(tmp_path / "p")], tmp_path, "generate dev")
    assert rc == 130, text
    assert "Traceback" not in text and text.count("interrupted") == 1 and "rerun the same command" in text


def test_ctrl_c_in_run_says_interrupted_once(tmp_path: Path, tiny_model_dir: Path) -> None:
    cfg = tmp_path / "s.yaml"
    cfg.write_text(yaml.safe_dump({"name": "s", "model": str(tiny_model_dir), "data_dir": "demo", "benchmarks": [
        {"benchmark": "spider", "batch_size": 1, "max_new_tokens": 256}]}))
    rc, text = interrupt(["run", str(cfg), "-o", str(tmp_path / "r")], tmp_path, "generate dev")
    assert rc == 130, text
    assert "Traceback" not in text and text.count("interrupted") == 1, text
    assert "interrupted" in (tmp_path / "r" / "run.log").read_text()


def test_run_estimates_from_measured_times_and_says_nothing_when_cached(tmp_path: Path, tiny_model_dir: Path,
                                                                      random_adapter: Path) -> None:
    cfg = tmp_path / "s.yaml"
    cfg.write_text(yaml.safe_dump({"name": "s", "model": str(tiny_model_dir), "data_dir": "demo", "benchmarks": [
        {"benchmark": "spider", "sample": 4, "max_new_tokens": 8}, {"benchmark": "mmlu", "subjects": "all", "sample": 8}],
        "runs": [{"name": "a", "config": "embedded-cpu", "overrides": {  # trained in a child process
            "max_steps": 2, "per_device_batch_size": 2, "gradient_accumulation_steps": 1, "data.limit_n": 8}},
            {"name": "b", "adapter": str(random_adapter), "lambdas": [0.5]}]}))
    first = sqlshift("run", str(cfg), "-o", str(tmp_path / "r"), "--allow-below-chance")
    text = first.stdout + first.stderr
    assert "estimate: the other 3 model(s) take about" in text, text
    log = (tmp_path / "r" / "run.log").read_text()
    assert log.index("baseline/mmlu") < log.index("estimate:") < log.index("a/spider-dev")  # after a measurement
    again = sqlshift("run", str(cfg), "-o", str(tmp_path / "r"), "--allow-below-chance")
    assert "estimate" not in again.stdout + again.stderr and "steps run: 0, cached: " in again.stdout + again.stderr


def test_training_console_is_one_bar_with_the_loss(tmp_path: Path, tiny_model_dir: Path) -> None:
    """No raw trainer dicts, no dataset-preparation bars: one progress bar whose postfix carries the loss."""
    data = ensure_demo(tmp_path / "demo")
    res = sqlshift("train", "embedded-cpu", "--model", str(tiny_model_dir), "-o", str(tmp_path / "t"), "max_steps=3",
                   "logging_steps=1", f"data.spider_dir={data}", "data.limit_n=8", "per_device_batch_size=2",
                   "gradient_accumulation_steps=1", "save_steps=100", timeout=300)
    text = res.stdout + res.stderr
    assert res.returncode == 0, text
    assert "{'loss'" not in text and "'learning_rate'" not in text
    assert not [w for w in ("Map", "Tokenizing", "Truncating", "Adding EOS", "Converting train") if f"{w}" in text], text
    assert "train (steps)" in text and "loss=" in text and (tmp_path / "t" / "adapter_config.json").is_file()
    assert len(json.loads((tmp_path / "t" / "log_history.json").read_text())) >= 3  # the history is still saved
    log = (tmp_path / "t" / "train.log").read_text()  # what the console said, kept beside the adapter
    assert "training on the standard path" in log and "training took" in log and "tokens/s" in text, log


@pytest.mark.slow
def test_loading_the_embedded_gguf_shows_no_bars(capfd: pytest.CaptureFixture[str]) -> None:
    from sqlshift.lm.models import load_model

    load_model("embedded")
    err = capfd.readouterr().err
    assert "de-quantizing" not in err and "Loading weights" not in err, err


def test_generation_bar_moves_while_the_first_batch_decodes(tmp_path: Path, tiny_model_dir: Path) -> None:
    """The bar counts finished items; before the first batch ends it shows the token being generated."""
    data = ensure_demo(tmp_path / "demo")
    res = sqlshift("predict", "--model", str(tiny_model_dir), "--spider-dir", str(data), "--sample", "4",
                   "--batch-size", "4", "--max-new-tokens", "24", "-o", str(tmp_path / "p"))
    assert res.returncode == 0, res.stderr
    bar = res.stderr.replace("\r", "\n")
    assert any("token 8/24" in line and "0/4" in line for line in bar.splitlines()), bar
