"""The report reads a run directory and must restate its numbers exactly, with correct tests and frontier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sqlshift.metrics.stats import accuracy_summary, below_chance_p
from sqlshift.report import (build_report, ci, paired_test, pareto_frontier, pct, pick_under_budget, pts,
                             pval)

N_DEV = 40
HARD = ("easy", "medium", "hard", "extra")
SUBJECTS = {"astronomy": "STEM", "philosophy": "humanities", "management": "other"}

#: model dir -> (model.json, indices correct on dev, n correct on syn (of 20), MMLU indices correct (of 60) or None)
MODELS: dict[str, tuple[dict[str, Any], set[int], int, set[int] | None]] = {
    "baseline": ({"key": "baseline", "kind": "baseline"}, set(range(10)), 4, set(range(30))),
    "run1": ({"key": "run1", "kind": "run", "run": "run1", "step": 30}, set(range(20)), 8, set(range(27))),
    "run2": ({"key": "run2", "kind": "run", "run": "run2", "step": 30}, set(range(10)) | {20, 21, 22}, 5,
             set(range(29))),
    "run1-step10": ({"key": "run1@10", "kind": "checkpoint", "run": "run1", "step": 10}, set(range(12)), 5,
                    set(range(30))),
    "run1-step20": ({"key": "run1@20", "kind": "checkpoint", "run": "run1", "step": 20}, set(range(16)), 6,
                    set(range(28))),
    "run1-lambda0.5": ({"key": "run1-lambda0.5", "kind": "interpolation", "run": "run1", "lambda": 0.5},
                       set(range(14)), 5, None),
}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def ex_rows(correct: set[int], n: int, with_gold_error: bool) -> list[dict[str, Any]]:
    """Per-example results; wrong ones cycle through error types; one gold failure at the end."""
    kinds = ("wrong_result", "syntax_error", "unknown_column")
    rows = [{"index": i, "db_id": "shop", "question": f"question {i}?", "hardness": HARD[i % 4],
             "correct": i in correct, "error_type": "correct" if i in correct else kinds[i % 3],
             "error": None if i in correct or i % 3 == 0 else f"error {i}", "pred_sql": f"SELECT {i}",
             "gold_sql": f"SELECT {i} FROM t"} for i in range(n)]
    if with_gold_error:
        rows.append({"index": n, "db_id": "shop", "question": "broken gold?", "hardness": "easy", "correct": False,
                     "error_type": "gold_error", "error": "no such table", "pred_sql": "SELECT 1",
                     "gold_sql": "SELECT * FROM nowhere"})
    return rows


def ex_metrics(rows: list[dict[str, Any]], split: str) -> dict[str, Any]:
    """metrics.json consistent with ``rows`` (as the EX scorer writes it)."""
    scored = [r for r in rows if r["error_type"] != "gold_error"]
    s = accuracy_summary([r["correct"] for r in scored])
    by_h = {h: accuracy_summary([r["correct"] for r in scored if r["hardness"] == h]) for h in HARD}
    by_e: dict[str, int] = {}
    for r in scored:
        by_e[r["error_type"]] = by_e.get(r["error_type"], 0) + 1
    gold = [r["index"] for r in rows if r["error_type"] == "gold_error"]
    return {"metric": "execution_accuracy", "split": split, "mode": "official", "execution_accuracy": s["accuracy"],
            "n": s["n"], "n_correct": s["n_correct"], "ci95": s["ci95"], "n_skipped": 2 if split == "dev" else 0,
            "skip_reasons": {"missing database concert": 2} if split == "dev" else {}, "n_gold_failed": len(gold),
            "gold_failed": gold, "by_hardness": by_h, "by_error_type": by_e,
            "generation": {"n": len(rows), "hit_limit": 3, "multi_line_extraction": 2, "empty": 1}}


def mmlu_files(correct: set[int]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """60 questions, 20 per subject, one subject per category."""
    rows = []
    for j, (subject, cat) in enumerate(SUBJECTS.items()):
        for i in range(20):
            g = j * 20 + i
            rows.append({"subject": subject, "category": cat, "index": i, "gold": "A",
                         "pred": "A" if g in correct else "B", "correct": g in correct, "scores": [0, 0, 0, 0]})

    def block(rs: list[dict[str, Any]]) -> dict[str, Any]:
        return accuracy_summary([r["correct"] for r in rs])

    s = block(rows)
    return rows, {"metric": "mmlu", "mode": "letter", "k_shot": 0, "chat": False, **s, "chance": 0.25,
                  "below_chance_p": below_chance_p(s["n_correct"], s["n"], 0.25),
                  "by_subject": {sub: block([r for r in rows if r["subject"] == sub]) for sub in SUBJECTS},
                  "by_category": {c: block([r for r in rows if r["category"] == c]) for c in SUBJECTS.values()},
                  "subjects": list(SUBJECTS)}


def make_run(root: Path) -> Path:
    """A fabricated but self-consistent run directory: baseline, two runs, two checkpoints, one λ without MMLU."""
    for name, (info, dev_ok, syn_k, mmlu_ok) in MODELS.items():
        mdir = root / "models" / name
        mdir.mkdir(parents=True)
        (mdir / "model.json").write_text(json.dumps(info))
        for split, rows in (("dev", ex_rows(dev_ok, N_DEV, True)), ("syn", ex_rows(set(range(syn_k)), 20, False))):
            write_jsonl(mdir / f"spider-{split}" / "results.jsonl", rows)
            (mdir / f"spider-{split}" / "metrics.json").write_text(json.dumps(ex_metrics(rows, split)))
        if mmlu_ok is not None:
            rows, metrics = mmlu_files(mmlu_ok)
            write_jsonl(mdir / "mmlu" / "results.jsonl", rows)
            (mdir / "mmlu" / "metrics.json").write_text(json.dumps(metrics))
    hist = [{"step": s, "loss": 2.0 / s, "epoch": s / 30} for s in range(1, 31)] + [{"step": 30, "eval_loss": 0.2}]
    for run in ("run1", "run2"):
        (root / "train" / run).mkdir(parents=True)
        (root / "train" / run / "log_history.json").write_text(json.dumps(hist))
    return root


def load_summary(run: Path) -> dict[str, Any]:
    """summary.json with its model list keyed by model key, for easy lookups."""
    s = json.loads((run / "summary.json").read_text())
    assert isinstance(s["models"], list)
    s["models"] = {m["key"]: m for m in s["models"]}
    return s


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    run = make_run(tmp_path_factory.mktemp("run"))
    return run, build_report(run, max_mmlu_drop=2.0)


def test_every_artifact_exists(report: tuple[Path, dict[str, Path]]) -> None:
    run, paths = report
    for name in ("report.md", "report.html", "summary.json"):
        assert paths[name] == run / name and (run / name).stat().st_size > 0
    pngs = {p.name for p in (run / "plots").glob("*.png")}
    assert pngs == {"tradeoff.png", "curves.png", "hardness.png", "errors.png", "loss.png"}
    assert all((run / "plots" / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in pngs)


def test_summary_restates_metrics_files(report: tuple[Path, dict[str, Path]]) -> None:
    run, _ = report
    summary = load_summary(run)
    assert set(summary["models"]) == {info["key"] for info, *_ in MODELS.values()}
    for name, (info, *_rest) in MODELS.items():
        got = summary["models"][info["key"]]
        for split in ("dev", "syn"):
            m = json.loads((run / "models" / name / f"spider-{split}" / "metrics.json").read_text())
            e = got["ex"][split]
            assert (e["accuracy"], e["n"], e["n_correct"], e["ci95"]) == (
                m["execution_accuracy"], m["n"], m["n_correct"], m["ci95"])
        mfile = run / "models" / name / "mmlu" / "metrics.json"
        if mfile.is_file():
            m = json.loads(mfile.read_text())
            assert (got["mmlu"]["accuracy"], got["mmlu"]["n"], got["mmlu"]["ci95"]) == (m["accuracy"], m["n"], m["ci95"])
            for cat, c in m["by_category"].items():
                assert got["mmlu"]["by_category"][cat]["accuracy"] == c["accuracy"]
        else:
            assert got["mmlu"] is None


def test_significance_in_summary(report: tuple[Path, dict[str, Path]]) -> None:
    run, _ = report
    s = load_summary(run)["models"]
    t = s["run1"]["ex"]["dev"]["vs_baseline"]
    # run1 got 10 more right and none fewer; the gold failure is excluded from the pairing
    assert (t["a_only"], t["b_only"], t["n_paired"]) == (0, 10, N_DEV)
    assert t["p_value"] == pytest.approx(2 * 0.5**10) and t["label"] == "significant"
    assert s["run1"]["ex"]["dev"]["delta_points"] == pytest.approx(25.0)
    t2 = s["run2"]["ex"]["dev"]["vs_baseline"]
    assert (t2["b_only"], t2["p_value"], t2["label"]) == (3, pytest.approx(0.25), "not significant")
    assert s["run1"]["mmlu"]["vs_baseline"]["a_only"] == 3
    assert s["run1"]["mmlu"]["delta_points"] == pytest.approx(-5.0)
    assert s["baseline"]["ex"]["dev"]["vs_baseline"] is None


def test_pairwise_runs(report: tuple[Path, dict[str, Path]]) -> None:
    run, _ = report
    pw = load_summary(run)["pairwise"]
    t = next(x for x in pw["spider-dev"] if {x["a"], x["b"]} == {"run1", "run2"})
    assert (t["a_only"], t["b_only"]) == (10, 3) and t["p_value"] == pytest.approx(0.0923, abs=1e-4)
    assert "mmlu" in pw and "spider-syn" in pw


def test_frontier_and_budget_in_summary(report: tuple[Path, dict[str, Path]]) -> None:
    run, _ = report
    s = load_summary(run)
    assert set(s["tradeoff"]["frontier"]) == {"run1@10", "run2", "run1@20", "run1"}
    assert s["tradeoff"]["excluded"] == {"run1-lambda0.5": "no MMLU"}
    assert s["budget"] == {"max_mmlu_drop_points": 2.0, "pick": "run2"}


def test_markdown_tables_hold_formatted_numbers(report: tuple[Path, dict[str, Path]]) -> None:
    run, _ = report
    md = (run / "report.md").read_text()
    s = load_summary(run)["models"]
    for key, m in s.items():
        e = m["ex"]["dev"]
        row = f"| {key} | dev | {pct(e['accuracy'])} | {e['n_correct']}/{e['n']} | {ci(e['ci95'])} |"
        assert row in md
        if m["mmlu"]:
            assert f"| {key} | all | {pct(m['mmlu']['accuracy'])} | " in md
    assert f"| {pts(25.0)} | {pval(2 * 0.5**10)} | significant |" in md
    for title in ("### Execution accuracy", "### MMLU", "### Robustness", "### Trade-off and Pareto frontier",
                  "### Pairwise comparisons between runs", "### Generation health", "### Coverage",
                  "### Error examples of run1", "### Training"):
        assert title in md
    assert "run2 (EX 32.5%, MMLU 48.3%)" in md and "the best model is run2" in md
    assert "1 (indices 40)" in md and "2 missing database concert" in md
    assert "![tradeoff](plots/tradeoff.png)" in md


def test_budget_option_changes_pick(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    build_report(run, max_mmlu_drop=4.0)
    assert load_summary(run)["budget"]["pick"] == "run1@20"


def test_below_chance_is_scorer_failure(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    rows, metrics = mmlu_files(set(range(3)))  # 3/60: far below 25%
    write_jsonl(run / "models" / "run2" / "mmlu" / "results.jsonl", rows)
    (run / "models" / "run2" / "mmlu" / "metrics.json").write_text(json.dumps(metrics))
    build_report(run)
    s = load_summary(run)
    assert s["models"]["run2"]["mmlu"]["scorer_failure"] is True
    assert "run2" not in s["tradeoff"]["frontier"] and "scorer failure" in s["tradeoff"]["excluded"]["run2"].lower()
    assert "SCORER FAILURE" in (run / "report.md").read_text()


def test_diverged_run_without_models_is_named_in_summary_and_training_table(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    hist = [{"step": 10, "loss": 0.5, "grad_norm": 0.4}, {"step": 20, "loss": 0.6, "grad_norm": float("nan")}]
    (run / "train" / "run3").mkdir(parents=True)
    (run / "train" / "run3" / "log_history.json").write_text(json.dumps(hist))  # json writes NaN, as trl does
    build_report(run)
    assert load_summary(run)["diverged"] == {"run3": 20}
    md = (run / "report.md").read_text()
    assert "run3: training diverged at step 20" in md and "not evaluated" in md
    assert "| run3 | 20 | 0.5000 | 0.6000 | — | 20 |" in md


def test_minimal_run_without_mmlu_checkpoints_or_variants(tmp_path: Path) -> None:
    mdir = tmp_path / "models" / "baseline"
    rows = ex_rows({0, 1}, 5, False)
    write_jsonl(mdir / "spider-dev" / "results.jsonl", rows)
    (mdir / "spider-dev" / "metrics.json").write_text(json.dumps(ex_metrics(rows, "dev")))
    paths = build_report(tmp_path)
    assert {"report.md", "report.html", "summary.json"} <= set(paths)
    s = load_summary(tmp_path)
    assert s["models"]["baseline"]["mmlu"] is None and s["tradeoff"]["frontier"] == []


def test_paired_test_known_p() -> None:
    a = [True] * 10 + [False] * 5
    b = [False] * 10 + [False] * 5
    t = paired_test(dict(enumerate(a)), dict(enumerate(b)))
    assert t is not None and (t["a_only"], t["b_only"]) == (10, 0)
    assert t["p_value"] == pytest.approx(2 * 0.5**10) and t["diff_points"] == pytest.approx(-100 * 10 / 15)
    assert paired_test({0: True}, {1: True}) is None
    same = paired_test({0: True, 1: False}, {0: True, 1: False})
    assert same is not None and same["p_value"] == 1.0 and same["label"] == "not significant"


def P(key: str, ex: float, mmlu: float, kind: str = "run") -> dict[str, Any]:
    return {"key": key, "ex": ex, "mmlu": mmlu, "kind": kind}


def test_pareto_frontier() -> None:
    pts_ = [P("base", 0.2, 0.5, "baseline"), P("a", 0.4, 0.45), P("b", 0.3, 0.5), P("c", 0.3, 0.4),
            P("d", 0.4, 0.45), P("e", 0.1, 0.1)]
    front = pareto_frontier(pts_)
    # b dominates base (same MMLU, more EX); a and d tie and both stay; c and e are dominated
    assert [p["key"] for p in front] == ["b", "a", "d"]
    assert pareto_frontier([]) == []
    assert [p["key"] for p in pareto_frontier([P("x", 0.5, 0.5)])] == ["x"]


def test_pick_under_budget() -> None:
    pts_ = [P("base", 0.2, 0.50, "baseline"), P("a", 0.6, 0.40), P("b", 0.45, 0.48), P("c", 0.45, 0.49),
            P("d", 0.30, 0.515)]
    assert pick_under_budget(pts_, 2.0)["key"] == "c"  # b ties on EX, c keeps more MMLU
    assert pick_under_budget(pts_, 10.0)["key"] == "a"  # exactly at the budget counts
    assert pick_under_budget(pts_, 0.5)["key"] == "d"
    assert pick_under_budget(pts_[1:], 2.0) is None  # no baseline to measure drops from
    assert pick_under_budget([P("base", 0.2, 0.5, "baseline"), P("z", 0.1, 0.3)], 1.0)["key"] == "base"


def test_interpolation_paths_run_from_baseline_through_lambdas_to_the_run() -> None:
    """The WiSE-FT curve of a run: λ=0 is the baseline, λ=1 the run, the measured λ points in between in order."""
    from sqlshift.report import interpolation_paths

    def pt(key: str, kind: str, run: str | None = None, lam: float | None = None) -> dict:
        return {"key": key, "kind": kind, "run": run, "lambda": lam, "ex": 0.5, "mmlu": 0.5}

    points = [pt("baseline", "baseline"), pt("r", "run", "r"), pt("r-lambda0.75", "interpolation", "r", 0.75),
              pt("r-lambda0.25", "interpolation", "r", 0.25), pt("other", "run", "other")]
    paths = interpolation_paths(points, "baseline")
    assert list(paths) == ["r"]
    assert [p["key"] for p in paths["r"]] == ["baseline", "r-lambda0.25", "r-lambda0.75", "r"]


def test_letter_habit_counts_answers(report: tuple[Path, dict[str, Path]]) -> None:
    """The letter table restates the predicted-letter counts of results.jsonl and appears in the report."""
    run, paths = report
    s = load_summary(run)["models"]
    rows = [json.loads(line) for line in (run / "models" / "run1" / "mmlu" / "results.jsonl").read_text().splitlines()]
    letters = s["run1"]["mmlu"]["letters"]
    assert letters["pred_counts"] == {L: sum(r["pred"] == L for r in rows) for L in "ABCD"}
    assert letters["gold_counts"]["A"] == len(rows)
    assert "### Letter habit" in paths["report.md"].read_text()


def test_frontier_text_names_who_dominates_whom() -> None:
    from sqlshift.report import frontier_text

    def pt(key: str, ex: float, mmlu: float) -> dict:
        return {"key": key, "ex": ex, "mmlu": mmlu}

    points = [pt("base", 0.5, 0.40), pt("spec", 0.7, 0.39), pt("gen", 0.6, 0.45), pt("mid", 0.55, 0.41)]
    summary = {"tradeoff": {"points": points, "frontier": ["gen", "spec"], "excluded": {}}, "baseline": "base",
               "budget": {"pick": "spec", "max_mmlu_drop_points": 2.0}}
    text = "\n".join(frontier_text(summary))
    assert "gen dominates base, mid." in text
    assert "spec dominates" not in text  # it beats nobody on both axes: it trades MMLU for EX
    assert "The baseline is dominated by gen, mid" in text
