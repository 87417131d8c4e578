"""Shared test helpers."""

from __future__ import annotations

import numpy as np


def assert_serialization_round_trip(obj, call, *, atol=0.0):
    """`get_config` → `from_config` gives an object whose `call(obj)` output matches."""
    config = obj.get_config()
    restored = type(obj).from_config(config)
    assert restored.get_config() == config
    expected = call(obj)
    actual = call(restored)
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), atol=atol, rtol=0)
    return restored
