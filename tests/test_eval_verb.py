"""sqlshift eval (a study with no training: the runner's files) and sqlshift benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


def test_set_reaches_the_named_benchmarks_own_settings() -> None:
    sets = ["mmlu.subjects=[philosophy]", "spider.batch_size=8", "spider-dev.prompt.sample_rows=2", "mmlu.k_shot=5"]
    cfg = eval_config("embedded", ["spider-dev", "spider-syn", "mmlu"], sample=4, sets=sets)
    dev, syn, mmlu = cfg.benchmarks
    assert (dev.split, syn.split) == ("dev", "syn") and dev.batch_size == syn.batch_size == 8
    assert dev.prompt.sample_rows == 2 and syn.prompt.sample_rows == 0
    assert (mmlu.subjects, mmlu.k_shot, mmlu.sample) == (["philosophy"], 5, 4)
    assert eval_config("embedded", ["mmlu"], sample=4, sets=["mmlu.sample="]).benchmarks[0].sample is None


def test_set_lm_reaches_the_backend_settings(tmp_path: Path) -> None:
    """``--set lm.KEY=VALUE`` configures the backend (e.g. an adapter on the 4-bit base QLoRA trained on); a key
    no backend takes is one line, and nothing is written."""
    cfg = eval_config("embedded", ["mmlu"], backend="hf", sets=["lm.load_in_4bit=true", "mmlu.sample=3"])
    assert cfg.lm.resolve()[1].load_in_4bit is True and cfg.benchmarks[0].sample == 3
    assert eval_config("embedded", ["mmlu"], backend="hf").lm.resolve()[1].load_in_4bit is False
    r = CliRunner().invoke(app, ["eval", "--benchmarks", "mmlu", "--backend", "hf", "--set", "lm.load_in_4bitt=true",
                                 "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "unknown key 'load_in_4bitt' under lm" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_mmlu_on_the_demo_data_defaults_to_the_demo_subjects(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SQLSHIFT_DATA_DIR", raising=False)  # the demo data, also where the real data is set
    assert eval_config("embedded", ["mmlu"]).benchmarks[0].subjects == "all"
    assert eval_config("embedded", ["mmlu"], data_dir=tmp_path).benchmarks[0].subjects == "seed"
    r = CliRunner().invoke(app, ["eval", "--benchmarks", "mmlu", "--set", "mmlu.subjects=seed", "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "none of the seed preset's subjects" in r.output
    assert "--set mmlu.subjects=all" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("arg, says", [
    ("mmlu.subjectz=all", "--set mmlu.subjectz=all: mmlu has no setting subjectz (did you mean subjects?)"),
    ("mmlu.mode=foo", "--set mmlu.mode=foo: mmlu's mode: Input should be 'letter' or 'cloze'"),
    ("spider.prompt.sample_rowz=2", "spider-dev has no setting prompt.sample_rowz (did you mean sample_rows?)"),
    ("hellaswag.batch_size=8", "'hellaswag' is not one of --benchmarks (spider-dev, mmlu)"),
    ("mmlu=3", "--set 'mmlu=3' is not BENCH.KEY=VALUE"),
    ("mmlu.benchmark=hellaswag", "which benchmark runs is what --benchmarks says"),
    ("mmlu.subjects=[a, b", "value '[a, b' is not valid YAML"),
])
def test_bad_set_is_one_line_naming_the_benchmark_the_key_and_the_fix(tmp_path: Path, arg: str, says: str) -> None:
    r = CliRunner().invoke(app, ["eval", "--benchmarks", "spider-dev,mmlu", "--set", arg, "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and says in r.output and "(fix: " in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_eval_plan_line_names_models_and_benchmarks_not_training_runs(tmp_path: Path) -> None:
    from sqlshift.data.demo import ensure_demo
    from sqlshift.study.config import make_benchmarks
    from sqlshift.study.runner import plan

    cfg = eval_config("embedded", ["spider-dev", "mmlu"], sample=3)
    line = plan(cfg, make_benchmarks(cfg, ensure_demo(tmp_path / "demo")))
    assert line == "score 1 model (baseline) on 2 benchmarks: spider-dev (sample 3), mmlu (sample 3)"


def test_eval_mmlu_on_the_demo_data_runs(tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "eval"
    args = ["eval", "--model", str(tiny_model_dir), "--benchmarks", "mmlu", "--data-dir", "demo", "--sample", "6",
            "--allow-below-chance", "-o", str(out)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    metrics = json.loads((out / "models" / "baseline" / "mmlu" / "metrics.json").read_text())
    assert metrics["n"] == 6 and set(metrics["by_subject"]) <= {"general_science", "world_geography", "everyday_math"}
