"""FineTuning.build: the trainer's learning-rate schedule, the encoder's rate and freeze.

The rates are checked step by step against the schedule written out from the options in
plain Python (what `FineTuning.build` computed inline before it reused
`optimization.learning_rate_schedule`).
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from weibo_lstm.distribute.strategies import cpu_strategy
from weibo_lstm.models.encoder import save_encoder
from weibo_lstm.models.language_model import CharLanguageModel
from weibo_lstm.preprocessing.tokenizer import Tokenizer
from weibo_lstm.training.fine_tuning import FineTuning
from weibo_lstm.training.optimization import EncoderAdam, learning_rate_schedule
from weibo_lstm.training.options import TrainerOptions


def reference_rates(options, replicas, steps_per_epoch, steps, scale=1.0):
    """Warmup then cosine over the run that `options` describe, in plain Python."""
    factor = {"sqrt": math.sqrt(replicas), "linear": replicas, "none": 1}[options.lr_scaling]
    peak = options.learning_rate * factor * scale
    initial, floor = peak * options.initial_lr_fraction, peak * options.min_lr_fraction
    total = options.epochs * steps_per_epoch
    warmup = min(round(options.warmup_epochs * steps_per_epoch), total - 1)
    rates = []
    for step in range(steps):
        if step < warmup:
            rates.append(initial + (peak - initial) * step / warmup)
        else:
            progress = min(1.0, (step - warmup) / (total - warmup))
            rates.append(floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress)))
    return rates


#: (TrainerOptions arguments, replicas, steps per epoch, scale)
RUNS = {
    "sqrt-2-replicas": (dict(epochs=3, learning_rate=1e-3, warmup_epochs=0.5), 2, 10, 1.0),
    "linear-warmup-past-the-end": (
        dict(
            epochs=2,
            learning_rate=2e-3,
            warmup_epochs=5,
            lr_scaling="linear",
            initial_lr_fraction=0.2,
            min_lr_fraction=0.1,
        ),
        4,
        7,
        1.0,
    ),
    "no-warmup-scaled": (
        dict(epochs=4, learning_rate=1e-2, warmup_epochs=0, lr_scaling="none"),
        1,
        5,
        0.1,
    ),
}


@pytest.mark.parametrize("run", sorted(RUNS))
def test_learning_rate_schedule_follows_the_options(run):
    arguments, replicas, steps_per_epoch, scale = RUNS[run]
    options = TrainerOptions(quiet=True, **arguments)
    schedule = learning_rate_schedule(
        options, num_replicas=replicas, steps_per_epoch=steps_per_epoch, scale=scale
    )
    steps = options.epochs * steps_per_epoch + 3
    expected = reference_rates(options, replicas, steps_per_epoch, steps, scale=scale)
    got = [float(schedule(step)) for step in range(steps)]
    peak = max(expected)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6 * peak)


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    keras.utils.set_random_seed(0)
    tokenizer = Tokenizer(["好", "差", "喜"], max_length=8)
    lm = CharLanguageModel(tokenizer.vocabulary_size, embedding_dim=4, lstm_units=(4,))
    lm.build()
    return save_encoder(tmp_path_factory.mktemp("encoder"), lm.backbone, tokenizer)


@pytest.mark.parametrize("replicas", [1, 2])
def test_fine_tuning_optimizer_follows_the_trainers_schedule(tiny_encoder, replicas):
    strategy = tf.distribute.get_strategy() if replicas == 1 else cpu_strategy(replicas)
    options = TrainerOptions(
        epochs=3, batch_size=4, learning_rate=2e-3, warmup_epochs=0.5, min_lr_fraction=0.05
    )
    train_size = 37  # ceil(37 / (4 × replicas)) steps per epoch: 10 or 5
    steps_per_epoch = math.ceil(train_size / (options.batch_size * replicas))
    fine_tuning = FineTuning(encoder=tiny_encoder, encoder_lr_multiplier=0.25, frozen_epochs=1.5)
    model, tokenizer, optimizer = fine_tuning.build(
        strategy=strategy, options=options, train_size=train_size, pooling="mean"
    )
    assert isinstance(optimizer, EncoderAdam)
    assert optimizer.frozen_steps == round(1.5 * steps_per_epoch)
    assert optimizer.encoder_lr_multiplier == 0.25
    assert model.pooling == "mean" and tokenizer.max_length == 8
    steps = options.epochs * steps_per_epoch + 2
    expected = reference_rates(options, replicas, steps_per_epoch, steps)
    got = []
    for step in range(steps):
        optimizer.iterations.assign(step)
        got.append(float(optimizer.learning_rate))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
