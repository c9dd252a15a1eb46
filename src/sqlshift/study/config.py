"""The experiment config: one strict schema, validated as a whole before any model loads.

An experiment names a model, a data folder, the benchmarks (each by registry name with its own settings), which
benchmark is each axis of the trade-off, and the fine-tuning runs. Every problem — a typo in a key, a missing
preset, an invalid override, a missing data file — is collected and reported at once.
"""

from __future__ import annotations

import difflib
import os
import re
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError, field_validator, model_validator

from sqlshift.benchmarks.api import Benchmark, BenchmarkSettings, available, get_benchmark
from sqlshift.strict import Strict
from sqlshift.errors import ConfigError
from sqlshift.study.executors import ExecutorName, OverlapSettings, RaySettings, check_executor
from sqlshift.inputs import plain_name, read_yaml_file
from sqlshift.sql.prompts import PromptConfig

DEFAULT_CONFIG = "default"  # the packaged embedded study: configs/default.yaml inside the package
CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"  # the studies (and train/ presets) that ship


def names_backend(settings_cls: Any, key: str) -> bool:
    """Whether a backend setting changes what is computed (marked ``names_backend`` on its field)."""
    extra = settings_cls.model_fields[key].json_schema_extra
    return bool(isinstance(extra, dict) and extra.get("names_backend"))


class LMSettings(Strict):
    """How the model is run: the backend and its own keys (each backend's class validates them)."""

    model_config = ConfigDict(extra="allow")  # the backend's own keys, checked below against its Settings

    backend: str = "auto"  # auto: vLLM on CUDA when installed, else transformers; or a name in sqlshift.lm.api.BACKENDS
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    dtype: str = "auto"  # auto | bf16 | fp16 | fp32

    @model_validator(mode="after")
    def _backend_keys(self) -> LMSettings:
        """Unknown backends and keys no backend takes are errors; a named backend validates all its keys now."""
        from sqlshift.lm.api import BACKENDS, get_backend

        if self.backend != "auto" and self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; use auto or one of {', '.join(BACKENDS)}")
        extra = dict(self.model_extra or {})
        owners = {b: get_backend(b).Settings.model_fields for b in BACKENDS}
        for key in extra:
            takers = [b for b, fields in owners.items() if key in fields]
            if not takers:
                raise ValueError(f"unknown key {key!r} under lm (no backend takes it)")
            if self.backend != "auto" and self.backend not in takers:
                raise ValueError(f"{key!r} is a setting of backend {', '.join(takers)}, not of {self.backend}")
            if self.backend == "auto" and any(names_backend(get_backend(b).Settings, key) for b in takers):
                raise ValueError(f"{key!r} changes the numbers, not only the speed: set lm.backend: "
                                 f"{takers[0]} (auto may pick another backend, which would ignore it)")
        for b in ([self.backend] if self.backend != "auto" else list(BACKENDS)):
            self.for_backend(b)  # values checked by the backend's own strict schema
        return self

    def resolve(self) -> tuple[Any, Any]:
        """(the backend's LM class, its settings): ``auto`` is decided here, by the backends' own classes; a named
        backend checks it can run with all its keys (e.g. hf's load_in_4bit needs CUDA)."""
        from sqlshift.lm.api import BackendSettings, get_backend, resolve_backend

        named = self.backend != "auto"  # auto picks by device and dtype; its keys that change numbers need a name
        given = self.for_backend(self.backend) if named else BackendSettings(device=self.device, dtype=self.dtype)
        name = resolve_backend(self.backend, given)
        return get_backend(name), given if named else self.for_backend(name)

    def for_backend(self, name: str) -> Any:
        """This block as the named backend's own strict settings (keys of other backends left out)."""
        from sqlshift.lm.api import get_backend

        cls = get_backend(name).Settings
        given = {"device": self.device, "dtype": self.dtype, **(self.model_extra or {})}
        return cls.model_validate({k: v for k, v in given.items() if k in cls.model_fields})


class RunSpec(Strict):
    """One fine-tuning run: a training preset or file plus overrides, and what to evaluate of it."""

    name: str  # the model's key in the report and its folder under models/
    config: str | None = None  # a training preset or YAML file
    adapter: str | None = None  # instead of training: an adapter folder trained elsewhere (same base model)
    overrides: dict[str, Any] = Field(default_factory=dict)  # dotted keys allowed: {"lora.r": 16}
    checkpoints: list[int] | Literal["all", "none"] = "none"  # saved checkpoints to evaluate too (by step)
    lambdas: list[float] = Field(default_factory=list)  # LoRA scales (WiSE-FT); 1.0 is the run itself
    replicate_of: str | None = None  # a training-seed replica of another run: the report's training-noise band

    @field_validator("name")  # it becomes models/<name> and train/<name>
    @classmethod
    def _plain_name(cls, v: str | None) -> str | None:
        return plain_name(v)


class ExperimentConfig(Strict):
    """A whole study."""

    name: str = "study"  # the run directory's name: runs/<name>
    output_dir: str | None = None  # the run directory (default runs/<name>; `sqlshift run -o` overrides it)
    model: str = "embedded"  # Hub id, local folder, .gguf file or embedded (SmolLM2-135M-Instruct, offline)
    lm: LMSettings = Field(default_factory=LMSettings)  # backend, device, precision
    data_dir: str = "demo"  # a folder holding spider/, mmlu/, general/ ... (`sqlshift layout`), or the embedded demo
    prompt: PromptConfig = Field(default_factory=PromptConfig)  # Text-to-SQL prompts, training and evaluation
    benchmarks: list[SerializeAsAny[BenchmarkSettings]] = Field(default_factory=list)  # by name, below
    specialty: str | None = None  # benchmark folder name; default: the first specialty benchmark
    generality: str | list[str] | None = None  # one name, or a list (composite); default: every generality one
    runs: list[RunSpec] = Field(default_factory=list)  # fine-tuning runs, each evaluated like the baseline
    baseline: bool = True  # evaluate the base model (off: e.g. a second process adding runs to a study)
    max_generality_drop: float = 2.0  # points: the budget for the report's pick
    allow_below_chance: bool = False  # report a below-chance score instead of failing (exit 3)
    executor: ExecutorName = "in-process"  # train, then evaluate; overlap: both at once on one GPU; ray: Ray tasks
    ray: RaySettings | None = None  # with executor: ray: the cluster to join and each task's GPUs, below
    overlap: OverlapSettings | None = None  # with executor: overlap: how many runs train at once

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str | None) -> str | None:
        return plain_name(v)

    @model_validator(mode="after")
    def _executor(self) -> ExperimentConfig:
        check_executor(self.executor, self.ray, self.overlap)
        return self

    @field_validator("benchmarks", mode="before")
    @classmethod
    def _typed_benchmarks(cls, items: Any) -> Any:
        """Validate each entry against its own benchmark's settings class (picked by its ``benchmark`` key)."""
        if not isinstance(items, list):
            return items
        out, errors = [], []
        for i, item in enumerate(items):
            if isinstance(item, BenchmarkSettings):
                out.append(item)
                continue
            name = item.get("benchmark") if isinstance(item, dict) else None
            if name not in available():
                hint = difflib.get_close_matches(str(name), available(), n=1)
                errors.append(f"benchmarks[{i}]: unknown benchmark {name!r}"
                              + (f" (did you mean {hint[0]}?)" if hint else f"; use one of {', '.join(available())}"))
                continue
            try:
                settings_cls = get_benchmark(name).Settings
                out.append(settings_cls.model_validate(item))
            except ValidationError as e:
                errors += [f"benchmarks[{i}] ({name}): {describe(err, settings_cls)}" for err in e.errors()]
            except ImportError as e:
                errors.append(f"benchmarks[{i}] ({name}): needs a package that is not installed ({e.name})")
        if errors:
            raise ValueError("\n  - ".join(errors))  # one line each, as every other problem
        return out


def describe(err: Any, model: type[BaseModel] | None = None) -> str:
    """One pydantic error as ``dotted.key: message``; an unknown key gets a did-you-mean from ``model``'s keys."""
    parts = err.get("loc", ())
    loc = ".".join(str(x) for x in parts)
    msg = err.get("msg", "invalid")
    if err.get("type") == "extra_forbidden":
        msg = "unknown key" + (unknown_key_hint(model, parts) if model is not None else "")
    return f"{loc}: {msg}" if loc else msg


def unknown_key_hint(model: type[BaseModel], loc: Sequence[Any]) -> str:
    """`` (did you mean batch_size?)`` for a near miss; a training key at the top level points at a run's overrides."""
    key = str(loc[-1]) if loc else ""
    near = difflib.get_close_matches(key, keys_at(model, loc[:-1]), n=1)
    if near:
        return f" (did you mean {near[0]}?)"
    if model is ExperimentConfig and len(loc) == 1 and is_training_key(key):
        return f" (a training setting: put it in a run's overrides, e.g. runs: [{{name: run1, config: " \
               f"embedded-cpu, overrides: {{{key}: ...}}}}])"
    return ""


def is_training_key(key: str) -> bool:
    """Whether ``key`` (dotted allowed: ``lora.r``) names a training-config setting."""
    from sqlshift.train.config import TrainConfig

    head = key.split(".")[0]
    return head in TrainConfig.model_fields and head not in ExperimentConfig.model_fields


def keys_at(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """The keys a config section at ``loc`` accepts (list indices skipped, through lists and optionals)."""
    for part in loc:
        if isinstance(part, int) or str(part).isdigit():
            continue
        field = model.model_fields.get(str(part))
        sub = model_in(field.annotation) if field else None
        if sub is None:
            return []
        model = sub
    return list(model.model_fields)


def model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (``list[RunSpec]``, ``LMSettings | None``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = model_in(arg)
        if found is not None:
            return found
    return None


def packaged_config(name: str) -> Path:
    """Path of an experiment config shipped inside the package (``default``, ``general-embedded``, ...)."""
    return CONFIGS_DIR / f"{name.removesuffix('.yaml')}.yaml"


def shipped_configs() -> dict[str, list[tuple[str, str]]]:
    """``{"studies ...": [(name, first comment sentence)], "training presets ...": [...]}`` for ``sqlshift configs``."""
    def described(folder: Path) -> list[tuple[str, str]]:
        return [(p.stem, first_comment(p)) for p in sorted(folder.glob("*.yaml"))]

    return {"studies (sqlshift run NAME)": described(CONFIGS_DIR),
            "training presets (a run's config:, sqlshift train NAME)": described(CONFIGS_DIR / "train")}


def first_comment(path: Path) -> str:
    """The YAML file's opening comment, first sentence: what the config is for."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").strip())
    text = " ".join(lines)
    first = text.split(". ")[0].rstrip(".")
    return first if len(first) <= 100 else first[:99].rstrip() + "…"


def find_experiment(path: str | Path | None) -> Path:
    """The YAML to load: a file, or the name of a study shipped in the package (``general-embedded``)."""
    if path in (None, DEFAULT_CONFIG):
        return packaged_config(DEFAULT_CONFIG)
    p = Path(path).expanduser()
    if p.is_file():
        return p
    shipped = packaged_config(str(path))
    if len(p.parts) == 1 and shipped.is_file():
        return shipped
    names = [q.stem for q in sorted(CONFIGS_DIR.glob("*.yaml"))]
    near = difflib.get_close_matches(p.stem, names, n=1)
    raise ConfigError(f"experiment config {path} does not exist" + (f" (did you mean {near[0]}?)" if near else ""),
                      f"pass a YAML file or a shipped study: {', '.join(names)}")


def expand(value: str, base: Path) -> str:
    """Expand ``${ENV}`` and make relative paths relative to the config file."""
    v = os.path.expandvars(value)
    if "$" in v:
        names = ", ".join(sorted(set(re.findall(r"\$\{?(\w+)", v)))) or value
        raise ConfigError(f"unset environment variable {names} in '{value}'",
                          f"export it before running, e.g. export {names.split(', ')[0]}=/path/to/data")
    if v in ("demo", "embedded") or v.startswith(("/", "~")) or "://" in v:
        return v
    p = base / v
    return str(p) if p.exists() else v


def load_experiment(path: str | Path | None) -> ExperimentConfig:
    """Read and validate an experiment YAML (every key checked; all problems in one error)."""
    p = find_experiment(path)
    try:
        raw = read_yaml_file(p, "an experiment config", "pass a study YAML, e.g. configs/qwen15-study.yaml") or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({str(e).splitlines()[0]})", "fix the YAML syntax") from e
    try:
        cfg = ExperimentConfig.model_validate(raw)
    except ValidationError as e:
        problems = [describe(err, ExperimentConfig).replace("benchmarks: Value error, ", "").replace("Value error, ", "")
                    for err in e.errors()]
        problems += salvaged_problems(raw, p.parent)
        raise ConfigError(f"{p}:\n  - " + "\n  - ".join(problems), "correct the keys named; `sqlshift configs` lists example studies") from e
    base = p.parent
    cfg.data_dir = expand(cfg.data_dir, base)
    for s in cfg.benchmarks:
        if s.data_dir:
            s.data_dir = expand(s.data_dir, base)
    for r in cfg.runs:
        if r.config:
            local = expand(r.config, base)
            r.config = local if Path(local).is_file() else r.config
        if r.adapter:
            r.adapter = expand(r.adapter, base)
    return cfg


def salvaged_problems(raw: Any, base: Path) -> list[str]:
    """The later problems of a config whose schema failed (drop what is invalid, validate the rest): all at once."""
    if not isinstance(raw, dict):
        return []
    raw = dict(raw)
    good = []
    for item in raw.get("benchmarks") or []:
        try:
            ExperimentConfig._typed_benchmarks([item])
            good.append(item)
        except (ValueError, TypeError):
            continue
    raw["benchmarks"] = good
    for _ in range(3):
        try:
            cfg = ExperimentConfig.model_validate(raw)
            break
        except ValidationError as e:
            for err in e.errors():
                raw.pop(err["loc"][0] if err.get("loc") else "", None)
    else:
        return []
    try:
        cfg.data_dir = expand(cfg.data_dir, base)
        benches = [b for b in make_benchmarks(cfg, None) if (b.settings.data_dir or cfg.data_dir) != "demo"]
    except Exception:  # noqa: BLE001 - best effort: the schema problems are reported anyway
        return []
    return validate(cfg, benches, check_axes=False)


def data_root(cfg: ExperimentConfig, settings: BenchmarkSettings, demo_root: Path | None) -> Path:
    """The data folder a benchmark reads: its own ``data_dir``, else the experiment's; ``demo`` is the demo copy."""
    d = settings.data_dir or cfg.data_dir
    if d == "demo":
        if demo_root is None:
            raise ConfigError("the demo data folder was not materialised", "call ensure_demo first")
        return demo_root
    return Path(d).expanduser()


def make_benchmarks(cfg: ExperimentConfig, demo_root: Path | None) -> list[Benchmark]:
    """Benchmark objects for the config; Text-to-SQL ones take the experiment's prompt unless they set their own."""
    out = []
    for s in cfg.benchmarks:
        if demo_root is None and (s.data_dir or cfg.data_dir) == "demo":
            continue
        if "prompt" in type(s).model_fields and "prompt" not in s.model_fields_set:
            s = s.model_copy(update={"prompt": cfg.prompt})
        out.append(get_benchmark(s.benchmark)(s, data_root(cfg, s, demo_root)))
    return out


def axes(cfg: ExperimentConfig, benches: list[Benchmark]) -> tuple[str | None, list[str]]:
    """(specialty benchmark, generality benchmarks) by folder name, with the defaults filled in."""
    spec = cfg.specialty or next((b.out_name for b in benches if b.axis == "specialty"), None)
    gen = cfg.generality
    if gen is None:
        gen = [b.out_name for b in benches if b.axis == "generality"]
    return spec, [gen] if isinstance(gen, str) else list(gen)


def recipe_problems(run: RunSpec) -> list[str]:
    """What the run's recipe cannot do (λ scales an adapter: a full fine-tune has none)."""
    from sqlshift.train.config import load_train_config
    from sqlshift.train.recipes import recipe_of

    recipe = recipe_of(load_train_config(run.config, run.overrides))
    if run.lambdas and not recipe.takes_lambda:
        return [f"runs[{run.name}]: lambdas scale a LoRA adapter, but this run is a {recipe.name} fine-tune "
                "(lora.enabled: false), which has none: drop lambdas, or train LoRA"]
    return []


def validate(cfg: ExperimentConfig, benches: list[Benchmark], check_axes: bool = True) -> list[str]:
    """Every problem that would stop the study later, found before any model is loaded."""
    from sqlshift.lm.locate import locate_model
    from sqlshift.train.trainer import validate_train_overrides

    problems: list[str] = []
    names = [b.out_name for b in benches]
    problems += [f"benchmarks: two benchmarks write to '{n}' (give one a name:)" for n in set(names)
                 if names.count(n) > 1]
    spec, gen = axes(cfg, benches)
    named = [("specialty", [spec] if cfg.specialty else []), ("generality", gen if cfg.generality else [])]
    for label, want in named if check_axes else []:
        problems += [f"{label}: '{n}' is not a configured benchmark (have {', '.join(names)})" for n in want
                     if n not in names]
    for b in benches:
        problems += b.check()
    run_names = [r.name for r in cfg.runs]
    problems += [f"runs: the name '{n}' is used twice" for n in set(run_names) if run_names.count(n) > 1]
    for r in cfg.runs:
        if (r.config is None) == (r.adapter is None):
            problems.append(f"runs[{r.name}]: give either config (train) or adapter (evaluate a trained one)")
        elif r.adapter and not (Path(r.adapter) / "adapter_config.json").is_file():
            problems.append(f"runs[{r.name}]: {r.adapter} is not an adapter folder (no adapter_config.json)")
        elif r.config:
            found = validate_train_overrides(r.config, r.overrides)
            problems += [f"runs[{r.name}]: {p}" for p in found] or recipe_problems(r)
        if r.replicate_of and r.replicate_of not in run_names:
            problems.append(f"runs[{r.name}]: replicate_of '{r.replicate_of}' is not a run of this study")
    try:
        locate_model(cfg.model)
    except Exception as e:  # noqa: BLE001 - reported with the rest
        problems.append(f"model: {e}")
    return problems


def adapter_ranks(cfg: ExperimentConfig) -> list[int]:
    """The LoRA ranks of every adapter a study serves, known before any run trains (an engine may start first)."""
    from sqlshift.lm.models import adapter_config, adapter_rank
    from sqlshift.train.config import load_train_config
    from sqlshift.train.recipes import recipe_of

    given = [adapter_rank(adapter_config(r.adapter)) for r in cfg.runs if r.adapter]
    trained = [load_train_config(r.config, r.overrides) for r in cfg.runs if not r.adapter]
    return given + [t.lora.r for t in trained if recipe_of(t).takes_lambda]
