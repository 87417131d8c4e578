"""Shared test helpers."""

from __future__ import annotations

import numpy as np

from weibo_lstm.trainer import TrainerOptions


def assert_serialization_round_trip(obj, call, *, atol=0.0):
    """`get_config` → `from_config` gives an object whose `call(obj)` output matches."""
    config = obj.get_config()
    restored = type(obj).from_config(config)
    assert restored.get_config() == config
    expected = call(obj)
    actual = call(restored)
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), atol=atol, rtol=0)
    return restored


def trainer_options(global_batch: int, replicas: int, **kwargs) -> TrainerOptions:
    """Small, fast TrainerOptions for tests: 2 epochs at `global_batch`, lr 1e-2 unscaled."""
    defaults = dict(
        epochs=2,
        batch_size=global_batch // replicas,
        learning_rate=1e-2,
        lr_scaling="none",
        warmup_epochs=1,
        quiet=True,
        steps_per_loop=3,
    )
    return TrainerOptions(**(defaults | kwargs))
