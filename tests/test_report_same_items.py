"""The same questions under other settings: the real Spider benchmark scored twice on the demo's dev split, plain
and with sample rows in the schema prompt, by a stand-in LM whose answers depend on whether the prompt shows rows;
the report pairs each model's two results per question."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from scipy.stats import binomtest

from report_runs import load_summary, make_run
from sqlshift.benchmarks.spider import SpiderBenchmark, SpiderSettings
from sqlshift.data.demo import ensure_demo
from sqlshift.jsonl import read_jsonl
from sqlshift.lm.api import GenerateRequest, Generation
from sqlshift.report import build_report
from sqlshift.report.stats import pts, pval
from voting_runs import WRONG, FixedSamples, demo_gold

ROWS = "spider-dev-rows2"
#: model -> (questions right only with rows, right only without rows)
PLAN = {"baseline": (5, 1), "run1": (0, 3)}


class RowsAware(FixedSamples):
    """Gold SQL, except: wrong without rows on ``helped`` questions, wrong with rows on ``hurt`` ones."""

    def __init__(self, gold: dict[str, str], helped: set[str], hurt: set[str]) -> None:
        super().__init__(gold, {})
        self.helped, self.hurt, self.saw_rows = helped, hurt, 0

    def generate(self, requests: Sequence[GenerateRequest], **kw: Any) -> list[Generation]:
        out = []
        for r in requests:
            q = r.prompt.split("\nQuestion: ")[1].split("\n")[0]
            rows = "example rows from" in r.prompt
            self.saw_rows += rows
            wrong = q in (self.hurt if rows else self.helped)
            out.append(Generation(WRONG if wrong else self.gold[q], 5, False))
        return out


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    demo = ensure_demo(tmp_path_factory.mktemp("demo"))
    root = tmp_path_factory.mktemp("rows")
    gold = demo_gold(demo)
    qs = list(gold)
    for key, (helped, hurt) in PLAN.items():
        mdir = root / "models" / key
        mdir.mkdir(parents=True)
        run_name = None if key == "baseline" else key
        info = {"key": key, "kind": "baseline" if run_name is None else "run", "run": run_name}
        (mdir / "model.json").write_text(json.dumps(info))
        lm = RowsAware(gold, set(qs[:helped]), set(qs[helped:helped + hurt]))
        for settings in ({}, {"name": ROWS, "prompt": {"sample_rows": 2}}):
            bench = SpiderBenchmark(SpiderSettings(benchmark="spider", **settings), demo)
            bench.evaluate(lm, mdir / bench.out_name)
        assert lm.saw_rows == len(qs)  # the rows reached the prompts of the second setting only
    build_report(root)
    return root


def verdicts(run: Path, key: str, folder: str) -> dict[str, bool]:
    return {str(r["id"]): r["correct"] for r in read_jsonl(run / "models" / key / folder / "results.jsonl")
            if r["error_type"] != "gold_error"}


@pytest.mark.parametrize("key", list(PLAN))
def test_each_model_is_paired_with_its_own_specialty_result(run: Path, key: str) -> None:
    plain, rows = verdicts(run, key, "spider-dev"), verdicts(run, key, ROWS)
    only_rows = sum(rows[i] and not plain[i] for i in plain)
    only_plain = sum(plain[i] and not rows[i] for i in plain)
    assert (only_rows, only_plain) == PLAN[key]  # the stand-in did what the plan says
    e = load_summary(run)["same_questions"][ROWS][key]
    t = e["vs_specialty"]
    assert (t["b_only"], t["a_only"], t["n_paired"]) == (only_rows, only_plain, len(plain))
    assert t["p_value"] == pytest.approx(binomtest(only_rows, only_rows + only_plain, 0.5).pvalue)
    assert t["diff_points"] == pytest.approx(100 * (sum(rows.values()) - sum(plain.values())) / len(plain))
    assert e["specialty"]["n_correct"] == sum(plain.values()) and e["setting"]["n_correct"] == sum(rows.values())


def test_the_table_reads_as_the_summary(run: Path) -> None:
    md = (run / "report.md").read_text()
    assert "## Prompt and decoding settings" in md and "### Same questions, other settings" in md
    s = load_summary(run)
    assert s["benchmarks"][ROWS]["label"] == "EX (dev, 2 sample rows)"  # the setting is named where it is shown
    for key in PLAN:
        t = s["same_questions"][ROWS][key]["vs_specialty"]
        row = next(line for line in md.splitlines() if line.startswith(f"| {key} | {s['benchmarks'][ROWS]['label']}"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2] == str(t["n_paired"]) and cells[5] == pts(t["diff_points"])
        assert cells[7] == f"{t['b_only']} / {t['a_only']}" and cells[8] == pval(t["p_value"])


def test_only_other_settings_of_the_specialty_split_are_paired(tmp_path: Path) -> None:
    """spider-syn (another split) and MMLU are not the specialty's questions: no table, no summary key."""
    run = make_run(tmp_path)
    build_report(run)
    assert "same_questions" not in load_summary(run)
    assert "Same questions, other settings" not in (run / "report.md").read_text()
