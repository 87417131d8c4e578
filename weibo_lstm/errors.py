"""Errors of a training run that the CLI reports as one line (no TensorFlow import)."""

#: Exit status of a run stopped by SIGTERM after saving its checkpoint: sysexits'
#: EX_TEMPFAIL ("temporary failure; retry"), distinct from a run killed outright
#: (a shell reports 143 for SIGTERM, 137 for SIGKILL) and from our other failures.
PREEMPTED = 75


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written, or does not belong to this run. One line."""


class NonFiniteError(RuntimeError):
    """Training produced a non-finite loss, gradient or weight. The message is one line."""


class Preempted(Exception):
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
