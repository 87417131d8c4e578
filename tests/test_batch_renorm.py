"""Batch renormalization for length buckets: against NumPy, and wired into the trainer."""

import numpy as np
import tensorflow as tf

from tests.helpers import trainer_options
from weibo_lstm import WeiboLSTM
from weibo_lstm.models.layers.batch_norm import (
    RENORM_CLIPPING,
    RENORM_MOMENTUM,
    DistributedBatchNormalization,
    use_batch_renormalization,
)
from weibo_lstm.preprocessing.tokenized_examples import TokenizedExamples
from weibo_lstm.training import input_pipeline as batching
from weibo_lstm.training.trainer import DistributedTrainer

EPSILON = 1e-3  # Keras's default


def _layer(moving_mean, moving_variance):
    layer = DistributedBatchNormalization(epsilon=EPSILON)
    layer.build((None, None, len(moving_mean)))
    layer.moving_mean.assign(moving_mean)
    layer.moving_variance.assign(moving_variance)
    layer.gamma.assign([2.0] * len(moving_mean))
    layer.beta.assign([0.5] * len(moving_mean))
    use_batch_renormalization(layer)
    return layer


def _masked_moments(x, mask):
    real = x[mask]
    return real.mean(axis=0), real.var(axis=0)


def test_training_output_is_the_moving_statistics_normalisation_when_unclipped():
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, (4, 5, 3)).astype(np.float32)
    mask = np.arange(5)[None, :] < np.array([5, 3, 2, 4])[:, None]
    moving_mean, moving_variance = np.array([0.8, 1.2, 1.0]), np.array([3.0, 5.0, 4.0])
    layer = _layer(moving_mean, moving_variance)
    y = layer(tf.constant(x), training=True, mask=tf.constant(mask)).numpy()
    # Batch statistics are within the clipping here, so r and d cancel them exactly.
    expected = 2.0 * (x - moving_mean) / np.sqrt(moving_variance + EPSILON) + 0.5
    np.testing.assert_allclose(y[mask], expected[mask], rtol=1e-4, atol=1e-4)
    # The moving variance follows the spread around the moving mean.
    mean, variance = _masked_moments(x, mask)
    m = RENORM_MOMENTUM
    np.testing.assert_allclose(layer.moving_mean.numpy(), m * moving_mean + (1 - m) * mean, 1e-5)
    np.testing.assert_allclose(
        layer.moving_variance.numpy(),
        m * moving_variance + (1 - m) * (variance + (mean - moving_mean) ** 2),
        rtol=1e-5,
    )


def test_corrections_are_clipped_and_carry_no_gradient():
    rmax, dmax = RENORM_CLIPPING
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(50.0, 30.0, (8, 6, 2)).astype(np.float32))
    layer = _layer(np.zeros(2), np.ones(2))  # far from the batch: both corrections clip
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(y * tf.range(1.0, 3.0))
    gradient = tape.gradient(loss, x).numpy()
    xs = x.numpy().reshape(-1, 2)
    mean, std = xs.mean(0), np.sqrt(xs.var(0) + EPSILON)
    r = np.clip(std / np.sqrt(1 + EPSILON), 1 / rmax, rmax)
    d = np.clip(mean / np.sqrt(1 + EPSILON), -dmax, dmax)
    expected = 2.0 * ((x.numpy() - mean) / std * r + d) + 0.5
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-4, atol=1e-3)
    # r and d are constants: the gradient is batch normalization's, scaled by r, whose
    # sum over the batch is zero per channel (the mean is subtracted).
    np.testing.assert_allclose(gradient.reshape(-1, 2).sum(0), 0.0, atol=1e-3)


def _examples(n=96, seed=0):
    rng = np.random.default_rng(seed)
    rows = [rng.integers(2, 30, rng.integers(1, 15)) for _ in range(n)]
    # Length predicts the label: stratified buckets would deal long rows of one class
    # with short rows of the other.
    labels = np.array([int(len(r) > 7) for r in rows], np.int32)
    return TokenizedExamples(
        np.concatenate(rows).astype(np.int32), np.cumsum([0] + [len(r) for r in rows]), labels
    )


def test_a_batch_norm_model_on_buckets_renormalises_and_its_buckets_ignore_classes():
    strategy = tf.distribute.get_strategy()
    examples = _examples()
    models = {
        "batch_norm": WeiboLSTM(30, embedding_dim=8, lstm_units=(6, 4), dense_units=0),
        "plain": WeiboLSTM(30, embedding_dim=8, lstm_units=(6, 4), dense_units=0, batch_norm=False),
    }
    for name, model in models.items():
        options, loop = trainer_options(16, 1, epochs=1)
        trainer = DistributedTrainer(model=model, strategy=strategy, options=options)
        assert trainer.renormalizes_batch_norm is (name == "batch_norm")
        plan = trainer.plan_epoch(examples, epoch=1)
        labels = None if name == "batch_norm" else examples.labels
        expected = batching.plan_epoch(examples.lengths, 16, seed=42, epoch=1, labels=labels)
        np.testing.assert_array_equal(plan, expected)
        trainer.fit(examples, None, loop)
        norms = [layer for layer in model.backbone.lstm_norms if layer is not None]
        assert all(layer.renormalize for layer in norms) and len(norms) == (
            2 if name == "batch_norm" else 0
        )
    shuffled = DistributedTrainer(
        model=WeiboLSTM(30, embedding_dim=8, lstm_units=(6,), dense_units=0),
        strategy=strategy,
        options=trainer_options(16, 1, bucket_by_length=False)[0],
    )
    assert not shuffled.renormalizes_batch_norm


def test_without_batch_renormalization_training_normalises_with_each_batchs_statistics():
    """`batch_renormalization=False`: the same unstratified buckets, and BatchNorm in
    training is plain masked batch normalisation of the batch (computed here by hand)."""
    strategy = tf.distribute.get_strategy()
    examples = _examples()
    model = WeiboLSTM(30, embedding_dim=8, lstm_units=(6, 4), dense_units=0)
    options, loop = trainer_options(16, 1, epochs=1, batch_renormalization=False)
    trainer = DistributedTrainer(model=model, strategy=strategy, options=options)
    assert trainer.buckets_batch_norm and not trainer.renormalizes_batch_norm
    expected = batching.plan_epoch(examples.lengths, 16, seed=42, epoch=1, labels=None)
    np.testing.assert_array_equal(trainer.plan_epoch(examples, epoch=1), expected)
    trainer.fit(examples, None, loop)
    norms = [layer for layer in model.backbone.lstm_norms if layer is not None]
    assert len(norms) == 2 and not any(layer.renormalize for layer in norms)
    norm = norms[0]  # after the sequence LSTM: [b, T, 6] with a mask
    x = tf.constant(np.random.default_rng(0).normal(1, 3, [4, 5, 6]), tf.float32)
    mask = tf.sequence_mask([5, 3, 1, 4], 5)
    norm.moving_mean.assign(tf.fill([6], 7.0))  # a training batch must not use these
    y = norm(x, training=True, mask=mask).numpy()
    real = x.numpy()[mask.numpy()]
    expected = (real - real.mean(0)) / np.sqrt(real.var(0) + norm.epsilon)
    expected = expected * norm.gamma.numpy() + norm.beta.numpy()
    np.testing.assert_allclose(y[mask.numpy()], expected, atol=1e-4)


def test_a_model_with_plain_keras_batch_norm_falls_back_to_shuffled_batches(caplog):
    """Plain BatchNormalization cannot renormalise: no buckets for it, and it says so."""
    import keras

    examples = _examples()
    model = keras.Sequential(
        [
            keras.layers.Embedding(30, 8, mask_zero=True),
            keras.layers.LSTM(4),
            keras.layers.BatchNormalization(name="plain_bn"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    options, loop = trainer_options(16, 1)
    with caplog.at_level("WARNING", logger="weibo_lstm"):
        trainer = DistributedTrainer(
            model=model, strategy=tf.distribute.get_strategy(), options=options
        )
    assert "plain_bn" in caplog.text and "shuffled batches" in caplog.text
    assert not trainer.options.bucket_by_length and not trainer.renormalizes_batch_norm
    expected = batching.plan_epoch(
        examples.lengths, 16, seed=42, epoch=1, bucket=False, labels=examples.labels
    )
    np.testing.assert_array_equal(trainer.plan_epoch(examples, epoch=1), expected)
    history = trainer.fit(examples, None, loop)
    assert np.isfinite(history.epochs[-1]["loss"])
