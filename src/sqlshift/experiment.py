"""`sqlshift run`: the whole study in one command.

An experiment YAML names a model, the data, the evaluation protocol and a list of fine-tuning runs. The
runner trains each run, then evaluates the baseline, each run, each listed checkpoint and each LoRA scale λ
on both axes (Spider EX, MMLU) into one run directory, and writes the report. Every step is cached by a
hash of what it depends on (``steps.json``): a rerun redoes only what is missing or changed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import random
import time
from pathlib import Path
from typing import Any, Iterator, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sqlshift.errors import ConfigError, ScorerFailure

log = logging.getLogger("sqlshift")

DEFAULT_CONFIG = "default"  # the packaged embedded study: configs/default.yaml inside the package


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a config must never be silently ignored."""

    model_config = ConfigDict(extra="forbid")


class MMLUEval(Strict):
    """Generality axis: which MMLU questions and how they are scored."""

    name: str = "mmlu"  # output folder; extra protocols use e.g. mmlu-5shot
    enabled: bool = True
    subjects: str | list[str] = "seed"  # seed | all | [a, b, c]
    exclude: list[str] = Field(default_factory=list)  # e.g. subjects held out for replay training
    mode: Literal["letter", "cloze"] = "letter"
    k_shot: int = 0
    chat: bool = False
    batch_size: int = 16
    limit_per_subject: int | None = None
    split: str = "test"


class SpiderEval(Strict):
    """Specialty axis: which Spider splits, how many examples, how SQL is generated and scored."""

    splits: list[str] = ["dev"]
    limit: int | None = None  # random subset of evaluable examples (seed below); None = all
    sample_seed: int = 42
    batch_size: int = 16
    max_new_tokens: int = 192
    ex_mode: Literal["official", "simple"] = "official"
    timeout_s: float = 30.0
    variants_for_all: bool = False  # also evaluate splits[1:] for checkpoints and λ points


class DataPaths(Strict):
    """Where Spider and MMLU live: a folder, or ``demo`` for the embedded benchmark."""

    spider_dir: str = "demo"
    mmlu_dir: str = "demo"


class RunSpec(Strict):
    """One fine-tuning run: a training config file plus overrides, and what to evaluate of it."""

    name: str
    config: str
    overrides: dict[str, Any] = Field(default_factory=dict)
    checkpoints: list[int] | Literal["all", "none"] = "none"
    lambdas: list[float] = Field(default_factory=list)  # LoRA scales (WiSE-FT); 1.0 is the run itself


class ExperimentConfig(Strict):
    """A whole study."""

    name: str = "study"
    output_dir: str | None = None
    model: str = "embedded"
    device: str = "auto"
    dtype: str = "auto"
    data: DataPaths = Field(default_factory=DataPaths)
    spider: SpiderEval = Field(default_factory=SpiderEval)
    mmlu: MMLUEval = Field(default_factory=MMLUEval)
    mmlu_extra: list[MMLUEval] = Field(default_factory=list)  # more protocols (e.g. 5-shot), baseline and runs only
    prompt: dict[str, Any] = Field(default_factory=dict)
    runs: list[RunSpec] = Field(default_factory=list)
    baseline: bool = True  # evaluate the base model (off: e.g. a second process adding runs to a study)
    max_mmlu_drop: float = 2.0
    allow_below_chance: bool = False


def packaged_config(name: str) -> Path:
    """Path of a config shipped inside the package (``default``)."""
    return Path(__file__).parent / "configs" / f"{name}.yaml"


def expand(value: str, base: Path) -> str:
    """Expand ``${ENV}`` and make relative paths relative to the config file."""
    v = os.path.expandvars(value)
    if "$" in v:
        raise ConfigError(f"unset environment variable in '{value}'", "export it, e.g. SQLSHIFT_DATA_DIR=../shared/data")
    if v in ("demo", "embedded") or v.startswith(("/", "~")) or "://" in v:
        return v
    p = base / v
    return str(p) if p.exists() else v


def load_experiment(path: str | Path | None) -> tuple[ExperimentConfig, Path]:
    """Read and validate an experiment YAML; returns the config and the folder its paths are relative to."""
    p = packaged_config(DEFAULT_CONFIG) if path in (None, DEFAULT_CONFIG) else Path(path)
    if not p.is_file():
        raise ConfigError(f"experiment config {p} does not exist", "pass a YAML file, e.g. configs/spider-embedded.yaml")
    try:
        raw = yaml.safe_load(p.read_text()) or {}
        cfg = ExperimentConfig.model_validate(raw)
    except (yaml.YAMLError, ValidationError) as e:
        raise ConfigError(f"{p}: {e}", "fix the keys named above (see configs/ for examples)") from e
    base = p.parent
    cfg.data.spider_dir = expand(cfg.data.spider_dir, base)
    cfg.data.mmlu_dir = expand(cfg.data.mmlu_dir, base)
    for r in cfg.runs:
        r.config = expand(r.config, base)
        if not Path(r.config).is_file() and packaged_train_config(r.config).is_file():
            r.config = str(packaged_train_config(r.config))
    return cfg, base


def packaged_train_config(name: str) -> Path:
    """Training presets shipped in the package, addressable by bare name (``seed-run2``)."""
    return Path(__file__).parent / "configs" / "train" / f"{Path(name).stem}.yaml"


def fingerprint(obj: Any) -> str:
    """Stable short hash of a JSON-able object: the cache key of a step."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def adapter_fingerprint(adapter: Path | None) -> str | None:
    """Hash of an adapter's weights file, so a retrained run invalidates its evaluations."""
    if adapter is None:
        return None
    files = sorted(adapter.glob("adapter_model.*"))
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


class StepCache:
    """``steps.json``: step name -> hash of its inputs. A step is done when its hash matches and its outputs exist."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.steps: dict[str, str] = json.loads(path.read_text()) if path.is_file() else {}
        self.ran: list[str] = []
        self.hits: list[str] = []

    def done(self, name: str, key: str, outputs: list[Path]) -> bool:
        hit = self.steps.get(name) == key and all(o.exists() for o in outputs)
        if hit:
            self.hits.append(name)
        return hit

    def record(self, name: str, key: str) -> None:
        """Merge one step into the file under a lock: several processes (one per GPU) may share a run dir."""
        self.ran.append(name)
        self.steps = merge_json(self.path, {**self.steps, name: key})


def merge_json(path: Path, update: dict[str, Any]) -> dict[str, Any]:
    """Merge ``update`` into the JSON object in ``path`` under a lock and write it atomically; returns the result.

    Several processes (one per GPU) may share a run directory: each adds its keys without losing the others'.
    """
    with locked(path):
        merged = {**(json.loads(path.read_text()) if path.is_file() else {}), **update}
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(merged, indent=2, sort_keys=True))
        tmp.replace(path)
    return merged


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``<path>.lock`` for a read-modify-write of ``path``."""
    with open(path.with_name(path.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclasses.dataclass
class ModelEntry:
    """One point of the study: the base model, optionally with an adapter at a scale."""

    key: str
    kind: str  # baseline | run | checkpoint | interpolation
    run: str | None = None
    step: int | None = None
    lam: float | None = None
    adapter: Path | None = None

    def meta(self, model: str) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "run": self.run, "step": self.step, "lambda": self.lam,
                "adapter": str(self.adapter) if self.adapter else None, "model": model}


class Runner:
    """Executes an :class:`ExperimentConfig` into ``run_dir`` step by step, with caching."""

    def __init__(self, cfg: ExperimentConfig, run_dir: Path, record: ExperimentConfig | None = None) -> None:
        self.cfg = cfg
        self.record = record or cfg  # written as config.yaml: the whole study, also when this process does a part
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self.cache = StepCache(run_dir / "steps.json")
        self.spider_root, self.mmlu_root = self.resolve_data()
        self._base: tuple[Any, Any] | None = None
        self.failures: list[str] = []

    # ---- data ---------------------------------------------------------------------------------------------
    def resolve_data(self) -> tuple[Path, Path]:
        """Materialise the embedded demo when asked; otherwise use the given folders."""
        d = self.cfg.data
        demo = Path()
        if "demo" in (d.spider_dir, d.mmlu_dir):
            from sqlshift.data.demo import ensure_demo

            demo = ensure_demo(self.run_dir / "data")
        spider = demo / "spider" if d.spider_dir == "demo" else Path(d.spider_dir)
        mmlu = demo / "mmlu" if d.mmlu_dir == "demo" else Path(d.mmlu_dir)
        return spider, mmlu

    def spider_split(self, name: str) -> Any:
        """Load a split and apply the evaluation subset (seeded), keeping the skip accounting."""
        from sqlshift.data.spider import load_spider

        split = load_spider(self.spider_root, name)
        lim = self.cfg.spider.limit
        if lim is not None and lim < len(split.examples):
            rng = random.Random(self.cfg.spider.sample_seed)
            keep = sorted(rng.sample(range(len(split.examples)), lim), key=lambda i: split.examples[i].index)
            split = dataclasses.replace(split, examples=[split.examples[i] for i in keep])
        return split

    def mmlu_questions(self, m: MMLUEval) -> list[Any]:
        """The MMLU questions of a protocol (seed preset, a list, or all subjects)."""
        from sqlshift.data.mmlu import load_mmlu, resolve_subjects, seed_sample

        subjects = resolve_subjects(m.subjects if isinstance(m.subjects, str) else ",".join(m.subjects),
                                    mmlu_dir=self.mmlu_root, split=m.split)
        subjects = [s for s in subjects if s not in set(m.exclude)]
        qs = load_mmlu(self.mmlu_root, subjects, split=m.split)
        if m.subjects == "seed":
            qs = seed_sample(qs)
        if m.limit_per_subject:
            qs = first_per_subject(qs, m.limit_per_subject)
        return qs

    # ---- models -------------------------------------------------------------------------------------------
    def base(self) -> tuple[Any, Any]:
        """Load the base model once; adapters are attached and removed around it."""
        if self._base is None:
            from sqlshift.models import load_model

            log.info("loading base model %s", self.cfg.model)
            self._base = load_model(self.cfg.model, device=self.cfg.device, dtype=self.cfg.dtype)
        return self._base

    def with_entry(self, entry: ModelEntry) -> tuple[Any, Any, Any]:
        """(model to evaluate, tokenizer, undo callable) for an entry."""
        model, tok = self.base()
        if entry.adapter is None:
            return model, tok, lambda: None
        from sqlshift.models import apply_adapter

        wrapped = apply_adapter(model, entry.adapter, scale=entry.lam if entry.lam is not None else 1.0)
        wrapped.eval()

        def undo() -> None:
            self._base = (wrapped.unload(), tok)

        return wrapped, tok, undo

    # ---- training -----------------------------------------------------------------------------------------
    def train_run(self, spec: Any) -> Path:
        """Train one run (cached by its resolved config) and return its output folder."""
        from sqlshift.train import load_train_config, train

        overrides = [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in spec.overrides.items()]
        tcfg = load_train_config(spec.config, overrides)
        tcfg = self.bind_train_data(tcfg)
        out = self.run_dir / "train" / spec.name
        key = fingerprint({"train": tcfg.model_dump(mode="json"), "model": self.cfg.model})
        if self.cache.done(f"train/{spec.name}", key, [out / "adapter_config.json"]):
            log.info("train/%s: cached", spec.name)
            return out
        log.info("train/%s: training", spec.name)
        train(tcfg, out, model_spec=self.cfg.model)
        self.cache.record(f"train/{spec.name}", key)
        return out

    def bind_train_data(self, tcfg: Any) -> Any:
        """Point a training config at the experiment's data unless it names its own."""
        data = tcfg.data
        if not data.spider_dir or data.spider_dir == "demo":
            data.spider_dir = str(self.spider_root)
        rep = getattr(tcfg, "replay", None)
        if rep is not None and getattr(rep, "source", "none") == "mmlu" and not rep.path:
            rep.path = str(self.mmlu_root)
        if self.cfg.prompt:
            tcfg.prompt = tcfg.prompt.model_copy(update=self.cfg.prompt)
        return tcfg

    # ---- evaluation ---------------------------------------------------------------------------------------
    def run_entries(self, spec: RunSpec) -> list[ModelEntry]:
        """Train one run (cached), then list its final adapter, its checkpoints and its λ-scaled versions."""
        tdir = self.train_run(spec)
        last = final_step(tdir)
        out = [ModelEntry(spec.name, "run", run=spec.name, step=last, adapter=tdir)]
        for step, ck in checkpoints(tdir, spec.checkpoints):
            if step == last:  # the final checkpoint is the run's adapter: evaluating it twice only adds noise
                continue
            out.append(ModelEntry(f"{spec.name}-step{step}", "checkpoint", run=spec.name, step=step, adapter=ck))
        for lam in spec.lambdas:
            out.append(ModelEntry(f"{spec.name}-lambda{lam:g}", "interpolation", run=spec.name, lam=lam, adapter=tdir))
        return out

    def evaluate_entry(self, entry: ModelEntry) -> None:
        """Both axes for one model, each split/benchmark a cached step."""
        mdir = self.run_dir / "models" / entry.key
        mdir.mkdir(parents=True, exist_ok=True)
        (mdir / "model.json").write_text(json.dumps(entry.meta(self.cfg.model), indent=2))
        ident = {"model": self.cfg.model, "adapter": adapter_fingerprint(entry.adapter), "lambda": entry.lam,
                 "dtype": self.cfg.dtype}
        todo = []
        splits = self.cfg.spider.splits
        if entry.kind in ("checkpoint", "interpolation") and not self.cfg.spider.variants_for_all:
            splits = splits[:1]  # curves need the main split only; robustness variants for baseline and runs
        for split in splits:
            protocol = self.cfg.spider.model_dump(exclude={"splits", "variants_for_all"})
            key = fingerprint({**ident, "spider": protocol, "prompt": self.cfg.prompt, "split": split,
                               "data": str(self.spider_root)})
            sdir = mdir / f"spider-{split}"
            if not self.cache.done(f"{entry.key}/spider-{split}", key, [sdir / "metrics.json"]):
                todo.append(("spider", split, key, sdir))
        protocols = [self.cfg.mmlu] + (self.cfg.mmlu_extra if entry.kind in ("baseline", "run") else [])
        for proto in protocols:
            if not proto.enabled:
                continue
            key = fingerprint({**ident, "mmlu": proto.model_dump(), "data": str(self.mmlu_root)})
            out = mdir / proto.name
            if not self.cache.done(f"{entry.key}/{proto.name}", key, [out / "metrics.json"]):
                todo.append(("mmlu", proto, key, out))
        if not todo:
            log.info("%s: all evaluations cached", entry.key)
            return
        model, tok, undo = self.with_entry(entry)
        try:
            for axis, split, key, out in todo:
                fresh_dir(out, key)
                t0 = time.time()
                if axis == "spider":
                    self.eval_spider(model, tok, split, out)
                else:
                    self.eval_mmlu(model, tok, split, out)
                log.info("%s/%s: %.1f s", entry.key, out.name, time.time() - t0)
                self.cache.record(f"{entry.key}/{out.name}", key)
        finally:
            undo()

    def eval_spider(self, model: Any, tok: Any, split_name: str, out: Path) -> None:
        """Generate SQL for the split (resumable) and score it by execution."""
        from sqlshift.generate import generate_predictions
        from sqlshift.metrics.execution import evaluate_split
        from sqlshift.prompts import PromptConfig

        split = self.spider_split(split_name)
        preds = generate_predictions(model, tok, split, out / "predictions.jsonl",
                                     prompt_cfg=PromptConfig(**self.cfg.prompt), batch_size=self.cfg.spider.batch_size,
                                     max_new_tokens=self.cfg.spider.max_new_tokens)
        by_index = {p["index"]: p for p in preds}
        metrics = evaluate_split(split, by_index, out, mode=self.cfg.spider.ex_mode, timeout_s=self.cfg.spider.timeout_s)
        from sqlshift.guards import check_predictions_parsed

        problem = check_predictions_parsed(preds)
        if problem:
            self.failures.append(f"{out}: {problem}")
        log.info("EX %s = %.3f (n=%d)", split_name, metrics["execution_accuracy"], metrics["n"])

    def eval_mmlu(self, model: Any, tok: Any, proto: MMLUEval, out: Path) -> None:
        """Log-likelihood MMLU on the protocol's questions, with the below-chance guard."""
        from sqlshift.data.mmlu import load_fewshot
        from sqlshift.guards import check_below_chance
        from sqlshift.metrics.mmlu import evaluate_mmlu

        m = proto
        qs = self.mmlu_questions(proto)
        fewshot, note = load_fewshot(self.mmlu_root, sorted({q.subject for q in qs}), m.k_shot)
        metrics = evaluate_mmlu(model, tok, qs, out, mode=m.mode, k_shot=m.k_shot, chat=m.chat,
                                batch_size=m.batch_size, fewshot=fewshot or None,
                                extra={"fewshot_note": note, "protocol": m.name})
        problem = check_below_chance(metrics)
        if problem:
            self.failures.append(f"{out}: {problem}")
        log.info("MMLU = %.3f (n=%d)", metrics["accuracy"], metrics["n"])

    def record_failure(self, run: str, message: str) -> None:
        """``failures.json`` in the run directory: runs that produced no usable model, and why."""
        merge_json(self.run_dir / "failures.json", {run: message})

    # ---- whole study ---------------------------------------------------------------------------------------
    def run(self) -> dict[str, Path]:
        """Train, evaluate every entry, write the report; raise ScorerFailure after writing if a guard fired."""
        (self.run_dir / "config.yaml").write_text(yaml.safe_dump(self.record.model_dump(mode="json"), sort_keys=False))
        # Baseline first, then each run right after its training: an interrupted study keeps whole results.
        if self.cfg.baseline:
            self.evaluate_entry(ModelEntry("baseline", "baseline"))
        from sqlshift.train import TrainingDiverged

        for spec in self.cfg.runs:
            try:
                entries = self.run_entries(spec)
            except TrainingDiverged as e:  # a NaN adapter is not a model: record it, go on with the other runs
                log.error("%s", e)
                self.failures.append(str(e))
                self.record_failure(spec.name, str(e))
                continue
            for entry in entries:
                self.evaluate_entry(entry)
        from sqlshift.report import build_report

        paths = build_report(self.run_dir, max_mmlu_drop=self.cfg.max_mmlu_drop)
        if self.failures and not self.cfg.allow_below_chance:
            raise ScorerFailure("; ".join(self.failures),
                                "this is a scorer/prompt failure, not forgetting; fix the scorer or pass --allow-below-chance")
        return paths


def first_per_subject(questions: list[Any], n: int) -> list[Any]:
    """The first ``n`` questions of each subject (a quick, deterministic subset)."""
    seen: dict[str, int] = {}
    keep = []
    for q in questions:
        seen[q.subject] = seen.get(q.subject, 0) + 1
        if seen[q.subject] <= n:
            keep.append(q)
    return keep


def fresh_dir(out: Path, key: str) -> None:
    """Keep partial outputs made with the same inputs (resume); wipe those made with other inputs."""
    marker = out / ".step"
    if out.exists() and (not marker.is_file() or marker.read_text() != key):
        for f in out.glob("*"):
            if f.is_file():
                f.unlink()
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(key)


def final_step(train_dir: Path) -> int | None:
    """Global step of the final adapter (from trainer_state/log history when present)."""
    for name in ("trainer_state.json", "log_history.json"):
        f = train_dir / name
        if f.is_file():
            data = json.loads(f.read_text())
            if isinstance(data, dict) and "global_step" in data:
                return int(data["global_step"])
            if isinstance(data, list):
                steps = [r.get("step") for r in data if isinstance(r, dict) and r.get("step") is not None]
                if steps:
                    return int(max(steps))
    return None


def checkpoints(train_dir: Path, which: list[int] | str) -> list[tuple[int, Path]]:
    """The ``checkpoint-N`` folders to evaluate ("all", "none" or a list of steps; missing ones are an error)."""
    found = {int(p.name.split("-")[1]): p for p in train_dir.glob("checkpoint-*") if p.name.split("-")[1].isdigit()}
    if which == "none":
        return []
    if which == "all":
        return sorted(found.items())
    missing = [s for s in which if s not in found]
    if missing:
        raise ConfigError(f"{train_dir}: no checkpoint for steps {missing} (have {sorted(found)})",
                          "set save_steps so those steps are saved, raise save_total_limit, or list existing steps")
    return [(s, found[s]) for s in which]


def select(cfg: ExperimentConfig, only: list[str] | None) -> ExperimentConfig:
    """Keep only the named parts of a study (``baseline`` and/or run names), e.g. one subset per GPU process."""
    if not only:
        return cfg
    valid = ["baseline"] + [r.name for r in cfg.runs]
    unknown = [n for n in only if n not in valid]
    if unknown:
        raise ConfigError(f"--only: unknown name(s) {', '.join(unknown)}", f"choose from {', '.join(valid)}")
    return cfg.model_copy(update={"baseline": cfg.baseline and "baseline" in only,
                                  "runs": [r for r in cfg.runs if r.name in only]})


def run_experiment(config: str | Path | None = None, output: str | Path | None = None,
                   allow_below_chance: bool = False, model: str | None = None,
                   only: list[str] | None = None) -> dict[str, Path]:
    """CLI entry: load the config, run it, print the summary table; returns the report paths."""
    cfg, _ = load_experiment(config)
    if model:
        cfg.model = model
    whole, cfg = cfg, select(cfg, only)
    cfg.allow_below_chance = cfg.allow_below_chance or allow_below_chance
    run_dir = Path(output or cfg.output_dir or Path("runs") / cfg.name)
    setup_logging(run_dir)
    t0 = time.time()
    runner = Runner(cfg, run_dir, record=whole)
    try:
        paths = runner.run()
    finally:
        log.info("steps run: %d, cached: %d, wall %.1f s", len(runner.cache.ran), len(runner.cache.hits), time.time() - t0)
    print_summary(run_dir)
    return paths


def setup_logging(run_dir: Path) -> None:
    """Log to ``run.log`` in the run directory and to the console."""
    run_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger("sqlshift")
    root.setLevel(logging.INFO)
    if not any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == (run_dir / "run.log").resolve()
               for h in root.handlers):
        fh = logging.FileHandler(run_dir / "run.log")
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(fh)
    if not any(type(h) is logging.StreamHandler for h in root.handlers):
        from rich.logging import RichHandler

        root.addHandler(RichHandler(show_path=False, show_time=False))


def print_summary(run_dir: Path) -> None:
    """The end-of-run table: EX and MMLU per model with n and 95% CI."""
    from rich.console import Console
    from rich.table import Table

    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        return
    summary = json.loads(summary_path.read_text())
    table = Table(title=f"sqlshift study: {run_dir}")
    for col in ("model", "EX (dev)", "n", "MMLU", "n", "ΔMMLU vs base"):
        table.add_column(col)
    for m in summary.get("models", []):
        ex = m.get("ex", {}).get("dev") or {}
        mm = m.get("mmlu") or {}
        table.add_row(m["key"], fmt_ci(ex), str(ex.get("n", "")), fmt_ci(mm), str(mm.get("n", "")),
                      f"{mm['delta_points']:+.1f} pts" if mm.get("delta_points") is not None else "")
    Console().print(table)
    print(f"report: {run_dir / 'report.html'}")


def fmt_ci(m: dict[str, Any]) -> str:
    """``41.2% [38.1, 44.4]`` from a metrics block with accuracy and ci95."""
    if not m or m.get("accuracy") is None:
        return "-"
    lo, hi = m.get("ci95", [None, None])
    return f"{100 * m['accuracy']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"
