"""The actions around the loop are independent: their order in the list does not matter."""

import itertools

import keras
import numpy as np
import pytest

from weibo_lstm.training.actions import EarlyStopping, KeepBestWeights, epochs_without_improvement
from weibo_lstm.training.checkpointing import FitState

VAL_LOSS = [0.5, 0.4, 0.45, 0.41, 0.39, 0.5, 0.6]


def run_epochs(actions, model, val_loss):
    """Feeds epoch entries to `actions` as the controller does, until an early stop."""
    state = FitState()
    for epoch, loss in enumerate(val_loss, start=1):
        model.layers[0].kernel.assign(np.full((1, 1), float(epoch), "float32"))
        entry = {"epoch": epoch, "loss": 1.0, "val_loss": loss}
        state.history.epochs.append(entry)
        state.next_epoch()
        for action in actions:
            action.on_epoch_end(state, entry)
        if state.history.stopped_early:
            break
    for action in actions:
        action.on_fit_end(state)
    return state


@pytest.mark.parametrize("patience, stop_epoch", [(2, 4), (3, 7), (10, 7)])
def test_early_stopping_and_best_weights_do_not_depend_on_their_order(patience, stop_epoch):
    results = []
    for order in itertools.permutations(range(2)):
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
        actions = [
            KeepBestWeights(model, "val_loss", "min", validated=True),
            EarlyStopping(patience, "val_loss", "min"),
        ]
        state = run_epochs([actions[i] for i in order], model, VAL_LOSS)
        results.append((len(state.history.epochs), state.history.best_epoch, model.get_weights()))
    # Independent expectation: the best val_loss so far is 0.5, 0.4 (epoch 2), then
    # 0.39 at epoch 5; with patience 2 the two epochs after epoch 2 end the run.
    best_epoch = 2 if stop_epoch == 4 else 5
    for epochs, best, weights in results:
        assert (epochs, best) == (stop_epoch, best_epoch)
        np.testing.assert_array_equal(weights[0], [[best_epoch]])


def test_epochs_without_improvement_counts_a_non_finite_value_as_no_improvement():
    epochs = [{"m": 0.7}, {"m": float("nan")}, {"m": 0.6}, {"m": 0.65}]
    assert epochs_without_improvement(epochs, "m", "max") == 3
    assert epochs_without_improvement(epochs, "m", "min") == 1


def test_without_validation_early_stopping_never_stops():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    actions = [EarlyStopping(1, "val_loss", "min", validated=False)]
    state = run_epochs(actions, model, [0.5, 0.6, 0.7])
    assert not state.history.stopped_early and len(state.history.epochs) == 3
