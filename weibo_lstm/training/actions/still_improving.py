"""StillImproving: one log line when the run ended while `monitor` was still improving."""

from __future__ import annotations

import logging

from weibo_lstm.training.actions.action import Action

logger = logging.getLogger("weibo_lstm")


class StillImproving(Action):
    """Says so when the last epoch of the budget was the best one.

    A run that stops at its epoch cap while the monitored metric still improves has
    not converged: more epochs would likely help. Early stopping or a best epoch
    before the last means it has.

    Args:
        monitor: the metric that picks the best epoch.
        epochs: the run's epoch cap.
    """

    def __init__(self, monitor: str, epochs: int):
        self.monitor, self.epochs = monitor, epochs

    def on_fit_end(self, state):
        history = state.history
        last = len(history.epochs)
        if history.stopped_early or last < 2 or history.best_epoch != last:
            return
        if history.epochs[-1]["epoch"] != self.epochs:
            return
        logger.warning(
            "%s was still improving at the last epoch (%d of %d): the run has not converged; "
            "more epochs may help (--epochs, ControllerOptions.epochs)",
            self.monitor,
            self.epochs,
            self.epochs,
        )
