"""sqlshift eval (a study with no training: the runner's files) and sqlshift benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from sqlshift.cli import app
from sqlshift.study.evaluate import benchmark_entry, eval_config


def test_benchmark_names_pick_registry_entries_and_splits() -> None:
    assert benchmark_entry("hellaswag", 20) == {"benchmark": "hellaswag", "sample": 20}
    assert benchmark_entry("spider-syn", None) == {"benchmark": "spider", "split": "syn"}
    cfg = eval_config("embedded", ["spider-dev", "mmlu"], sample=3)
    assert [b.out_name if hasattr(b, "out_name") else b.benchmark for b in cfg.benchmarks] == ["spider", "mmlu"]
    assert cfg.baseline and not cfg.runs and cfg.data_dir


def test_unknown_benchmark_is_one_line(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["eval", "--benchmarks", "hellaswagg", "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "unknown benchmark 'hellaswagg'" in r.output and "Traceback" not in r.output


def test_eval_with_an_adapter_writes_the_runners_files(tmp_path: Path, tiny_model_dir: Path,
                                                        random_adapter: Path) -> None:
    out = tmp_path / "eval"
    args = ["eval", "--model", str(tiny_model_dir), "--adapter", str(random_adapter), "--benchmarks", "spider-dev",
            "--sample", "5", "--data-dir", "demo", "-o", str(out)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code in (0, 3), r.output  # 3: the random tiny model may write only blank SQL (a guard, after all)
    meta = json.loads((out / "models" / "adapter" / "model.json").read_text())
    assert meta["adapter"] == str(random_adapter.resolve()) and meta["backend"] == "hf"
    metrics = json.loads((out / "models" / "adapter" / "spider-dev" / "metrics.json").read_text())
    assert (metrics["n"], metrics["n_requested"], metrics["complete"]) == (5, 5, True)
    assert (out / "steps.json").is_file() and (out / "report.md").is_file() and not (out / "models" / "baseline").exists()
    steps = json.loads((out / "steps.json").read_text())
    assert CliRunner().invoke(app, args).exit_code in (0, 3) and json.loads((out / "steps.json").read_text()) == steps


def test_benchmarks_lists_every_registered_benchmark_with_its_settings() -> None:
    r = CliRunner().invoke(app, ["benchmarks"])
    assert r.exit_code == 0
    for name in ("spider  [specialty, text2sql]", "mmlu  [generality, multiple_choice]", "gsm8k_chat", "sparc"):
        assert name in r.output
    assert "max_new_tokens: int = 192" in r.output and "sample = null" in r.output
