"""WeiboLSTM: the stacked-LSTM sentiment classifier of the weibo_senti_100k recipe."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from weibo_lstm.batch_norm import DistributedBatchNormalization


@keras.saving.register_keras_serializable(package="weibo_lstm")
class WeiboLSTM(keras.Model):
    """Character embedding → stacked LSTMs → dense head → class probabilities.

    The defaults reproduce the seed architecture exactly:

        Embedding(vocabulary_size, 100, mask_zero=True)
        → LSTM(128, return_sequences=True) → BatchNorm → Dropout(0.3)
        → LSTM(64) → BatchNorm → Dropout(0.3)
        → Dense(32, relu) → BatchNorm → Dropout(0.3)
        → Dense(2, softmax)

    with L2(`l2`) on the embedding matrix, on the LSTM kernels and recurrent
    kernels, and on the Dense kernels (biases and BatchNorm are not regularised).
    Id 0 is padding and is masked throughout.

    Args:
        vocabulary_size: number of token ids, padding and OOV included.
        embedding_dim: embedding width.
        lstm_units: units of each stacked LSTM; all but the last return sequences.
        dense_units: width of the hidden dense layer (0 removes it).
        dropout: dropout rate after each block.
        l2: L2 factor of the regularised kernels (0 disables).
        batch_norm: put BatchNormalization after each block.
        synchronized_batch_norm: compute batch statistics over the global batch
            across replicas rather than per replica (see
            `DistributedBatchNormalization`, used for every BatchNorm here).
        num_classes: output classes (softmax).
        **kwargs: passed to `keras.Model` (e.g. `name`).

    Example:

    >>> model = WeiboLSTM(vocabulary_size=50, lstm_units=(8, 4), dense_units=4)
    >>> model(np.array([[5, 6, 7, 0]]), training=False).shape
    TensorShape([1, 2])
    """

    def __init__(
        self,
        vocabulary_size: int,
        *,
        embedding_dim: int = 100,
        lstm_units: Sequence[int] = (128, 64),
        dense_units: int = 32,
        dropout: float = 0.3,
        l2: float = 1e-5,
        batch_norm: bool = True,
        synchronized_batch_norm: bool = False,
        num_classes: int = 2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if vocabulary_size < 2:
            raise ValueError(
                f"Argument `vocabulary_size` must be >= 2. Received: vocabulary_size={vocabulary_size}"
            )
        if not lstm_units or any(u < 1 for u in lstm_units):
            raise ValueError(
                f"Argument `lstm_units` must be non-empty and positive. Received: lstm_units={lstm_units}"
            )
        if not 0 <= dropout < 1:
            raise ValueError(f"Argument `dropout` must be in [0, 1). Received: dropout={dropout}")
        if l2 < 0:
            raise ValueError(f"Argument `l2` must be >= 0. Received: l2={l2}")
        self.vocabulary_size = int(vocabulary_size)
        self.embedding_dim = int(embedding_dim)
        self.lstm_units = tuple(int(u) for u in lstm_units)
        self.dense_units = int(dense_units)
        self.dropout = float(dropout)
        self.l2 = float(l2)
        self.batch_norm = bool(batch_norm)
        self.synchronized_batch_norm = bool(synchronized_batch_norm)
        self.num_classes = int(num_classes)

        def regularizer():
            return keras.regularizers.L2(self.l2) if self.l2 else None

        def norm(name):
            if not self.batch_norm:
                return None
            return DistributedBatchNormalization(
                synchronized=self.synchronized_batch_norm, name=name
            )

        self.embedding = keras.layers.Embedding(
            self.vocabulary_size,
            self.embedding_dim,
            mask_zero=True,
            embeddings_regularizer=regularizer(),
            name="embedding",
        )
        self.lstm_layers = []
        self.lstm_norms = []
        self.lstm_dropouts = []
        for i, units in enumerate(self.lstm_units):
            self.lstm_layers.append(
                keras.layers.LSTM(
                    units,
                    return_sequences=i < len(self.lstm_units) - 1,
                    kernel_regularizer=regularizer(),
                    recurrent_regularizer=regularizer(),
                    name=f"lstm_{i}",
                )
            )
            self.lstm_norms.append(norm(f"lstm_{i}_norm"))
            self.lstm_dropouts.append(keras.layers.Dropout(self.dropout, name=f"lstm_{i}_dropout"))
        self.hidden = None
        if self.dense_units:
            self.hidden = keras.layers.Dense(
                self.dense_units, activation="relu", kernel_regularizer=regularizer(), name="hidden"
            )
            self.hidden_norm = norm("hidden_norm")
            self.hidden_dropout = keras.layers.Dropout(self.dropout, name="hidden_dropout")
        self.classifier = keras.layers.Dense(
            self.num_classes,
            activation="softmax",
            kernel_regularizer=regularizer(),
            name="classifier",
        )

    def build(self, input_shape=(None, None)):
        # Explicit so that variables exist right after `build()` under a strategy
        # scope (the trainer builds under `strategy.scope()`), and for loading.
        self.embedding.build(input_shape)
        shape = (*input_shape, self.embedding_dim)
        for lstm, norm in zip(self.lstm_layers, self.lstm_norms, strict=True):
            lstm.build(shape)
            shape = lstm.compute_output_shape(shape)
            if norm is not None:
                norm.build(shape)
        if self.hidden is not None:
            self.hidden.build(shape)
            shape = self.hidden.compute_output_shape(shape)
            if self.hidden_norm is not None:
                self.hidden_norm.build(shape)
        self.classifier.build(shape)
        self.built = True

    def call(self, inputs, training=None):
        mask = self.embedding.compute_mask(inputs)
        x = self.embedding(inputs)
        for lstm, norm, dropout in zip(
            self.lstm_layers, self.lstm_norms, self.lstm_dropouts, strict=True
        ):
            x = lstm(x, mask=mask, training=training)
            step_mask = mask if lstm.return_sequences else None
            if norm is not None:
                x = norm(x, training=training, mask=step_mask)
            x = dropout(x, training=training)
        if self.hidden is not None:
            x = self.hidden(x)
            if self.hidden_norm is not None:
                x = self.hidden_norm(x, training=training)
            x = self.hidden_dropout(x, training=training)
        return self.classifier(x)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim,
                "lstm_units": list(self.lstm_units),
                "dense_units": self.dense_units,
                "dropout": self.dropout,
                "l2": self.l2,
                "batch_norm": self.batch_norm,
                "synchronized_batch_norm": self.synchronized_batch_norm,
                "num_classes": self.num_classes,
            }
        )
        return config
