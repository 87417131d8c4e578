"""Deterministic runs: the same seed gives the same weights, bit for bit."""

from __future__ import annotations

import keras
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
