"""Reading a run directory: models, every benchmark's metrics and per-item rows, config axes, training logs.

Every ``models/<key>/<bench>/`` folder is read the same way (the Benchmark contract: ``metrics.json`` with
``accuracy``, ``n``, ``ci95``, ``axis``, ``kind``, ``label``; ``results.jsonl`` rows with ``id`` and ``correct``),
so a benchmark the report has never heard of is reported like the built-in ones. Folders written before that
contract (``spider-<split>``, ``mmlu*``) get the missing fields inferred from their names.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlshift.errors import DataError
from sqlshift.inputs import read_json_file, read_yaml_file
from sqlshift.jsonl import read_jsonl
from sqlshift.lm.models import adapter_rank
from sqlshift.stats import wilson_ci

KIND_RANK = {"baseline": 0, "run": 1, "checkpoint": 1, "interpolation": 2}
DEFAULT_MAX_DROP = 2.0


def read_json(path: Path, kind: type | None = None) -> Any:
    """JSON file (bounded, one-line errors naming the file); ``kind`` the type its top level must have."""
    fix = "rerun the step that wrote it (delete the file first)"
    data = read_json_file(path, "a sqlshift output file", fix)
    if kind is not None and not isinstance(data, kind):
        raise DataError(f"{path} holds a JSON {type(data).__name__}, not an object", fix)
    return data


@dataclass
class BenchResult:
    """One benchmark's metrics and per-item rows for one model."""

    name: str  # folder name
    metrics: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    _all: dict[str, bool] | None = field(default=None, repr=False, compare=False)

    @property
    def benchmark(self) -> str:
        return str(self.metrics.get("benchmark") or self.name)

    @property
    def label(self) -> str:
        return str(self.metrics.get("label") or self.name)

    @property
    def axis(self) -> str:
        return str(self.metrics.get("axis") or "generality")

    @property
    def kind(self) -> str:
        return str(self.metrics.get("kind") or "unknown")

    @property
    def n(self) -> int:
        return int(self.metrics.get("n", 0))

    @property
    def n_correct(self) -> int:
        return int(self.metrics.get("n_correct", 0))

    @property
    def accuracy(self) -> float:
        n = self.n
        return float(self.metrics.get("accuracy", self.n_correct / n if n else 0.0))

    @property
    def ci95(self) -> list[float]:
        return list(self.metrics.get("ci95") or wilson_ci(self.n_correct, self.n))

    def outcomes(self, where: dict[str, Any] | None = None) -> dict[str, bool]:
        """id -> correct for the items in n (gold failures, unscorable and unjudged items excluded), optionally only
        rows matching ``where``."""
        if where is None and self._all is not None:
            return self._all
        out = {str(r["id"]): bool(r["correct"]) for r in self.rows
               if r.get("error_type") != "gold_error" and r.get("scorable", True) is not False
               and r.get("correct") is not None and all(r.get(k) == v for k, v in (where or {}).items())}
        if where is None:
            self._all = out
        return out


def legacy_fields(folder: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """Contract fields of a folder written before the Benchmark contract, inferred from its name."""
    if folder.startswith("spider-"):
        split = folder[len("spider-"):]
        return {"benchmark": "spider", "name": folder, "axis": "specialty", "kind": "text2sql",
                "label": f"EX ({split})", "split": split, "accuracy": metrics.get("execution_accuracy")}
    if folder.startswith("mmlu"):
        rest = folder[len("mmlu"):].lstrip("-_")
        return {"benchmark": "mmlu", "name": folder, "axis": "generality", "kind": "multiple_choice",
                "label": f"MMLU ({rest})" if rest else "MMLU"}
    return {}


def legacy_id(folder: str, row: dict[str, Any]) -> str:
    """A row id for rows written before rows carried one."""
    if folder.startswith("mmlu"):
        return f"{row.get('subject')}:{row.get('index')}"
    return str(row.get("index"))


def load_bench(bdir: Path) -> BenchResult:
    """One ``models/<key>/<bench>/`` folder."""
    metrics = read_json(bdir / "metrics.json", dict)
    missing = {k: v for k, v in legacy_fields(bdir.name, metrics).items() if metrics.get(k) is None and v is not None}
    rows = read_jsonl(bdir / "results.jsonl")
    for r in rows:
        if r.get("id") is None:
            r["id"] = legacy_id(bdir.name, r)
    return BenchResult(bdir.name, {**metrics, **missing}, rows)


@dataclass
class Model:
    """Everything saved for one evaluated model (baseline, run, checkpoint or λ-interpolation)."""

    key: str
    info: dict[str, Any]
    benches: dict[str, BenchResult] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.info.get("kind") or "run")

    @property
    def run(self) -> str | None:
        return self.info.get("run")

    @property
    def step(self) -> int | None:
        s = self.info.get("step")
        return int(s) if s is not None else None

    @property
    def lam(self) -> float | None:
        v = self.info.get("lambda")
        return float(v) if v is not None else None

    def sort_key(self) -> tuple[Any, ...]:
        step = self.step if self.kind != "run" else math.inf
        return (KIND_RANK.get(self.kind, 3), self.run or self.key, self.kind == "interpolation",
                step if step is not None else math.inf, self.lam or 0.0, self.key)


def infer_info(name: str) -> dict[str, Any]:
    """model.json stand-in from the folder name, for runs written before model.json existed."""
    if name == "baseline":
        return {"key": name, "kind": "baseline"}
    m = re.fullmatch(r"(.+)-step(\d+)", name)
    if m:
        return {"key": name, "kind": "checkpoint", "run": m[1], "step": int(m[2])}
    m = re.fullmatch(r"(.+)-lambda([0-9.]+)", name)
    if m:
        return {"key": name, "kind": "interpolation", "run": m[1], "lambda": float(m[2])}
    return {"key": name, "kind": "run", "run": name}


def load_model(mdir: Path) -> Model:
    """One ``models/<key>/`` folder with every benchmark folder that has a metrics.json."""
    info = read_json(mdir / "model.json", dict) if (mdir / "model.json").is_file() else infer_info(mdir.name)
    benches = {b.name: load_bench(b) for b in sorted(mdir.iterdir()) if (b / "metrics.json").is_file()}
    return Model(str(info.get("key") or mdir.name), info, benches)


def load_models(run_dir: Path) -> list[Model]:
    """All evaluated models, baseline first, then each run with its checkpoints, then λ versions."""
    root = run_dir / "models"
    if not root.is_dir():
        raise DataError(f"{root} does not exist", "pass a run directory written by `sqlshift run`")
    models = [m for m in (load_model(d) for d in sorted(root.iterdir()) if d.is_dir()) if m.benches]
    if not models:
        raise DataError(f"no evaluated models under {root}", "run `sqlshift run` to completion first")
    return sorted(models, key=Model.sort_key)


def load_log_histories(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """run name -> trainer log history (``log_history.json``, or ``trainer_state.json``'s ``log_history``)."""
    out: dict[str, list[dict[str, Any]]] = {}
    tdirs = sorted(p for p in (run_dir / "train").glob("*") if p.is_dir()) if (run_dir / "train").is_dir() else []
    for tdir in tdirs:
        for name in ("log_history.json", "trainer_state.json"):
            if (tdir / name).is_file():
                data = read_json(tdir / name)
                rows = data.get("log_history", []) if isinstance(data, dict) else data
                if isinstance(rows, list) and rows:
                    out[tdir.name] = [r for r in rows if isinstance(r, dict)]
                    break
    return out


def load_train_facts(run_dir: Path) -> dict[str, dict[str, Any]]:
    """run name -> what its training cost (``train_data.json``: speed, peak GPU memory, parameters, path) and its
    LoRA rank as vLLM sizes it (``adapter_config.json``'s largest; absent for a full fine-tune)."""
    out: dict[str, dict[str, Any]] = {}
    root = run_dir / "train"
    for tdir in sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []:
        data = read_json(tdir / "train_data.json") if (tdir / "train_data.json").is_file() else None
        if not isinstance(data, dict):
            continue
        lora = read_json(tdir / "adapter_config.json", dict) if (tdir / "adapter_config.json").is_file() else None
        out[tdir.name] = {"speed": data.get("speed") or {}, "model": data.get("model") or {},
                          "path": data.get("speed_path"), "lora_r": adapter_rank(lora) if lora else None}
    return out


def load_failures(run_dir: Path) -> dict[str, str]:
    """run -> why it was not evaluated (``failures.json``; empty when there is none)."""
    path = run_dir / "failures.json"
    data = read_json(path) if path.is_file() else {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}


def diverged_runs(histories: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """run -> first step with a non-finite logged loss or gradient norm (such an adapter is broken, not forgetful)."""
    from sqlshift.train.trainer import first_non_finite

    return {run: step for run, rows in histories.items() if (step := first_non_finite(rows)) is not None}


def load_config(run_dir: Path) -> dict[str, Any]:
    """The resolved experiment config (empty when the run directory has none)."""
    import yaml

    path = run_dir / "config.yaml"
    if not path.is_file():
        return {}
    try:
        data = read_yaml_file(path, "a run's config.yaml", "rerun `sqlshift run` to rewrite it", error=DataError)
    except yaml.YAMLError as e:
        raise DataError(f"{path}: not valid YAML ({str(e).splitlines()[0]})",
                        "rerun `sqlshift run` to rewrite it") from e
    return data if isinstance(data, dict) else {}


@dataclass
class Study:
    """A run directory as the report sees it: models, which benchmark is which axis, logs, budget."""

    run_dir: Path
    models: list[Model]
    specialty: str | None  # folder name
    generality: list[str]  # folder names
    composite: bool  # config listed several generality benchmarks: the axis is their mean Δ
    max_drop: float
    replicas: dict[str, list[str]]  # original run -> [original, replicas...]
    histories: dict[str, list[dict[str, Any]]]
    failures: dict[str, str]
    missing: list[str] = field(default_factory=list)  # config names no model has results for
    train_facts: dict[str, dict[str, Any]] = field(default_factory=dict)  # run -> speed, memory, parameters

    @property
    def baseline(self) -> Model | None:
        return next((m for m in self.models if m.kind == "baseline"), None) or next(
            (m for m in self.models if m.key == "baseline"), None)

    def folders(self) -> list[str]:
        """Every benchmark folder seen, specialty first, then generality, then the rest, each once."""
        found = {f: b for m in self.models for f, b in m.benches.items()}
        spec = sorted(f for f, b in found.items() if b.axis == "specialty" and f not in self.generality)
        first = [f for f in [self.specialty, *spec, *self.generality] if f]
        return list(dict.fromkeys([*first, *sorted(set(found) - set(first))]))

    def meta(self, folder: str) -> BenchResult | None:
        """Any model's result for ``folder`` (for its label, axis and kind)."""
        return next((m.benches[folder] for m in self.models if folder in m.benches), None)

    def label(self, folder: str) -> str:
        meta = self.meta(folder)
        return meta.label if meta else folder


def resolve(name: str, found: dict[str, BenchResult]) -> str | None:
    """A config name as a folder: the folder itself, else the first folder of that registry benchmark."""
    if name in found:
        return name
    return next((f for f, b in found.items() if b.benchmark == name), None)


def config_axes(config: dict[str, Any], found: dict[str, BenchResult]) -> tuple[str | None, list[str], bool]:
    """(specialty folder, generality folders, composite) from the config, with legacy defaults."""
    spec = resolve(str(config["specialty"]), found) if config.get("specialty") else None
    if spec is None:
        legacy = sorted(f for f in found if f.startswith("spider-"))
        spec = ("spider-dev" if "spider-dev" in legacy else next(iter(legacy), None)) or next(
            (f for f, b in found.items() if b.axis == "specialty"), None)
    raw = config.get("generality")
    composite = isinstance(raw, list) and len(raw) > 1
    names = raw if isinstance(raw, list) else [raw] if raw else []
    gen = [f for f in (resolve(str(n), found) for n in names) if f]
    if not names:
        gen = ["mmlu"] if "mmlu" in found else [f for f, b in found.items() if b.axis == "generality"][:1]
    return spec, list(dict.fromkeys(gen)), composite


def replica_groups(config: dict[str, Any]) -> dict[str, list[str]]:
    """original run -> [original, its replicas] from the runs' ``replicate_of``."""
    groups: dict[str, list[str]] = {}
    for r in config.get("runs") or []:
        if isinstance(r, dict) and r.get("replicate_of"):
            groups.setdefault(str(r["replicate_of"]), [str(r["replicate_of"])]).append(str(r["name"]))
    return groups


def load_study(run_dir: str | Path, max_drop: float | None = None) -> Study:
    """Everything the report needs from a run directory."""
    run_dir = Path(run_dir)
    models = load_models(run_dir)
    config = load_config(run_dir)
    found: dict[str, BenchResult] = {}
    for m in models:
        for f, b in m.benches.items():
            found.setdefault(f, b)
    spec, gen, composite = config_axes(config, found)
    if max_drop is None:
        max_drop = float(config.get("max_generality_drop", config.get("max_mmlu_drop", DEFAULT_MAX_DROP)))
    named = [config.get("specialty"), *(g if isinstance(g := config.get("generality"), list) else [g])]
    missing = [str(n) for n in named if n and resolve(str(n), found) is None]
    return Study(run_dir, models, spec, gen, composite, max_drop, replica_groups(config),
                 load_log_histories(run_dir), load_failures(run_dir), missing, load_train_facts(run_dir))
