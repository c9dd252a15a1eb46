"""Reading untrusted input files with bounds: regular files only, size limits that name themselves, no bombs.

Every input a user hands sqlshift (predictions, Spider JSON, configs, adapter weights) may be a link to
``/dev/zero``, a FIFO, a 3 GB sparse file, JSON nested 100k deep or a YAML alias bomb. The readers here check
the file *before* reading it (``fstat`` on the opened descriptor, so a swapped link cannot slip past), stream or
cap what they read, and turn every failure into one :class:`DataError` / :class:`ConfigError` line naming the
file and the fix. Output-side safety (links planted in output folders) is :mod:`sqlshift.outputs`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from sqlshift.errors import ConfigError, DataError, SqlshiftError

MB = 1024 * 1024
JSON_MAX_BYTES = 1024 * MB  # Spider's train_spider.json is 25 MB; tables.json 1 MB
YAML_MAX_BYTES = 1 * MB  # a study config is a few kB
YAML_MAX_ALIASES = 1000  # real configs use a handful; a billion-laughs file uses 100k
YAML_MAX_EXPANDED = 10 * MB  # characters of scalars once every alias is expanded
_PATH_BREAKERS = ("/", "\\", "\x00")


def _size(n: int) -> str:
    return f"{n / MB:.0f} MB" if n >= MB else f"{n} bytes"


@contextmanager
def open_input(path: str | Path, what: str, fix: str, max_bytes: int,
               error: type[SqlshiftError] = DataError) -> Iterator[IO[bytes]]:
    """A binary file object on ``path`` once it is known to be a regular file of at most ``max_bytes``.

    Links are followed (inputs are often links), but what they lead to must be a regular file: ``/dev/zero``, a
    FIFO or a folder is refused without reading a byte; so is a file over the limit (the message names it).
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise error(f"{path} does not exist", fix) from None
    except IsADirectoryError:
        raise error(f"{path} is a folder, not {what}", fix) from None
    except OSError as e:
        raise error(f"cannot read {path} ({e.strerror})", fix) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a device, FIFO or socket)"
            raise error(f"{path} is {kind}, not {what}", fix)
        if st.st_size > max_bytes:
            raise error(f"{path} is {_size(st.st_size)}, over the {_size(max_bytes)} limit for {what}", fix)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        yield f


def read_input_bytes(path: str | Path, what: str, fix: str, max_bytes: int,
                     error: type[SqlshiftError] = DataError) -> bytes:
    """The bytes of a bounded regular file (a file growing past the limit while read is refused too)."""
    with open_input(path, what, fix, max_bytes, error) as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise error(f"{path} grew over the {_size(max_bytes)} limit for {what} while being read", fix)
    return data


def parse_json(text: str | bytes, where: str, fix: str, error: type[SqlshiftError] = DataError) -> Any:
    """``json.loads`` whose every failure is one line: bad JSON, nesting too deep, an integer of 5000 digits."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{where} is not valid JSON (line {e.lineno}: {e.msg})", fix) from None
    except RecursionError:
        raise error(f"{where} is nested too deeply to read (hundreds of levels of [ or {{)", fix) from None
    except UnicodeDecodeError as e:
        raise error(f"{where} is not UTF-8 text (byte {e.start}: {e.reason})", fix) from None
    except ValueError as e:  # e.g. "Exceeds the limit (4300 digits) for integer string conversion"
        raise error(f"{where} holds a value Python refuses ({str(e).split(';')[0]})", fix) from None


def read_input_text(path: str | Path, what: str, fix: str, max_bytes: int,
                    error: type[SqlshiftError]) -> str:
    """A bounded input file decoded as UTF-8 (a BOM allowed); not UTF-8 is one line naming the file."""
    data = read_input_bytes(path, what, fix, max_bytes, error)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise error(f"{path} is not UTF-8 text (byte {e.start}: {e.reason})", fix) from None


def read_json_file(path: str | Path, what: str, fix: str, max_bytes: int = JSON_MAX_BYTES,
                   error: type[SqlshiftError] = DataError) -> Any:
    """A bounded JSON file (UTF-8, a BOM allowed), every failure one line naming the file."""
    text = read_input_text(path, what, fix, max_bytes, error)
    if not text.strip():
        raise error(f"{path} is empty, not {what}", fix)
    return parse_json(text, str(path), fix, error)


def hash_file(path: str | Path, what: str, fix: str, max_bytes: int, h: Any = None,
              error: type[SqlshiftError] = DataError) -> Any:
    """Feed a bounded regular file into ``h`` (sha256 by default) 1 MB at a time; returns ``h``."""
    h = h if h is not None else hashlib.sha256()
    seen = 0
    with open_input(path, what, fix, max_bytes, error) as f:
        while chunk := f.read(MB):
            seen += len(chunk)
            if seen > max_bytes:
                raise error(f"{path} grew over the {_size(max_bytes)} limit for {what} while being read", fix)
            h.update(chunk)
    return h


# ---------------------------------------------------------------------------------------------------- YAML


def _expanded_size(root: Any) -> int:
    """Characters of scalars in the node graph once aliases are expanded (memoised: linear in the graph)."""
    import yaml

    size: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in size:
            continue
        if isinstance(node, yaml.ScalarNode):
            size[id(node)] = len(node.value) + 1
            continue
        kids = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else list(node.value)
        if children_done:
            size[id(node)] = 1 + sum(size.get(id(k), 0) for k in kids)
        else:
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in size)
    return size.get(id(root), 0)


def check_yaml_bomb(text: str, where: str, error: type[SqlshiftError] = ConfigError) -> None:
    """Refuse YAML whose alias count or alias-expanded size is absurd, before anything builds or dumps it."""
    import yaml

    fix = "write the values out (a config needs no more than a few anchors/aliases)"
    aliases = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > YAML_MAX_ALIASES:
                    raise error(f"{where} uses more than {YAML_MAX_ALIASES} YAML aliases (a YAML bomb?)", fix)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return  # the caller's yaml.safe_load reports the syntax error with its line
    except RecursionError:
        raise error(f"{where} is nested too deeply to read", "flatten the YAML") from None
    if node is not None and aliases:
        expanded = _expanded_size(node)
        if expanded > YAML_MAX_EXPANDED:
            raise error(f"{where} expands to {_size(expanded)} through its aliases, over the "
                        f"{_size(YAML_MAX_EXPANDED)} limit for a config (a YAML bomb?)", fix)


def read_yaml_file(path: str | Path, what: str, fix: str, max_bytes: int = YAML_MAX_BYTES,
                   error: type[SqlshiftError] = ConfigError) -> Any:
    """A bounded YAML file, checked for alias bombs first, then ``yaml.safe_load``; failures are one line."""
    import yaml

    text = read_input_text(path, what, fix, max_bytes, error)
    check_yaml_bomb(text, str(path), error)
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise error(f"{path} is nested too deeply to read", fix) from None


# ---------------------------------------------------------------------------------------------------- names


def check_name(value: Any, what: str, fix: str, error: type[SqlshiftError] = DataError) -> str:
    """A name that becomes one path component (db_id, run name...): no separators, not absolute, not ``..``."""
    if not isinstance(value, str) or not value or value in (".", "..") or any(c in value for c in _PATH_BREAKERS):
        raise error(f"{what} {value!r} is not a plain name (it would lead outside its folder as a path)", fix)
    return value


def read_json_object(path: str | Path, what: str, fix: str, max_bytes: int = JSON_MAX_BYTES,
                     error: type[SqlshiftError] = DataError) -> dict[str, Any]:
    """:func:`read_json_file` whose top level must be an object (``{...}``): a list or an empty file is one line."""
    data = read_json_file(path, what, fix, max_bytes, error)
    if not isinstance(data, dict):
        raise error(f"{path} holds a JSON {type(data).__name__}, not an object ({what})", fix)
    return data


def plain_name(value: str | None) -> str | None:
    """Pydantic validator body for names that become folders (run, study, benchmark names): ValueError if not."""
    if value is not None and (not value or value in (".", "..") or any(c in value for c in _PATH_BREAKERS)):
        raise ValueError(f"{value!r} is not a plain name (no '/', '\\\\', '.' or '..'): it becomes a folder name")
    return value
