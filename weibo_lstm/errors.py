"""Every error the library reports to a user as one line, with its exit status.

This module imports nothing (no TensorFlow), so the command line can map an error to
its exit status by class without loading TensorFlow, and every module can raise these
errors without an import cycle. `weibo-lstm` prints ``error: <message>`` and exits
with `exit_status`; anything that is not a `WeiboLSTMError` is a bug and keeps its
traceback.

Example:

>>> from weibo_lstm.errors import ConfigError, DataError, NonFiniteError
>>> DataError("x.csv: no such file").exit_status, NonFiniteError("nan").exit_status
(2, 3)
>>> isinstance(ConfigError("Argument `epochs` must be >= 1."), ValueError)
True

Every config dataclass validates its fields with `check_fields` (one message form,
one error class), from any layer.
"""

from __future__ import annotations

#: Exit status of a problem the user can fix (bad flag, file, directory, checkpoint).
USER_ERROR = 2
#: Exit status of a run that started but cannot finish (non-finite loss, lost worker).
RUN_FAILED = 3

#: Exit status of a run stopped by SIGTERM after saving its checkpoint: sysexits'
#: EX_TEMPFAIL ("temporary failure; retry"), distinct from a run killed outright
#: (a shell reports 143 for SIGTERM, 137 for SIGKILL) and from our other failures.
PREEMPTED = 75


class WeiboLSTMError(Exception):
    """Base class of the library's one-line errors.

    Attributes:
        exit_status: the status `weibo-lstm` exits with when this error ends a command.
    """

    exit_status: int = 1


class UserError(WeiboLSTMError):
    """A problem the user can fix: a bad flag, file or directory. Exit status 2."""

    exit_status = USER_ERROR


class ConfigError(UserError, ValueError):
    """An option has an invalid value. The message names and echoes it:
    ``Argument `epochs` must be >= 1. Received: epochs=0``."""


class DataError(UserError, ValueError):
    """A problem with user data or a user path. The message is one line naming the
    file (and line)."""


class CheckpointError(UserError, RuntimeError):
    """A checkpoint cannot be written, or does not belong to this run. One line."""


class TrainingError(WeiboLSTMError, RuntimeError):
    """A run that started cannot finish. Exit status 3."""

    exit_status = RUN_FAILED


class NonFiniteError(TrainingError):
    """Training produced a non-finite loss, gradient or weight. The message is one line."""


class Preempted(WeiboLSTMError):
    """The run was asked to stop (SIGTERM) and stopped at a step boundary. One line.

    Every worker of the run raises it at the same step, after the checkpoint (if a
    checkpoint directory is set) is written; rerunning the same command resumes.

    Attributes:
        exit_status: what the command-line tool exits with (`PREEMPTED`).
        checkpoint: path of the checkpoint written, or None.
    """

    exit_status = PREEMPTED

    def __init__(self, message: str, checkpoint: str | None = None):
        super().__init__(message)
        self.checkpoint = checkpoint


class ClusterError(TrainingError):
    """A multi-worker run cannot go on: a worker never joined, or one failed."""


def check_argument(name: str, value: object, ok: bool, expected: str) -> None:
    """Raises `ConfigError` naming and echoing argument `name` unless `ok`.

    Args:
        name: the argument (or field).
        value: its value, echoed with `repr`.
        ok: whether the value is valid (a NaN should make it False).
        expected: what a valid value is, after "must be".

    Example:

    >>> check_argument("epochs", 0, 0 >= 1, ">= 1")
    Traceback (most recent call last):
    ...
    weibo_lstm.errors.ConfigError: Argument `epochs` must be >= 1. Received: epochs=0
    """
    if not ok:
        raise ConfigError(f"Argument `{name}` must be {expected}. Received: {name}={value!r}")


def check_fields(config: object, **checks: tuple[bool, str]) -> None:
    """`check_argument` for each field of `config` in `checks`, in order:
    `name=(ok, expected)`; the first invalid one raises.

    Example:

    >>> import types
    >>> config = types.SimpleNamespace(epochs=3, seed=-1)
    >>> check_fields(config, epochs=(config.epochs >= 1, ">= 1"), seed=(config.seed >= 0, ">= 0"))
    Traceback (most recent call last):
    ...
    weibo_lstm.errors.ConfigError: Argument `seed` must be >= 0. Received: seed=-1
    """
    for name, (ok, expected) in checks.items():
        check_argument(name, getattr(config, name), ok, expected)


__all__ = [
    "PREEMPTED",
    "RUN_FAILED",
    "USER_ERROR",
    "CheckpointError",
    "ClusterError",
    "ConfigError",
    "DataError",
    "NonFiniteError",
    "Preempted",
    "TrainingError",
    "UserError",
    "WeiboLSTMError",
    "check_argument",
    "check_fields",
]
