"""Action: the base class of the services around the training loop."""

from __future__ import annotations

import keras
import numpy as np

from weibo_lstm.training.checkpointing import FitState


class Action:
    """Base class: every hook does nothing."""

    def on_epoch_begin(self, state: FitState) -> None:
        pass

    def on_loop_end(self, state: FitState) -> None:
        pass

    def on_epoch_end(self, state: FitState, entry: dict) -> None:
        pass

    def on_fit_end(self, state: FitState) -> None:
        pass

    def close(self) -> None:
        pass


def finite_weights(model: keras.Model) -> list[np.ndarray] | None:
    weights = [np.array(v.numpy()) for v in model.weights]
    return weights if all(np.isfinite(w).all() for w in weights) else None
