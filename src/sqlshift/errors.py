"""One error type for bad input, so the CLI can print a single line: what is wrong, and the fix."""


class SqlshiftError(Exception):
    """Base class: ``str(e)`` is the message, ``e.fix`` tells the user what to do."""

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.fix = fix

    def __str__(self) -> str:
        """The message and its fix; a message already ending in a hint (a wrapped error's) keeps that one only."""
        msg = super().__str__()
        last = msg.splitlines()[-1] if msg else ""
        if not self.fix or self.fix in msg or ("(fix: " in last and last.rstrip().endswith(")")):
            return msg
        return f"{msg} (fix: {self.fix})"

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        """Keep the fix when the error crosses a process boundary (training runs in a child process)."""
        return type(self), (super().__str__(), self.fix)


class DataError(SqlshiftError):
    """A data file is missing or malformed."""


class ConfigError(SqlshiftError):
    """A config file or option is invalid."""


class ModelError(SqlshiftError):
    """A model cannot be found or loaded."""


class ScorerFailure(SqlshiftError):
    """A guard found a result that means the scorer, not the model, is broken."""


class BelowChance(ScorerFailure):
    """A multiple-choice score significantly below chance: the scorer or prompt is broken, not the model."""


class EmptyPredictions(ScorerFailure):
    """Every generation came out empty after extraction: the prompt or the stop token is broken."""


class TrainingDiverged(SqlshiftError):
    """Loss or gradient norm became NaN/inf: the adapter is garbage and must not be evaluated as a model."""


def for_model(errors: list[Exception], key: str) -> list[Exception]:
    """The same guard failures, each naming the model it was found in: a study scores many models."""
    return [type(e)(f"{key}: {e.args[0]}", e.fix) if isinstance(e, SqlshiftError) else e for e in errors]


def one_error(errors: list[Exception]) -> Exception:
    """The first failure with the others listed in its message, so that one run's output names all of them."""
    first = errors[0]
    if len(errors) == 1 or not isinstance(first, SqlshiftError):
        return first
    rest = "\n  - ".join(str(e.args[0]) if isinstance(e, SqlshiftError) else str(e) for e in errors[1:])
    return type(first)(f"{first.args[0]}\n  and {len(errors) - 1} more:\n  - {rest}", first.fix)


#: errnos that mean "this place cannot be written", with the fix to print
_WRITE_FIXES = {
    "ENOSPC": "free some space or choose another output folder (--out)",
    "EDQUOT": "free some space or choose another output folder (--out)",
    "EROFS": "choose an output folder on a writable file system",
    "EACCES": "fix the file's permissions or choose another output folder",
    "EPERM": "make the file writable (chattr -i / chmod) or choose another output folder",
}
INTERRUPTED = "interrupted: finished results are kept; rerun the same command to resume"


def one_line(exc: BaseException) -> str | None:
    """The one-line message for an exception that is bad input or a bad environment, not a sqlshift bug.

    The CLI's last line of defence: checks where files are read give more precise messages; this catches what
    slips past them (a full disk, an immutable file, a structure nested too deep for Python) without a traceback.
    ``None`` for anything else (a real bug keeps its traceback).
    """
    import errno
    import os

    if isinstance(exc, SqlshiftError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno is not None:
        name = errno.errorcode.get(exc.errno, "")
        where = exc.filename if exc.filename is not None else "a file"
        what = exc.strerror or os.strerror(exc.errno)
        fix = _WRITE_FIXES.get(name, "check the path and its permissions")
        return f"{where}: {what} (fix: {fix})"
    if isinstance(exc, RecursionError):
        return ("an input file is nested too deeply to read (RecursionError) "
                "(fix: check the JSON/YAML files given to this command; none should nest hundreds of levels)")
    if isinstance(exc, MemoryError):
        return "out of memory (fix: give the process more memory or use a smaller input / --sample)"
    return None
