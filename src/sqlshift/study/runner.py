"""`sqlshift run`: the whole study in one command.

An experiment YAML (:mod:`sqlshift.study.config`) names a model, the benchmarks and the fine-tuning runs. The runner
trains each run, then evaluates the baseline, each run, each listed checkpoint and each LoRA scale λ on every
benchmark into one run directory, and writes the report. Every step is cached by a hash of what it depends on
(``steps.json``): a rerun redoes only what is missing or changed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from collections.abc import Sequence
from typing import Any, Callable, Iterator

import yaml

from sqlshift.lm.api import LM
from sqlshift.benchmarks.api import Benchmark
from sqlshift.study.config import (ExperimentConfig, LMSettings, RunSpec, adapter_ranks, axes, load_experiment,
                                   make_benchmarks, validate)
from sqlshift.study.executors import make_executor
from sqlshift.errors import BelowChance, ConfigError, SqlshiftError, TrainingDiverged, for_model, one_error
from sqlshift.inputs import read_input_bytes, read_json_file
from sqlshift.isolate import run_isolated
from sqlshift.train.recipes import LoRA, Recipe, recipe_of
from sqlshift.outputs import (LOCK_NAME, atomic_write_text, exclusive_output, merge_json, read_state,
                              setup_logging)

log = logging.getLogger("sqlshift")


def fingerprint(obj: Any) -> str:
    """Stable short hash of a JSON-able object: the cache key of a step."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class StepCache:
    """``steps.json``: step name -> hash of its inputs. A step is done when its hash matches and its outputs exist."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.steps: dict[str, str] = read_state(path) if path.exists() else {}
        self.ran: list[str] = []
        self.hits: list[str] = []

    def has(self, name: str, key: str, outputs: list[Path]) -> bool:
        """Whether the step is done, without counting it as a cache hit."""
        return self.steps.get(name) == key and all(o.exists() for o in outputs)

    def done(self, name: str, key: str, outputs: list[Path]) -> bool:
        hit = self.has(name, key, outputs)
        if hit:
            self.hits.append(name)
        return hit

    def record(self, name: str, key: str) -> None:
        """Merge one step into the file under a lock: several processes (one per GPU) may share a run dir."""
        self.ran.append(name)
        self.steps = merge_json(self.path, {**self.steps, name: key})


@dataclasses.dataclass
class ModelEntry:
    """One point of the study: the base model (or a fully fine-tuned one), optionally with an adapter at a scale."""

    key: str
    kind: str  # baseline | run | checkpoint | interpolation
    run: str | None = None
    step: int | None = None
    lam: float | None = None
    adapter: Path | None = None
    model: str | None = None  # a trained model folder (full fine-tuning); None: the study's base model
    trained: str | None = None  # the training step's cache key: a retrained full model invalidates its results

    def meta(self, model: str) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "run": self.run, "step": self.step, "lambda": self.lam,
                "adapter": str(self.adapter) if self.adapter else None, "model": self.model or model}


def load_lm(model: str, settings: LMSettings, ranks: Sequence[int] = ()) -> LM:
    """The configured backend's ``LM`` for a base model, built from its own validated settings, told the ranks
    of the adapters it will serve."""
    cls, backend_settings = settings.resolve()
    log.info("loading %s with the %s backend", model, cls.backend)
    return cls.from_settings(model, backend_settings, ranks)


class Runner:
    """Executes an :class:`ExperimentConfig` into ``run_dir`` step by step, with caching."""

    def __init__(self, cfg: ExperimentConfig, run_dir: Path, record: ExperimentConfig | None = None) -> None:
        self.cfg = cfg
        self.record = record or cfg  # written as config.yaml: the whole study, also when this process does a part
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self.cache = StepCache(run_dir / "steps.json")
        self.demo_root = self.materialise_demo()
        self.benches = make_benchmarks(cfg, self.demo_root)
        self._lm: LM | None = None
        self._lm_model: str | None = None  # the model self._lm holds
        self.measured: dict[str, float] = {}  # benchmark folder -> seconds it just took on one model
        self.estimated = False
        self.problems: list[Exception] = []
        self.launch: Callable[..., Any] | None = None  # how a training run is started; None: a spawned child

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """A Ray task gets the runner as its config and folder and rebuilds it in the worker (executors.py)."""
        return type(self).in_worker, (self.cfg, self.run_dir, self.record)

    @classmethod
    def in_worker(cls, cfg: ExperimentConfig, run_dir: Path, record: ExperimentConfig) -> Runner:
        """This runner in a Ray worker: it logs to run.log and trains in the worker itself (the worker is the
        isolated process: it exits after its task)."""
        setup_logging(run_dir)
        runner = cls(cfg, run_dir, record)
        runner.launch = call_here
        return runner

    def materialise_demo(self) -> Path | None:
        """Write the embedded demo benchmark into the run directory when any benchmark reads ``demo``."""
        if "demo" not in [self.cfg.data_dir] + [s.data_dir for s in self.cfg.benchmarks]:
            return None
        from sqlshift.data.demo import ensure_demo

        return ensure_demo(self.run_dir / "data")

    def check(self) -> None:
        """Stop before any model loads when the study could not finish (all problems in one message)."""
        problems = validate(self.cfg, self.benches)
        if problems:
            raise ConfigError("the experiment cannot run (nothing was loaded or trained); fix these:\n  - "
                              + "\n  - ".join(problems))

    def lm(self, model: str | None = None) -> LM:
        """The model of a point, loaded once while its points are evaluated: the base serves every adapter point;
        a fully fine-tuned model is its own (the previous one is closed first, freeing its memory)."""
        model = model or self.cfg.model
        if self._lm is not None and self._lm_model != model:
            self.close_lm()
        if self._lm is None:
            ranks = adapter_ranks(self.cfg) if model == self.cfg.model else []  # a trained full model: none
            self._lm, self._lm_model = load_lm(model, self.cfg.lm, ranks), model
        return self._lm

    # ---- training -----------------------------------------------------------------------------------------
    def train_step(self, spec: RunSpec) -> tuple[Any, Recipe, Path, str]:
        """A run's training config, recipe, output folder and cache key (its resolved config and the model)."""
        from sqlshift.train.config import cache_fields, load_train_config

        tcfg = self.bind_train_data(load_train_config(spec.config, spec.overrides))
        key = fingerprint({"train": cache_fields(tcfg), "model": self.cfg.model})
        return tcfg, recipe_of(tcfg), self.run_dir / "train" / spec.name, key

    def trains_on_base(self) -> bool:
        """Whether a run will train (not cached) a model the base serves (an adapter): the overlap executor then
        starts the base model beside the trainings rather than after them."""
        for spec in self.cfg.runs:
            if spec.adapter:
                continue
            _, recipe, out, key = self.train_step(spec)
            if recipe.point(out).model is None and not self.cache.has(f"train/{spec.name}", key, [out / recipe.marker]):
                return True
        return False

    def train_run(self, spec: RunSpec) -> tuple[Path, Recipe, str]:
        """Train one run (cached by its resolved config): its output folder, its recipe and the step's key."""
        tcfg, recipe, out, key = self.train_step(spec)
        if self.cache.done(f"train/{spec.name}", key, [out / recipe.marker]):
            log.info("train/%s: cached", spec.name)
            return out, recipe, key
        where = "in this Ray task's worker" if self.launch else \
            "in a child process (it frees all its memory when it ends)"
        log.info("train/%s: %s training %s", spec.name, recipe.name, where)
        (self.launch or run_isolated)(train_in_child, tcfg, out, self.cfg.model, self.run_dir,
                                      name=f"train/{spec.name}")
        self.cache.record(f"train/{spec.name}", key)
        return out, recipe, key

    def bind_train_data(self, tcfg: Any) -> Any:
        """Point a training config at the experiment's data and prompt unless it names its own."""
        root = self.demo_root if self.cfg.data_dir == "demo" else Path(self.cfg.data_dir).expanduser()
        assert root is not None
        if not tcfg.data.spider_dir or tcfg.data.spider_dir == "demo":
            tcfg.data.spider_dir = str(root)
        rep = tcfg.replay
        if rep.source == "mmlu" and not rep.path:
            rep.path = str(root / "mmlu")
        if "prompt" in self.cfg.model_fields_set:
            tcfg.prompt = self.cfg.prompt
        return tcfg

    # ---- evaluation ---------------------------------------------------------------------------------------
    def run_entries(self, spec: RunSpec) -> list[ModelEntry]:
        """Train one run (cached), then list its model points: the final one, its checkpoints and (adapter
        recipes only) its λ-scaled versions, each as its recipe says it is evaluated."""
        tdir, recipe, key = (Path(spec.adapter), LoRA(), None) if spec.adapter else self.train_run(spec)
        last = final_step(tdir)

        def entry(name: str, kind: str, folder: Path, **kw: Any) -> ModelEntry:
            point = recipe.point(folder)
            return ModelEntry(name, kind, run=spec.name, adapter=point.adapter, model=point.model,
                              trained=key if point.model else None, **kw)

        out = [entry(spec.name, "run", tdir, step=last)]
        for step, ck in checkpoints(tdir, spec.checkpoints):
            if step == last:  # the final checkpoint is the run's model: evaluating it twice only adds noise
                continue
            out.append(entry(f"{spec.name}-step{step}", "checkpoint", ck, step=step))
        for lam in spec.lambdas:  # validate() refuses λ on a recipe without an adapter
            out.append(entry(f"{spec.name}-lambda{lam:g}", "interpolation", tdir, lam=lam))
        return out

    def evaluate_entry(self, entry: ModelEntry) -> None:
        """Every benchmark for one model, each a cached step in ``models/<key>/<benchmark>/``."""
        mdir = self.run_dir / "models" / entry.key
        mdir.mkdir(parents=True, exist_ok=True)
        cls, settings = self.cfg.lm.resolve()  # what the point's outputs depend on, known before loading it
        ident = cls.cache_identity(entry.model or self.cfg.model, settings, entry.adapter, entry.lam)  # + model.json
        if entry.trained:
            ident["trained"] = entry.trained
        atomic_write_text(mdir / "model.json", json.dumps({**entry.meta(self.cfg.model), "backend": ident["backend"]},
                                                          indent=2))
        todo: list[tuple[Benchmark, str, Path]] = []
        for bench in self.benches:
            if bench.settings.points == "final" and entry.kind not in ("baseline", "run"):
                continue
            key = fingerprint({**ident, **bench.fingerprint()})
            out = mdir / bench.out_name
            if not self.cache.done(f"{entry.key}/{bench.out_name}", key, [out / "metrics.json"]):
                todo.append((bench, key, out))
            else:  # a cached failure still fails: rerunning a broken study must not pass
                self.problems += for_model(bench.problems(read_state(out / "metrics.json")), entry.key)
        if not todo:
            log.info("%s: all evaluations cached", entry.key)
            return
        lm = self.lm(entry.model)
        with lm.adapter(entry.adapter, entry.lam if entry.lam is not None else 1.0):
            for bench, key, out in todo:
                fresh_dir(out, key)
                t0 = time.time()
                metrics = bench.evaluate(lm, out)
                self.problems += for_model(bench.problems(metrics), entry.key)
                self.measured[out.name] = time.time() - t0
                log.info("%s/%s: %s = %.3f (n=%d), %.1f s", entry.key, out.name, getattr(bench, "label", bench.name),
                         metrics["accuracy"], metrics["n"], self.measured[out.name])
                self.cache.record(f"{entry.key}/{out.name}", key)

    def log_estimate(self, rest: list[ModelEntry]) -> None:
        """Once, after the first model evaluated from scratch: the time the other models will take at the rates
        just measured here (nothing is said before there is a measurement, or when nothing is left)."""
        if self.estimated or not rest or not self.measured:
            return
        self.estimated = True
        seconds = sum(self.measured.get(b.out_name, 0.0) for e in rest for b in self.benches
                      if b.settings.points == "all" or e.kind in ("baseline", "run"))
        took = f"{seconds / 60:.0f} minutes" if seconds >= 120 else f"{seconds:.0f} s"
        log.info("estimate: the other %d model(s) take about %s more (the time each benchmark just took, per "
                 "model)", len(rest), took)

    def record_failure(self, run: str, message: str) -> None:
        """``failures.json`` in the run directory: runs that produced no usable model, and why."""
        merge_json(self.run_dir / "failures.json", {run: message})

    # ---- whole study ---------------------------------------------------------------------------------------
    def run(self) -> dict[str, Path]:
        """Train, evaluate every entry, write the report; then raise the first guard failure, if any."""
        self.check()
        spec, gen = axes(self.record, self.benches)  # --only selects runs, never benchmarks
        record = self.record.model_copy(update={"specialty": spec, "generality": gen})
        atomic_write_text(self.run_dir / "config.yaml", yaml.safe_dump(record.model_dump(mode="json"), sort_keys=False))
        log.info("plan: %s", plan(self.cfg, self.benches))
        # In-process: every run is trained (each in its own process) before the model is loaded for evaluation, so
        # one model (one vLLM engine) serves the baseline and every point and training never competes for its
        # memory. Overlap: training children and the model share the GPU. Ray: tasks over every GPU.
        with make_executor(self.cfg.executor, self.cfg.ray, self.cfg.overlap) as executor:
            diverged = executor.run_study(self)
        from sqlshift.report import build_report

        paths = build_report(self.run_dir)
        self.raise_problems(diverged)
        return paths

    def baseline_points(self) -> list[ModelEntry]:
        return [ModelEntry("baseline", "baseline")] if self.cfg.baseline else []

    def evaluate_all(self, points: list[ModelEntry]) -> None:
        """Every point with one model (loaded at the first point that needs it), closed at the end."""
        try:
            self.evaluate_points(points)
        finally:
            self.close_lm()

    def evaluate_points(self, points: list[ModelEntry]) -> None:
        """Each point in turn with the model held (loaded when first needed; left open for the caller to close)."""
        for i, entry in enumerate(points):
            self.evaluate_entry(entry)
            self.log_estimate(points[i + 1:])

    def train_all(self, trained: Callable[[RunSpec], list[ModelEntry]] | None = None
                  ) -> tuple[list[ModelEntry], list[TrainingDiverged]]:
        """Train (or find cached) every run; a diverged run is recorded and left out, the others go on.
        ``trained``: a run's points from elsewhere (a Ray task); default: :meth:`run_entries` here."""
        entries: list[ModelEntry] = []
        diverged: list[TrainingDiverged] = []
        for run in self.cfg.runs:
            got, failed = self.train_one(run, trained)
            entries += got
            diverged += [failed] if failed else []
        return entries, diverged

    def train_one(self, run: RunSpec, trained: Callable[[RunSpec], list[ModelEntry]] | None = None
                  ) -> tuple[list[ModelEntry], TrainingDiverged | None]:
        """One run's points; a diverged run (a NaN adapter is not a model) is recorded and has none."""
        try:
            return (trained or self.run_entries)(run), None
        except TrainingDiverged as e:
            log.error("%s", e)
            self.record_failure(run.name, str(e))
            return [], e

    def close_lm(self) -> None:
        """Shut the evaluation model (engine) down explicitly: a vLLM engine left to interpreter exit aborts it."""
        if self._lm is not None:
            self._lm.close()
            self._lm = None

    def raise_problems(self, diverged: list[TrainingDiverged]) -> None:
        """Guards fire after every result and the report are written: nothing is lost, but nothing passes."""
        problems = [p for p in self.problems if not (isinstance(p, BelowChance) and self.cfg.allow_below_chance)]
        if diverged:
            raise diverged[0]
        if problems:
            raise one_error(problems)


def train_in_child(tcfg: Any, out: Path, model: str, run_dir: Path) -> None:
    """A training run as a child process does it: log to the study's run.log, train, exit (memory freed).

    Its CUDA allocator grows expandable segments (unless the user configured it): padding-free batches change shape
    every step, and the default allocator then held ≈ 30 GiB per Run 1 training beside the engine (session 9, an
    H100) against 13.7 GiB allocated at most. Set before torch loads: the allocator reads it once."""
    os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
    from sqlshift.train.trainer import train

    setup_logging(run_dir)
    train(tcfg, out, model_spec=model)


def call_here(fn: Callable[..., Any], *args: Any, name: str = "") -> Any:
    """``run_isolated``'s signature, run in this process (a Ray worker is already the isolated process)."""
    return fn(*args)


def plan(cfg: ExperimentConfig, benches: list[Benchmark]) -> str:
    """One line saying how much work the study is, so a user knows what to expect before it starts."""
    points = (1 if cfg.baseline else 0) + len(cfg.runs) + sum(len(r.lambdas) for r in cfg.runs)
    names = ", ".join(b.out_name + (f" (sample {b.settings.sample})" if b.settings.sample else "") for b in benches)
    trained = sum(r.adapter is None for r in cfg.runs)
    if trained == 0:  # sqlshift eval, or a study of given adapters: nothing to train, no checkpoints
        models = ", ".join((["baseline"] if cfg.baseline else []) + [r.name for r in cfg.runs])
        return (f"score {points} model{'s' * (points != 1)} ({models}) on {len(benches)} "
                f"benchmark{'s' * (len(benches) != 1)}: {names}")
    return (f"{trained} training run(s); {points} model(s) (plus any listed checkpoints) "
            f"x {len(benches)} benchmark(s): {names}")


def fresh_dir(out: Path, key: str) -> None:
    """Keep partial outputs made with the same inputs (resume); wipe those made with other inputs."""
    marker = out / ".step"
    if out.exists() and (not marker.is_file() or read_input_bytes(marker, "a step marker", f"delete {marker}",
                                                                   4096).decode(errors="replace") != key):
        for f in out.glob("*"):
            if f.is_file():
                f.unlink()
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(marker, key)


def final_step(train_dir: Path) -> int | None:
    """Global step of the final adapter (from trainer_state/log history when present)."""
    for name in ("trainer_state.json", "log_history.json"):
        f = train_dir / name
        if f.is_file():
            data = read_json_file(f, "a training log", f"retrain the run (delete {train_dir})")
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
    from sqlshift.lm.locate import locate_model

    if model:
        locate_model(model)  # a typo in --model is one line before the config is even read
    cfg = load_experiment(config)
    if model:
        cfg.model = model
    return run_study(cfg, output, allow_below_chance=allow_below_chance, only=only)


def run_study(cfg: ExperimentConfig, output: str | Path | None = None, allow_below_chance: bool = False,
              only: list[str] | None = None) -> dict[str, Path]:
    """Run a validated study into its run directory and print the summary table (``run`` and ``eval`` both)."""
    from sqlshift.lm.locate import locate_model

    locate_model(cfg.model)  # before anything is written or built: an unreachable Hub is one line at once
    whole, cfg = cfg, select(cfg, only)
    cfg.allow_below_chance = cfg.allow_below_chance or allow_below_chance
    run_dir = Path(output or cfg.output_dir or Path("runs") / cfg.name)
    setup_logging(run_dir)
    t0 = time.time()
    runner: Runner | None = None
    try:
        runner = Runner(cfg, run_dir, record=whole)
        with study_lock(run_dir, only):
            paths = runner.run()
    except KeyboardInterrupt:  # the CLI prints the one line on the console
        to_run_log(logging.WARNING, "interrupted: rerun the same command to resume (finished steps are kept)")
        raise
    except SqlshiftError as e:  # the console gets it from the CLI; run.log must say why the run stopped too
        to_run_log(logging.ERROR, f"stopped: {e}")
        raise
    finally:
        if runner is not None and (runner.cache.ran or runner.cache.hits):
            log.info("steps run: %d, cached: %d, wall %.1f s", len(runner.cache.ran), len(runner.cache.hits),
                     time.time() - t0)
    from sqlshift.report import print_summary

    print_summary(run_dir)
    return paths


@contextlib.contextmanager
def study_lock(run_dir: Path, parts: list[str] | None) -> Iterator[None]:
    """One writer per run directory (:func:`sqlshift.outputs.exclusive_output`): a whole study holds its lock;
    ``--only`` parts share it and each holds its own part's lock, so two processes never do the same part."""
    fix = "wait for it to finish, or use another --output (or --only with other parts)"
    what = f"sqlshift run{' --only ' + ','.join(parts) if parts else ''}"
    with contextlib.ExitStack() as stack:
        stack.enter_context(exclusive_output(run_dir, what, shared=bool(parts), reentrant=False, fix=fix))
        for part in parts or []:
            stack.enter_context(exclusive_output(run_dir, f"sqlshift run --only {part}", name=f"{LOCK_NAME}-{part}",
                                                 reentrant=False, fix=fix))
        yield


def to_run_log(level: int, message: str) -> None:
    """Write one record to ``run.log`` only (the console already shows it, from the CLI)."""
    record = log.makeRecord(log.name, level, __file__, 0, message, None, None)
    for h in logging.getLogger("sqlshift").handlers:
        if isinstance(h, logging.FileHandler):
            h.handle(record)
