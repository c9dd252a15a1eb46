"""Issue 14's proof that the seam works: a benchmark and a backend the project has never heard of, registered by this
test, run through `sqlshift run` next to the demo's Spider benchmark, with caching, strict settings and the report."""

from __future__ import annotations

import contextlib

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import Field

from sqlshift.benchmarks import api
from sqlshift.lm import api as lm_api
from sqlshift.lm.api import LM, LoglikelihoodRequest
from sqlshift.benchmarks.api import Benchmark, BenchmarkSettings
from sqlshift.study.config import load_experiment
from sqlshift.errors import ConfigError, EmptyPredictions
from sqlshift.study.runner import Runner, run_experiment
from sqlshift.lm.hf import HFLM

ITEMS = [  # (context, options, gold)
    ("The capital of France is", [" Paris", " Rome", " a fish"], 0),
    ("Two plus two equals", [" seven", " four"], 1),
    ("SELECT name FROM singer WHERE age >", [" 30", " banana"], 0),
    ("The sky on a clear day is", [" green", " blue", " loud"], 1),
    ("Water freezes at zero degrees", [" Celsius", " Kelvin"], 0),
    ("A week has seven", [" days", " apples"], 0),
]


class ToyQuizSettings(BenchmarkSettings):
    """The toy benchmark's own strict settings."""

    items: int = Field(4, gt=0)
    batch_size: int = Field(8, gt=0)


class ToyQuiz(Benchmark):
    """A tiny multiple-choice benchmark scored by log-likelihood, defined entirely in this test."""

    name = "toy_quiz"
    axis = "generality"
    kind = "multiple_choice"
    label = "Toy quiz"
    Settings = ToyQuizSettings
    settings: ToyQuizSettings
    evaluated: list[str] = []  # out dirs this class evaluated (across instances)

    def check(self) -> list[str]:
        if self.settings.items > len(ITEMS):
            return [f"{self.out_name}: only {len(ITEMS)} toy items exist, {self.settings.items} requested"]
        return []

    def items(self) -> list[tuple[str, str, list[str], int]]:
        return [(f"toy:{i}", *ITEMS[i]) for i in range(self.settings.items)]

    def item_id(self, item: tuple[str, str, list[str], int]) -> str:
        return item[0]

    def evaluate(self, lm: LM, out_dir: Path) -> dict[str, Any]:
        type(self).evaluated.append(str(out_dir))
        return super().evaluate(lm, out_dir)  # the base loop: sampling, resume, chunks, contract fields, guard

    def requests(self, item: tuple[str, str, list[str], int], lm: LM) -> list[LoglikelihoodRequest]:
        return [LoglikelihoodRequest(item[1], o) for o in item[2]]

    def score(self, item: tuple[str, str, list[str], int], answers: Any) -> dict[str, Any]:
        lps = [lp for lp, _ in answers]
        pred = max(range(len(lps)), key=lambda k: lps[k])
        return {"id": item[0], "pred": pred, "gold": item[3], "correct": pred == item[3], "scores": lps}

    def summary(self, rows: Any, items: Any, lm: Any) -> dict[str, Any]:
        return {"chance": sum(1 / len(it[2]) for it in items) / len(items)}


@pytest.fixture(autouse=True)
def toy_registered() -> Iterator[None]:
    api.register(ToyQuiz)
    ToyQuiz.evaluated = []
    yield
    api._registered.pop(ToyQuiz.name, None)


def config(model_dir: Path, **extra: Any) -> dict[str, Any]:
    return {"name": "contracts", "model": str(model_dir), "data_dir": "demo",
            "benchmarks": [{"benchmark": "spider", "split": "dev", "sample": 4, "batch_size": 4, "max_new_tokens": 4},
                           {"benchmark": "toy_quiz", "items": 5}],
            "runs": [], **extra}


def write(tmp: Path, cfg: dict[str, Any]) -> Path:
    p = tmp / "exp.yaml"
    p.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return p


def run(cfg_path: Path, out: Path) -> None:
    try:
        run_experiment(cfg_path, out)
    except EmptyPredictions:  # a random tiny model may write only blank SQL; everything is written before this
        pass


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def toy_study(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    api.register(ToyQuiz)
    tmp = tmp_path_factory.mktemp("contracts")
    out = tmp / "run"
    run(write(tmp, config(tiny_model_dir)), out)
    return out


def test_registered_benchmark_is_available_and_validated() -> None:
    assert "toy_quiz" in api.available() and api.get_benchmark("toy_quiz") is ToyQuiz
    assert ToyQuiz in list(api.iter_registered())


def test_registered_benchmark_runs_through_sqlshift_run(toy_study: Path, tiny_model_dir: Path) -> None:
    out = toy_study / "models" / "baseline"
    assert (out / "spider-dev" / "metrics.json").is_file()
    metrics = json.loads((out / "toy_quiz" / "metrics.json").read_text())
    rows = read_rows(out / "toy_quiz" / "results.jsonl")
    assert [r["id"] for r in rows] == [f"toy:{i}" for i in range(5)]
    assert (metrics["benchmark"], metrics["axis"], metrics["kind"], metrics["label"]) == (
        "toy_quiz", "generality", "multiple_choice", "Toy quiz")
    assert metrics["n"] == 5 and metrics["n_correct"] == sum(r["correct"] for r in rows) and metrics["complete"]
    lo, hi = metrics["ci95"]
    assert 0 <= lo <= metrics["accuracy"] <= hi <= 1
    # the runner handed the benchmark a real LM: its scores are the tiny model's log-likelihoods
    lm = HFLM(str(tiny_model_dir))
    want = lm.loglikelihood([LoglikelihoodRequest(ITEMS[1][0], o) for o in ITEMS[1][1]])
    assert rows[1]["scores"] == pytest.approx([lp for lp, _ in want], abs=1e-4)
    recorded = yaml.safe_load((toy_study / "config.yaml").read_text())
    assert recorded["specialty"] == "spider-dev" and recorded["generality"] == ["toy_quiz"]


def test_registered_benchmark_is_cached_by_its_settings(toy_study: Path) -> None:
    cfg = load_experiment(toy_study / ".." / "exp.yaml")
    runner = Runner(cfg, toy_study)
    with contextlib.suppress(EmptyPredictions):  # the random tiny model writes no SQL; a cached failure still fails
        runner.run()
    assert runner.cache.ran == [] and "baseline/toy_quiz" in runner.cache.hits
    changed = cfg.model_copy(update={"benchmarks": [cfg.benchmarks[0],
                                                    ToyQuizSettings(benchmark="toy_quiz", items=6)]})
    runner = Runner(changed, toy_study)
    with contextlib.suppress(EmptyPredictions):
        runner.run()
    assert runner.cache.ran == ["baseline/toy_quiz"]  # only the benchmark whose settings changed
    assert len(read_rows(toy_study / "models" / "baseline" / "toy_quiz" / "results.jsonl")) == 6


def test_registered_benchmark_settings_are_strict_and_checked_up_front(tmp_path: Path, tiny_model_dir: Path) -> None:
    cfg = config(tiny_model_dir)
    cfg["benchmarks"][1]["sampel"] = 3
    with pytest.raises(ConfigError, match="sampel"):
        load_experiment(write(tmp_path, cfg))
    cfg = config(tiny_model_dir)
    cfg["benchmarks"][1]["items"] = 0
    with pytest.raises(ConfigError, match="items"):
        load_experiment(write(tmp_path, cfg))
    cfg = config(tiny_model_dir)
    cfg["benchmarks"][1]["items"] = 99
    with pytest.raises(ConfigError, match="only 6 toy items exist"):
        Runner(load_experiment(write(tmp_path, cfg)), tmp_path / "run").run()
    assert ToyQuiz.evaluated == [] and not (tmp_path / "run" / "models").exists()


def test_report_shows_the_registered_benchmark(toy_study: Path) -> None:
    """The report knows nothing about toy_quiz, yet lists it by its label, with n and a CI, from the contract."""
    assert "Toy quiz" in (toy_study / "report.md").read_text()
    summary = json.loads((toy_study / "summary.json").read_text())
    assert summary["benchmarks"]["toy_quiz"]["label"] == "Toy quiz"
    assert summary["benchmarks"]["toy_quiz"]["axis"] == "generality"
    baseline = next(m for m in summary["models"] if m["key"] == "baseline")
    entry = baseline["benchmarks"]["toy_quiz"]
    metrics = json.loads((toy_study / "models" / "baseline" / "toy_quiz" / "metrics.json").read_text())
    assert entry["accuracy"] == pytest.approx(metrics["accuracy"]) and entry["n"] == metrics["n"]
    lo, hi = entry["ci95"]
    assert lo - 1e-12 <= entry["accuracy"] <= hi + 1e-12  # exact containment: test_metrics_ci_contains_the_accuracy


def test_metrics_ci_contains_the_accuracy() -> None:
    """The contract's ``ci95`` (Wilson) always contains ``accuracy``, also at 0 and n correct (exactly 0 and 1 there)."""
    from sqlshift.benchmarks.common import accuracy_metrics

    for n in (1, 5, 6, 7, 50, 150):
        for k in range(n + 1):
            m = accuracy_metrics([{"correct": i < k} for i in range(n)])
            lo, hi = m["ci95"]
            assert 0.0 <= lo <= m["accuracy"] <= hi <= 1.0, (k, n, m["ci95"])
        assert accuracy_metrics([{"correct": False}] * n)["ci95"][0] == 0.0
        assert accuracy_metrics([{"correct": True}] * n)["ci95"][1] == 1.0


# ---------------------------------------------------------------- a second backend


class CountingBackend(HFLM):
    """A second ``LM`` implementation picked by name from ``sqlshift.lm.api.BACKENDS`` (here: HFLM that counts its calls)."""

    backend = "counting"
    made: list[str] = []
    calls = 0

    def __init__(self, model: str = "embedded", **kw: Any) -> None:
        super().__init__(model, device=kw.get("device", "auto"), dtype=kw.get("dtype", "auto"))
        type(self).made.append(model)

    def loglikelihood(self, requests: Any, **kw: Any) -> list[tuple[float, bool]]:
        type(self).calls += len(requests)
        return super().loglikelihood(requests, **kw)


def test_backend_registry_resolves_a_new_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(lm_api.BACKENDS, "counting", f"{__name__}:CountingBackend")
    assert lm_api.get_backend("counting") is CountingBackend
    with pytest.raises(ConfigError, match="unknown backend"):
        lm_api.get_backend("nope")


def test_backend_key_picks_a_registered_backend(tmp_path: Path, tiny_model_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """`lm: {backend: counting}` with the class registered in sqlshift.lm.api.BACKENDS: the runner evaluates through it."""
    monkeypatch.setitem(lm_api.BACKENDS, "counting", f"{__name__}:CountingBackend")
    CountingBackend.made, CountingBackend.calls = [], 0
    cfg = config(tiny_model_dir, lm={"backend": "counting"})
    cfg["benchmarks"] = [{"benchmark": "toy_quiz", "items": 3}]
    out = tmp_path / "run"
    run_experiment(write(tmp_path, cfg), out)
    assert CountingBackend.made == [str(tiny_model_dir)]
    assert CountingBackend.calls == sum(len(ITEMS[i][1]) for i in range(3))
    assert len(read_rows(out / "models" / "baseline" / "toy_quiz" / "results.jsonl")) == 3


class Interrupted(RuntimeError):
    pass


def test_base_loop_samples_resumes_and_writes_the_contract_fields(tmp_path: Path) -> None:
    """The base class owns the loop: a benchmark that only says items/requests/score gets sampling, resume per
    chunk, the contract fields and the below-chance guard."""
    from general_lm import ScriptedLM

    class Chunked(ToyQuiz):
        chunk = 2

    bench = Chunked(ToyQuizSettings(benchmark="toy_quiz", items=6, sample=5), tmp_path)
    asked: set[str] = set()

    def stop_at_third_item(ctx: str, cont: str) -> float:
        asked.add(ctx)
        if len(asked) > 2:
            raise Interrupted
        return 0.0

    with pytest.raises(Interrupted):
        bench.evaluate(ScriptedLM(stop_at_third_item), tmp_path / "out")
    assert len(read_rows(tmp_path / "out" / "results.jsonl")) == 2  # the first chunk was appended as produced
    lm = ScriptedLM(lambda ctx, cont: 0.0)  # ties: option 0
    m = bench.evaluate(lm, tmp_path / "out")
    assert len({r.context for r in lm.requests}) == 3  # only the 3 items without a row were asked
    assert (m["n"], m["n_requested"], m["complete"]) == (5, 5, True)
    assert m["benchmark"] == "toy_quiz" and m["axis"] == "generality" and m["below_chance_p"] is not None
    assert m == json.loads((tmp_path / "out" / "metrics.json").read_text())


def test_lm_block_is_validated_by_the_backends_own_settings() -> None:
    """`lm:` is the backend's own strict schema: keys of another backend are refused when one is named, ignored
    under auto, and a backend's cache identity (known before loading) carries what changes its outputs."""
    from pydantic import ValidationError

    from sqlshift.lm.hf import HFLM
    from sqlshift.lm.vllm import VLLMLM
    from sqlshift.study.config import LMSettings

    with pytest.raises(ValidationError, match="setting of backend vllm, not of hf"):
        LMSettings(backend="hf", max_model_len=100)
    with pytest.raises(ValidationError, match="no backend takes it"):
        LMSettings(max_modle_len=100)
    with pytest.raises(ValidationError):
        LMSettings(backend="vllm", max_model_len=0)
    lm = LMSettings(max_model_len=1000, dtype="bf16")
    assert lm.for_backend("vllm").max_model_len == 1000
    assert lm.for_backend("hf").model_dump() == {"device": "auto", "dtype": "bf16", "load_in_4bit": False}  # no vLLM keys
    hf = HFLM.cache_identity("embedded", lm.for_backend("hf"), None, None)
    assert hf == {"model": "embedded", "adapter": None, "lambda": None, "dtype": "bf16", "backend": "hf"}
    vl = VLLMLM.cache_identity("embedded", lm.for_backend("vllm"), None, None)
    assert vl["backend"] == "vllm" and vl["max_model_len"] == 1000 and "vllm" in vl


class WrappedSettings(lm_api.BackendSettings):
    """The toy backend's own ``lm:`` key, validated by its class (no change to the study schema)."""

    scale: float = 1.0


class WrappedHF(lm_api.LM):
    """A backend the project has never heard of: it wraps the HF backend and scales its log-likelihoods."""

    backend = "wrapped"
    Settings = WrappedSettings
    made: list[dict[str, Any]] = []

    def __init__(self, model: str, *, device: str = "auto", dtype: str = "auto", scale: float = 1.0) -> None:
        self.spec, self.settings = model, WrappedSettings(device=device, dtype=dtype, scale=scale)
        self.inner = HFLM(model, device=device, dtype=dtype)
        self.tokenizer = self.inner.tokenizer
        type(self).made.append(self.settings.model_dump())

    def generate(self, requests: Any, **kw: Any) -> Any:
        return self.inner.generate(requests, **kw)

    def loglikelihood(self, requests: Any, **kw: Any) -> list[tuple[float, bool]]:
        return [(lp * self.settings.scale, g) for lp, g in self.inner.loglikelihood(requests, **kw)]

    def adapter(self, path: Path | None, scale: float = 1.0) -> Any:
        return self.inner.adapter(path, scale)


def test_a_new_backend_runs_through_run_and_eval(tmp_path: Path, tiny_model_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """One module + one registry line: `sqlshift run` (lm: {backend: wrapped, scale: 2}) and `sqlshift eval
    --backend wrapped` both score through it, with no change to the runner or the config schema, and write the
    same files."""
    from typer.testing import CliRunner

    from sqlshift.cli import app

    monkeypatch.setitem(lm_api.BACKENDS, "wrapped", f"{__name__}:WrappedHF")
    WrappedHF.made = []
    cfg = config(tiny_model_dir, lm={"backend": "wrapped", "scale": 2.0})
    cfg["benchmarks"] = [{"benchmark": "toy_quiz", "items": 4}]
    run(write(tmp_path, cfg), tmp_path / "run")
    r = CliRunner().invoke(app, ["eval", "--model", str(tiny_model_dir), "--backend", "wrapped", "--benchmarks",
                                 "toy_quiz", "--data-dir", str(tmp_path), "-o", str(tmp_path / "eval")])
    assert r.exit_code == 0, r.output
    assert [m["scale"] for m in WrappedHF.made] == [2.0, 1.0]
    def outputs(d: str) -> set[Path]:  # the study's files (the run's config reads the demo data it copies into data/)
        return {p.relative_to(tmp_path / d) for p in (tmp_path / d).rglob("*") if p.is_file()} - \
            {p.relative_to(tmp_path / d) for p in (tmp_path / d / "data").rglob("*")}

    assert outputs("run") == outputs("eval") and Path("models/baseline/toy_quiz/metrics.json") in outputs("eval")
    for d in ("run", "eval"):
        model = json.loads((tmp_path / d / "models" / "baseline" / "model.json").read_text())
        assert model["backend"] == "wrapped"
    rows = {d: read_rows(tmp_path / d / "models" / "baseline" / "toy_quiz" / "results.jsonl") for d in ("run", "eval")}
    assert [x["correct"] for x in rows["run"]] == [x["correct"] for x in rows["eval"]]  # λ-free scale: same argmax
    assert [x["scores"] for x in rows["run"]] == [[2 * s for s in x["scores"]] for x in rows["eval"]]
    with pytest.raises(ConfigError):  # a key of the wrapped backend is not one of hf's
        load_experiment(write(tmp_path, config(tiny_model_dir, lm={"backend": "hf", "scale": 2.0})))
