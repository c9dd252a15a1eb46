"""The settings reference (docs/SETTINGS.md): every key an experiment YAML accepts, generated from the classes
that validate it, so the documentation cannot drift from the code (a test compares the file with this output).

``python -m sqlshift.study.reference > docs/SETTINGS.md`` rewrites it.
"""

from __future__ import annotations

import inspect
import io
import re
import tokenize
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

HEADER = """# Settings reference

Every key of an experiment YAML (`sqlshift run study.yaml`), generated from the classes that validate it
(`python -m sqlshift.study.reference > docs/SETTINGS.md`; a test keeps this file up to date). Unknown keys are
errors. `sqlshift configs` lists the example studies that ship with sqlshift.
"""


def comments(cls: type) -> dict[str, str]:
    """``field -> trailing comment`` of each ``name: type = default  # comment`` line in the class bodies (MRO)."""
    out: dict[str, str] = {}
    for klass in reversed([k for k in cls.__mro__ if issubclass(k, BaseModel) and k is not BaseModel]):
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        first: dict[int, str] = {}
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.NAME and tok.start[0] not in first and tok.start[1] == 4:
                first[tok.start[0]] = tok.string
            elif tok.type == tokenize.COMMENT and tok.start[0] in first and tok.start[1] > 4:
                out[first[tok.start[0]]] = tok.string.lstrip("#").strip()
    return out


def type_name(annotation: Any) -> str:
    """``int | None``, ``list[str]``, ``"official" | "simple"``: a readable form of an annotation."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is typing.Literal:
        return " | ".join(repr(a).replace("'", '"') for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " | ".join(type_name(a) for a in args)
    if origin is not None:
        inner = ", ".join(type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if annotation is type(None):
        return "None"
    name = getattr(annotation, "__name__", str(annotation))
    return re.sub(r"\btyping\.", "", name)


def default_of(field: Any) -> str:
    """The default as YAML would spell it (``—`` for a required key)."""
    if field.default is PydanticUndefined:
        return "(required)" if field.default_factory is None else default_text(field.default_factory())
    return default_text(field.default)


def default_text(value: Any) -> str:
    if isinstance(value, BaseModel):
        return "(its own section)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if not isinstance(value, str) else f'"{value}"'


def table(cls: type[BaseModel], skip: tuple[str, ...] = ()) -> list[str]:
    """A markdown table of the model's keys: type, default, meaning."""
    notes = comments(cls)
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, field in cls.model_fields.items():
        if name in skip:
            continue
        meaning = field.description or notes.get(name, "")
        lines.append(f"| `{name}` | {type_name(field.annotation).replace('|', '&#124;')} | "
                     f"{default_of(field).replace('|', '&#124;')} | {meaning.replace('|', '&#124;')} |")
    return lines


def section(title: str, cls: type[BaseModel], intro: str = "", skip: tuple[str, ...] = ()) -> list[str]:
    doc = intro or (inspect.getdoc(cls) or "").splitlines()[0]
    return [f"## {title}", "", doc, "", *table(cls, skip), ""]


def reference_markdown() -> str:
    """The whole reference: the study, its sections, then each benchmark's settings (common keys once)."""
    from sqlshift.benchmarks.api import BenchmarkSettings, available, get_benchmark
    from sqlshift.benchmarks.voting import DecodingSettings
    from sqlshift.study.config import ExperimentConfig, LMSettings, RunSpec
    from sqlshift.study.executors import OverlapSettings, RaySettings
    from sqlshift.sql.prompts import PromptConfig
    from sqlshift.train.config import DataSettings, LoraSettings, ReplaySettings, TrainConfig

    parts = [HEADER, *section("The study (top level)", ExperimentConfig),
             *section("`lm:` how the model runs", LMSettings), *backend_sections(),
             *section("`runs:` one fine-tuning run", RunSpec),
             *section("`overlap:` with `executor: overlap` (one GPU)", OverlapSettings),
             *section("`ray:` with `executor: ray` (`pip install 'sqlshift[ray]'`)", RaySettings),
             *section("`prompt:` Text-to-SQL prompts", PromptConfig),
             *section("`benchmarks:` keys every benchmark takes", BenchmarkSettings)]
    common = tuple(BenchmarkSettings.model_fields)
    for name in available():
        cls = get_benchmark(name)
        doc = (inspect.getdoc(cls) or "").splitlines()[0]
        parts += section(f"`benchmark: {name}`", cls.Settings, intro=f"{doc} Axis: {cls.axis}; beside the common "
                                                                      "keys:", skip=common)
    parts += section("`decoding:` (spider): greedy, or samples and a vote", DecodingSettings)
    parts += section("Training presets and a run's `overrides:`", TrainConfig,
                     intro="The keys of a training YAML (`configs/train/`, `sqlshift train CONFIG`) and of a run's "
                           "`overrides:` (dotted for a section: `lora.r: 16`).")
    parts += section("`lora:` (training)", LoraSettings) + section("`data:` (training)", DataSettings)
    parts += section("`replay:` (training)", ReplaySettings)
    return "\n".join(parts).rstrip() + "\n"


def backend_sections() -> list[str]:
    """Each backend's own ``lm:`` keys (validated by its class), beside backend, device and dtype."""
    from sqlshift.lm.api import BACKENDS, BackendSettings, get_backend

    out: list[str] = []
    for name in BACKENDS:
        cls = get_backend(name)
        if set(cls.Settings.model_fields) - set(BackendSettings.model_fields):
            out += section(f"`lm:` keys of `backend: {name}`", cls.Settings, skip=tuple(BackendSettings.model_fields))
    return out


if __name__ == "__main__":
    print(reference_markdown(), end="")
