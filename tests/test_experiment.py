"""End to end: `sqlshift run` on the shipped demo data with a tiny random model, its cache and its report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sqlshift.errors import ConfigError
from sqlshift.experiment import Runner, load_experiment, run_experiment


def write_config(tmp: Path, model_dir: Path, **extra: object) -> Path:
    cfg = {
        "name": "tiny",
        "model": str(model_dir),
        "data": {"spider_dir": "demo", "mmlu_dir": "demo"},
        "spider": {"splits": ["dev"], "limit": 8, "batch_size": 8, "max_new_tokens": 8},
        "mmlu": {"subjects": "all", "mode": "letter", "batch_size": 16},
        "runs": [{"name": "lora", "config": "embedded-cpu", "checkpoints": "all",
                  "overrides": {"max_steps": 2, "save_steps": 1, "per_device_batch_size": 2,
                                "gradient_accumulation_steps": 1, "data.limit_n": 8, "max_length": 384,
                                "prompt.max_prompt_tokens": 320}}],
        "allow_below_chance": True,  # a random model may well sit below chance on 60 questions
        **extra,
    }
    path = tmp / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def study(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("study")
    cfg = write_config(tmp, tiny_model_dir)
    run_dir = tmp / "run"
    run_experiment(cfg, run_dir)
    return cfg, run_dir


def test_run_directory_has_every_artifact(study: tuple[Path, Path]) -> None:
    _, run = study
    for f in ("config.yaml", "run.log", "steps.json", "report.md", "report.html", "summary.json"):
        assert (run / f).is_file(), f
    keys = sorted(p.name for p in (run / "models").iterdir())
    assert keys == ["baseline", "lora", "lora-step1"]  # step 2 is the final adapter, evaluated once as "lora"
    for key in keys:
        for f in ("spider-dev/predictions.jsonl", "spider-dev/results.jsonl", "spider-dev/metrics.json",
                  "mmlu/results.jsonl", "mmlu/metrics.json", "model.json"):
            assert (run / "models" / key / f).is_file(), f"{key}/{f}"
    assert (run / "train" / "lora" / "adapter_config.json").is_file()
    assert list((run / "plots").glob("*.png"))


def test_report_numbers_equal_metrics_files(study: tuple[Path, Path]) -> None:
    _, run = study
    summary = json.loads((run / "summary.json").read_text())
    by_key = {m["key"]: m for m in summary["models"]}
    for key, entry in by_key.items():
        ex = json.loads((run / "models" / key / "spider-dev" / "metrics.json").read_text())
        assert entry["ex"]["dev"]["accuracy"] == pytest.approx(ex["execution_accuracy"])
        assert entry["ex"]["dev"]["n"] == ex["n"] == 8
        mm = json.loads((run / "models" / key / "mmlu" / "metrics.json").read_text())
        assert entry["mmlu"]["accuracy"] == pytest.approx(mm["accuracy"])
        assert mm["n"] == 60


def test_rerun_is_a_cache_hit_and_deleting_one_metric_redoes_only_it(study: tuple[Path, Path]) -> None:
    cfg_path, run = study
    cfg, _ = load_experiment(cfg_path)
    runner = Runner(cfg, run)
    runner.run()
    assert runner.cache.ran == []
    (run / "models" / "lora" / "mmlu" / "metrics.json").unlink()
    runner = Runner(cfg, run)
    runner.run()
    assert runner.cache.ran == ["lora/mmlu"]


def test_unknown_key_in_experiment_config_names_it(tmp_path: Path, tiny_model_dir: Path) -> None:
    path = write_config(tmp_path, tiny_model_dir, spidr={"splits": ["dev"]})
    with pytest.raises(ConfigError, match="spidr"):
        load_experiment(path)


def test_default_config_loads() -> None:
    cfg, _ = load_experiment(None)
    assert cfg.model == "embedded" and cfg.runs and cfg.data.spider_dir == "demo"


def test_lambda_points_reproduce_base_and_run_scores_exactly(tiny_model_dir: Path, tmp_path: Path) -> None:
    """WiSE-FT points through the whole runner: λ=0 scores like the base model, λ=1 like the fine-tuned run."""
    cfg_path = write_config(tmp_path, tiny_model_dir)
    raw = yaml.safe_load(cfg_path.read_text())
    raw["runs"][0].update(checkpoints="none", lambdas=[0.0, 1.0])
    raw["runs"][0]["overrides"].update({"learning_rate": 5e-2})  # move the random model visibly
    cfg_path.write_text(yaml.safe_dump(raw))
    run = tmp_path / "run"
    run_experiment(cfg_path, run)

    def outcomes(key: str, what: str) -> list[tuple]:
        rows = [json.loads(x) for x in (run / "models" / key / what / "results.jsonl").read_text().splitlines()]
        if what == "mmlu":
            return sorted((r["subject"], r["index"], tuple(round(s, 4) for s in r["scores"])) for r in rows)
        return sorted((r["index"], r["pred_sql"]) for r in rows)

    for what in ("mmlu", "spider-dev"):
        assert outcomes("lora-lambda0", what) == outcomes("baseline", what)
        assert outcomes("lora-lambda1", what) == outcomes("lora", what)
    assert outcomes("lora", "mmlu") != outcomes("baseline", "mmlu"), "the run must differ for the test to mean anything"


def test_two_processes_sharing_a_run_dir_keep_each_others_steps(tmp_path: Path) -> None:
    from sqlshift.experiment import StepCache

    a, b = StepCache(tmp_path / "steps.json"), StepCache(tmp_path / "steps.json")  # both read an empty file
    a.record("baseline/mmlu", "k1")
    b.record("run2/mmlu", "k2")
    a.record("run1/mmlu", "k3")
    assert json.loads((tmp_path / "steps.json").read_text()) == {"baseline/mmlu": "k1", "run2/mmlu": "k2",
                                                                  "run1/mmlu": "k3"}


def test_only_selects_parts_and_names_the_valid_ones(study: tuple[Path, Path]) -> None:
    from sqlshift.experiment import select

    cfg, _ = load_experiment(study[0])
    assert select(cfg, ["lora"]).baseline is False and [r.name for r in select(cfg, ["lora"]).runs] == ["lora"]
    assert select(cfg, ["baseline"]).runs == [] and select(cfg, ["baseline"]).baseline
    with pytest.raises(ConfigError, match="baseline, lora"):
        select(cfg, ["run9"])
    runner = Runner(select(cfg, ["baseline"]), study[1], record=cfg)
    runner.run()
    assert runner.cache.ran == []  # the part already done by the full run is a cache hit
    assert [r["name"] for r in yaml.safe_load((study[1] / "config.yaml").read_text())["runs"]] == ["lora"]
