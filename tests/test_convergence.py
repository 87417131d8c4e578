"""Budgets that train to convergence: stop on validation, say when a run had not converged."""

import logging

import pytest

from tests.synthetic import texts_and_labels
from weibo_lstm import LabeledTexts, SentimentClassifier
from weibo_lstm.models.presets import PRESETS
from weibo_lstm.training.actions import StillImproving
from weibo_lstm.training.checkpointing import FitState
from weibo_lstm.training.option_groups import make_options

SMALL = dict(embedding_dim=16, lstm_units=(16,), dense_units=0, bigram_buckets=0)


def corpus(n, seed):
    texts, labels = texts_and_labels(n, seed=seed, noise=0.0)
    return LabeledTexts(texts, labels)


def test_patience_stops_a_run_that_has_converged_long_before_its_epoch_cap():
    """A keyword decides every label: validation accuracy reaches 1.0 within a few
    epochs and cannot improve after; with patience 2 the run ends two epochs after
    its best, far below a cap of 40, and keeps the best epoch's weights."""
    train, val = corpus(400, 1), corpus(100, 2)
    classifier = SentimentClassifier.from_preset(
        "best", vocabulary_texts=train.texts, max_length=32, **SMALL
    )
    history = classifier.fit(
        train, val, epochs=40, patience=2, batch_size=32, learning_rate=5e-3, quiet=True
    )
    assert history.stopped_early
    assert history.best_metrics["val_accuracy"] == 1.0
    assert len(history.epochs) == history.best_epoch + 2 < 40
    assert classifier.evaluate(val)["accuracy"] == 1.0


def run_still_improving(val_accuracy, *, epochs, stopped_early=False):
    state = FitState()
    for epoch, value in enumerate(val_accuracy, start=1):
        state.history.epochs.append({"epoch": epoch, "val_accuracy": value})
    best = max(range(len(val_accuracy)), key=val_accuracy.__getitem__)
    state.history.best_epoch = best + 1
    state.history.stopped_early = stopped_early
    StillImproving("val_accuracy", epochs).on_fit_end(state)


@pytest.mark.parametrize(
    "val_accuracy, epochs, stopped_early, says_so",
    [
        ([0.63, 0.73, 0.73, 0.75], 4, False, True),  # the new user's run in issue 22
        ([0.63, 0.75, 0.74, 0.74], 4, False, False),  # best before the last epoch
        ([0.63, 0.70, 0.75], 6, True, False),  # stopped early (patience)
        ([0.75], 1, False, False),  # one epoch says nothing about convergence
    ],
)
def test_a_run_still_improving_at_its_last_epoch_says_so_in_one_line(
    val_accuracy, epochs, stopped_early, says_so, caplog
):
    with caplog.at_level(logging.WARNING, logger="weibo_lstm"):
        run_still_improving(val_accuracy, epochs=epochs, stopped_early=stopped_early)
    lines = [r.getMessage() for r in caplog.records if "still improving" in r.getMessage()]
    assert len(lines) == int(says_so)
    if says_so:
        assert "--epochs" in lines[0] and f"({epochs} of {epochs})" in lines[0]


def test_budgets_with_patience_have_room_to_converge():
    for preset in PRESETS.values():
        for budget in preset.budgets.values():
            _, loop = make_options(budget)
            if loop.patience is not None:
                assert loop.epochs >= loop.patience + 2, preset.name
    with pytest.raises(ValueError, match="patience"):
        make_options(dict(epochs=4, batch_size=8, learning_rate=1e-3, patience=0))
