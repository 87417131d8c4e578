"""The Controller drives the trainer it is given, with independent actions around it."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import trainer_options
from tests.test_trainer import SMALL, VOCAB, make_examples, poisoned_examples, poisoned_trainer
from weibo_lstm import WeiboLSTM
from weibo_lstm.training.actions import Action, EarlyStopping, KeepBestWeights
from weibo_lstm.training.checkpointing import FitState
from weibo_lstm.training.controller import Controller
from weibo_lstm.training.controller_options import ControllerOptions
from weibo_lstm.training.objectives import ClassificationObjective
from weibo_lstm.training.trainer import DistributedTrainer, TrainerOptions

PATIENCE = 2


class RecordWeights(Action):
    """Keeps the model's weights at the end of every epoch, and the hooks it saw."""

    def __init__(self, model):
        self.model, self.weights, self.hooks = model, {}, []

    def on_epoch_begin(self, state):
        self.hooks.append(("epoch_begin", state.epoch))

    def on_epoch_end(self, state, entry):
        # The best epoch so far, as the default actions (fired before this one) left it.
        self.hooks.append(("epoch_end", entry["epoch"], state.history.best_epoch))
        self.weights[entry["epoch"]] = [np.array(w) for w in self.model.get_weights()]

    def on_fit_end(self, state):
        self.hooks.append(("fit_end", None))


class PatienceFirst(Controller):
    """Fires EarlyStopping before KeepBestWeights (the default list has them the other way)."""

    def _default_actions(self, *args):
        actions = super()._default_actions(*args)
        kinds = [type(action) for action in actions]
        i, j = kinds.index(KeepBestWeights), kinds.index(EarlyStopping)
        assert i < j
        actions[i], actions[j] = actions[j], actions[i]
        return actions


@pytest.fixture(scope="module")
def data():
    return make_examples(96), make_examples(48, seed=3)


def fit(controller_class, data):
    strategy = tf.distribute.get_strategy()
    tf.keras.utils.set_random_seed(0)
    model = WeiboLSTM(VOCAB, **SMALL)
    options, loop = trainer_options(16, 1, epochs=8, patience=PATIENCE, learning_rate=5e-2)
    trainer = DistributedTrainer(model=model, strategy=strategy, options=options)
    recorder = RecordWeights(model)
    history = controller_class(trainer, loop, actions=[recorder]).fit(*data)
    return history, model.get_weights(), recorder


@pytest.fixture(scope="module")
def default_run(data):
    return fit(Controller, data)


@pytest.mark.slow
def test_early_stopping_and_best_weights_give_the_same_run_in_either_order(data, default_run):
    runs = [default_run, fit(PatienceFirst, data)]
    for history, weights, recorder in runs:
        # Independent expectation, from the validation accuracies alone: the best epoch
        # is the first maximum, and the run ends PATIENCE epochs after it.
        accuracy = history.series("val_accuracy")
        best = int(np.argmax(accuracy)) + 1
        assert history.stopped_early and len(accuracy) == best + PATIENCE < 8
        assert history.best_epoch == best
        # The model ends with the weights it had at the end of that epoch.
        for got, want in zip(weights, recorder.weights[best], strict=True):
            np.testing.assert_array_equal(got, want)
    (history, weights, _), (other, other_weights, _) = runs
    assert history.series("val_loss") == other.series("val_loss")
    for got, want in zip(weights, other_weights, strict=True):
        np.testing.assert_array_equal(got, want)


def test_extra_actions_see_every_hook_after_the_default_actions(default_run):
    history, _, recorder = default_run
    accuracy = history.series("val_accuracy")
    expected = []
    for epoch in range(1, len(accuracy) + 1):
        best_so_far = int(np.argmax(accuracy[:epoch])) + 1
        expected += [("epoch_begin", epoch), ("epoch_end", epoch, best_so_far)]
    assert recorder.hooks == [*expected, ("fit_end", None)]


@pytest.mark.parametrize("patience_first", [False, True])
def test_a_monitor_that_is_not_a_metric_is_the_same_error_in_either_order(patience_first):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    actions = [
        KeepBestWeights(model, "val_f1", "max", validated=True),
        EarlyStopping(1, "val_f1", "max"),
    ]
    state, entry = FitState(), {"epoch": 1, "loss": 0.5, "val_loss": 0.6}
    state.history.epochs.append(entry)
    with pytest.raises(ValueError, match=r"options.monitor='val_f1' is not a metric"):
        for action in reversed(actions) if patience_first else actions:
            action.on_epoch_end(state, entry)


def test_the_controller_reads_its_own_options_and_the_objective_fills_monitor_and_mode():
    trainer = DistributedTrainer(
        model=WeiboLSTM(VOCAB, **SMALL),
        objective=ClassificationObjective(),
        options=TrainerOptions(),
    )
    default = Controller(trainer)
    assert default.options == ControllerOptions()
    assert (default.monitor, default.mode) == ("val_accuracy", "max")  # the objective's
    mine = Controller(trainer, ControllerOptions(monitor="val_loss", mode="min"))
    assert (mine.monitor, mine.mode) == ("val_loss", "min")


@pytest.mark.slow  # trains once per loop length
def test_skipping_a_nonfinite_step_keeps_the_data_order_whatever_the_loop_length():
    """The runner ends its call at a non-finite step and the controller calls it again
    for the loop's remaining steps: the steps applied, in order, are those of a run of
    one step per loop (where no call is ever cut), so the weights are the same."""
    weights = {}
    for steps_per_loop in (1, 4):
        tf.keras.utils.set_random_seed(0)
        trainer, loop = poisoned_trainer(
            on_nonfinite="skip", epochs=2, steps_per_loop=steps_per_loop
        )
        history = trainer.fit(poisoned_examples(), None, loop)
        assert [e["skipped_steps"] for e in history.epochs] == [1, 1]
        assert int(trainer.optimizer.iterations.numpy()) == 2 * 7 - 2
        weights[steps_per_loop] = trainer.model.get_weights()
    for got, want in zip(weights[4], weights[1], strict=True):
        np.testing.assert_array_equal(got, want)
