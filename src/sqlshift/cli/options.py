"""The conventions every verb follows: ``-o/--out`` for what it writes (old spellings kept as deprecated aliases
that print one line), an output folder that is not an existing file, and the model resolved before any work."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from sqlshift.errors import ConfigError


def out_option(help: str) -> Any:
    """``-o/--out PATH``: where the verb writes (optional at parse time, so a deprecated alias may give it)."""
    return typer.Option(None, "--out", "-o", help=help, show_default=False)


def old_option(name: str, new: str = "--out") -> Any:
    """A renamed option kept working: hidden from help, it prints a deprecation line when used."""
    return typer.Option(None, name, hidden=True, help=f"deprecated spelling of {new}")


def deprecated(old: str, new: str) -> None:
    """One line on stderr: the old spelling still works, and what to write instead."""
    typer.secho(f"sqlshift: {old} is deprecated; use {new} (the old spelling still works for now)",
                fg="yellow", err=True)


def pick(new: Optional[Path], old: Optional[Path], old_name: str, new_name: str = "--out",
         required: bool = True) -> Optional[Path]:
    """The value of an option given in its new or its deprecated spelling (both given: they must agree)."""
    if old is not None:
        deprecated(old_name, new_name)
        if new is not None and Path(new) != Path(old):
            raise ConfigError(f"{old_name} {old} and {new_name} {new} disagree", f"give {new_name} only")
        new = old
    return need(new) if required else new


def need(out: Optional[Path]) -> Path:
    """``--out`` of a verb that must be told where to write."""
    if out is None:
        raise ConfigError("missing option -o/--out", "pass the folder to write into, e.g. -o results")
    return out


def out_folder(path: Optional[Path], what: str = "output folder") -> Optional[Path]:
    """An output folder that is not an existing file: one line now instead of a FileExistsError later."""
    if path is not None and Path(path).exists() and not Path(path).is_dir():
        raise ConfigError(f"{what} {path} is an existing file", "pass a folder (it is created when missing)")
    return path


def check_model(spec: Optional[str]) -> None:
    """Resolve the model spec before anything else: a typo or an unreachable Hub is one line at once."""
    from sqlshift.lm.locate import locate_model

    locate_model(spec)
