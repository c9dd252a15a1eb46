"""One model on some registered benchmarks, as ``lm_eval --model ... --tasks ...`` users expect (``sqlshift eval``):
a study with no training, so it writes exactly what the runner writes (``models/<key>/<benchmark>/`` files,
``model.json``, ``steps.json``, the report), resumes and caches the same way, on any registered backend."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlshift.benchmarks.api import available, get_benchmark
from sqlshift.errors import ConfigError
from sqlshift.inputs import check_yaml_bomb
from sqlshift.lm.api import LM
from sqlshift.study.config import ExperimentConfig


SET_FIX = ("write --set BENCH.KEY=VALUE, e.g. --set mmlu.subjects=all or --set spider-dev.batch_size=8 (or "
           "--set lm.KEY=VALUE for the backend, e.g. --set lm.load_in_4bit=true)")


@dataclasses.dataclass(frozen=True)
class Setting:
    """One ``--set BENCH.KEY=VALUE``: the benchmark it targets, the (dotted) key path, the YAML-parsed value."""

    bench: str
    keys: tuple[str, ...]
    value: Any
    text: str

    def covers(self, loc: Sequence[Any]) -> bool:
        """Whether a validation error at ``loc`` comes from this setting."""
        path = tuple(str(x) for x in loc)
        n = min(len(path), len(self.keys))
        return n > 0 and path[:n] == self.keys[:n]


def parse_sets(items: Sequence[str]) -> list[Setting]:
    """``["mmlu.subjects=all", "spider-dev.prompt.sample_rows=3"]`` -> settings; values are YAML (``8`` is an int,
    ``[a, b]`` a list, an empty value null)."""
    import yaml

    out = []
    for item in items:
        key, sep, value = item.partition("=")
        bench, _, path = key.strip().partition(".")
        if not (sep and bench and path and all(path.split("."))):
            raise ConfigError(f"--set {item!r} is not BENCH.KEY=VALUE", SET_FIX)
        check_yaml_bomb(value, f"--set {key}")
        try:
            parsed = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            raise ConfigError(f"--set {key}: value {value!r} is not valid YAML",
                              "write a YAML value: a word, a number, true/false, or a list like [a, b]") from None
        out.append(Setting(bench, tuple(path.split(".")), parsed, item))
    return out


def benchmark_entry(name: str, sample: int | None) -> dict[str, Any]:
    """A ``benchmarks:`` entry from a name: a registered benchmark (``hellaswag``), or one with its split
    (``spider-dev``, ``spider-syn``: the folder name the runner gives it)."""
    entry: dict[str, Any] = {"benchmark": name}
    if name not in available() and "-" in name:
        base, _, split = name.rpartition("-")
        if base in available() and "split" in get_benchmark(base).Settings.model_fields:
            entry = {"benchmark": base, "split": split}
    if entry["benchmark"] not in available():
        raise ConfigError(f"unknown benchmark '{name}'", f"use one of {', '.join(available())} "
                                                        "(spider-dev style names pick a split); see 'sqlshift benchmarks'")
    return entry | ({"sample": sample} if sample is not None else {})


def apply_sets(entries: dict[str, dict[str, Any]], sets: Sequence[Setting]) -> None:
    """Put each ``--set`` into the entries it names: by its ``--benchmarks`` name (``spider-dev``) or by the
    registered benchmark (``spider``: every split listed)."""
    for s in sets:
        targets = [e for name, e in entries.items() if s.bench in (name, e["benchmark"])]
        if not targets:
            raise ConfigError(f"--set {s.text}: '{s.bench}' is not one of --benchmarks ({', '.join(entries)})",
                              f"add {s.bench} to --benchmarks, or set one of those")
        if s.keys[0] == "benchmark":
            raise ConfigError(f"--set {s.text}: which benchmark runs is what --benchmarks says",
                              "drop this --set and name the benchmark in --benchmarks")
        for entry in targets:
            put(entry, s)


def put(node: dict[str, Any], s: Setting) -> None:
    """Write one setting into a config section; a nested key (``prompt.sample_rows``) builds its sections."""
    for k in s.keys[:-1]:
        if not isinstance(node.get(k), dict):
            node[k] = {}
        node = node[k]
    node[s.keys[-1]] = s.value


def check_entry(name: str, entry: dict[str, Any], sets: Sequence[Setting]) -> list[str]:
    """The entry validated by its benchmark's own strict settings: one line per problem, naming the ``--set``
    (or ``--sample``) that caused it."""
    from pydantic import ValidationError

    from sqlshift.study.config import unknown_key_hint

    cls = get_benchmark(entry["benchmark"]).Settings
    try:
        cls.model_validate(entry)
        return []
    except ValidationError as e:
        errors = e.errors()
    out = []
    for err in errors:
        mine = [s for s in sets if s.bench in (name, entry["benchmark"]) and s.covers(err.get("loc", ()))]
        where = f"--set {mine[-1].text}" if mine else ("--sample" if err.get("loc", ("",))[:1] == ("sample",) else
                                                         "--benchmarks")
        loc = err.get("loc", ())
        key = ".".join(map(str, loc))
        out.append(f"{where}: {name} has no setting {key}{unknown_key_hint(cls, loc)}"
                   if err.get("type") == "extra_forbidden" else f"{where}: {name}'s {key}: {err.get('msg')}")
    return out


def eval_entries(names: Sequence[str], sample: int | None, sets: Sequence[Setting], demo: bool) -> list[dict[str, Any]]:
    """``benchmarks:`` entries for the named benchmarks, with the demo's needs (on the demo data), ``--sample``
    and the ``--set`` settings in that order; every problem found at once, in one line."""
    from sqlshift.data.demo import DEMO_SETTINGS

    entries: dict[str, dict[str, Any]] = {}
    for name in names:
        entry = benchmark_entry(name, sample)
        entries[name] = (DEMO_SETTINGS.get(entry["benchmark"], {}) if demo else {}) | entry
    apply_sets(entries, sets)
    problems = {name: check_entry(name, entry, sets) for name, entry in entries.items()}
    bad = [name for name, found in problems.items() if found]
    if bad:
        raise ConfigError("; ".join(p for name in bad for p in problems[name]),
                          f"'sqlshift benchmarks' lists the settings of {', '.join(bad)} with their types and defaults")
    return list(entries.values())


def lm_settings(backend: str, settings: Sequence[Setting]) -> dict[str, Any]:
    """The ``lm:`` block: the backend plus every ``--set lm.KEY=VALUE`` (e.g. ``lm.load_in_4bit=true`` to serve an
    adapter on the 4-bit base QLoRA trained it on); the backend's own settings class validates the keys."""
    lm: dict[str, Any] = {"backend": backend}
    for s in settings:
        if s.bench == "lm":
            put(lm, s)
    return lm


def eval_config(model: str, benchmarks: list[str], *, adapter: str | Path | None = None, backend: str = "auto",
                sample: int | None = None, data_dir: str | Path | None = None,
                sets: Sequence[str] = ()) -> ExperimentConfig:
    """The study ``sqlshift eval`` runs: the base model (or, with ``adapter``, the adapted model) on each benchmark,
    each with its ``sets`` (``BENCH.KEY=VALUE``; ``lm.KEY=VALUE`` for the backend) applied.

    ``data_dir`` defaults to ``$SQLSHIFT_DATA_DIR``, else the embedded demo data."""
    if not benchmarks:
        raise ConfigError("no benchmarks named", "pass --benchmarks, e.g. --benchmarks spider-dev,hellaswag")
    root = str(data_dir or os.environ.get("SQLSHIFT_DATA_DIR") or "demo")
    settings = parse_sets(sets)
    raw: dict[str, Any] = {"name": "eval", "model": model, "lm": lm_settings(backend, settings),
                           "data_dir": str(Path(root).expanduser().resolve()) if root != "demo" else "demo",
                           "benchmarks": eval_entries(benchmarks, sample, [s for s in settings if s.bench != "lm"],
                                                      root == "demo")}
    if adapter is not None:
        raw |= {"baseline": False, "runs": [{"name": "adapter", "adapter": str(Path(adapter).expanduser().resolve())}]}
    from pydantic import ValidationError

    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"sqlshift eval: {problems}", "check --benchmarks, --backend, --sample and --set") from None


def benchmark_listing() -> list[str]:
    """``sqlshift benchmarks``: every registered benchmark, its axis and kind, and its own settings with defaults."""
    from sqlshift.benchmarks.api import BenchmarkSettings
    from sqlshift.study.reference import default_of, type_name

    common = set(BenchmarkSettings.model_fields)
    lines = ["sqlshift eval --set BENCH.KEY=VALUE changes any of these, e.g. --set mmlu.subjects=all",
             "every benchmark also takes: " + ", ".join(
        f"{k} = {default_of(f)}" for k, f in BenchmarkSettings.model_fields.items() if k != "benchmark")]
    for name in available():
        try:
            cls = get_benchmark(name)
        except ImportError as e:  # an optional package is missing: listed, not fatal
            lines += ["", f"{name}: unavailable ({e})"]
            continue
        doc = (inspect.getdoc(cls) or "").splitlines()[0]
        lines += ["", f"{name}  [{cls.axis}, {cls.kind}]  {doc}"]
        lines += [f"    {k}: {type_name(f.annotation)} = {default_of(f)}"
                  for k, f in cls.Settings.model_fields.items() if k not in common]
    return lines


@contextlib.contextmanager
def open_lm(model: str, adapter: str | Path | None = None, backend: str = "auto") -> Iterator[LM]:
    """The model as the runner loads it (the configured backend, from its own settings), with the adapter in,
    closed at the end: what ``predict`` and ``eval-mmlu`` score with, so they match ``eval`` and ``run``."""
    from sqlshift.lm.models import adapter_config, adapter_rank
    from sqlshift.study.config import LMSettings
    from sqlshift.study.runner import load_lm

    lm = load_lm(model, LMSettings(backend=backend), [adapter_rank(adapter_config(adapter))] if adapter else [])
    try:
        with lm.adapter(Path(adapter) if adapter else None):
            yield lm
    finally:
        lm.close()
