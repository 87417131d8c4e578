import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from weibo_lstm import WarmupCosineDecay


def reference_lr(step, initial, target, warmup, decay, alpha=0.0):
    """The schedule's formula, written independently in plain Python."""
    if step < warmup:
        return initial + (target - initial) * step / warmup
    progress = min(1.0, (step - warmup) / (decay - warmup))
    return target * (alpha + (1 - alpha) * 0.5 * (1 + math.cos(math.pi * progress)))


@pytest.mark.parametrize("alpha", [0.0, 0.1])
def test_matches_reference_formula(alpha):
    initial, target, warmup, decay = 1e-5, 1e-4 * math.sqrt(2), 300, 1500
    schedule = WarmupCosineDecay(initial, target, warmup, decay, alpha=alpha)
    # Step 0, mid-warmup, warmup end, mid-decay, decay end, beyond.
    for step in (0, 1, 150, 299, 300, 301, 900, 1499, 1500, 1501, 10_000):
        expected = reference_lr(step, initial, target, warmup, decay, alpha)
        # float32 arithmetic: compare relative to the peak rate.
        np.testing.assert_allclose(float(schedule(step)), expected, rtol=1e-6, atol=1e-6 * target)


def test_zero_warmup_starts_at_target():
    schedule = WarmupCosineDecay(0.0, 0.5, 0, 10)
    assert float(schedule(0)) == pytest.approx(0.5)
    assert float(schedule(5)) == pytest.approx(0.25)


def test_runs_in_graph_mode_with_variable_step():
    schedule = WarmupCosineDecay(0.1, 1.0, 10, 20)
    step = tf.Variable(0, dtype=tf.int64)

    @tf.function
    def rates():
        out = tf.TensorArray(tf.float32, size=25)
        for i in tf.range(25):
            step.assign(tf.cast(i, tf.int64))
            out = out.write(i, schedule(step))
        return out.stack()

    expected = [reference_lr(s, 0.1, 1.0, 10, 20) for s in range(25)]
    np.testing.assert_allclose(rates().numpy(), expected, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(warmup_steps=-1), "Argument `warmup_steps` must be >= 0. Received: warmup_steps=-1"),
        (dict(decay_steps=5), "decay_steps=5, warmup_steps=10"),
        (dict(initial_lr=-0.1), "Received: initial_lr=-0.1"),
        (dict(target_lr=float("nan")), "Received: target_lr=nan"),
        (dict(alpha=1.5), "Received: alpha=1.5"),
    ],
)
def test_validation_echoes_bad_value(kwargs, message):
    args = dict(initial_lr=0.1, target_lr=1.0, warmup_steps=10, decay_steps=20) | kwargs
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        WarmupCosineDecay(**args)


def test_serialization_round_trip(serialization_round_trip):
    schedule = WarmupCosineDecay(1e-5, 1e-4, 30, 150, alpha=0.05)
    serialization_round_trip(schedule, lambda s: [s(i) for i in (0, 20, 100, 400)])


def test_serializes_with_optimizer_and_drives_its_learning_rate():
    schedule = WarmupCosineDecay(0.01, 0.1, 2, 6)
    optimizer = keras.optimizers.SGD(learning_rate=schedule)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert (
        restored.get_config()["learning_rate"]["registered_name"] == "weibo_lstm>WarmupCosineDecay"
    )
    var = keras.Variable(1.0)
    restored.build([var])
    seen = []
    for step in range(8):
        seen.append(float(restored.learning_rate))
        restored.apply_gradients([(tf.constant(0.0), var)])
        assert int(restored.iterations.numpy()) == step + 1
    np.testing.assert_allclose(
        seen, [reference_lr(s, 0.01, 0.1, 2, 6) for s in range(8)], rtol=1e-6
    )
