"""The trainer is objective-agnostic: a tiny next-character language model trains on it.

The objective here is a deliberately small stand-in (full softmax over the
vocabulary, mean cross-entropy per row); the real language-model objective lives in
the library. What is tested is the loop: any `Objective` trains, and 2 replicas
equal 1 replica at the same global batch.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import trainer_options
from weibo_lstm.distribute.strategies import cpu_strategy
from weibo_lstm.preprocessing.tokenized_examples import TokenizedExamples
from weibo_lstm.training.objectives import Objective
from weibo_lstm.training.trainer import DistributedTrainer

VOCAB = 12  # ids 1..11; 0 is padding


class NextCharObjective(Objective):
    """Predict `ids[t + 1]` from `ids[:t + 1]`; per row, the mean cross-entropy of its tokens."""

    stat_names = ("loss_sum", "tokens")
    monitor, mode = "val_loss", "min"

    def __call__(self, model, batch, training):
        ids = batch["ids"]
        logits = model(ids[:, :-1], training=training)
        targets = ids[:, 1:]
        # Padding positions and the rows that only fill the last batch do not count.
        mask = tf.cast(targets > 0, tf.float32) * tf.cast(batch["weights"] > 0, tf.float32)[:, None]
        token_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits) * mask
        per_row = tf.math.divide_no_nan(tf.reduce_sum(token_loss, 1), tf.reduce_sum(mask, 1))
        return per_row, tf.stack([tf.reduce_sum(token_loss), tf.reduce_sum(mask)])

    def metrics(self, stats, prefix=""):
        loss = float(stats[0] / max(stats[1], 1.0))
        return {f"{prefix}loss": loss, f"{prefix}perplexity": float(np.exp(loss))}


def counting_sequences(n, seed):
    """Rows of 3-12 ids counting up by 1 or 2 modulo 11: predictable from two ids back."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        start, step, length = rng.integers(0, 11), rng.integers(1, 3), rng.integers(3, 13)
        rows.append((1 + (start + step * np.arange(length)) % 11).astype(np.int32))
    return TokenizedExamples(
        np.concatenate(rows), np.cumsum([0] + [len(r) for r in rows]), np.zeros(n, np.int32)
    )


def char_lm(strategy, initial=None):
    with strategy.scope():
        model = keras.Sequential(
            [
                keras.Input((None,), dtype="int32"),
                keras.layers.Embedding(VOCAB, 16),
                keras.layers.LSTM(32, return_sequences=True),
                keras.layers.Dense(VOCAB),
            ]
        )
        if initial is not None:
            model.set_weights(initial)
    return model


def train(replicas, initial, train_set, val_set):
    strategy = cpu_strategy(replicas)
    options, loop = trainer_options(32, replicas, epochs=4, learning_rate=2e-2)
    trainer = DistributedTrainer(
        model=char_lm(strategy, initial),
        objective=NextCharObjective(),
        strategy=strategy,
        options=options,
    )
    history = trainer.fit(train_set, val_set, loop)
    return history, [w.numpy() for w in trainer.model.weights]


def test_a_next_character_model_trains_and_two_replicas_equal_one():
    train_set, val_set = counting_sequences(256, seed=0), counting_sequences(64, seed=1)
    initial = char_lm(tf.distribute.get_strategy()).get_weights()
    one, one_weights = train(1, initial, train_set, val_set)
    two, two_weights = train(2, initial, train_set, val_set)

    losses = two.series("loss")
    assert losses[0] > 1.5  # about ln(11) at the start
    assert losses[-1] < 0.6 * losses[0] and two.series("val_loss")[-1] < 0.6 * losses[0]
    assert two.best_metrics["val_perplexity"] == pytest.approx(np.exp(two.best_metrics["val_loss"]))
    difference = max(np.abs(a - b).max() for a, b in zip(one_weights, two_weights, strict=True))
    assert difference <= 1e-5, difference
    assert max(np.abs(a - b).max() for a, b in zip(initial, two_weights, strict=True)) > 1e-2
    np.testing.assert_allclose(one.series("loss"), losses, rtol=1e-5)
