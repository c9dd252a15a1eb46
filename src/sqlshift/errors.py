"""One error type for bad input, so the CLI can print a single line: what is wrong, and the fix."""


class SqlshiftError(Exception):
    """Base class: ``str(e)`` is the message, ``e.fix`` tells the user what to do."""

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.fix = fix

    def __str__(self) -> str:
        msg = super().__str__()
        return f"{msg} (fix: {self.fix})" if self.fix else msg


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
