"""Writing output folders safely: atomic files, JSONL lines any reader can split, one writer per folder.

* A crash (or SIGKILL) while writing leaves the previous version of a file whole: every file is written to a temp
  file in the same folder, fsynced, then renamed over the old one (``os.replace`` is atomic on POSIX).
* Text is data, never a crash: lone surrogates (e.g. from ``"\\ud800"`` in a prediction file) are escaped, and
  U+0085 / U+2028 / U+2029, which ``str.splitlines`` treats as line breaks, never appear raw in a JSONL line.
* Two processes writing one output folder corrupt it silently, so a writer holds ``<folder>/.lock`` (``flock``);
  a second one stops with a one-line error naming the holder. :func:`exclusive_output` is the project's one lock:
  the parts of one study share their run directory's lock (``shared``) and hold their part's own.
* A link planted inside an output folder (``o/.lock -> ~/victim``) is never written through: every file created
  or replaced in an output folder goes through :func:`open_output` (``O_NOFOLLOW``, regular files only) or
  :func:`_replacing` (link check before the temp file and again before the rename); both refuse with one line
  naming the link.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import json
import logging
import os
import re
import socket
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any

from sqlshift.errors import ConfigError

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
_TEMP_TAG = ".sqlshift-"
#: characters escaped in JSON lines: lone surrogates (unencodable) and the line breaks str.splitlines knows
_UNSAFE = re.compile("[\ud800-\udfff\u0085\u2028\u2029]")
_UMASK = os.umask(0o022)  # read once at import (os.umask can only be read by setting it)
os.umask(_UMASK)


def _safe_text(text: str) -> str:
    """``text`` with lone surrogates replaced by ``\\udXXX`` escapes, so it always encodes as UTF-8."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8") if _UNSAFE.search(text) else text


# ---------------------------------------------------------------------------------------------------- link safety


def _link_refused(path: Path) -> ConfigError:
    try:
        target = f" (to {os.readlink(path)})"
    except OSError:
        target = ""
    return ConfigError(f"{path} is a symbolic link{target}: sqlshift never writes through a link in an output "
                       "folder", f"remove the link (rm '{path}') or choose another output folder")


#: output folders of this process (absolute, not resolved): a folder *below* one of them must not be a link either
_ROOTS: set[str] = set()


def register_output_root(folder: str | Path) -> None:
    """Declare ``folder`` an output folder: the folder itself may be a link (the user's choice), nothing below it."""
    _ROOTS.add(os.path.abspath(folder))


def _refuse_linked_parents(path: Path) -> None:
    """A planted folder link (``run/models -> /elsewhere``) would carry writes out of the output folder."""
    here = os.path.abspath(path.parent)
    for root in _ROOTS:
        if not here.startswith(root + os.sep):
            continue
        current = root
        for part in Path(os.path.relpath(here, root)).parts:
            current = os.path.join(current, part)
            if os.path.islink(current):
                raise _link_refused(Path(current))


def refuse_link(path: str | Path) -> None:
    """ConfigError when ``path`` (or a folder between it and its output folder) is a link, or exists as something
    else than a regular file (FIFO, device...)."""
    path = Path(path)
    _refuse_linked_parents(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise _link_refused(path)
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{path} exists and is not a regular file", "remove it or choose another output folder")


def open_output(path: str | Path, flags: int, perms: int = 0o644) -> int:
    """``os.open`` for a file in an output folder: never through a link, never a FIFO or device; a raw fd."""
    path = Path(path)
    refuse_link(path)
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, perms)
    except OSError as e:
        if e.errno == errno.ELOOP:  # a link planted between the check and the open
            raise _link_refused(path) from None
        if e.errno == errno.ENXIO:  # a FIFO with no reader
            raise ConfigError(f"{path} exists and is not a regular file", "remove it or choose another output "
                              "folder") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ConfigError(f"{path} exists and is not a regular file", "remove it or choose another output folder")
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    return fd


def open_append(path: str | Path, binary: bool = False) -> IO[Any]:
    """An append-mode file object (UTF-8 text unless ``binary``), created if needed, never through a link."""
    fd = open_output(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    if binary:
        return os.fdopen(fd, "ab")
    return os.fdopen(fd, "a", encoding="utf-8", newline="\n")


class LinkSafeFileHandler(logging.FileHandler):
    """``logging.FileHandler`` (append, UTF-8) that refuses a log file planted as a link."""

    def __init__(self, filename: str | Path) -> None:
        super().__init__(filename, mode="a", encoding="utf-8", delay=False)

    def _open(self) -> IO[str]:  # noqa: D401  (logging's hook)
        return open_append(self.baseFilename)


def setup_logging(folder: Path, name: str = "run.log") -> None:
    """Log sqlshift's INFO lines to ``folder/name`` and to the console (once each, however often it is called):
    a run directory keeps what its console showed."""
    folder.mkdir(parents=True, exist_ok=True)
    register_output_root(folder)  # from here on nothing is written through a link inside it
    root = logging.getLogger("sqlshift")
    root.setLevel(logging.INFO)
    if not any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == (folder / name).resolve()
               for h in root.handlers):
        fh = LinkSafeFileHandler(folder / name)
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(fh)
    from rich.logging import RichHandler

    if not any(type(h) is logging.StreamHandler or isinstance(h, RichHandler) for h in root.handlers):
        root.addHandler(RichHandler(show_path=False, show_time=False))


# ---------------------------------------------------------------------------------------------------- atomic files


@contextmanager
def _replacing(path: str | Path, mode: str, **kw: Any) -> Iterator[IO[Any]]:
    """A file object on a temp file beside ``path``; on success fsynced and renamed over ``path``, else removed.

    ``path`` is checked for a planted link before the temp file is made and again right before the rename (the
    rename itself would replace a link, not its target, but a link there means someone else's file was meant).
    """
    path = Path(path)
    refuse_link(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}", suffix=f"{_TEMP_TAG}{os.getpid()}.tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
        with os.fdopen(fd, mode, **kw) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        refuse_link(path)
        try:
            os.replace(tmp, path)
        except PermissionError as e:  # an immutable or foreign-owned file: say which, not the temp name
            raise ConfigError(f"cannot replace {path} ({e.strerror})",
                              "make it writable (chattr -i / chmod) or choose another output folder") from None
    except OSError as e:
        _unlink(tmp)
        raise named(e, path) from None
    except BaseException:
        _unlink(tmp)
        raise


def named(e: OSError, path: str | Path) -> OSError:
    """``e`` with the file it was about (a failed write/fsync on a descriptor names none): for the one-line error."""
    if e.filename is not None or e.errno is None:
        return e
    return type(e)(e.errno, e.strerror or os.strerror(e.errno), str(path))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temp file in the same folder + fsync + rename: never half a file."""
    with _replacing(path, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """UTF-8 text, atomically; lone surrogates are written as ``\\udXXX`` instead of failing."""
    return atomic_write_bytes(path, _safe_text(text).encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Indented JSON (ASCII-escaped, so any string round-trips) plus a newline, atomically."""
    return atomic_write_bytes(path, (json.dumps(obj, indent=2, ensure_ascii=True) + "\n").encode("ascii"))


def atomic_jsonl(path: str | Path) -> AbstractContextManager[IO[str]]:
    """A JSONL file written line by line (:func:`append_jsonl`) into a temp file, renamed over ``path`` on success.

    On an exception (or a kill) the previous ``path`` stays as it was; the temp file is removed when possible.
    """
    return _replacing(path, "w", encoding="utf-8", newline="\n")


def json_line(row: Any) -> str:
    """One JSON line (with its ``\\n``): UTF-8 kept readable, but nothing that breaks encoding or line splitting."""
    text = json.dumps(row, ensure_ascii=False)
    if _UNSAFE.search(text):  # only inside JSON strings, where a \\uXXXX escape means the same character
        text = _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text + "\n"


def append_jsonl(fh: IO[Any], row: Any) -> None:
    """Append ``row`` as one JSON line to an open text (or binary) file and flush it."""
    line = json_line(row)
    fh.write(line.encode("utf-8") if "b" in getattr(fh, "mode", "") else line)
    fh.flush()


def _unlink(path: str | Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _remove_stale_temps(folder: Path) -> None:
    """Temp files of writers that died (SIGKILL, power loss) before their rename: their pid no longer runs."""
    for p in folder.glob(f".*{_TEMP_TAG}*.tmp"):
        m = re.search(rf"{re.escape(_TEMP_TAG)}(\d+)\.tmp$", p.name)
        if m and not _pid_alive(int(m.group(1))):
            _unlink(p)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------------------------------------------- output folders


def prepare_output_dir(folder: str | Path) -> Path:
    """Create ``folder`` if needed and check it is a writable directory; ConfigError (one line) otherwise.

    Called before any long work, so a bad ``--out`` fails in a second, not after the evaluation.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"output folder {folder} is an existing file", "choose another --out (a folder)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create output folder {folder} ({e.strerror or e})",
                          "choose another --out in a writable place") from e
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"output folder {folder} is not writable", "choose another --out or fix its permissions")
    return folder


_HELD: dict[str, list[int]] = {}  # resolved folder/lock name -> [lock fd, depth]
_HELD_LOCK = threading.Lock()
_CLAIMS = itertools.count()  # keys of non-reentrant holds, which never nest


def _forget_locks_in_child() -> None:
    """A forked child (e.g. a sandbox worker) must not keep the parent's locks alive after the parent dies."""
    for fd, _ in _HELD.values():
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_locks_in_child)


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _holder(fd: int) -> str:
    """Who holds the lock, from what it wrote into the lock file (best effort; "" when it names nobody)."""
    try:
        info = json.loads(os.pread(fd, 65536, 0).decode("utf-8", "replace") or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return ""
    cmd = _one_line(str(info.get("command") or info.get("what") or "?"))
    return f"{info.get('what', 'sqlshift')} (pid {info['pid']} on {info.get('host', '?')}: {cmd})"


def _holders(folder: Path, name: str, fd: int) -> str:
    """The exclusive holder named in the lock file, else the live holders of its part locks (``<name>-*``, taken
    by the processes that share the folder), else "another process"."""
    named = _holder(fd)
    if named:
        return named
    parts = []
    for f in sorted(folder.glob(f"{name}-*")):
        try:
            other = open_output(f, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(other, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            parts.append(_holder(other) or f.name)
        finally:
            os.close(other)
    return "; ".join(parts) or "another process"


def _acquire(folder: Path, what: str, name: str, shared: bool, blocking: bool, fix: str) -> int:
    lock_path = folder / name
    try:
        fd = open_output(lock_path, os.O_RDWR | os.O_CREAT)
    except OSError as e:
        raise ConfigError(f"cannot write in output folder {folder} ({e.strerror or e})",
                          "choose another --out in a writable place") from e
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        holder = _holders(folder, name, fd)
        os.close(fd)
        raise ConfigError(f"output folder {folder} is being written by {holder}", fix) from None
    except OSError as e:  # a file system without locks (some network mounts): go on, but say so
        log.warning("%s: cannot lock (%s); make sure no other process writes this folder", lock_path, e)
    info = {"pid": os.getpid(), "host": socket.gethostname(), "what": what,
            "command": _one_line(" ".join(sys.argv) or what, 1000), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    try:
        if not shared:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8", "backslashreplace"), 0)
        elif os.fstat(fd).st_size:  # sharers leave it empty: a blocked writer then names their part locks
            os.ftruncate(fd, 0)
    except OSError as e:
        os.close(fd)
        raise named(e, lock_path) from None
    return fd


@contextmanager
def exclusive_output(folder: str | Path, what: str = "sqlshift", *, shared: bool = False, name: str = LOCK_NAME,
                     blocking: bool = False, reentrant: bool = True,
                     fix: str = "wait for it or choose another --out") -> Iterator[Path]:
    """Hold ``<folder>/.lock`` for the block: one writer per output folder. The project's one lock.

    Non-blocking: when another live process holds it, raise ConfigError naming the holder (``fix`` is the hint).
    ``shared``: several processes may hold it at once (the parts of one study, ``sqlshift run --only``), none
    while an exclusive writer does; each part then holds its own ``<name>-<part>`` lock. ``name`` picks another
    lock file in the folder (a part's, or ``steps.json.lock`` around a read-modify-write); ``blocking`` waits
    instead of failing (for short critical sections). Re-entrant within one process (a run locks its folder and
    evaluates into sub-folders; nested calls on the same lock just nest) unless ``reentrant`` is off: then each
    call is its own claim, as another process's would be (a study: one per run directory). The folder is created
    and checked for writability first.
    """
    folder = prepare_output_dir(folder)
    register_output_root(folder)
    key = f"{folder.resolve()}/{name}"
    if not reentrant:  # its own claim: acquired outside the bookkeeping lock, so a blocking wait blocks no one else
        key += f"#{next(_CLAIMS)}"
        fd = _acquire(folder, what, name, shared, blocking, fix)
        with _HELD_LOCK:
            _HELD[key] = [fd, 1]
    else:
        with _HELD_LOCK:
            held = _HELD.get(key)
            if held is not None:
                held[1] += 1
            else:
                _HELD[key] = [_acquire(folder, what, name, shared, blocking, fix), 1]
    _remove_stale_temps(folder)
    try:
        yield folder
    finally:
        with _HELD_LOCK:
            held = _HELD.get(key)
            if held is not None:
                held[1] -= 1
                if held[1] == 0:
                    del _HELD[key]
                    os.close(held[0])  # releases the flock; the file stays (unlinking it would race)


# ---------------------------------------------------------------------------------------------------- shared JSON state


def read_state(path: Path) -> dict[str, Any]:
    """A run directory's own JSON object (steps.json, failures.json, metrics.json): bounded, one-line errors."""
    from sqlshift.inputs import read_json_object

    return read_json_object(path, f"a run directory's {path.name}",
                            f"delete {path} (the steps it records are redone on the next run)")


def merge_json(path: Path, update: dict[str, Any]) -> dict[str, Any]:
    """Merge ``update`` into the JSON object in ``path`` under a lock and write it atomically; returns the result.

    Several processes (one per GPU) may share a run directory: each adds its keys without losing the others'.
    The lock is the output lock on ``<path>.lock``, waited for (the read-modify-write takes milliseconds).
    """
    with exclusive_output(path.parent, f"update {path.name}", name=f"{path.name}.lock", blocking=True,
                          reentrant=False):
        merged = {**(read_state(path) if path.exists() else {}), **update}
        atomic_write_text(path, json.dumps(merged, indent=2, sort_keys=True))
    return merged
