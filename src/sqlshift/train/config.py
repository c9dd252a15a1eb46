"""The training config: a YAML preset or file plus dotted-key overrides, validated at once into :class:`TrainConfig`.

Every section forbids unknown keys; all problems are reported together, one line each, with the file and the dotted
key (``seed-run1.yaml: learning_rat (override): unknown key (did you mean learning_rate?)``).
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sqlshift.errors import ConfigError
from sqlshift.inputs import check_yaml_bomb, read_yaml_file
from sqlshift.sql.prompts import PromptConfig

PRESETS_DIR = Path(__file__).parents[1] / "configs" / "train"


class LoraSettings(BaseModel):
    """LoRA adapter shape; ``enabled: false`` means full fine-tuning."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    r: int = Field(8, gt=0)
    alpha: int = Field(16, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj"]


class DataSettings(BaseModel):
    """Which Spider examples to train on."""

    model_config = ConfigDict(extra="forbid")
    spider_dir: str | None = Field(None, description="Spider folder or data folder; default $SQLSHIFT_DATA_DIR")
    split: str = "train"
    limit_n: int | None = Field(None, gt=0, description="random subset of N examples (seeded)")
    db_ids: list[str] | None = None


class ReplaySettings(BaseModel):
    """General-domain data mixed in to limit forgetting: ``fraction`` of the final training set."""

    model_config = ConfigDict(extra="forbid")
    source: Literal["none", "mmlu", "jsonl"] = "none"
    path: str | None = Field(None, description="mmlu folder (default <data>/mmlu) or the .jsonl file")
    fraction: float = Field(0.0, ge=0.0, le=0.5)
    subjects: list[str] = Field(default_factory=list, description="MMLU subjects used for replay (held out of eval)")
    split: str = "val"

    @model_validator(mode="after")
    def _check(self) -> "ReplaySettings":
        if self.source == "none" and self.fraction > 0:
            raise ValueError("replay.fraction > 0 needs replay.source mmlu or jsonl")
        if self.source == "jsonl" and not self.path:
            raise ValueError("replay.source jsonl needs replay.path")
        if self.source == "mmlu" and self.fraction > 0 and not self.subjects:
            raise ValueError("replay.source mmlu needs replay.subjects")
        return self


class TrainConfig(BaseModel):
    """Everything a training run depends on; saved verbatim as train_config.yaml beside the adapter."""

    model_config = ConfigDict(extra="forbid")
    model: str = "embedded"
    lora: LoraSettings = LoraSettings()
    epochs: float = Field(1.0, gt=0)
    max_steps: int = -1
    learning_rate: float = Field(2e-4, gt=0)
    lr_scheduler: str = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    weight_decay: float = 0.0
    per_device_batch_size: int = Field(4, gt=0)
    gradient_accumulation_steps: int = Field(4, gt=0)
    max_length: int = Field(1024, gt=0)
    optimizer: str = "adamw_torch"
    seed: int = 42
    load_in_4bit: bool = False
    bf16: Literal["auto"] | bool = "auto"
    gradient_checkpointing: bool = False
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] = "sdpa"
    packing: bool = False
    fast_path: bool = Field(False, description="CUDA only: bf16 frozen base (fp32 LoRA), padding-free batches, variable-length "
                                               "attention (or SDPA), liger layer kernels when installed; no effect on CPU")
    varlen: bool = Field(True, description="fast path: variable-length attention when a probe on the GPU matches SDPA; "
                                           "false: SDPA with a packed mask")
    compile_layers: bool = Field(False, description="fast path: torch.compile every decoder layer (dynamic shapes) "
                                                    "instead of liger's kernels; the first steps also compile")
    save_steps: int = Field(100, gt=0)
    logging_steps: int = Field(10, gt=0)
    save_total_limit: int | None = None
    # a full fine-tune's checkpoints shrink from ≈ 18 to 6 GB (1.5B, fp32), so a study can keep them all for its curve
    save_only_model: bool = False  # checkpoints without optimizer state; an interrupted run restarts from step 0
    resume: bool = False
    data: DataSettings = DataSettings()
    prompt: PromptConfig = PromptConfig()
    replay: ReplaySettings = ReplaySettings()


# ---------------------------------------------------------------- config loading

def available_presets() -> list[str]:
    """Names of the training presets shipped in the package (``embedded-cpu``, ``seed-run1``, ...)."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def resolve_train_config(name_or_path: str | Path) -> Path:
    """A training YAML from a path or a bare preset name (``seed-run1``, ``embedded-cpu.yaml``)."""
    p = Path(name_or_path).expanduser()
    if p.is_file():
        return p
    if len(p.parts) == 1:
        preset = PRESETS_DIR / f"{p.stem if p.suffix in ('.yaml', '.yml') else p.name}.yaml"
        if preset.is_file():
            return preset
    raise ConfigError(f"training config {name_or_path} not found",
                      f"pass a YAML file or a preset name: {', '.join(available_presets())}")


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["lora.r=16", "lora.enabled=false"]`` -> ``{"lora.r": 16, "lora.enabled": False}`` (YAML-typed values).

    For command lines only; programs pass the dict to :func:`load_train_config` directly."""
    out: dict[str, Any] = {}
    bad = []
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            bad.append(f"{item!r} is not key=value")
            continue
        try:
            check_yaml_bomb(value, f"override {key}")
            out[key] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            bad.append(f"{key}: value {value!r} is not valid YAML")
    if bad:
        raise ConfigError(f"bad override(s): {'; '.join(bad)}", "write key=value, e.g. learning_rate=1e-4 or lora.r=16")
    return out


def _merge(dst: dict[str, Any], src: Mapping[str, Any]) -> None:
    """Deep-merge ``src`` into ``dst``: a nested mapping updates the preset's section instead of replacing it."""
    for k, v in src.items():
        if isinstance(v, Mapping) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = copy.deepcopy(v)


def apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``raw`` with dotted-key overrides applied (``{"lora.r": 16}`` or ``{"lora": {"r": 16}}``)."""
    out = copy.deepcopy(raw)
    for key, value in overrides.items():
        parts = str(key).split(".")
        d = out
        for p in parts[:-1]:
            if not isinstance(d.get(p), dict):
                d[p] = {}
            d = d[p]
        _merge(d, {parts[-1]: value})
    return out


def _fields_at(loc: Sequence[Any]) -> list[str]:
    """The valid keys of the config section at ``loc`` (for 'did you mean' hints)."""
    model: type[BaseModel] = TrainConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        ann = field.annotation if field else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return list(model.model_fields)


def _problems(e: ValidationError, source: str, override_keys: Sequence[str]) -> list[str]:
    """One line per validation error: ``file: dotted.key: what is wrong``."""
    out = []
    for err in e.errors():
        key = ".".join(str(x) for x in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            near = difflib.get_close_matches(str(err["loc"][-1]), _fields_at(err["loc"][:-1]), n=1)
            msg = "unknown key" + (f" (did you mean {near[0]}?)" if near else "")
        else:
            msg = err["msg"]
        via = " (override)" if any(key == k or key.startswith(k + ".") for k in override_keys) else ""
        out.append(f"{source}: {key}{via}: {msg}")
    return out


def _read_raw(path: str | Path | None) -> tuple[dict[str, Any], str]:
    """The YAML mapping of a training config (empty for None) and the name used in messages."""
    if path is None:
        return {}, "<defaults>"
    p = resolve_train_config(path)
    try:
        raw = read_yaml_file(p, "a training config", "pass a training YAML, e.g. configs/train/seed-run2.yaml") or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p.name} is not valid YAML: {e}", "fix the YAML syntax") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{p.name} must hold a mapping of settings", "write key: value lines")
    return raw, p.name


def _validate(path: str | Path | None, overrides: Mapping[str, Any] | None) -> tuple[TrainConfig | None, list[str]]:
    if overrides is not None and not isinstance(overrides, Mapping):
        raise TypeError("overrides must map dotted keys to values; parse command-line strings with parse_overrides")
    raw, source = _read_raw(path)
    overrides = dict(overrides or {})
    try:
        return TrainConfig.model_validate(apply_overrides(raw, overrides)), []
    except ValidationError as e:
        return None, _problems(e, source, list(overrides))


# Options added after runs were cached: at their defaults they stay out of the training step's cache key
ADDED_LATER = {"compile_layers": False}


def cache_fields(cfg: TrainConfig) -> dict[str, Any]:
    """The config as the step cache keys a training: what it was, so runs trained before a new option stay cached."""
    data = cfg.model_dump(mode="json")
    return {k: v for k, v in data.items() if not (k in ADDED_LATER and v == ADDED_LATER[k])}


def load_train_config(path: str | Path | None, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """TrainConfig from a YAML file or preset name (None: defaults) plus dotted-key overrides.

    Raises one ConfigError listing every problem (file, dotted key, what is wrong)."""
    cfg, problems = _validate(path, overrides)
    if problems or cfg is None:
        raise ConfigError("; ".join(problems), "fix or remove the keys named (see src/sqlshift/configs/train/)")
    return cfg


def validate_train_overrides(path: str | Path | None, overrides: Mapping[str, Any] | None) -> list[str]:
    """The problems :func:`load_train_config` would raise, as a list (empty: valid); never raises for bad input."""
    try:
        return _validate(path, overrides)[1]
    except (ConfigError, TypeError) as e:
        return [str(e)]
