"""EarlyStopping: end the run after `patience` epochs without a new best."""

from __future__ import annotations

import logging

from weibo_lstm.training.actions.action import Action
from weibo_lstm.training.actions.keep_best_weights import improves

logger = logging.getLogger("weibo_lstm")


class EarlyStopping(Action):
    """Ends training after `patience` epochs in a row without a new best `monitor`.

    It reads the epochs from the history (which checkpoints hold), so it needs no
    other action and no state of its own: a resumed run stops where an
    uninterrupted one would. Without validation data it never stops.
    """

    def __init__(self, patience: int, monitor: str, mode: str, validated: bool = True):
        self.patience, self.monitor, self.mode = patience, monitor, mode
        self.validated = validated

    def on_epoch_end(self, state, entry):
        if not self.validated:
            return
        if self.monitor not in entry:  # the error `KeepBestWeights` gives, in either order
            raise ValueError(
                f"options.monitor={self.monitor!r} is not a metric; have {sorted(entry)}"
            )
        waited = epochs_without_improvement(state.history.epochs, self.monitor, self.mode)
        if waited >= self.patience:
            logger.info("Early stopping: %s has not improved for %d epochs", self.monitor, waited)
            state.history.stopped_early = True


def epochs_without_improvement(epochs: list[dict], monitor: str, mode: str) -> int:
    """How many of the last `epochs` in a row brought no new best `monitor`.

    Example:

    >>> epochs_without_improvement(
    ...     [{"val_loss": 0.5}, {"val_loss": 0.4}, {"val_loss": 0.45}, {"val_loss": 0.4}],
    ...     "val_loss", "min")
    2
    """
    best, waited = None, 0
    for entry in epochs:
        if improves(entry[monitor], best, mode):
            best, waited = entry[monitor], 0
        else:
            waited += 1
    return waited
