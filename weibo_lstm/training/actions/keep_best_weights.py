"""KeepBestWeights: the best epoch's weights in host memory, restored at the end."""

from __future__ import annotations

import logging
import math

import keras

from weibo_lstm.errors import NonFiniteError
from weibo_lstm.training.actions.action import Action, finite_weights

logger = logging.getLogger("weibo_lstm")


class KeepBestWeights(Action):
    """Copies every weight (BatchNorm statistics too) to host memory when `monitor` improves.

    At the end the model gets them back, so it holds the best epoch's weights
    without any file round trip. Without validation data every epoch counts as an
    improvement (the last one is kept).
    """

    def __init__(self, model: keras.Model, monitor: str, mode: str, validated: bool):
        self.model, self.monitor, self.mode, self.validated = model, monitor, mode, validated

    def on_epoch_end(self, state, entry):
        weights = finite_weights(self.model)
        if weights is None:
            raise NonFiniteError(
                f"the model weights are not finite after epoch {entry['epoch']}; they are "
                "neither kept as the best nor checkpointed"
            )
        monitored = entry.get(self.monitor if self.validated else "loss")
        if monitored is None:
            raise ValueError(
                f"options.monitor={self.monitor!r} is not a metric; have {sorted(entry)}"
            )
        if not self.validated or improves(monitored, state.best_value, self.mode):
            state.best_value, state.best_weights = monitored, weights
            state.history.best_epoch, state.history.best_metrics = entry["epoch"], entry

    def on_fit_end(self, state):
        if state.best_weights is not None:
            for variable, value in zip(self.model.weights, state.best_weights, strict=True):
                variable.assign(value)
            logger.info("Restored the weights of epoch %d", state.history.best_epoch)


def improves(value: float, best: float | None, mode: str) -> bool:
    """Whether `value` is a new best: finite and strictly better than `best` (any, if None)."""
    if not math.isfinite(value):
        return False
    return best is None or (value > best if mode == "max" else value < best)
