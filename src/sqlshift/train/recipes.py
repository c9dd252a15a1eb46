"""Training recipes: what a fine-tuning run produces and how the runner evaluates it (torchtune's discipline: a
recipe is a registered unit with its config). LoRA and QLoRA produce an adapter on the unchanged base model (one
model, one engine, serves every point; checkpoints and λ apply); full fine-tuning produces a whole model (each
point is loaded on its own; checkpoints apply, λ does not). Which recipe a training config is, is decided here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar


@dataclass(frozen=True)
class ModelPoint:
    """What one evaluated point is: a model (the study's base or a trained folder) and an adapter on it, if any."""

    model: str | None  # None: the study's base model
    adapter: Path | None = None


class Recipe:
    """One way of fine-tuning, as the runner sees it."""

    name: ClassVar[str]
    marker: ClassVar[str]  # the file a finished training leaves in its folder (the step cache checks it)
    takes_lambda: ClassVar[bool]

    def point(self, folder: Path) -> ModelPoint:
        """The model point of a training output (the final one or a checkpoint-N folder)."""
        raise NotImplementedError


class LoRA(Recipe):
    """A LoRA adapter on the base model (peft); λ scales it (WiSE-FT style interpolation)."""

    name, marker, takes_lambda = "lora", "adapter_config.json", True

    def point(self, folder: Path) -> ModelPoint:
        return ModelPoint(None, folder)


class QLoRA(LoRA):
    """LoRA trained on the 4-bit base (bitsandbytes); evaluated like any adapter, on the full-precision base."""

    name = "qlora"


class Full(Recipe):
    """Every weight trained: the output folder is a whole model, evaluated as its own model."""

    name, marker, takes_lambda = "full", "config.json", False

    def point(self, folder: Path) -> ModelPoint:
        return ModelPoint(str(folder), None)


RECIPES: dict[str, type[Recipe]] = {"lora": LoRA, "qlora": QLoRA, "full": Full}


def recipe_of(tcfg: Any) -> Recipe:
    """The recipe a training config asks for: ``lora.enabled: false`` is full fine-tuning, ``load_in_4bit`` QLoRA."""
    if not tcfg.lora.enabled:
        return Full()
    return QLoRA() if tcfg.load_in_4bit else LoRA()
