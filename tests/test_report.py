"""The report reads a run directory and must restate its numbers exactly, with tests paired by item id, for
every benchmark alike (including one it has never heard of)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from report_runs import (CONFIG, FAKE, MODELS, N_DEV, ZORBLAX, load_summary, make_run, write_bench, write_jsonl,
                         write_mmlu, zorblax_rows)
from sqlshift.report import build_report, print_summary
from sqlshift.report.stats import fmt_ci, pct, pts, pval

Report = tuple[Path, dict[str, Path]]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    run = make_run(tmp_path_factory.mktemp("run"))
    return run, build_report(run)


def test_every_artifact_exists(report: Report) -> None:
    run, paths = report
    for name in ("report.md", "report.html", "summary.json"):
        assert paths[name] == run / name and (run / name).stat().st_size > 0
    pngs = {p.name for p in (run / "plots").glob("*.png")}
    assert pngs == {"tradeoff.png", "curves.png", "hardness.png", "errors.png", "loss.png"}
    assert all((run / "plots" / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in pngs)


def test_summary_restates_every_metrics_file(report: Report) -> None:
    run, _ = report
    s = load_summary(run)
    assert (s["specialty"], s["generality"], s["composite"]) == ("spider-dev", ["mmlu", FAKE], True)
    assert s["benchmarks"][FAKE] == {"benchmark": FAKE, "label": "Zorblax", "axis": "generality", "kind": "generative"}
    for name, (info, *_rest) in MODELS.items():
        got = s["models"][info["key"]]["benchmarks"]
        on_disk = sorted(p.name for p in (run / "models" / name).iterdir() if p.is_dir())
        assert sorted(got) == on_disk
        for folder, e in got.items():
            m = json.loads((run / "models" / name / folder / "metrics.json").read_text())
            assert (e["accuracy"], e["n"], e["n_correct"], e["ci95"]) == (m["accuracy"], m["n"], m["n_correct"],
                                                                           m["ci95"])


def test_paired_tests_match_by_id_not_row_order(report: Report) -> None:
    run, _ = report
    s = load_summary(run)["models"]
    t = s["run1"]["benchmarks"]["spider-dev"]["vs_baseline"]
    # run1 got 10 more right and none fewer; the gold failure is excluded from the pairing
    assert (t["a_only"], t["b_only"], t["n_paired"]) == (0, 10, N_DEV)
    assert t["p_value"] == pytest.approx(2 * 0.5**10) and t["significant"]
    assert s["run1"]["benchmarks"]["spider-dev"]["delta_points"] == pytest.approx(25.0)
    lo, hi = t["diff_ci95"]
    assert lo < 25.0 < hi
    assert s["baseline"]["benchmarks"]["spider-dev"]["vs_baseline"] is None


def test_pairing_uses_the_intersection_of_ids(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    rows = [r for r in zorblax_rows(22) if r["id"] != "z-024"][::-1]  # one discordant item fewer, rows reversed
    write_bench(run / "models" / "run1", ZORBLAX, rows)
    build_report(run)
    t = load_summary(run)["models"]["run1"]["benchmarks"][FAKE]["vs_baseline"]
    assert t["n_paired"] == 49 and (t["a_only"], t["b_only"]) == (2, 0)


def test_unknown_benchmark_is_in_the_forgetting_table_with_ci_and_test(report: Report) -> None:
    run, paths = report
    s = load_summary(run)["models"]
    e = s["run1"]["benchmarks"][FAKE]
    assert e["vs_baseline"]["a_only"] == 3 and e["vs_baseline"]["b_only"] == 0
    md = paths["report.md"].read_text()
    row = (f"| Zorblax | run1 | {pct(e['accuracy'])} | 50 | {fmt_ci(e['ci95'])} | {pts(e['delta_points'])} | "
           f"{fmt_ci(e['vs_baseline']['diff_ci95'], scale=1.0)} | {pval(e['vs_baseline']['p_value'])} | ")
    assert row in md


def test_composite_is_the_mean_delta_with_a_seeded_bootstrap(report: Report, tmp_path: Path) -> None:
    run, _ = report
    s = load_summary(run)["models"]
    for key in ("run1", "run2", "run1@20"):
        c = s[key]["composite"]
        deltas = [s[key]["benchmarks"][f]["delta_points"] for f in ("mmlu", FAKE)]
        assert c["delta_points"] == pytest.approx(sum(deltas) / 2)
        assert c["ci95"][0] <= c["delta_points"] <= c["ci95"][1]
        assert c["benchmarks"] == ["mmlu", FAKE] and c["n_paired"] == [60, 50] and c["complete"]
    assert s["baseline"]["composite"] is None
    again = make_run(tmp_path)
    build_report(again)
    assert load_summary(again)["models"]["run1"]["composite"] == s["run1"]["composite"]


def test_composite_bootstrap_agrees_with_resampling_items() -> None:
    """The multinomial shortcut is the item bootstrap: compare with resampling items explicitly."""
    import numpy as np

    from sqlshift.report.stats import composite_delta

    rng = np.random.default_rng(1)
    pairs = [rng.choice([-1, 0, 0, 0, 1], size=n) for n in (300, 120)]
    fast = composite_delta(pairs, reps=4000, seed=3)
    boot = np.mean([[d[rng.integers(0, len(d), len(d))].mean() for d in pairs] for _ in range(4000)], axis=1)
    lo, hi = np.percentile(100 * boot, [2.5, 97.5])
    assert fast is not None and fast["ci95"] == pytest.approx([lo, hi], abs=0.6)
    assert fast["delta_points"] == pytest.approx(100 * np.mean([d.mean() for d in pairs]))


def test_pairwise_runs(report: Report) -> None:
    run, _ = report
    pw = load_summary(run)["pairwise"]
    t = next(x for x in pw["spider-dev"] if {x["a"], x["b"]} == {"run1", "run2"})
    assert (t["a_only"], t["b_only"]) == (7, 0) and t["p_value"] == pytest.approx(2 * 0.5**7)
    assert set(pw) == {"spider-dev", "spider-syn", "mmlu", FAKE}


def test_frontier_budget_and_noise_marks(report: Report) -> None:
    run, _ = report
    s = load_summary(run)
    t = s["tradeoff"]
    assert t["generality_axis"] == "composite"
    assert set(t["frontier"]) == {"run1@10", "run2", "run1@20", "run1"}
    assert t["excluded"] == {"run1-lambda0.5": "no MMLU"}
    assert s["budget"] == {"max_generality_drop_points": 2.0, "pick": "run2"}
    marks = {p["key"]: p["within_noise"] for p in t["points"]}
    # seed-to-seed range on EX (dev) is 15 points (run1 50%, run1-seed2 35%): run2's +7.5 is inside it
    assert marks["run2"] == ["specialty", "generality"] and marks["run1"] == [] and marks["baseline"] == []


def test_budget_option_changes_pick(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    build_report(run, max_drop=4.0)
    assert load_summary(run)["budget"]["pick"] == "run1@20"


def test_single_generality_benchmark_uses_its_accuracy_as_the_axis(tmp_path: Path) -> None:
    run = make_run(tmp_path, {**CONFIG, "generality": "mmlu"})
    build_report(run)
    s = load_summary(run)
    assert s["composite"] is False and s["models"]["run1"]["composite"] is None
    p = next(p for p in s["tradeoff"]["points"] if p["key"] == "run1")
    assert p["gen"] == pytest.approx(45.0)
    assert "### Composite generality score" not in (run / "report.md").read_text()


def test_one_element_list_is_not_a_composite_and_missing_names_are_said(tmp_path: Path) -> None:
    run = make_run(tmp_path, {**CONFIG, "generality": ["mmlu", "hellaswag"]})
    build_report(run)
    s = load_summary(run)
    assert (s["generality"], s["composite"], s["missing_benchmarks"]) == (["mmlu"], True, ["hellaswag"])
    assert "evaluated for no model: hellaswag" in (run / "report.md").read_text()
    build_report(make_run(tmp_path / "one", {**CONFIG, "generality": ["mmlu"]}))
    assert load_summary(tmp_path / "one")["composite"] is False


def test_markdown_holds_formatted_numbers_and_sections(report: Report) -> None:
    run, paths = report
    md = paths["report.md"].read_text()
    s = load_summary(run)["models"]
    for key, m in s.items():
        e = m["benchmarks"]["spider-dev"]
        assert f"| {key} | {pct(e['accuracy'])} | {e['n_correct']}/{e['n']} | {fmt_ci(e['ci95'])} |" in md
    for title in ("## Specialty", "### EX (dev)", "### Forgetting table", "### Composite generality score",
                  "## Run against run", "### Trade-off points", "### Seed-to-seed spread",
                  "### Text-to-SQL benchmarks side by side", "### EX (dev) by hardness",
                  "### Error examples of run1 (EX (dev))", "### Letter habit", "### Outputs per benchmark",
                  "### Coverage: evaluated, skipped and gold failures", "### Loss per run"):
        assert title in md
    assert "1 (ids q40)" in md and "2 missing database concert" in md
    assert "![tradeoff](plots/tradeoff.png)" in md


def test_below_chance_is_scorer_failure(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    write_mmlu(run / "models" / "run2", 3)  # 3/60: far below 25%
    build_report(run)
    s = load_summary(run)
    assert s["models"]["run2"]["benchmarks"]["mmlu"]["scorer_failure"] is True
    assert "run2" not in s["tradeoff"]["frontier"] and "scorer failure" in s["tradeoff"]["excluded"]["run2"]
    assert "SCORER FAILURE" in (run / "report.md").read_text()


def test_diverged_and_failed_runs_are_named(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    hist = [{"step": 10, "loss": 0.5, "grad_norm": 0.4}, {"step": 20, "loss": 0.6, "grad_norm": float("nan")}]
    (run / "train" / "run3").mkdir(parents=True)
    (run / "train" / "run3" / "log_history.json").write_text(json.dumps(hist))  # json writes NaN, as trl does
    (run / "failures.json").write_text(json.dumps({"run4": "loss is NaN at step 3"}))
    build_report(run)
    s = load_summary(run)
    assert s["diverged"] == {"run3": 20} and s["failures"] == {"run4": "loss is NaN at step 3"}
    md = (run / "report.md").read_text()
    assert "run3: training diverged at step 20" in md and "not evaluated" in md
    assert "| run3 | 20 | 0.5000 | 0.6000 | — | 20 | — |" in md
    assert "| run4 | — | — | — | — | — | loss is NaN at step 3 |" in md


def test_minimal_run_with_one_benchmark(tmp_path: Path) -> None:
    from report_runs import SPIDER_DEV, ex_rows

    write_bench(tmp_path / "models" / "baseline", SPIDER_DEV, ex_rows(2, 5, False))
    paths = build_report(tmp_path)
    assert {"report.md", "report.html", "summary.json"} <= set(paths)
    s = load_summary(tmp_path)
    assert s["generality"] == [] and s["tradeoff"]["frontier"] == []


def test_legacy_run_directory_is_read(tmp_path: Path) -> None:
    """Folders written before the Benchmark contract: no axis/kind/label, EX under execution_accuracy, no ids."""
    for name, dev_k, mmlu_k in (("baseline", 10, 30), ("run1", 20, 27)):
        mdir = tmp_path / "models" / name
        dev = [{"index": i, "db_id": "shop", "question": "?", "hardness": "easy", "correct": i < dev_k,
                "error_type": "correct" if i < dev_k else "wrong_result"} for i in range(N_DEV)]
        write_jsonl(mdir / "spider-dev" / "results.jsonl", dev)
        (mdir / "spider-dev" / "metrics.json").write_text(json.dumps(
            {"metric": "execution_accuracy", "split": "dev", "execution_accuracy": dev_k / N_DEV, "n": N_DEV,
             "n_correct": dev_k}))
        mm = [{"subject": s, "category": "STEM", "index": i, "gold": "A", "pred": "A" if 20 * j + i < mmlu_k else "B",
               "correct": 20 * j + i < mmlu_k} for j, s in enumerate(("astronomy", "anatomy", "virology"))
              for i in range(20)]
        write_jsonl(mdir / "mmlu" / "results.jsonl", mm)
        (mdir / "mmlu" / "metrics.json").write_text(json.dumps({"metric": "mmlu", "accuracy": mmlu_k / 60, "n": 60,
                                                                "n_correct": mmlu_k, "chance": 0.25}))
    build_report(tmp_path)
    s = load_summary(tmp_path)
    assert (s["specialty"], s["generality"], s["composite"]) == ("spider-dev", ["mmlu"], False)
    assert s["benchmarks"]["spider-dev"]["label"] == "EX (dev)" and s["benchmarks"]["mmlu"]["label"] == "MMLU"
    e = s["models"]["run1"]["benchmarks"]
    assert e["spider-dev"]["accuracy"] == 0.5 and e["spider-dev"]["vs_baseline"]["b_only"] == 10
    assert e["mmlu"]["vs_baseline"]["a_only"] == 3 and e["mmlu"]["vs_baseline"]["n_paired"] == 60
    assert s["budget"]["max_generality_drop_points"] == 2.0


def test_print_summary_has_the_default_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded default (EX (dev) + MMLU): model | EX (dev) | n | MMLU | n | ΔMMLU vs base, cells with CIs."""
    from report_runs import MMLU, SPIDER_DEV, ex_rows, mmlu_extra, mmlu_rows

    for name, kind in (("baseline", "baseline"), ("lora", "run")):
        mdir = tmp_path / "models" / name
        (mdir).mkdir(parents=True)
        (mdir / "model.json").write_text(json.dumps({"key": name, "kind": kind, "run": name}))
        write_bench(mdir, SPIDER_DEV, ex_rows(3, 41, False))
        rows = mmlu_rows(15)
        write_bench(mdir, MMLU, rows, **mmlu_extra(rows))
    build_report(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    print_summary(tmp_path)
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "model" in line)
    assert re.findall(r"[^┃│]+", header.strip("┃│ "))[0].strip() == "model"
    assert [c.strip() for c in re.split(r"[┃│]", header) if c.strip()] == [
        "model", "EX (dev)", "n", "MMLU", "n", "ΔMMLU vs base"]
    assert "7.3% [2.5, 19.4]" in out and "+0.0 pts" in out
    assert out.rstrip().splitlines()[-1] == f"report: {tmp_path / 'report.html'}"
