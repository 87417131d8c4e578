"""ClassificationHead: pooled features to class probabilities."""

from __future__ import annotations

import keras

from weibo_lstm.errors import check_fields
from weibo_lstm.models.layers.batch_norm import DistributedBatchNormalization


@keras.saving.register_keras_serializable(package="weibo_lstm")
class ClassificationHead(keras.layers.Layer):
    """Dense(relu) → BatchNorm → Dropout → Dense(softmax), on a backbone's pooled output.

    With the defaults this is the head of the seed recipe: `Dense(32, relu)`,
    BatchNormalization, `Dropout(0.3)`, `Dense(2, softmax)`, L2(1e-5) on both kernels.
    The softmax and the probabilities stay in the variable dtype (float32 under a
    mixed-precision policy): half-precision probabilities would round the loss and
    saturate near 0 and 1.

    Args:
        num_classes: output classes.
        dense_units: width of the hidden dense layer (0 removes the hidden block).
        dropout: dropout rate after the hidden dense layer.
        l2: L2 factor of both kernels (0 disables).
        batch_norm: BatchNormalization after the hidden dense layer.
        synchronized_batch_norm: its statistics over the global batch across replicas.
        **kwargs: passed to `keras.layers.Layer` (`name`, `dtype`).

    Example:

    >>> head = ClassificationHead(num_classes=3, dense_units=4)
    >>> head(np.ones((2, 6), "float32")).shape
    TensorShape([2, 3])
    """

    def __init__(
        self,
        num_classes: int = 2,
        *,
        dense_units: int = 32,
        dropout: float = 0.3,
        l2: float = 1e-5,
        batch_norm: bool = True,
        synchronized_batch_norm: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.dense_units = int(dense_units)
        self.dropout = float(dropout)
        self.l2 = float(l2)
        self.batch_norm = bool(batch_norm)
        self.synchronized_batch_norm = bool(synchronized_batch_norm)
        check_fields(
            self,
            num_classes=(self.num_classes >= 2, ">= 2"),
            dense_units=(self.dense_units >= 0, ">= 0"),
            dropout=(0 <= self.dropout < 1, "in [0, 1)"),
            l2=(self.l2 >= 0, ">= 0"),
        )
        regularizer = keras.regularizers.L2(self.l2) if self.l2 else None
        policy = self.dtype_policy
        self.hidden = self.hidden_norm = self.hidden_dropout = None
        if self.dense_units:
            self.hidden = keras.layers.Dense(
                self.dense_units,
                activation="relu",
                kernel_regularizer=regularizer,
                dtype=policy,
                name="hidden",
            )
            if self.batch_norm:
                self.hidden_norm = DistributedBatchNormalization(
                    synchronized=self.synchronized_batch_norm, dtype=policy, name="hidden_norm"
                )
            self.hidden_dropout = keras.layers.Dropout(
                self.dropout, dtype=policy, name="hidden_dropout"
            )
        self.classifier = keras.layers.Dense(
            self.num_classes,
            activation="softmax",
            kernel_regularizer=regularizer,
            dtype=policy.variable_dtype,
            name="classifier",
        )

    def build(self, input_shape):
        shape = tuple(input_shape)
        if self.hidden is not None:
            self.hidden.build(shape)
            shape = self.hidden.compute_output_shape(shape)
            if self.hidden_norm is not None:
                self.hidden_norm.build(shape)
        self.classifier.build(shape)
        self.built = True

    def call(self, pooled, training=None):
        x = pooled
        if self.hidden is not None:
            x = self.hidden(x)
            if self.hidden_norm is not None:
                x = self.hidden_norm(x, training=training)
            x = self.hidden_dropout(x, training=training)
        return self.classifier(x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "dense_units": self.dense_units,
                "dropout": self.dropout,
                "l2": self.l2,
                "batch_norm": self.batch_norm,
                "synchronized_batch_norm": self.synchronized_batch_norm,
            }
        )
        return config
