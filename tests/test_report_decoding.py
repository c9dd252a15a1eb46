"""Greedy vs voted decoding in the report: the paired figures restated from results.jsonl, written by the real Spider
benchmark driven by a stand-in LM with fixed samples; a study without voting reports exactly as before."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from scipy.stats import binomtest

from report_runs import load_summary, make_run
from sqlshift.data.demo import ensure_demo
from sqlshift.jsonl import read_jsonl
from sqlshift.report import build_report
from sqlshift.report.stats import fmt_ci, newcombe_paired_ci, pct, pts, pval
from sqlshift.stats import wilson_ci
from voting_runs import gains_and_losses, write_model

VOTED = "spider-dev-vote2"
#: model -> (greedy wrong and voted right, greedy right and voted wrong, tied and wrong both ways)
PLAN = {"baseline": (2, 1, 1), "run1": (6, 0, 0)}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    demo = ensure_demo(tmp_path_factory.mktemp("demo"))
    root = tmp_path_factory.mktemp("voted")
    for key, plan in PLAN.items():
        write_model(root, demo, key, "baseline" if key == "baseline" else "run", gains_and_losses(demo, *plan))
    build_report(root)
    return root


def by_hand(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The paired figures straight from the rows, without the report's code."""
    scored = [r for r in rows if r["error_type"] != "gold_error"]
    g, v = [r["greedy_correct"] for r in scored], [r["correct"] for r in scored]
    vo = sum(b and not a for a, b in zip(g, v))
    go = sum(a and not b for a, b in zip(g, v))
    both = sum(a and b for a, b in zip(g, v))
    n = len(scored)
    return {"n": n, "greedy": sum(g), "voted": sum(v), "voted_only": vo, "greedy_only": go,
            "p": binomtest(vo, vo + go, 0.5).pvalue if vo + go else 1.0, "delta": 100 * (sum(v) - sum(g)) / n,
            "ci": [100 * x for x in newcombe_paired_ci(both, go, vo, n - both - vo - go)],
            "distinct": sum(len(r["vote"]["counts"]) for r in rows) / len(rows),
            "failed": sum(r["vote"]["failed"] for r in rows) / len(rows),
            "seconds": {k: sum(r["seconds"][k] for r in rows) for k in ("greedy", "sample", "vote")}}


@pytest.mark.parametrize("key", list(PLAN))
def test_summary_restates_the_paired_figures_of_the_rows(run: Path, key: str) -> None:
    rows = read_jsonl(run / "models" / key / VOTED / "results.jsonl")
    want, d = by_hand(rows), load_summary(run)["models"][key]["benchmarks"][VOTED]["decoding"]
    gained, lost, _ = PLAN[key]
    assert (want["voted_only"], want["greedy_only"]) == (gained, lost)  # the script did what it says
    assert d["source"] == "results.jsonl" and d["settings"]["samples"] == 2 and d["n"] == want["n"] == 41
    assert (d["greedy"]["n_correct"], d["voted"]["n_correct"]) == (want["greedy"], want["voted"])
    t = d["vs_greedy"]
    assert (t["voted_only"], t["greedy_only"]) == (gained, lost)
    assert t["p_value"] == pytest.approx(want["p"]) and t["diff_points"] == pytest.approx(want["delta"])
    assert t["diff_ci95"] == pytest.approx(want["ci"]) and t["diff_ci95"][0] < t["diff_points"] < t["diff_ci95"][1]
    assert d["mean_distinct_results"] == pytest.approx(want["distinct"])
    assert d["mean_failed"] == pytest.approx(want["failed"])
    assert d["seconds"] == pytest.approx({k: round(s, 2) for k, s in want["seconds"].items()}, abs=0.01)
    assert d["n_changed"] == gained + lost and d["rules"]["no_result"] == 1


def test_the_table_shows_greedy_and_voted_side_by_side(run: Path) -> None:
    md = (run / "report.md").read_text()
    assert "## Execution-guided decoding" in md and "### Greedy vs voted decoding" in md
    s = load_summary(run)
    name = s["benchmarks"][VOTED]["label"]
    for key in PLAN:
        want = by_hand(read_jsonl(run / "models" / key / VOTED / "results.jsonl"))
        n, greedy, voted = want["n"], want["greedy"], want["voted"]
        row = (f"| {key} | {name} | {n} | {pct(greedy / n)} {fmt_ci(wilson_ci(greedy, n))} | "
               f"{pct(voted / n)} {fmt_ci(wilson_ci(voted, n))} | {pts(want['delta'])} | "
               f"{fmt_ci(want['ci'], scale=1.0)} | {want['voted_only']} / {want['greedy_only']} | {pval(want['p'])} | ")
        assert row in md
        assert f"| {want['distinct']:.2f} | {want['failed']:.2f} | " in md.split(row)[1].splitlines()[0]
    assert "Greedy vs voted decoding" in (run / "report.html").read_text()
    # run1's six gains against no loss: p = 2 * 0.5**6, worded as the paired test supports
    assert pval(2 * 0.5**6) in md and "voted higher (p=0.0312)" in md


@pytest.mark.parametrize("key", list(PLAN))
def test_any_candidate_right_is_the_ceiling_beside_the_vote(run: Path, key: str) -> None:
    """The script's samples: gold twice (gained), wrong twice (lost), gold and broken (tied, and every unscripted
    question), nothing that runs (the last question): every question but the last has a right candidate."""
    gained, lost, _ = PLAN[key]
    n = len(read_jsonl(run / "models" / key / VOTED / "results.jsonl"))
    d = load_summary(run)["models"][key]["benchmarks"][VOTED]["decoding"]
    c = d["any_candidate"]
    assert (c["n_correct"], c["n"]) == (n - 1, n)
    assert c["mean_sample_accuracy"] == pytest.approx((n - 1 + gained - lost) / (2 * n))
    metrics = json.loads((run / "models" / key / VOTED / "metrics.json").read_text())
    assert metrics["vote"]["any_candidate"] == c
    cells = f"| {pct((n - 1) / n)} {fmt_ci(wilson_ci(n - 1, n))} | {100 * c['mean_sample_accuracy']:.1f}% |"
    assert cells in (run / "report.md").read_text()


def test_rows_written_before_samples_were_judged_show_no_ceiling(run: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(run, tmp_path / "run")
    path = copy / "models" / "run1" / VOTED / "results.jsonl"
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "samples_correct"}) + "\n"
                            for r in read_jsonl(path)))
    build_report(copy)
    d = load_summary(copy)["models"]["run1"]["benchmarks"][VOTED]["decoding"]
    assert d["any_candidate"] is None and d["vs_greedy"] == load_summary(run)["models"]["run1"]["benchmarks"][
        VOTED]["decoding"]["vs_greedy"]
    assert any(line.startswith("| run1 |") and "| — | — |" in line for line in (copy / "report.md").read_text()
               .splitlines() if "voted" in line)


def test_only_voted_benchmarks_get_a_decoding_block(run: Path) -> None:
    for m in load_summary(run)["models"].values():
        assert "decoding" not in m["benchmarks"]["spider-dev"] and "decoding" in m["benchmarks"][VOTED]


def test_rows_win_over_metrics_json_and_metrics_json_is_the_fallback(run: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(run, tmp_path / "run")
    path = copy / "models" / "run1" / VOTED / "metrics.json"
    metrics = json.loads(path.read_text())
    honest = load_summary(run)["models"]["run1"]["benchmarks"][VOTED]["decoding"]
    path.write_text(json.dumps(metrics | {"vote": {**metrics["vote"], "paired": {
        "voted_only": 40, "greedy_only": 0, "p_value": 1e-12}}}))
    build_report(copy)
    assert load_summary(copy)["models"]["run1"]["benchmarks"][VOTED]["decoding"]["vs_greedy"] == honest["vs_greedy"]
    path.write_text(json.dumps(metrics))
    (path.parent / "results.jsonl").unlink()
    build_report(copy)
    d = load_summary(copy)["models"]["run1"]["benchmarks"][VOTED]["decoding"]
    assert d["source"] == "metrics.json" and "(from metrics.json: no per-question rows)" in (
        copy / "report.md").read_text()
    for k in ("voted_only", "greedy_only", "p_value", "diff_points"):
        assert d["vs_greedy"][k] == pytest.approx(honest["vs_greedy"][k])
    assert d["vs_greedy"]["diff_ci95"] == pytest.approx(honest["vs_greedy"]["diff_ci95"])
    assert (d["greedy"], d["voted"]) == (honest["greedy"], honest["voted"])


def test_a_study_without_voting_reports_exactly_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report with the decoding hooks switched off is the report before they existed: byte for byte equal."""
    import sqlshift.report.sections as sections
    import sqlshift.report.summary as summary

    run = make_run(tmp_path / "run")
    build_report(run)
    now = {f: (run / f).read_text() for f in ("report.md", "report.html", "summary.json")}
    assert "decoding" not in now["summary.json"] and "voted" not in now["report.md"]
    monkeypatch.setattr(sections, "decoding_table", lambda summary: None)
    monkeypatch.setattr(summary, "decoding_entry", lambda b, alpha: None)
    build_report(run)
    assert {f: (run / f).read_text() for f in now} == now
