"""Errors of a training run that the CLI reports as one line (no TensorFlow import)."""


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written, or does not belong to this run. One line."""


class NonFiniteError(RuntimeError):
    """Training produced a non-finite loss, gradient or weight. The message is one line."""
