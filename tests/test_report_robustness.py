"""The per-item robustness table: the pairing of Spider-Syn / Realistic / DK with dev on the real data, and the
table's numbers against an independent computation from results files the real Spider benchmark wrote."""

from __future__ import annotations

import itertools
import json
import shutil
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from scipy import stats as sps

from report_runs import make_run
from sqlshift.benchmarks.spider import SpiderBenchmark, SpiderSettings
from sqlshift.data.pairing import PAIRED_SPLITS, dev_pairing, normalise_question, normalise_sql
from sqlshift.data.spider import VARIANTS
from sqlshift.report.load import load_study
from sqlshift.report.robustness import sign_flip_p
from sqlshift.report.sections import build_sections
from sqlshift.report.summary import build_summary
from voting_runs import WRONG, FixedSamples

DB = "concert_singer"  # the first 45 dev questions: Syn's first 45 are their rewordings
TITLE = "Robustness: each variant against the same model's dev answers"


def read(path: Path) -> Any:
    return json.loads(path.read_text())


# ---------------------------------------------------------------- the pairing on the real data


def test_pairing_on_the_real_data(data_dir: Path) -> None:
    """Counts per split, no dev item paired twice, every pair the same database and gold SQL, reworded."""
    dev = read(data_dir / "spider" / "dev.json")
    expected = {"syn": 849, "realistic": 328, "dk": 52}
    for split in PAIRED_SPLITS:
        p = dev_pairing(data_dir, split)
        var_dir = data_dir / {"syn": "spider_syn", "realistic": "spider_realistic", "dk": "spider_dk"}[split]
        var = read(var_dir / VARIANTS[split][1])
        assert p.n_variant == len(var) and len(p.pairs) == expected[split], (split, p.counts())
        assert len(p.pairs) + sum(p.unpaired.values()) == len(var)
        assert len(set(p.pairs.values())) == len(p.pairs), f"{split}: a dev item paired twice"
        for v, d in p.pairs.items():
            assert var[v]["db_id"] == dev[d]["db_id"]
            assert normalise_sql(var[v]["query"]) == normalise_sql(dev[d]["query"])
            q = var[v].get(VARIANTS[split][2]) or var[v]["question"]
            assert normalise_question(q) != normalise_question(dev[d]["question"])
            if split == "syn":
                assert v == d
    assert dev_pairing(data_dir, "realistic").unpaired["ambiguous: several dev questions share this gold SQL"] == 20
    assert dev_pairing(data_dir, "syn").unpaired["gold SQL differs from today's dev item (2020 dev fixes)"] == 32


# ---------------------------------------------------------------- the sign-flip test


def brute_sign_flip(d: list[int]) -> float:
    t = abs(sum(d))
    sums = [sum(s * x for s, x in zip(signs, d)) for signs in itertools.product((1, -1), repeat=len(d))]
    return sum(abs(s) >= t for s in sums) / len(sums)


@pytest.mark.parametrize("d", [[1, 1, 2, -1, 0, 2, 1], [2, -2, 1, -1], [0, 0], [1] * 9 + [-2, 2, 0]])
def test_sign_flip_p_is_the_exact_permutation_p(d: list[int]) -> None:
    assert sign_flip_p(np.array(d)) == pytest.approx(brute_sign_flip(d), abs=1e-12)


# ---------------------------------------------------------------- the table from real benchmark results


@pytest.fixture(scope="module")
def mini_data(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database of the real data: dev's and Syn's first 45 questions, Realistic's items on it."""
    root = tmp_path_factory.mktemp("data")
    (root / "spider" / "database" / DB).mkdir(parents=True)
    shutil.copy(data_dir / "spider" / "database" / DB / f"{DB}.sqlite", root / "spider" / "database" / DB)
    tables = [t for t in read(data_dir / "spider" / "tables.json") if t["db_id"] == DB]
    (root / "spider" / "tables.json").write_text(json.dumps(tables))
    dev = read(data_dir / "spider" / "dev.json")[:45]
    assert {e["db_id"] for e in dev} == {DB}
    (root / "spider" / "dev.json").write_text(json.dumps(dev))
    for sub, split in (("spider_syn", "syn"), ("spider_realistic", "realistic")):
        rows = read(data_dir / sub / VARIANTS[split][1])
        (root / sub).mkdir()
        (root / sub / VARIANTS[split][1]).write_text(json.dumps(rows[:45] if split == "syn" else
                                                                [r for r in rows if r["db_id"] == DB]))
    return root


def golds(root: Path) -> dict[str, str]:
    """question -> gold SQL over the three files (what the stand-in engine answers when right)."""
    out = {}
    for split in ("dev", "syn", "realistic"):
        sub = {"dev": "spider", "syn": "spider_syn", "realistic": "spider_realistic"}[split]
        for r in read(root / sub / VARIANTS[split][1]):
            out[r.get(VARIANTS[split][2]) or r["question"]] = r["query"]
    return out


def script_for(gold: dict[str, str], salt: str, wrong_every: int) -> dict[str, tuple[str, list[str]]]:
    """A model that answers a fixed, question-dependent share of questions wrong."""
    return {q: (WRONG, []) for q in gold if zlib.crc32((salt + q).encode()) % wrong_every == 0}


def write_study(root: Path, run: Path) -> Path:
    gold = golds(root)
    for key, kind, script in (("baseline", "baseline", script_for(gold, "b", 3)),
                              ("run1", "run", script_for(gold, "r", 2)), ("run2", "run", script_for(gold, "s", 2))):
        mdir = run / "models" / key
        mdir.mkdir(parents=True)
        (mdir / "model.json").write_text(json.dumps({"key": key, "kind": kind, "run": None if kind == "baseline"
                                                     else key}))
        for split in ("dev", "syn", "realistic"):
            bench = SpiderBenchmark(SpiderSettings(benchmark="spider", split=split), root)
            bench.evaluate(FixedSamples(gold, script), mdir / bench.out_name)
    (run / "config.yaml").write_text(yaml.safe_dump({"specialty": "spider-dev", "data_dir": str(root)}))
    return run


@pytest.fixture(scope="module")
def study_run(mini_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_study(mini_data, tmp_path_factory.mktemp("run"))


def independent(run: Path, key: str, split: str) -> dict[str, Any]:
    """Paired numbers straight from results.jsonl: each variant row's dev_index against the dev row's verdict."""
    def rows(folder: str) -> list[dict[str, Any]]:
        text = (run / "models" / key / folder / "results.jsonl").read_text()
        return [r for r in map(json.loads, text.splitlines()) if r["error_type"] != "gold_error"]

    dev = {r["index"]: r["correct"] for r in rows("spider-dev")}
    pairs = [(dev[r["dev_index"]], r["correct"]) for r in rows(f"spider-{split}")
             if r["dev_index"] is not None and r["dev_index"] in dev]
    n, dev_only = len(pairs), sum(a and not b for a, b in pairs)
    var_only = sum(b and not a for a, b in pairs)
    p = sps.binomtest(dev_only, dev_only + var_only).pvalue if dev_only + var_only else 1.0
    return {"n": n, "dev": sum(a for a, _ in pairs) / n, "var": sum(b for _, b in pairs) / n,
            "delta": 100 * (var_only - dev_only) / n, "p": p,
            "drops": {r["dev_index"]: int(dev[r["dev_index"]]) - int(r["correct"]) for r in rows(f"spider-{split}")
                      if r["dev_index"] is not None and r["dev_index"] in dev}}


def test_rows_carry_dev_index(study_run: Path, mini_data: Path) -> None:
    rows = [json.loads(x) for x in (study_run / "models" / "run1" / "spider-syn" / "results.jsonl").read_text()
            .splitlines()]
    pairs = dev_pairing(mini_data, "syn").pairs
    assert {r["index"]: r["dev_index"] for r in rows} == {i: pairs.get(i) for i in range(45)}
    assert 0 < len(pairs) < 45
    dev_rows = (study_run / "models" / "run1" / "spider-dev" / "results.jsonl").read_text()
    assert "dev_index" not in dev_rows


def test_table_equals_an_independent_computation(study_run: Path) -> None:
    summary = build_summary(load_study(study_run))
    rob = summary["robustness"]
    assert set(rob) == {"baseline", "run1", "run2"} and set(rob["run1"]) == {"spider-syn", "spider-realistic"}
    for split in ("syn", "realistic"):
        for key in ("baseline", "run1"):
            e, ind = rob[key][f"spider-{split}"], independent(study_run, key, split)
            assert e["n_paired"] == ind["n"] > 5
            assert e["dev_accuracy"] == pytest.approx(ind["dev"]) and e["variant_accuracy"] == pytest.approx(ind["var"])
            assert e["delta_points"] == pytest.approx(ind["delta"]) and e["p_value"] == pytest.approx(ind["p"])
            assert e["diff_ci95"][0] <= e["delta_points"] <= e["diff_ci95"][1]
        assert rob["baseline"][f"spider-{split}"]["vs_baseline"] is None
        m, b = independent(study_run, "run1", split)["drops"], independent(study_run, "baseline", split)["drops"]
        d = [m[i] - b[i] for i in sorted(m.keys() & b.keys())]
        vs = rob["run1"][f"spider-{split}"]["vs_baseline"]
        assert vs["n_paired"] == len(d)
        assert vs["diff_points"] == pytest.approx(100 * np.mean(d))
        assert vs["drop_points"] - vs["baseline_drop_points"] == pytest.approx(vs["diff_points"])
        assert vs["p_value"] == pytest.approx(sign_flip_p(np.array(d)))
        assert vs["diff_ci95"][0] <= vs["diff_points"] <= vs["diff_ci95"][1]
    table = next(t for s in build_sections(load_study(study_run), summary, {}) for t in s.tables if t.title == TITLE)
    e = rob["run1"]["spider-syn"]
    row = next(r for r in table.rows if r[:2] == ["run1", "EX (syn)"])
    assert row[2] == str(e["n_paired"]) and row[5] == f"{e['delta_points']:+.1f}"
    assert len(table.rows) == 6


def test_run_against_run_drops_equal_an_independent_computation(study_run: Path) -> None:
    """run2's drop − run1's drop per variant, straight from the two models' results files."""
    summary = build_summary(load_study(study_run))
    got = {t["variant"]: t for t in summary["robustness_pairwise"]}
    assert set(got) == {"spider-syn", "spider-realistic"}
    for split in ("syn", "realistic"):
        t = got[f"spider-{split}"]
        a, b = independent(study_run, "run1", split)["drops"], independent(study_run, "run2", split)["drops"]
        d = [b[i] - a[i] for i in sorted(a.keys() & b.keys())]
        assert (t["a"], t["b"], t["n_paired"]) == ("run1", "run2", len(d))
        assert t["diff_points"] == pytest.approx(100 * np.mean(d)) and any(d)
        assert t["drop_points"] - t["reference_drop_points"] == pytest.approx(t["diff_points"])
        assert t["p_value"] == pytest.approx(sign_flip_p(np.array(d)))
    table = next(t for s in build_sections(load_study(study_run), summary, {}) for t in s.tables
                 if t.title.startswith("Robustness, run against run"))
    row = next(r for r in table.rows if r[:2] == ["run1 vs run2", "EX (syn)"])
    assert row[5] == f"{got['spider-syn']['diff_points']:+.1f}"


def test_rows_without_dev_index_pair_through_the_data_folder(study_run: Path, tmp_path: Path) -> None:
    """Results cached before rows carried dev_index: the study's data folder gives the same pairing."""
    old = tmp_path / "old"
    shutil.copytree(study_run, old)
    for path in old.glob("models/*/spider-*/results.jsonl"):
        rows = [json.loads(x) for x in path.read_text().splitlines()]
        path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "dev_index"}) + "\n" for r in rows))
    assert build_summary(load_study(old))["robustness"] == build_summary(load_study(study_run))["robustness"]
    (old / "config.yaml").write_text(yaml.safe_dump({"specialty": "spider-dev", "data_dir": str(tmp_path / "gone")}))
    assert "robustness" not in build_summary(load_study(old))


def test_study_without_pairable_variants_has_no_table(tmp_path: Path) -> None:
    """The fixture's Syn rows have neither dev_index nor a data folder: summary and report as before."""
    run = make_run(tmp_path / "run")
    summary = build_summary(load_study(run))
    assert "robustness" not in summary
    titles = [t.title for s in build_sections(load_study(run), summary, {}) for t in s.tables]
    assert TITLE not in titles and "Text-to-SQL benchmarks side by side" in titles
