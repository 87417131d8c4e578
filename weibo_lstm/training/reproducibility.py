"""Deterministic runs: the same seed gives the same weights, bit for bit."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import keras
import numpy as np
import tensorflow as tf


def enable_determinism(seed: int) -> None:
    """Seeds every generator and makes TensorFlow's ops deterministic.

    Seeds Python's `random`, NumPy and TensorFlow (`keras.utils.set_random_seed`),
    then calls `tf.config.experimental.enable_op_determinism()` (the successor of
    `TF_DETERMINISTIC_OPS=1`): ops pick deterministic kernels, or raise
    `UnimplementedError` where none exists (some GPU ops), and `tf.data` keeps its
    element order. Op determinism is process-wide and cannot be switched off.

    Two runs on the same hardware, software and device count then give identical
    weights; across different GPUs or TensorFlow versions they may still differ.

    Args:
        seed: the seed of all generators.

    Example (not run as a doctest: op determinism cannot be switched off again):

        enable_determinism(42)  # before the model is built
        model = WeiboLSTM(vocabulary_size)
    """
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


@contextlib.contextmanager
def seeded_construction(seed: int | None) -> Iterator[None]:
    """Keras objects constructed inside draw their random seeds from `seed`; the
    process's random state is as it was afterwards.

    Keras 3 gives every initializer and dropout generator constructed without a
    seed one drawn from Python's `random` at construction, so seeding it around the
    construction fixes every new weight and dropout mask of the model, while the
    rest of the program (and `keras.utils.set_random_seed`) keeps its own sequence.
    NumPy's global generator is seeded and restored the same way. Unlike
    `enable_determinism`, nothing process-wide changes: ops keep their kernels.

    Args:
        seed: the seed; None leaves the global random state in use (no-op).

    Example:

    >>> def dense():
    ...     layer = keras.layers.Dense(2)
    ...     layer.build((None, 3))
    ...     return layer.kernel.numpy()
    >>> with seeded_construction(7):
    ...     a = dense()
    >>> with seeded_construction(7):
    ...     b = dense()
    >>> bool((a == b).all())
    True
    """
    if seed is None:
        yield
        return
    python_state, numpy_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
