"""`sqlshift compare`: several studies' final points on one plot and in one table, each against its own baseline."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from report_runs import CONFIG, MODELS, make_run
from typer.testing import CliRunner

from sqlshift.cli import app
from sqlshift.errors import ConfigError
from sqlshift.report import build_report
from sqlshift.report.compare import build_compare, load_compared


def study(root: Path, model: str) -> Path:
    run = make_run(root, {**CONFIG, "model": model})
    build_report(run)
    return run


def test_compare_two_studies_through_the_cli(tmp_path: Path) -> None:
    small, large = study(tmp_path / "a", "Org/Small-0.5B"), study(tmp_path / "b", "/models/Large-1.5B")
    res = CliRunner().invoke(app, ["compare", str(small), str(large / "summary.json"), "-o", str(tmp_path / "cmp")])
    assert res.exit_code == 0, res.output
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 1000
    assert "data:image/png;base64," in (tmp_path / "cmp" / "compare.html").read_text()
    rows = [line.split(" | ") for line in md.splitlines() if line.startswith("| Small-0.5B") or
            line.startswith("| Large-1.5B")]
    finals = [k for k, (info, *_) in MODELS.items() if info["kind"] in ("baseline", "run")]
    assert len(rows) == 2 * len(finals)  # checkpoints and λ points stay in each study's own report
    summary = json.loads((small / "summary.json").read_text())
    spec = {p["key"]: p["spec"] for p in summary["tradeoff"]["points"]}
    run1 = next(r for r in rows if r[0] == "| Small-0.5B" and r[1] == "run1")
    assert run1[2] == f"{100 * spec['run1']:.1f}"
    assert run1[4] == f"{100 * (spec['run1'] - spec['baseline']):+.1f}"


def test_compare_refuses_studies_on_other_axes(tmp_path: Path) -> None:
    a = study(tmp_path / "a", "m")
    other = copy.deepcopy(CONFIG)
    other["generality"] = ["mmlu"]
    b = make_run(tmp_path / "b", {**other, "model": "m"})
    build_report(b)
    with pytest.raises(ConfigError, match=str(b / "summary.json")):
        load_compared([a, b])
    with pytest.raises(ConfigError, match="no summary.json"):
        load_compared([a, tmp_path / "nowhere"])
    with pytest.raises(ConfigError, match="one --label per study"):
        build_compare([a, a], tmp_path / "out", ["only one"])
