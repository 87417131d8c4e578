"""TensorBoardScalars: each epoch's entry as TensorBoard scalars."""

from __future__ import annotations

import logging

import tensorflow as tf

from weibo_lstm.training.actions.action import Action

logger = logging.getLogger("weibo_lstm")


class TensorBoardScalars(Action):
    """Writes each epoch's entry as TensorBoard scalars (chief only; needs `tensorboard`)."""

    def __init__(self, directory: str):
        self.directory = directory
        self.writer = None
        try:
            import tensorboard  # noqa: F401  (tf.summary needs it since TF 2.21)
        except ImportError:
            logger.info('TensorBoard scalars skipped: pip install "weibo-lstm[tensorboard]"')
            return
        self.writer = tf.summary.create_file_writer(directory)

    def on_epoch_end(self, state, entry):
        if self.writer is None:
            return
        with self.writer.as_default(step=entry["epoch"]):
            for key, value in entry.items():
                if key != "epoch":
                    tf.summary.scalar(key, value)
        self.writer.flush()
