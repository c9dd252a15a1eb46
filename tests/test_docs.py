"""The documents a user reads agree with the code and with each other."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_settings_reference_is_up_to_date() -> None:
    """docs/SETTINGS.md is generated from the Settings classes: regenerate it when a key changes."""
    from sqlshift.study.reference import reference_markdown

    doc = (ROOT / "docs" / "SETTINGS.md").read_text(encoding="utf-8")
    assert doc == reference_markdown(), ("docs/SETTINGS.md is stale: run "
                                         "`PYTHONPATH=src python -m sqlshift.study.reference > docs/SETTINGS.md`")


def test_settings_reference_lists_every_benchmark_and_its_own_keys() -> None:
    from sqlshift.benchmarks.api import available, get_benchmark
    from sqlshift.study.reference import reference_markdown

    doc = reference_markdown()
    for name in available():
        body = doc.split(f"## `benchmark: {name}`", 1)[1].split("\n## ", 1)[0]
        own = set(get_benchmark(name).Settings.model_fields) - {"benchmark", "name", "sample", "sample_seed",
                                                                "points", "data_dir"}
        assert {k for k in own if f"| `{k}` |" not in body} == set(), name
    assert "| `max_new_tokens` | int | 192 | as Spider's" in doc  # a trailing comment becomes the meaning


def test_packaged_layout_matches_data_md() -> None:
    """`sqlshift layout` (for wheel users) prints the same layout block as docs/DATA.md."""
    from sqlshift.data.layout import LAYOUT

    md = (ROOT / "docs" / "DATA.md").read_text(encoding="utf-8")
    assert md.split("## Layout\n\n```\n", 1)[1].split("```", 1)[0] == LAYOUT


def test_readme_and_data_md_agree_on_the_real_data_test_time() -> None:
    times = {f: re.findall(r"SQLSHIFT_DATA_DIR=\S+ python -m pytest -q`?[^.]*?about (\d+) minutes",
                           (ROOT / f).read_text(encoding="utf-8").replace("\n", " "))
             for f in ("README.md", "docs/DATA.md")}
    assert len(set(sum(times.values(), []))) <= 1, times



def test_eval_mmlu_falls_back_to_the_data_dir_as_data_md_says(tmp_path: Path) -> None:
    from test_cli import one_error, sqlshift

    md = (ROOT / "docs" / "DATA.md").read_text(encoding="utf-8").replace("\n", " ")
    assert "`sqlshift eval-mmlu` fall back to it" in md
    err = one_error(sqlshift("eval-mmlu", "-o", str(tmp_path / "o"), SQLSHIFT_DATA_DIR=str(tmp_path / "nodata")))
    assert str(tmp_path / "nodata" / "mmlu") in err and "--mmlu-dir" not in err.split("(fix")[0]
