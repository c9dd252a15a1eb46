"""Issue 27, reliability round 3: Ctrl-C in seconds, no write through a planted link, bounded reads, one-line errors.

Signals, links and the CLI are tested through a real ``python -m sqlshift`` subprocess; the heavy timing (Ctrl-C
with hostile queries, before/after) lives in benchmarks/bench_hostile.py (``--cases ctrlc``).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")
GOLD = "SELECT count(*) FROM t"
#: never returns on its own: only the per-query timeout (or a kill) ends it
ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def make_spider(root: Path, n: int = 3) -> Path:
    """Spider layout: database ``h`` (table t, 50 rows), ``n`` dev questions whose gold is ``GOLD``."""
    (root / "database" / "h").mkdir(parents=True)
    con = sqlite3.connect(root / "database" / "h" / "h.sqlite")
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"row {i}") for i in range(50)])
    con.commit()
    con.close()
    (root / "dev.json").write_text(json.dumps([{"db_id": "h", "query": GOLD, "question": f"q{i}"}
                                               for i in range(n)]))
    (root / "tables.json").write_text(json.dumps([{"db_id": "h", "table_names_original": ["t"],
                                                   "column_names_original": [[-1, "*"], [0, "id"], [0, "s"]],
                                                   "column_types": ["text", "number", "text"]}]))
    return root


def write_preds(path: Path, sqls: list[str]) -> Path:
    path.write_text("".join(json.dumps({"index": i, "sql": s}) + "\n" for i, s in enumerate(sqls)))
    return path


def sqlshift(*args: str | Path, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1", "DEEPEVAL_TELEMETRY_OPT_OUT": "YES"}
    return subprocess.run([sys.executable, "-m", "sqlshift", *map(str, args)], env=env, cwd=cwd, text=True,
                          capture_output=True, timeout=timeout)


def last_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


# -------------------------------------------------------------------------------------------- 1 Ctrl-C in seconds


def test_ctrl_c_during_hostile_queries_exits_in_seconds_keeps_verdicts_and_resumes(tmp_path: Path) -> None:
    spider = make_spider(tmp_path / "spider", n=8)
    pred = write_preds(tmp_path / "pred.jsonl", [GOLD, GOLD] + [ENDLESS] * 6)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "sqlshift", "eval-sql", "--spider-dir", str(spider), "--pred", str(pred),
           "--out", str(out), "--timeout", "120"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = out / "results.partial.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (partial.is_file() and partial.read_text().count("\n") >= 2):
        time.sleep(0.1)
    assert partial.is_file(), "the two quick verdicts were never saved"
    time.sleep(1.0)  # the endless queries are running now
    workers = _children(proc.pid)
    assert workers, "no sandbox workers running"
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    took = time.monotonic() - start
    assert proc.returncode == 130, err
    assert took < 10, f"Ctrl-C took {took:.1f} s"
    assert "rerun the same command to resume" in err.strip().splitlines()[-1]
    assert "Traceback" not in err
    time.sleep(0.5)
    assert not [w for w in workers if Path(f"/proc/{w}").exists() and "zombie" not in
                Path(f"/proc/{w}/status").read_text().lower()], "sandbox workers outlived Ctrl-C"
    saved = [json.loads(line) for line in partial.read_text().splitlines()]
    assert [r["error_type"] for r in saved] == ["correct", "correct"]
    assert not (out / "results.jsonl").exists()
    # resume: saved verdicts are reused (marked here to tell them from recomputed ones); the endless predictions
    # are replaced by quick ones so the rerun is short (a verdict's key includes its SQL)
    partial.write_text("".join(json.dumps({**r, "error": "kept"}) + "\n" for r in saved))
    quick = write_preds(tmp_path / "quick.jsonl", [GOLD, GOLD] + ["SELECT 1"] * 6)
    done = sqlshift("eval-sql", "--spider-dir", spider, "--pred", quick, "--out", out, "--timeout", "120")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["error"] for r in rows[:2]] == ["kept", "kept"]
    assert [r["error_type"] for r in rows[2:]] == ["wrong_result"] * 6
    assert not partial.exists()


# -------------------------------------------------------------------------------------------- 2 planted links


@pytest.mark.parametrize("name", [".lock", "results.jsonl", "metrics.json", "results.partial.jsonl"])
def test_eval_sql_never_writes_through_a_planted_link(tmp_path: Path, name: str) -> None:
    spider = make_spider(tmp_path / "spider")
    pred = write_preds(tmp_path / "pred.jsonl", [GOLD] * 3)
    victim = tmp_path / "victim"
    victim.write_text("IMPORTANT\n")
    out = tmp_path / "o"
    out.mkdir()
    (out / name).symlink_to(victim)
    r = sqlshift("eval-sql", "--spider-dir", spider, "--pred", pred, "--out", out)
    assert r.returncode == 2, r.stderr
    assert victim.read_text() == "IMPORTANT\n"
    assert f"{out / name} is a symbolic link" in last_line(r) and "Traceback" not in r.stderr
    assert (out / name).is_symlink()


def _baseline_only_config(tmp_path: Path) -> Path:
    """The embedded demo study without training runs: everything before the model load happens at once."""
    cfg = tmp_path / "study.yaml"
    cfg.write_text("name: links\nmodel: embedded\ndata_dir: demo\nbenchmarks:\n  - benchmark: spider\n    split: dev\n"
                   "    sample: 2\n    max_new_tokens: 8\nruns: []\n")
    return cfg


@pytest.mark.parametrize("name", [".lock", "run.log", "config.yaml", "models/baseline/model.json"])
def test_run_never_writes_through_a_planted_link(tmp_path: Path, name: str) -> None:
    victim = tmp_path / "victim"
    victim.write_text("IMPORTANT\n")
    run_dir = tmp_path / "run"
    (run_dir / name).parent.mkdir(parents=True)
    (run_dir / name).symlink_to(victim)
    r = sqlshift("run", _baseline_only_config(tmp_path), "--output", run_dir, timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    assert victim.read_text() == "IMPORTANT\n"
    assert f"{run_dir / name} is a symbolic link" in last_line(r) and "Traceback" not in r.stderr


@pytest.mark.parametrize("folder", ["models", "models/baseline", "data"])
def test_run_never_writes_through_a_planted_folder_link(tmp_path: Path, folder: str) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_dir = tmp_path / "run"
    (run_dir / folder).parent.mkdir(parents=True, exist_ok=True)
    (run_dir / folder).symlink_to(elsewhere, target_is_directory=True)
    r = sqlshift("run", _baseline_only_config(tmp_path), "--output", run_dir, timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    assert [p for p in elsewhere.rglob("*") if not p.is_dir()] == []  # no file lands there (empty folders may)
    assert f"{run_dir / folder} is a symbolic link" in last_line(r) and "Traceback" not in r.stderr


def test_link_safe_helpers_refuse_links_fifos_and_keep_targets(tmp_path: Path) -> None:
    from sqlshift.errors import ConfigError
    from sqlshift.outputs import atomic_write_text, open_append

    victim = tmp_path / "victim"
    victim.write_text("IMPORTANT\n")
    (tmp_path / "a").symlink_to(victim)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "fifo")
    for name in ("a", "dangling"):
        with pytest.raises(ConfigError, match="is a symbolic link"):
            atomic_write_text(tmp_path / name, "x")
        with pytest.raises(ConfigError, match="is a symbolic link"):
            open_append(tmp_path / name)
    with pytest.raises(ConfigError, match="not a regular file"):
        open_append(tmp_path / "fifo")  # would block forever without O_NONBLOCK
    assert victim.read_text() == "IMPORTANT\n" and not (tmp_path / "nowhere").exists()
    with open_append(tmp_path / "plain") as fh:
        fh.write("ok\n")
    assert (tmp_path / "plain").read_text() == "ok\n"


# -------------------------------------------------------------------------------------------- 3 sample rows bounded


def test_sample_rows_of_a_never_ending_view_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlshift.sql import prompts

    monkeypatch.setattr(prompts, "SAMPLE_TIMEOUT_S", 1.0)  # the bound itself is what is tested, not its size

    db = tmp_path / "v.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE ok (id INTEGER, s TEXT)")
    con.execute("INSERT INTO ok VALUES (1, 'one')")
    # a view that scans forever without producing a row: LIMIT cannot stop it
    con.execute("CREATE VIEW endless AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                "SELECT x FROM c WHERE x < 0")
    con.commit()
    con.close()
    entry = {"db_id": "v", "table_names_original": ["ok", "endless"],
             "column_names_original": [[-1, "*"], [0, "id"], [0, "s"], [1, "x"]],
             "column_types": ["text", "number", "text", "number"]}
    start = time.monotonic()
    schema = prompts.build_schema(entry, db, sample_rows=3)
    took = time.monotonic() - start
    assert took < prompts.SAMPLE_TIMEOUT_S + 10, f"sample rows took {took:.1f} s"
    blocks = {t.name: t.samples for t in schema.tables}
    assert blocks["ok"] == "/* 1 example rows from ok:\nid | s\n1 | one\n*/"
    assert blocks["endless"] == ""


@pytest.mark.slow
def test_predict_sample_rows_on_a_never_ending_view_finishes(tmp_path: Path) -> None:
    """The CLI end to end (loads the embedded model): a table replaced by an endless view costs 5 s, not a hang."""
    demo = tmp_path / "demo"
    assert sqlshift("demo", demo).returncode == 0
    spider = demo / "spider"
    dev = json.loads((spider / "dev.json").read_text())[:1]
    (spider / "dev.json").write_text(json.dumps(dev))
    db = dev[0]["db_id"]
    con = sqlite3.connect(spider / "database" / db / f"{db}.sqlite")
    table = con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    con.execute(f"ALTER TABLE {table} RENAME TO {table}_real")
    con.execute(f"CREATE VIEW {table} AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                "SELECT x FROM c WHERE x < 0")
    con.commit()
    con.close()
    r = sqlshift("predict", "--spider-dir", spider, "--out", tmp_path / "out", "--sample-rows", "3",
                 "--max-new-tokens", "8", timeout=400)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"no sample rows for table {table} (timeout" in r.stderr
    assert (tmp_path / "out" / "predictions.jsonl").read_text().count("\n") == 1


# -------------------------------------------------------------------------------------------- 4 adapter fingerprint


def test_adapter_fingerprint_is_streamed_and_refuses_devices(tmp_path: Path) -> None:
    from sqlshift.errors import ModelError
    from sqlshift.lm.models import adapter_fingerprint

    good = tmp_path / "good"
    good.mkdir()
    (good / "adapter_model.safetensors").write_bytes(b"w" * 3_000_000)
    import hashlib
    assert adapter_fingerprint(good) == hashlib.sha256(b"w" * 3_000_000).hexdigest()[:16]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "adapter_model.safetensors").symlink_to("/dev/zero")
    start = time.monotonic()
    with pytest.raises(ModelError, match="adapter_model.safetensors is not a regular file"):
        adapter_fingerprint(bad)
    assert time.monotonic() - start < 2


# -------------------------------------------------------------------------------------------- 5 YAML bombs


def test_yaml_bomb_is_refused_before_anything_else(tmp_path: Path) -> None:
    big = "x" * 100_000
    bomb = tmp_path / "bomb.yaml"
    lines = [f"a: &a {big}", "name: bomb", "model: embedded", "lora:", "  target_modules: ["]
    bomb.write_text("\n".join(lines) + ", ".join(["*a"] * 2000) + "]\n")
    start = time.monotonic()
    r = sqlshift("run", bomb, "--output", tmp_path / "run")
    assert r.returncode == 2 and time.monotonic() - start < 30
    assert f"{bomb} uses more than 1000 YAML aliases" in last_line(r)
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_yaml_expanded_size_is_bounded_with_few_aliases() -> None:
    from sqlshift.errors import ConfigError
    from sqlshift.inputs import check_yaml_bomb

    # nine levels of ten aliases each: 10^9 expanded scalars from a 300-byte file
    text = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 10))
    with pytest.raises(ConfigError, match="expands to .* through its aliases"):
        check_yaml_bomb(text, "t.yaml")
    check_yaml_bomb("a: &a [1, 2]\nb: *a\nc: *a\n", "ok.yaml")  # ordinary anchors pass


# -------------------------------------------------------------------------------------------- 6 tracebacks -> one line


def _spider_with(tmp_path: Path, dev: str | None = None, tables: str | None = None) -> Path:
    spider = make_spider(tmp_path / "spider")
    if dev is not None:
        (spider / "dev.json").write_text(dev)
    if tables is not None:
        (spider / "tables.json").write_text(tables)
    return spider


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("case,expected", [
    ("deep prediction line", "pred.jsonl:1 is nested too deeply to read"),
    ("5000-digit index", "pred.jsonl:1 holds a value Python refuses (Exceeds the limit (4300 digits)"),
    ("timeout 1e8", "timeout 1e+08 s is over the 86400-second (one day) limit per query"),
    ("deep dev.json", "dev.json is nested too deeply to read"),
    ("deep tables.json", "tables.json is nested too deeply to read"),
    ("query: 5", "dev.json: example 0's query is int, not a string"),
    ("db_id /abs/x", "dev.json: example 0's db_id '/abs/x' is not a plain name"),
    ("pred inside out", "--pred {out}/metrics.json is inside the output folder"),
    ("pred links to /dev/zero", "pred.jsonl is not a regular file (a device, FIFO or socket), not predictions"),
    ("pred is a FIFO", "pred.jsonl is not a regular file (a device, FIFO or socket), not predictions"),
    ("pred is 300 MB sparse", "pred.jsonl is 300 MB, over the 256 MB limit for predictions"),
])
def test_eval_sql_bad_inputs_are_one_line(tmp_path: Path, case: str, expected: str) -> None:
    spider, pred, out, extra = _spider_with(tmp_path), tmp_path / "pred.jsonl", tmp_path / "out", []
    write_preds(pred, [GOLD] * 3)
    if case == "deep prediction line":
        pred.write_text('{"index": 0, "sql": ' + DEEP + "}\n")
    elif case == "5000-digit index":
        pred.write_text('{"index": ' + "9" * 5000 + ', "sql": "SELECT 1"}\n')
    elif case == "timeout 1e8":
        extra = ["--timeout", "1e8"]
    elif case == "deep dev.json":
        (spider / "dev.json").write_text(DEEP)
    elif case == "deep tables.json":
        (spider / "tables.json").write_text(DEEP)
    elif case in ("query: 5", "db_id /abs/x"):
        row = {"db_id": "h", "query": 5, "question": "q"} if case == "query: 5" else \
            {"db_id": "/abs/x", "query": GOLD, "question": "q"}
        (spider / "dev.json").write_text(json.dumps([row]))
    elif case == "pred inside out":
        out.mkdir()
        pred = write_preds(out / "metrics.json", [GOLD] * 3)
    elif case == "pred links to /dev/zero":
        pred.unlink()
        pred.symlink_to("/dev/zero")
    elif case == "pred is a FIFO":
        pred.unlink()
        os.mkfifo(pred)
    elif case == "pred is 300 MB sparse":
        with pred.open("r+b") as f:
            f.truncate(300 * 1024 * 1024)
    r = sqlshift("eval-sql", "--spider-dir", spider, "--pred", pred, "--out", out, *extra)
    assert r.returncode == 2, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    assert expected.format(out=out) in last_line(r), last_line(r)
    assert last_line(r).startswith("sqlshift: error: ") and "(fix: " in last_line(r)


def test_study_folder_and_report_files_of_the_wrong_shape_are_one_line(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "steps.json").write_text("")
    r = sqlshift("run", _baseline_only_config(tmp_path), "--output", run_dir, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{run_dir / 'steps.json'} is empty" in last_line(r) and "(fix: delete" in last_line(r)
    bench = tmp_path / "r2" / "models" / "baseline" / "spider-dev"
    bench.mkdir(parents=True)
    (bench / "metrics.json").write_text("[1, 2]\n")
    r = sqlshift("report", tmp_path / "r2")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{bench / 'metrics.json'} holds a JSON list, not an object" in last_line(r)


@pytest.mark.parametrize("kind", ["pickle", "custom code"])
def test_unsafe_model_folders_are_refused_as_one_line(tmp_path: Path, kind: str) -> None:
    model = tmp_path / "model"
    model.mkdir()
    config = {"model_type": "llama"}
    if kind == "pickle":
        (model / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")
        expected = f"{model} holds only pickle weights (pytorch_model.bin)"
    else:
        config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel"}
        (model / "model.safetensors").write_bytes(b"")
        expected = f"{model / 'config.json'} asks for custom model code (auto_map)"
    (model / "config.json").write_text(json.dumps(config))
    spider = make_spider(tmp_path / "spider")
    r = sqlshift("predict", "--model", model, "--spider-dir", spider, "--out", tmp_path / "out", timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert expected in last_line(r)


def test_environment_failures_map_to_one_line() -> None:
    import errno

    from sqlshift.errors import one_line

    full = one_line(OSError(errno.ENOSPC, "No space left on device", "/mnt/full/out/results.jsonl"))
    assert full == ("/mnt/full/out/results.jsonl: No space left on device (fix: free some space or choose another "
                    "output folder (--out))")
    assert "chattr -i" in str(one_line(PermissionError(errno.EPERM, "Operation not permitted", "/o/results.jsonl")))
    assert "nested too deeply" in str(one_line(RecursionError()))
    assert one_line(KeyError("a bug")) is None  # a real bug keeps its traceback


def test_malformed_tables_json_entry_is_one_line() -> None:
    from sqlshift.errors import DataError
    from sqlshift.sql.prompts import create_table_statements

    entry = {"db_id": "bad", "table_names_original": ["t"], "column_names_original": [[-1, "*"], [0, "id"]],
             "column_types": ["text", "number"], "foreign_keys": [[1, 7]]}
    with pytest.raises(DataError, match="tables.json entry 'bad' is malformed"):
        create_table_statements(entry)


def test_immutable_results_file_is_one_line(tmp_path: Path) -> None:
    spider = make_spider(tmp_path / "spider")
    pred = write_preds(tmp_path / "pred.jsonl", [GOLD] * 3)
    out = tmp_path / "out"
    assert sqlshift("eval-sql", "--spider-dir", spider, "--pred", pred, "--out", out).returncode == 0
    results = out / "results.jsonl"
    if subprocess.run(["chattr", "+i", str(results)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        r = sqlshift("eval-sql", "--spider-dir", spider, "--pred", pred, "--out", out)
    finally:
        subprocess.run(["chattr", "-i", str(results)], capture_output=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert f"cannot replace {results} (Operation not permitted)" in last_line(r)


def test_full_disk_as_out_is_one_line(tmp_path: Path) -> None:
    spider = make_spider(tmp_path / "spider")
    pred = write_preds(tmp_path / "pred.jsonl", [GOLD] * 3)
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        (disk / "out").mkdir()
        with (disk / "filler").open("wb") as f:  # fill the disk
            with pytest.raises(OSError):
                f.write(b"x" * 1_000_000)
                f.flush()
        r = sqlshift("eval-sql", "--spider-dir", spider, "--pred", pred, "--out", disk / "out")
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert f"{disk / 'out'}/" in last_line(r), last_line(r)  # names the file it could not write
    assert "No space left on device" in last_line(r) and "(fix: free some space" in last_line(r)


def test_names_that_become_folders_must_be_plain(tmp_path: Path) -> None:
    cfg = tmp_path / "escape.yaml"
    cfg.write_text("name: ok\nmodel: embedded\ndata_dir: demo\nbenchmarks:\n  - benchmark: spider\n    name: ../../x\n"
                   "runs:\n  - name: /tmp/evil\n    config: embedded-cpu\n")
    r = sqlshift("run", cfg, "--output", tmp_path / "run")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert "'/tmp/evil' is not a plain name" in r.stderr and "'../../x' is not a plain name" in r.stderr
    assert not (tmp_path / "x").exists()
