"""Every benchmarks/*.py script still imports and parses its options: the layout move of issue 29 broke two of
them silently (they import library names, and nothing else runs them)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import sqlshift

SCRIPTS = sorted((Path(__file__).resolve().parent.parent / "benchmarks").glob("*.py"))


def sqlshift_imports(script: Path) -> list[tuple[int, str, str]]:
    """(line, module, name) of every ``from sqlshift... import name`` in a script, in functions too."""
    out = []
    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlshift":
            out += [(node.lineno, node.module, a.name) for a in node.names]
    return out


def test_there_are_scripts() -> None:
    assert len(SCRIPTS) >= 9 and all(p.name != "__init__.py" for p in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_sqlshift_name_a_script_imports_exists(script: Path) -> None:
    missing = []
    for line, module, name in sqlshift_imports(script):
        mod = importlib.import_module(module)
        if not hasattr(mod, name) and importlib.util.find_spec(f"{module}.{name}") is None:
            missing.append(f"{script.name}:{line}: {module}.{name}")
    assert not missing


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_script_answers_help(script: Path) -> None:
    src = str(Path(sqlshift.__file__).resolve().parents[1])  # the sqlshift these tests import
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and "usage:" in r.stdout, r.stderr[-2000:]


def test_bench_vllm_times_the_vllm_backend_alone_and_a_tuned_engine(tiny_model_dir: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU speed script's vLLM-only pass (speed.sh) on the CPU stand-in engine: rows for generation, MMLU
    letter through the default engine and a tuned one (its knobs reach the engine), no HF rows. It checks the
    script's logic; the timings only mean something on a GPU."""
    import json

    from vllm_stand_in import install_stand_in

    from sqlshift.data.demo import ensure_demo

    engine = install_stand_in(monkeypatch)
    demo = ensure_demo(tmp_path / "demo")
    bench = load_script("bench_vllm")
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["bench_vllm.py", "--model", str(tiny_model_dir), "--spider-dir", str(demo / "spider"),
                                      "--mmlu-dir", str(demo / "mmlu"), "--mmlu-n", "6", "--modes", "letter",
                                      "--backends", "vllm", "--no-prompt-logprobs", "--max-new-tokens", "4",
                                      "--tuned", "max_num_batched_tokens=4096,max_num_seqs=8", "--out", str(out)])
    monkeypatch.setenv("SQLSHIFT_CACHE", str(tmp_path / "cache"))
    bench.main()
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    tasks = [(r.get("backend"), r.get("task"), r.get("engine")) for r in rows]
    assert ("vllm", "spider_generate", None) in tasks and ("vllm", "mmlu", "tuned") in tasks
    assert next(r for r in rows if r.get("task") == "spider_generate")["prompts"] > 0
    assert not any(b == "hf" for b, _, _ in tasks) and not any(r.get("path") for r in rows)
    tuned = next(r for r in rows if r.get("engine") == "tuned")
    assert tuned["same_answers"] == tuned["questions"] == 6  # the same stand-in model: the same answers
    assert len(engine.started) == 2


def load_script(name: str) -> Any:
    """A benchmarks/ script as a module (they are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS[0].parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_bench_train(bench: Any, model_dir: Path, tmp: Path, monkeypatch: pytest.MonkeyPatch, variants: str,
                    accum: int) -> list[dict[str, Any]]:
    """bench_train's main on the demo's Spider rows: 3 steps of 2 x ``accum``; its --json rows."""
    import json

    from sqlshift.data.demo import ensure_demo

    out = tmp / "bench.json"
    monkeypatch.setattr(sys, "argv", ["bench_train.py", "--model", str(model_dir), "--spider-dir",
                                      str(ensure_demo(tmp / "demo") / "spider"), "--steps", "3", "--warmup", "1",
                                      "--batch", "2", "--accum", str(accum), "--variants", variants,
                                      "--json", str(out)])
    bench.main()
    return json.loads(out.read_text())


def test_bench_train_plain_loop_beside_the_trainer(tiny_model_dir: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The hand-written reference loop runs on the same rows and shape as a Trainer variant and reports the same
    figures (CPU: the logic only; its speed means something on a GPU, benchmarks/gpu/speed.sh)."""
    plain, trainer = run_bench_train(load_script("bench_train"), tiny_model_dir, tmp_path, monkeypatch,
                                     "plain,std-sdpa", accum=2)
    assert plain["variant"] == "plain" and trainer["variant"] == "std-sdpa"
    assert plain["steps_timed"] == trainer["steps_timed"] == 2 and plain["real_tokens"] > 0
    assert len(plain["losses"]) == 3 and all(x > 0 for x in plain["losses"])
    # the same rows in the same order (the Trainer's seeded shuffle) and the same LoRA: the same tokens, and losses
    # within fp32 noise and the loss normalisation (per micro-batch here, per step in trl)
    assert plain["real_tokens"] == trainer["real_tokens"]
    assert all(abs(x - y) < 0.05 * y for x, y in zip(plain["losses"], trainer["losses"]))


@pytest.mark.slow  # torch.compile of two decoder layers on CPU: about a minute on 2 cores
def test_bench_train_compiled_variant_matches_and_is_undone(tiny_model_dir: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """``+compile`` compiles the decoder layers for that variant only: the same losses (fused kernels round a
    little differently), and the next variant runs the layers uncompiled again."""
    bench = load_script("bench_train")
    seen: list[bool] = []
    real = bench.bench_one

    def spy(name: str, model: Any, *a: Any, **kw: Any) -> Any:
        out = real(name, model, *a, **kw)
        seen.append(any(getattr(m, "_compiled_call_impl", None) is not None for m in model.modules()))
        return out

    monkeypatch.setattr(bench, "bench_one", spy)
    compiled, eager = run_bench_train(bench, tiny_model_dir, tmp_path, monkeypatch, "std-sdpa+compile,std-sdpa", 1)
    assert compiled["path"].endswith("decoder layers compiled") and not eager["path"].endswith("compiled")
    assert all(abs(x - y) < 1e-3 for x, y in zip(compiled["losses"], eager["losses"]))
    assert seen == [False, False]  # compiled layers were restored after their variant


def test_bench_train_refuses_an_unknown_variant(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_script("bench_train")
    monkeypatch.setattr(sys, "argv", ["bench_train.py", "--spider-dir", "x", "--variants", "fast,plain+compile"])
    with pytest.raises(SystemExit) as e:
        bench.main()
    assert "unknown variant(s) plain+compile" in str(e.value)


def test_bench_train_refuses_to_compile_a_liger_variant(monkeypatch: pytest.MonkeyPatch) -> None:
    """liger's Triton kernels failed to trace under torch.compile on the H100 (session 9): one line naming the
    variant to compile instead, before any model loads."""
    bench = load_script("bench_train")
    monkeypatch.setattr(sys, "argv", ["bench_train.py", "--spider-dir", "x", "--variants",
                                      "fast-varlen-16x1-noliger+compile,fast-varlen-16x1+compile"])
    with pytest.raises(SystemExit) as e:
        bench.main()
    assert "compile a -noliger variant" in str(e.value)


GPU_SCRIPTS = sorted((Path(__file__).resolve().parent.parent / "benchmarks" / "gpu").glob("*.sh"))


@pytest.mark.parametrize("script", GPU_SCRIPTS, ids=lambda p: p.name)
def test_gpu_scripts_parse_and_name_scripts_that_exist(script: Path) -> None:
    """The GPU session scripts run only on a device machine: here, at least, bash parses them and every
    ``benchmarks/...`` file they name (to run, source or carry) is in the repository."""
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    named = set(re.findall(r"benchmarks/[\w/.-]+\.(?:sh|py|yaml|txt)", script.read_text(encoding="utf-8")))
    missing = sorted(n for n in named if not (script.parents[2] / n).is_file())
    assert not missing, f"{script.name} names files that are not there: {missing}"


def test_gpu_poll_packs_a_run_in_pieces_that_rebuild_it(tmp_path: Path) -> None:
    """benchmarks/gpu/poll.sh on a stand-in run directory: the pieces under $OUT join into a tarball that holds the
    results and small adapters but no checkpoint or big adapter, and only the last complete set is left."""
    import tarfile

    runs, res, out = tmp_path / "runs", tmp_path / "res", tmp_path / "out"
    run = runs / "study"
    (run / "models" / "baseline" / "spider-dev").mkdir(parents=True)
    (run / "models" / "baseline" / "spider-dev" / "metrics.json").write_text('{"accuracy": 0.5}')
    (run / "train" / "run1" / "checkpoint-50").mkdir(parents=True)
    (run / "train" / "run1" / "checkpoint-50" / "adapter_model.safetensors").write_bytes(b"0" * 100)
    (run / "train" / "run1" / "adapter_model.safetensors").write_bytes(os.urandom(2_179_072 * 4))  # r = 8, 1.5B, fp32
    (run / "train" / "big").mkdir()
    (run / "train" / "big" / "adapter_model.safetensors").write_bytes(os.urandom(13 * 2**20))
    (runs / "study.out").write_text("noise\rINFO     baseline/spider-dev: EX (dev) = 0.500 (n=2), 1.0 s\n")
    res.mkdir()
    (res / "chain.log").write_text("== rc=0 wall=5 s  bash benchmarks/gpu/study.sh\n")
    out.mkdir()
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu" / "poll.sh"
    env = {**os.environ, "RUNS": str(runs), "RES": str(res), "OUT": str(out)}
    done = subprocess.run(["bash", str(script), "study", "0", "2"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "baseline/spider-dev: EX (dev) = 0.500" in done.stdout
    assert sorted(p.name for p in out.iterdir()) == ["chain.log", "study.b.done", "study.b.part-00"]
    joined = tmp_path / "joined.tar.gz"
    joined.write_bytes(b"".join(p.read_bytes() for p in sorted(out.glob("study.b.part-*"))))
    names = tarfile.open(joined).getnames()
    assert "study/models/baseline/spider-dev/metrics.json" in names and "study.out" in names
    assert tarfile.open(joined).getmember("study/train/run1/adapter_model.safetensors").size == 2_179_072 * 4
    assert not [n for n in names if "checkpoint-" in n or n.startswith("study/train/big/adapter")]
