"""The report's multi-turn tables (interaction match and question match by turn position, paired) against the
numbers the real SParC benchmark wrote and an independent McNemar, on constructed interactions over real sqlite
databases answered by scripted stand-in models."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from scipy import stats as sps

from sqlshift.report.load import load_study
from sqlshift.report.sections import build_sections
from sqlshift.report.summary import build_summary
from test_multiturn import FakeLM, bench, write_release

WRONG = "SELECT id FROM products"
FILTER = {"shop": "products WHERE price", "school": "students WHERE age"}
INTERACTIONS = [(db, [(f"Conversation {i}, turn {t}?", f"SELECT name FROM {FILTER[db]} > {10 * t}")
                      for t in range(1, 2 + i % 5)]) for i, db in enumerate(["school", "shop"] * 30)]
GOLD = {q: sql for _, turns in INTERACTIONS for q, sql in turns}
MODELS = {"baseline": ("baseline", "b", 3), "run1": ("run", "r", 5), "run2": ("run", "s", 4)}


def scripted(salt: str, wrong_every: int) -> FakeLM:
    """A model that answers a fixed, question-dependent share of turns wrong."""
    return FakeLM(lambda q: WRONG if zlib.crc32((salt + q).encode()) % wrong_every == 0 else GOLD[q])


@pytest.fixture(scope="module")
def study_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_release(tmp_path_factory.mktemp("data"), interactions=INTERACTIONS)
    run = tmp_path_factory.mktemp("run")
    for key, (kind, salt, every) in MODELS.items():
        mdir = run / "models" / key
        mdir.mkdir(parents=True)
        (mdir / "model.json").write_text(json.dumps({"key": key, "kind": kind,
                                                     "run": None if kind == "baseline" else key}))
        bench(root).evaluate(scripted(salt, every), mdir / "sparc")
    (run / "config.yaml").write_text(yaml.safe_dump({"specialty": "sparc", "data_dir": str(root)}))
    return run


def metrics(run: Path, key: str) -> dict[str, Any]:
    return json.loads((run / "models" / key / "sparc" / "metrics.json").read_text())


def interactions(run: Path, key: str) -> dict[int, bool]:
    """Interaction verdicts straight from results.jsonl."""
    out: dict[int, bool] = {}
    for line in (run / "models" / key / "sparc" / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        out[r["interaction"]] = out.get(r["interaction"], True) and r["correct"]
    return out


def mcnemar_p(a: dict[int, bool], b: dict[int, bool]) -> float:
    a_only = sum(a[i] and not b[i] for i in a)
    b_only = sum(b[i] and not a[i] for i in a)
    return sps.binomtest(a_only, a_only + b_only).pvalue if a_only + b_only else 1.0


def test_interaction_match_equals_the_benchmark_and_an_independent_test(study_run: Path) -> None:
    e = build_summary(load_study(study_run))["multiturn"]["sparc"]
    for key in MODELS:
        m, s = metrics(study_run, key), e["interaction"][key]
        assert (s["n_correct"], s["n"]) == (m["interaction_n_correct"], m["interaction_n"]) == (
            sum(interactions(study_run, key).values()), 60)
        assert s["ci95"] == pytest.approx(m["interaction_ci95"])
    base = interactions(study_run, "baseline")
    for key in ("run1", "run2"):
        t = e["interaction"][key]["vs_baseline"]
        assert t["p_value"] == pytest.approx(mcnemar_p(base, interactions(study_run, key)))
        assert t["diff_points"] == pytest.approx(100 * (e["interaction"][key]["n_correct"] - sum(base.values())) / 60)
    assert e["interaction"]["baseline"]["vs_baseline"] is None
    [pair] = e["pairwise"]
    assert (pair["a"], pair["b"]) == ("run1", "run2")
    assert pair["p_value"] == pytest.approx(mcnemar_p(interactions(study_run, "run1"),
                                                      interactions(study_run, "run2")))
    assert len({e["interaction"][k]["n_correct"] for k in MODELS}) == 3  # the scripts differ: tests can fail


def test_by_turn_equals_the_benchmarks_buckets(study_run: Path) -> None:
    e = build_summary(load_study(study_run))["multiturn"]["sparc"]
    for key in MODELS:
        got = {p: (s["n_correct"], s["n"]) for p, s in e["by_turn"][key].items()}
        assert got == {p: (s["n_correct"], s["n"]) for p, s in metrics(study_run, key)["by_turn"].items()}
        assert set(got) == {"1", "2", "3", "4+"}
    assert e["by_turn"]["run1"]["2"]["vs_baseline"]["n_paired"] == e["by_turn"]["run1"]["2"]["n"]


def test_report_shows_the_three_tables(study_run: Path) -> None:
    study = load_study(study_run)
    summary = build_summary(study)
    tables = {t.title: t for s in build_sections(study, summary, {}) for t in s.tables}
    inter = tables["Interaction match (every turn of a conversation right)"]
    s = summary["multiturn"]["sparc"]["interaction"]["run2"]
    assert ["SParC", "run2", f"{100 * s['accuracy']:.1f}%", f"{s['n_correct']}/60"] == next(
        r for r in inter.rows if r[1] == "run2")[:4]
    pair = summary["multiturn"]["sparc"]["pairwise"][0]
    [row] = tables["Interaction match, run against run"].rows
    assert row[:4] == ["SParC", "run1 vs run2", "60", f"{pair['diff_points']:+.1f}"]
    assert row[5] == f"{pair['a_only']} / {pair['b_only']}"
    assert [r[:2] for r in tables["Question match by turn position"].rows] == [["SParC", k] for k in MODELS]
