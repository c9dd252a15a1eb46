"""What a user meets at the command line: one convention for every verb, one line per error, no traceback.

Each test runs ``python -m sqlshift`` in a subprocess, as a user would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

SRC = Path(__file__).resolve().parents[1] / "src"


def sqlshift(*args: str, cwd: Path | None = None, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m sqlshift ARGS`` with the source tree on the path; stdout and stderr captured."""
    full = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1", "COLUMNS": "200", **env}
    return subprocess.run([sys.executable, "-m", "sqlshift", *args], capture_output=True, text=True, cwd=cwd,
                          env=full, timeout=timeout)


def write_yaml(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def one_error(res: subprocess.CompletedProcess[str]) -> str:
    """The error output: exit 2, no traceback, each hint once."""
    err = res.stderr
    assert res.returncode == 2, (res.returncode, res.stdout, err)
    assert "Traceback" not in err + res.stdout
    assert err.count("(fix:") <= 1, err
    return err


# ------------------------------------------------------------------------------------------------ errors (item 9)


def test_unknown_keys_get_did_you_mean_and_training_keys_point_at_overrides(tmp_path: Path) -> None:
    cfg = write_yaml(tmp_path / "bad.yaml", {
        "model": "embedded", "learning_rate": 1e-4,
        "benchmarks": [{"benchmark": "mmlu", "batch_sz": 4}], "runs": [{"name": "r", "config": "embedded-cpu"}]})
    err = one_error(sqlshift("run", str(cfg), "-o", str(tmp_path / "out")))
    assert "batch_sz: unknown key (did you mean batch_size?)" in err
    assert "learning_rate: unknown key" in err and "overrides: {learning_rate: ...}" in err
    assert "configs/ for examples" not in err
    assert not (tmp_path / "out").exists()  # stopped before any output folder was made


def test_unset_variable_is_named_without_a_project_path(tmp_path: Path) -> None:
    cfg = write_yaml(tmp_path / "bad.yaml", {"data_dir": "${SQLSHIFT_NOPE_DIR}/x", "benchmarks": [
        {"benchmark": "mmlu"}]})
    err = one_error(sqlshift("run", str(cfg), "-o", str(tmp_path / "out")))
    assert "SQLSHIFT_NOPE_DIR" in err and "../shared" not in err and "export SQLSHIFT_NOPE_DIR=" in err


def test_failed_validation_prints_no_step_count_and_logs_the_error(tmp_path: Path) -> None:
    cfg = write_yaml(tmp_path / "study.yaml", {"data_dir": str(tmp_path / "nodata"), "benchmarks": [
        {"benchmark": "spider", "split": "dev"}]})
    res = sqlshift("run", str(cfg), "-o", str(tmp_path / "out"))
    err = one_error(res)
    assert "steps run" not in res.stdout + err
    assert "sqlshift layout" in err and "docs/DATA.md" not in err
    log = (tmp_path / "out" / "run.log").read_text()
    assert "stopped: the experiment cannot run" in log and "nodata" in log


# ------------------------------------------------------------------------------------------------ conventions (item 8)


def test_bare_sqlshift_prints_help_that_says_what_it_does() -> None:
    res = sqlshift()
    assert res.returncode == 0 and res.stdout.startswith("Usage: sqlshift")
    assert "Text-to-SQL gains and what it costs" in res.stdout and "thin wrapper" not in res.stdout
    assert "`" not in res.stdout.split("Commands:")[0]  # no reStructuredText backticks


def test_version() -> None:
    from sqlshift import __version__

    res = sqlshift("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"sqlshift {__version__}"


def test_every_option_of_every_verb_has_help_and_out_is_spelled_one_way() -> None:
    """Walks the click command tree: new verbs (another module's included) follow the convention too."""
    import typer.main

    from sqlshift.cli import app

    group = typer.main.get_command(app)
    writers = []
    for name, cmd in group.commands.items():
        assert (cmd.help or "").strip(), f"{name} has no help"
        for p in cmd.params:
            if p.name == "help":
                continue
            assert (getattr(p, "help", None) or "").strip(), f"{name} {p.name} has no help text"
            flags = set(getattr(p, "opts", [])) | set(getattr(p, "secondary_opts", []))
            if "--out" in flags:
                writers.append(name)
                assert "-o" in flags, f"{name}: --out without -o"
            assert not (flags & {"--output", "--output-dir", "--out-dir"}) or p.hidden, f"{name}: {flags}"
    assert {"run", "train", "predict", "eval-sql", "eval-mmlu", "export-model", "fetch-general", "demo"} <= set(writers)


def test_run_help_describes_the_whole_study() -> None:
    res = sqlshift("run", "--help")
    text = " ".join(res.stdout.split())
    assert res.returncode == 0 and "Spider EX and MMLU" not in text
    assert "generality suite" in text and "report" in text and "-o, --out" in text


def test_old_option_names_still_work_with_a_deprecation_line(tmp_path: Path) -> None:
    res = sqlshift("demo", str(tmp_path / "d1"))
    assert res.returncode == 0 and (tmp_path / "d1" / "spider" / "dev.json").is_file()
    assert "the positional DEST is deprecated; use --out" in res.stderr
    res = sqlshift("demo", "-o", str(tmp_path / "d2"))
    assert res.returncode == 0 and (tmp_path / "d2" / "spider").is_dir() and "deprecated" not in res.stderr
    (tmp_path / "f.txt").write_text("a file: the run stops at once")
    res = sqlshift("run", "--output", str(tmp_path / "f.txt"))
    assert "--output is deprecated; use --out" in res.stderr and "is an existing file" in one_error(res)


def test_train_takes_its_config_as_the_first_argument(tmp_path: Path) -> None:
    """Like run: `train CONFIG key=value`; the old --config still works (with a deprecation line)."""
    bad = tmp_path / "t.yaml"
    bad.write_text("learning_rat: 0.1\n")
    res = sqlshift("train", str(bad), "lora.r=4", "-o", str(tmp_path / "o"))
    err = one_error(res)
    assert "learning_rat" in err and "did you mean learning_rate" in err
    res = sqlshift("train", "--config", str(bad), "lora.r=4", "--output", str(tmp_path / "o"))
    assert "did you mean learning_rate" in one_error(res)
    assert "--config is deprecated" in res.stderr and "--output is deprecated" in res.stderr
    res = sqlshift("train", "lora.r=4", "-o", str(tmp_path / "o"))
    assert res.returncode == 2 and "looks like an override" in res.stderr


# ------------------------------------------------------------------------------------------------ outputs (items 3, 4)


def test_an_output_folder_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    for args in (("run", "-o", str(afile)), ("predict", "--spider-dir", str(tmp_path), "--out", str(afile)),
                 ("eval-mmlu", "--mmlu-dir", str(tmp_path), "-o", str(afile))):
        err = one_error(sqlshift(*args))
        assert f"{afile} is an existing file" in err and len(err.strip().splitlines()) == 1, (args, err)


def test_predict_refuses_a_file_name_for_its_folder(tmp_path: Path) -> None:
    err = one_error(sqlshift("predict", "--spider-dir", str(tmp_path), "--out", str(tmp_path / "d" / "mine.jsonl")))
    assert "names a file, but predict writes a folder" in err and f"--out {tmp_path / 'd'}" in err
    assert not (tmp_path / "d").exists()


# ------------------------------------------------------------------------------------------------ configs (item 5)


def test_configs_lists_what_ships_and_run_takes_a_study_by_name(tmp_path: Path) -> None:
    res = sqlshift("configs")
    assert res.returncode == 0
    for name in ("default", "general-embedded", "qwen15-study", "embedded-cpu", "seed-run1"):
        assert f"  {name} " in res.stdout, name
    res = sqlshift("run", "general-embeded", "-o", str(tmp_path / "o"))
    assert "did you mean general-embedded?" in one_error(res)
    env = {"SQLSHIFT_DATA_DIR": str(tmp_path / "nodata")}
    err = one_error(sqlshift("run", "general-embedded", "-o", str(tmp_path / "o"), **env))
    assert "the experiment cannot run" in err and "nodata" in err  # found by name, validated against the data


def test_layout_prints_the_data_folder_layout() -> None:
    res = sqlshift("layout")
    assert res.returncode == 0 and res.stdout.startswith("$SQLSHIFT_DATA_DIR/") and "mmlu/" in res.stdout


# ------------------------------------------------------------------------------------------------ the model (item 7)


def test_a_model_typo_is_one_line_at_once_offline(tmp_path: Path) -> None:
    import time

    t0 = time.monotonic()
    err = one_error(sqlshift("run", "--model", "embeded", "-o", str(tmp_path / "o")))
    assert "model 'embeded'" in err and "did you mean embedded?" in err and "HF_HUB_OFFLINE" in err
    assert time.monotonic() - t0 < 30 and not (tmp_path / "o").exists()


def test_an_unreachable_hub_is_one_line_at_once(tmp_path: Path) -> None:
    """With the Hub allowed but unreachable (a closed local port): no download retries, one line."""
    import time

    t0 = time.monotonic()
    res = sqlshift("predict", "--model", "someone/no-such-model", "--spider-dir", str(tmp_path), "-o",
                   str(tmp_path / "o"), HF_HUB_OFFLINE="0", HF_ENDPOINT="http://127.0.0.1:9")
    err = one_error(res)
    assert "cannot be reached" in err and "HF_HUB_OFFLINE=1" in err
    assert time.monotonic() - t0 < 30


def test_output_piped_into_head_is_not_an_error() -> None:
    full = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1"}
    res = subprocess.run(f"'{sys.executable}' -m sqlshift configs | true", shell=True, capture_output=True,
                         text=True, env=full, timeout=120)  # the reader is gone before sqlshift writes
    assert "error" not in res.stderr and "Broken pipe" not in res.stderr, res.stderr
