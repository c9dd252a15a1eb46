"""Where a study's pieces run: in this process (the default), overlapped on one GPU, or as Ray tasks over every GPU
of a machine or cluster.

The runner hands its executor the study (:meth:`run_study`): train every run, evaluate every model point.
In-process does both one after another (each training run in a spawned child, then one model for all points).
Overlap starts the training children (a few at a time) and the evaluation model together on one GPU, evaluates
the baseline as soon as the model is ready and each run as soon as its training ends. Ray runs the training runs
as parallel tasks, then splits the points into groups, one task (one model, one vLLM engine) per group. Every task
writes the same files and ``steps.json`` entries as in-process (the step cache and the output locks already let
several processes share a run directory), so a failed task reruns alone and a rerun resumes; the driver builds the
report once at the end. This module imports nothing of the runner: a task gets the runner itself, pickled as its
config and folder (``Runner.__reduce__``) and rebuilt in the worker.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib.util
import logging
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import Field

from sqlshift.errors import ConfigError, SqlshiftError
from sqlshift.isolate import stop_children
from sqlshift.strict import Strict

log = logging.getLogger("sqlshift")

EXECUTORS = ("in-process", "overlap", "ray")
RAY_INSTALL = "pip install 'sqlshift[ray]'"
POLL_S = 1.0  # how often the overlap executor looks for a failed training while it waits for another


class RaySettings(Strict):
    """Where the Ray tasks run and what each reserves (all nodes must see the run folder, data and model paths)."""

    address: str | None = None  # null: start Ray on this machine (all its GPUs); "auto" or "ray://host:10001": join
    gpus_per_run: float | None = Field(None, ge=0, le=1, description=(
        "GPUs each training task reserves; null: 1 when the cluster has GPUs, else 0 (a run trains in one process "
        "on one GPU, so at most 1; a fraction packs small runs onto one GPU)"))
    eval_tasks: int | None = Field(None, ge=1, description=(
        "evaluation tasks, each loading the model once for its share of the points; null: one per GPU of the "
        "cluster (1 without GPUs), never more than there are points"))


class OverlapSettings(Strict):
    """How many runs train at once beside the evaluation model on the one GPU (each is a child process)."""

    trainings: int = Field(2, ge=1, description=(
        "training runs at once; each holds its own GPU memory (≈ 27 GiB for a 1.5B LoRA on the fast path, H100), and "
        "runs waiting for a slot start as others end"))


ExecutorName = Literal["in-process", "overlap", "ray"]


def check_executor(executor: str, ray: RaySettings | None, overlap: OverlapSettings | None = None) -> None:
    """Config-time checks (ValueError, as every schema problem): a ``ray:`` block needs ``executor: ray``, which
    needs Ray installed; an ``overlap:`` block needs ``executor: overlap``."""
    if ray is not None and executor != "ray":
        raise ValueError(f"ray: settings given but executor is {executor} (set executor: ray, or remove ray:)")
    if overlap is not None and executor != "overlap":
        raise ValueError(f"overlap: settings given but executor is {executor} (set executor: overlap, or remove "
                         "overlap:)")
    if executor == "ray" and importlib.util.find_spec("ray") is None:
        raise ValueError(f"executor: ray needs Ray, which is not installed ({RAY_INSTALL})")


def make_executor(executor: str, ray: RaySettings | None = None,
                  overlap: OverlapSettings | None = None) -> InProcess | Overlap | RayExecutor:
    """The executor a study names (``executor:`` in its config)."""
    if executor == "ray":
        return RayExecutor(ray or RaySettings())
    return Overlap(overlap or OverlapSettings()) if executor == "overlap" else InProcess()


class InProcess:
    """Today's order in this process: train every run (each in a spawned child), then one model for every point."""

    def __enter__(self) -> InProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def run_study(self, runner: Any) -> list[Any]:
        """Train every run, then evaluate the baseline and every point with one model; the diverged runs."""
        entries, diverged = runner.train_all()
        runner.evaluate_all(runner.baseline_points() + entries)
        return diverged


class Overlap:
    """One GPU shared: the runs train in child processes (``trainings`` at a time) while this process loads the
    evaluation model, evaluates the baseline, then each run's points as soon as that run has trained.

    Why: in-process trains one run at a time, and a LoRA step is host-bound (on an H100 a 1.5B step is ≈ 0.1 s of
    GPU work in ≈ 0.6 s), so two runs at once nearly double the training throughput (docs/results.md, session 8);
    the engine's start runs beside them, though it then finishes only when they do. The price is memory: the engine
    takes a fixed share (the backend's :meth:`check_shared_gpu` says what it needs), each training child its own."""

    def __init__(self, settings: OverlapSettings) -> None:
        self.settings = settings

    def __enter__(self) -> Overlap:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def run_study(self, runner: Any) -> list[Any]:
        cls, settings = runner.cfg.lm.resolve()
        cls.check_shared_gpu(settings)
        preload = runner.trains_on_base()  # decided before any training ends (and is recorded as cached)
        pool = concurrent.futures.ThreadPoolExecutor(self.settings.trainings, thread_name_prefix="sqlshift-train")
        futures = [pool.submit(runner.train_one, run) for run in runner.cfg.runs]
        if futures:
            log.info("executor: overlap: %d run(s) train, %d at a time, while the model loads and evaluates",
                     len(futures), self.settings.trainings)
        finished = False
        try:
            diverged = self.evaluate_as_trained(runner, futures, preload)
            finished = True
            return diverged
        finally:
            if not finished:  # Ctrl-C or a failure: the children still training stop now, not at their end
                for f in futures:
                    f.cancel()
                stop_children()
            pool.shutdown(wait=True, cancel_futures=True)
            runner.close_lm()

    @staticmethod
    def evaluate_as_trained(runner: Any, futures: list[concurrent.futures.Future[Any]], preload: bool = False
                            ) -> list[Any]:
        """The baseline first, then each run's points in the study's order once its training has ended. With
        ``preload`` the base model is loaded after the baseline even if the baseline needed none (cached, or
        ``baseline: false``): its start (≈ 130 s for a vLLM engine on an H100) then runs beside the trainings."""
        runner.evaluate_points(runner.baseline_points())
        if preload:
            runner.lm()
        diverged = []
        for future in futures:
            entries, failed = wait_for(future, futures)
            if failed is not None:
                diverged.append(failed)
            runner.evaluate_points(entries)
        return diverged


def wait_for(future: concurrent.futures.Future[Any], others: list[concurrent.futures.Future[Any]]) -> Any:
    """``future``'s result; but any other run's error is raised as soon as it happens (the study stops then, not
    after the runs before it in the study's order have finished training)."""
    while not concurrent.futures.wait([future], timeout=POLL_S).done:
        for f in others:
            if f.done() and not f.cancelled() and f.exception() is not None:
                raise f.exception()  # type: ignore[misc]
    return future.result()


class RayExecutor:
    """Training runs as parallel Ray tasks, then one Ray task per group of model points."""

    def __init__(self, settings: RaySettings) -> None:
        self.settings = settings
        self.started = False
        self.pending: list[Any] = []

    def __enter__(self) -> RayExecutor:
        ray = import_ray()
        if not ray.is_initialized():
            where = self.settings.address or "a local Ray instance"
            log.info("executor: ray (%s)", where)
            try:
                ray.init(address=self.settings.address, include_dashboard=False, log_to_driver=True,
                         logging_level=logging.WARNING)  # the tasks' own log lines still come through
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise ConfigError(f"ray: cannot start or join {where} ({one_line(e)})",
                                  "check ray.address (ray status on the head node), or remove it to start Ray "
                                  "on this machine") from None
            self.started = True
        return self

    def __exit__(self, *exc: object) -> None:
        """Cancel what still runs (Ctrl-C, a failed task) and disconnect; a local instance we started stops."""
        ray = import_ray()
        for ref in self.pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        self.pending = []
        if self.started:
            ray.shutdown()
            self.started = False

    def gpus(self) -> int:
        return int(import_ray().cluster_resources().get("GPU", 0))

    def submit(self, fn: Callable[..., Any], num_gpus: float, name: str, *args: Any) -> Any:
        """One task; ``max_calls=1``: its worker exits afterwards, so GPU memory is given back as a child's is."""
        ray = import_ray()
        ref = ray.remote(max_calls=1)(fn).options(num_gpus=num_gpus, name=name).remote(*args)
        self.pending.append(ref)
        return ref

    def get(self, ref: Any, runner: Any, what: str) -> Any:
        """A task's value, with the steps it ran or found cached counted on the driver's runner; a task's own error
        is raised here as itself (one line, its fix kept), a lost worker as one line naming the task."""
        ray = import_ray()
        try:
            value, ran, hits = ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            cause = e.cause if isinstance(e.cause, BaseException) else None
            if cause is not None:
                raise cause from None
            raise SqlshiftError(f"{what}: the Ray task failed ({one_line(e)})",
                                "see run.log; rerun to resume") from None
        except ray.exceptions.RayError as e:
            raise SqlshiftError(f"{what}: the Ray task was lost ({one_line(e)})",
                                "see run.log and Ray's logs (/tmp/ray/session_latest/logs); rerun to resume") from None
        finally:
            if ref in self.pending:
                self.pending.remove(ref)
        runner.cache.ran += ran
        runner.cache.hits += hits
        return value

    def train_all(self, runner: Any) -> tuple[list[Any], list[Any]]:
        """Every run to train is a task at once; the runner then takes their results in the study's order."""
        gpus = self.settings.gpus_per_run
        gpus = (1.0 if self.gpus() else 0.0) if gpus is None else gpus
        refs = {spec.name: self.submit(train_task, gpus, f"train/{spec.name}", runner, spec)
                for spec in runner.cfg.runs if spec.config}
        if refs:
            log.info("ray: %d training task(s), %g GPU each", len(refs), gpus)

        def entries(spec: Any) -> list[Any]:
            if spec.name not in refs:  # an adapter trained elsewhere: nothing to run
                return runner.run_entries(spec)
            return self.get(refs[spec.name], runner, f"train/{spec.name}")

        return runner.train_all(entries)

    def run_study(self, runner: Any) -> list[Any]:
        """The runs as parallel tasks, then the baseline and every point in groups of tasks; the diverged runs."""
        entries, diverged = self.train_all(runner)
        self.evaluate_all(runner, runner.baseline_points() + entries)
        return diverged

    def evaluate_all(self, runner: Any, points: list[Any]) -> None:
        """One task per group of points, each loading the model once; their guard problems come back here."""
        gpus = self.gpus()
        groups = split(points, self.settings.eval_tasks or max(gpus, 1))
        log.info("ray: %d evaluation task(s) for %d model point(s), %d GPU each", len(groups), len(points),
                 1 if gpus else 0)
        refs = [self.submit(evaluate_task, 1 if gpus else 0, f"evaluate/{g[0].key}", runner, g) for g in groups]
        for ref, group in zip(refs, groups):
            runner.problems += self.get(ref, runner, f"evaluate {', '.join(p.key for p in group)}")


def train_task(runner: Any, spec: Any) -> tuple[list[Any], list[str], list[str]]:
    """In a Ray worker: train one run (cached) and list its points."""
    return runner.run_entries(spec), runner.cache.ran, runner.cache.hits


def evaluate_task(runner: Any, points: list[Any]) -> tuple[list[Exception], list[str], list[str]]:
    """In a Ray worker: evaluate a group of points with one model, then close it."""
    runner.evaluate_all(points)
    return runner.problems, runner.cache.ran, runner.cache.hits


def split(items: Sequence[Any], n: int) -> list[list[Any]]:
    """``items`` in at most ``n`` contiguous groups of near-equal size (none empty), order kept."""
    n = max(1, min(n, len(items)))
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(list(items[start:end]))
        start = end
    return [g for g in out if g]


def import_ray() -> Any:
    """Ray, or the one line saying how to install it (the config check catches this earlier; a direct API user
    may not have gone through it)."""
    try:
        import ray
    except ImportError:
        raise ConfigError("executor: ray needs Ray, which is not installed", RAY_INSTALL) from None
    return ray


def one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 300 else text[:297] + "..."
