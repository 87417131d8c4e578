"""PreemptionWatcher: SIGTERM becomes a request to stop at the next step boundary.

Schedulers and spot/preemptible machines send SIGTERM some seconds before they kill a
process. A Python signal handler only runs between bytecodes, i.e. when the current
`tf.function` call (one loop of `steps_per_loop` steps) returns; so the handler just
records the signal, and the training loop looks at the record after every loop
(`actions.SaveCheckpointIfPreempted`): all workers agree through one all-reduce, save
a checkpoint at that same step, and stop with `errors.Preempted`.

Our own handler rather than `tf.distribute.experimental.PreemptionCheckpointHandler`:
that one saves its own `tf.train.Checkpoint` with its own numbering and exits the
process itself, while a resumable run here also needs the host state of
`checkpointing.TrainingCheckpoint` (step within the epoch, summed metrics, best
weights) and must leave through the CLI's error handling. Installing a Python handler
also replaces the C++ one that TensorFlow's preemption notifier installs for
multi-worker runs, which otherwise swallows SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import threading

logger = logging.getLogger("weibo_lstm")


class PreemptionWatcher:
    """Records SIGTERM while in its `with` block; the previous handler is back afterwards.

    The first SIGTERM is recorded (`requested` turns True) and the default action is
    restored, so a second SIGTERM ends the process at once. Outside the main thread
    (where Python cannot install signal handlers) it watches nothing.

    Args:
        signals: the signals that request a stop.

    Example:

    >>> import os
    >>> with PreemptionWatcher() as watcher:
    ...     os.kill(os.getpid(), signal.SIGTERM)
    ...     watcher.requested
    True
    """

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM,)):
        self.signals = tuple(signals)
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        """Whether a stop was requested (a signal arrived, or `request()` was called)."""
        return self.received is not None

    def request(self, signum: int = signal.SIGTERM) -> None:
        """Records a stop request as if `signum` had arrived."""
        if self.received is None:
            self.received = signum

    def _handle(self, signum, frame) -> None:
        self.request(signum)
        # A second signal takes the default action (terminate) instead of waiting.
        signal.signal(signum, signal.SIG_DFL)

    def __enter__(self) -> PreemptionWatcher:
        if threading.current_thread() is not threading.main_thread():
            logger.debug("Not in the main thread: SIGTERM will not be turned into a checkpoint")
            return self
        for signum in self.signals:
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            # None: the previous handler was not installed from Python (e.g.
            # TensorFlow's C++ preemption notifier) and cannot be put back.
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()
