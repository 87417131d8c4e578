"""A next-character language model on a `WeiboLSTMBackbone`.

`CharLanguageModel` reads the sequence output of a `WeiboLSTMBackbone` (character
embedding [+ previous-character bigram embedding] → LSTM stack, no pooling) and adds an
output projection over the vocabulary. Its backbone's weights transfer 1:1 into a
classifier of the same encoder architecture (`weibo_lstm.models.encoder`). `LanguageModelObjective` is the loss the
`DistributedTrainer` optimises for it: the mean negative log-likelihood of each
next character, with a sampled softmax in training (the output layer dominates the
cost of a CPU step otherwise) and the full softmax for evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import tensorflow as tf

from weibo_lstm.models.backbone import WeiboLSTMBackbone

#: The `WeiboLSTMBackbone` arguments that define the encoder (what must match for a
#: transfer).
ENCODER_ARGUMENTS = (
    "vocabulary_size",
    "embedding_dim",
    "lstm_units",
    "bigram_buckets",
    "bigram_context",
    "batch_norm",
)


@keras.saving.register_keras_serializable(package="weibo_lstm")
class CharLanguageModel(keras.Model):
    """Predicts each next character from a `WeiboLSTMBackbone`'s sequence output.

    `call(ids)` returns the backbone's hidden states `[batch, time, units]`; the
    logits of the character after position t are `hidden[:, t] @ output_kernel.T +
    output_bias`.

    Args:
        vocabulary_size: number of token ids, padding (0) and OOV (1) included.
        embedding_dim: character (and bigram) embedding width.
        lstm_units: units of each stacked (unidirectional) LSTM.
        bigram_buckets: hashed embeddings of the pair (previous, current character);
            0 disables them. Always the *previous* character: the next one is the
            target.
        dropout: dropout after each LSTM block.
        embedding_dropout: `SpatialDropout1D` rate on the embeddings.
        seed: seed of the negative-sample stream of the sampled softmax.
        **kwargs: passed to `keras.Model` (e.g. `name`, or `dtype`: a mixed-precision
            policy, `weibo_lstm.training.mixed_precision.dtype_policy`, which the encoder
            computes in; the output layer stays float32).

    Example:

    >>> lm = CharLanguageModel(30, embedding_dim=8, lstm_units=(8,), bigram_buckets=16)
    >>> lm(np.array([[5, 6, 7, 0]]), training=False).shape
    TensorShape([1, 4, 8])
    >>> lm.logits(lm(np.array([[5, 6]]))).shape
    TensorShape([1, 2, 30])
    """

    def __init__(
        self,
        vocabulary_size: int,
        *,
        embedding_dim: int = 64,
        lstm_units: Sequence[int] = (128, 128),
        bigram_buckets: int = 0,
        dropout: float = 0.0,
        embedding_dropout: float = 0.0,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = int(vocabulary_size)
        self.embedding_dim = int(embedding_dim)
        self.lstm_units = tuple(int(u) for u in lstm_units)
        self.bigram_buckets = int(bigram_buckets)
        self.dropout = float(dropout)
        self.embedding_dropout = float(embedding_dropout)
        self.seed = int(seed)
        self.backbone = WeiboLSTMBackbone(
            self.vocabulary_size,
            embedding_dim=self.embedding_dim,
            lstm_units=self.lstm_units,
            bigram_buckets=self.bigram_buckets,
            bigram_context="previous",
            pooling=None,
            batch_norm=False,
            l2=0.0,
            dropout=self.dropout,
            embedding_dropout=self.embedding_dropout,
            dtype=self.dtype_policy,
            name="backbone",
        )
        self.sampler_seed = keras.random.SeedGenerator(self.seed, name="sampler_seed")

    @property
    def units(self) -> int:
        return self.lstm_units[-1]

    def build(self, input_shape=(None, None)):
        self.backbone.build(input_shape)
        self.output_kernel = self.add_weight(
            shape=(self.vocabulary_size, self.units),
            initializer=keras.initializers.RandomNormal(stddev=1.0 / math.sqrt(self.units)),
            name="output_kernel",
        )
        self.output_bias = self.add_weight(
            shape=(self.vocabulary_size,), initializer="zeros", name="output_bias"
        )
        self.built = True

    def call(self, inputs, training=None):
        return self.backbone(inputs, training=training)["sequence_output"]

    def logits(self, hidden):
        """Full-softmax logits `[..., vocabulary_size]` of the next character (float32,
        also under a mixed-precision policy)."""
        hidden = tf.cast(hidden, self.output_kernel.dtype)
        return tf.matmul(hidden, self.output_kernel, transpose_b=True) + self.output_bias

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim,
                "lstm_units": list(self.lstm_units),
                "bigram_buckets": self.bigram_buckets,
                "dropout": self.dropout,
                "embedding_dropout": self.embedding_dropout,
                "seed": self.seed,
            }
        )
        return config

    def encoder_config(self) -> dict:
        """The `WeiboLSTMBackbone` arguments of the encoder (`ENCODER_ARGUMENTS`)."""
        config = self.backbone.get_config()
        return {key: config[key] for key in ENCODER_ARGUMENTS}
