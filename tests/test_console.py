"""The console table printed after `sqlshift run` / `sqlshift report`: every layout shows each model's scores."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from report_runs import MMLU, SPIDER_DEV, ZORBLAX, ex_rows, mmlu_extra, mmlu_rows, write_bench, zorblax_rows

from sqlshift.report import build_report, print_summary

GENS = ["mmlu", "zorblax", "quux", "frob"]


def study(root: Path, models: dict[str, str], k_shift: int = 0) -> Path:
    """A study with a specialty and four generality benchmarks (the compact layout), for the named models."""
    for i, (name, kind) in enumerate(models.items()):
        mdir = root / "models" / name
        mdir.mkdir(parents=True)
        (mdir / "model.json").write_text(json.dumps({"key": name, "kind": kind, "run": name}))
        write_bench(mdir, SPIDER_DEV, ex_rows(10 + 5 * i, 40, False))
        rows = mmlu_rows(30 - k_shift * i)
        write_bench(mdir, MMLU, rows, **mmlu_extra(rows))
        for j, g in enumerate(GENS[1:]):
            write_bench(mdir, {**ZORBLAX, "name": g, "label": g.capitalize()}, zorblax_rows(20 + 5 * j - i))
    (root / "config.yaml").write_text(yaml.safe_dump({"name": "s", "specialty": "spider-dev", "generality": GENS}))
    build_report(root)
    return root


def table(out: str) -> list[list[str]]:
    """The table's rows as cells (header first)."""
    return [[c.strip() for c in re.split(r"[┃│]", line)[1:-1]] for line in out.splitlines()
            if line.startswith(("┃", "│"))]


def test_baseline_only_study_with_a_large_suite_shows_every_score(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "220")
    print_summary(study(tmp_path, {"baseline": "baseline"}))
    header, base = table(capsys.readouterr().out)
    assert header == ["model", "EX (dev)", "n", "MMLU", "Zorblax", "Quux", "Frob", "generality (mean)",
                      "Δ generality [95% CI]"]
    assert base[:3] == ["baseline", "25.0% [14.2, 40.2]", "40"]
    assert base[3:7] == ["50.0%", "40.0%", "50.0%", "60.0%"]
    assert base[7] == "50.0%" and base[8] == ""


def test_compact_layout_shows_score_and_delta_of_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "220")
    print_summary(study(tmp_path, {"baseline": "baseline", "lora": "run"}, k_shift=6))
    _, base, lora = table(capsys.readouterr().out)
    assert lora[1].startswith("37.5% [") and lora[3] == "40.0% (-10.0)" and lora[4] == "38.0% (-2.0)"
    assert re.fullmatch(r"-\d+\.\d \[-\d+\.\d, [-+]\d+\.\d\]", lora[8])
    assert base[3] == "50.0%"


def test_baseline_only_report_shows_scores_not_dashes(tmp_path: Path) -> None:
    md = (study(tmp_path, {"baseline": "baseline"}) / "report.md").read_text()
    section = md.split("### Generality scores", 1)[1].split("\n## ", 1)[0]
    assert "| MMLU | baseline | 50.0% | 60 | [37.7, 62.3] | — |" in section
    assert "Δ vs baseline" not in section and "Forgetting table" not in md


def test_generation_health_prints_a_mean_as_a_mean(tmp_path: Path) -> None:
    mdir = tmp_path / "models" / "baseline"
    mdir.mkdir(parents=True)
    (mdir / "model.json").write_text(json.dumps({"key": "baseline", "kind": "baseline"}))
    write_bench(mdir, ZORBLAX, zorblax_rows(10, 40), generation={"n": 40, "hit_limit": 4, "mean_tokens": 186.5})
    build_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| baseline | Zorblax | 40 |"))
    assert row.endswith("| 4 (10.0%) | 186.5 |")
    assert "4650" not in md


def test_boolq_answers_are_named_by_their_text(tmp_path: Path) -> None:
    """A yes/no task stuck on one answer is flagged as answering 'yes', not 'B'."""
    from sqlshift.benchmarks.general import BoolQ

    bench = BoolQ(BoolQ.Settings(benchmark="boolq"), tmp_path)
    rows = [{"id": str(i), "correct": i % 2 == 0, "pred": 1, "gold": i % 2, "n_choices": 2} for i in range(40)]
    metrics = bench.metrics(rows, rows)
    assert metrics["option_labels"] == {"0": "no", "1": "yes"}
    mdir = tmp_path / "models" / "baseline"
    mdir.mkdir(parents=True)
    (mdir / "model.json").write_text(json.dumps({"key": "baseline", "kind": "baseline"}))
    (mdir / "boolq").mkdir()
    (mdir / "boolq" / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (mdir / "boolq" / "metrics.json").write_text(json.dumps(metrics))
    build_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "answers 'yes' to 100%" in md and "answers 'B'" not in md


def test_every_specialty_benchmark_gets_a_column(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`sqlshift eval --benchmarks sparc,cosql` or a study with Spider's variants: every scored specialty
    benchmark is in the console table, not only the study's specialty."""
    monkeypatch.setenv("COLUMNS", "220")
    syn = {**SPIDER_DEV, "name": "spider-syn", "label": "EX (syn)", "split": "syn"}
    for i, name in enumerate(("baseline", "lora")):
        mdir = tmp_path / "models" / name
        mdir.mkdir(parents=True)
        (mdir / "model.json").write_text(json.dumps({"key": name, "kind": "baseline" if i == 0 else "run",
                                                     "run": None if i == 0 else name}))
        write_bench(mdir, SPIDER_DEV, ex_rows(10 + 10 * i, 40, False))
        write_bench(mdir, syn, ex_rows(8 + 4 * i, 20, False))
        rows = mmlu_rows(30)
        write_bench(mdir, MMLU, rows, **mmlu_extra(rows))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"name": "s", "specialty": "spider-dev",
                                                          "generality": ["mmlu"]}))
    build_report(tmp_path)
    print_summary(tmp_path)
    header, base, lora = table(capsys.readouterr().out)
    assert header[:4] == ["model", "EX (dev)", "n", "EX (syn)"] and "MMLU" in header
    assert base[3] == "40.0%" and lora[3] == "60.0% (+20.0)"
