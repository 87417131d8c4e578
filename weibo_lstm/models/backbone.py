"""WeiboLSTMBackbone: token ids to features (the encoder of every model of the package).

A backbone in KerasHub's sense: it maps ids to features and has no head. The
classifier (`weibo_lstm.models.classifier.WeiboLSTMClassifier`) puts a
`ClassificationHead` on its pooled output; the language model
(`weibo_lstm.models.language_model.CharLanguageModel`) predicts the next character
from its sequence output.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from weibo_lstm.errors import check_fields
from weibo_lstm.models.bigrams import BIGRAM_HASH
from weibo_lstm.models.layers.batch_norm import DistributedBatchNormalization
from weibo_lstm.models.layers.pooling import POOLING_MODES, MaskedPooling

#: The backbone's poolings: `"last"` (the last LSTM's final state), a `MaskedPooling`
#: mode, or None (no pooled output: a language model reads every step).
POOLINGS = ("last", *POOLING_MODES)


@keras.saving.register_keras_serializable(package="weibo_lstm")
class WeiboLSTMBackbone(keras.Model):
    """Character (+ bigram) embeddings → stacked LSTMs → pooled features.

    With the defaults this is the encoder of the seed recipe:

        Embedding(vocabulary_size, 100, mask_zero=True)
        → LSTM(128, return_sequences=True) → BatchNorm → Dropout(0.3)
        → LSTM(64) → BatchNorm → Dropout(0.3)

    with L2(`l2`) on the embedding matrix and on the LSTM kernels and recurrent
    kernels. Id 0 is padding and is masked throughout.

    `call(ids)` returns a dict: `"pooled_output"` `[batch, features]` (unless
    `pooling` is None) and `"sequence_output"` `[batch, time, units]`, the last
    block's outputs at every step (unless `pooling="last"`, where the last LSTM
    returns its final state only, as in the seed).

    Args:
        vocabulary_size: number of token ids, padding and OOV included.
        embedding_dim: embedding width.
        lstm_units: units of each stacked LSTM.
        bidirectional: wrap each LSTM in `Bidirectional` (forward and backward
            outputs concatenated).
        bigram_buckets: when > 0, each position also gets an embedding of its
            character bigram, hashed from the ids into this many buckets inside the
            model (`weibo_lstm.models.bigrams`) and concatenated with the character
            embedding. Character bigrams are the standard extra input of Chinese
            character-level models.
        bigram_context: the bigram's other character: `"next"` (`(c_t, c_t+1)`) or
            `"previous"` (`(c_t-1, c_t)`, what a left-to-right language model must use:
            the next character is its target).
        embedding_dropout: `SpatialDropout1D` rate on the embeddings.
        token_dropout: in training, replace this share of the characters by the OOV
            id (word dropout at character level).
        pooling: `"last"` (the seed), `"mean"`, `"max"`, `"mean_max"`, `"attention"`
            (`MaskedPooling` over the last block's outputs), or None.
        dropout: dropout rate after each LSTM block.
        l2: L2 factor of the embeddings and of every LSTM kernel (0 disables).
        batch_norm: BatchNormalization after each LSTM block.
        synchronized_batch_norm: batch statistics over the global batch across
            replicas (`DistributedBatchNormalization`, used for every BatchNorm here).
        **kwargs: passed to `keras.Model` (`name`, or `dtype`: a dtype policy such as
            `"mixed_bfloat16"`, which every layer gets).

    Example:

    >>> backbone = WeiboLSTMBackbone(50, lstm_units=(8, 4), pooling="mean_max")
    >>> features = backbone(np.array([[5, 6, 7, 0]]))
    >>> features["pooled_output"].shape, features["sequence_output"].shape
    (TensorShape([1, 8]), TensorShape([1, 4, 4]))
    """

    def __init__(
        self,
        vocabulary_size: int,
        *,
        embedding_dim: int = 100,
        lstm_units: Sequence[int] = (128, 64),
        bidirectional: bool = False,
        bigram_buckets: int = 0,
        bigram_context: str = "next",
        embedding_dropout: float = 0.0,
        token_dropout: float = 0.0,
        pooling: str | None = "last",
        dropout: float = 0.3,
        l2: float = 1e-5,
        batch_norm: bool = True,
        synchronized_batch_norm: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # Plain Python values: a NumPy scalar or `dropout=0` must not reach the layers
        # and `get_config` (whose JSON stays what it always was).
        self.vocabulary_size = int(vocabulary_size)
        self.embedding_dim = int(embedding_dim)
        self.lstm_units = tuple(int(u) for u in lstm_units)
        self.bidirectional = bool(bidirectional)
        self.bigram_buckets = int(bigram_buckets)
        self.bigram_context = bigram_context
        self.embedding_dropout = float(embedding_dropout)
        self.token_dropout = float(token_dropout)
        self.pooling = pooling
        self.dropout = float(dropout)
        self.l2 = float(l2)
        self.batch_norm = bool(batch_norm)
        self.synchronized_batch_norm = bool(synchronized_batch_norm)
        check_fields(
            self,
            vocabulary_size=(self.vocabulary_size >= 2, ">= 2"),
            embedding_dim=(self.embedding_dim >= 1, ">= 1"),
            lstm_units=(
                bool(self.lstm_units) and min(self.lstm_units) >= 1,
                "non-empty and positive",
            ),
            bigram_buckets=(self.bigram_buckets >= 0, ">= 0"),
            bigram_context=(bigram_context in ("next", "previous"), "'next' or 'previous'"),
            embedding_dropout=(0 <= self.embedding_dropout < 1, "in [0, 1)"),
            token_dropout=(0 <= self.token_dropout < 1, "in [0, 1)"),
            pooling=(pooling is None or pooling in POOLINGS, f"one of {POOLINGS} or None"),
            dropout=(0 <= self.dropout < 1, "in [0, 1)"),
            l2=(self.l2 >= 0, ">= 0"),
        )
        self._create_layers()

    def _create_layers(self) -> None:
        # The layers are created in a fixed order: with Keras' global seed set, each
        # draws its initializer and dropout seeds when it is created.
        self._token_seed = (
            keras.random.SeedGenerator(name="token_dropout_seed") if self.token_dropout else None
        )
        # Keras does not hand a model's dtype policy down to the layers it creates.
        self._create_embeddings(self.dtype_policy)
        self.lstm_layers, self.lstm_norms, self.lstm_dropouts = [], [], []
        for i in range(len(self.lstm_units)):
            self.lstm_layers.append(self._lstm_block(i, self.dtype_policy))
            self.lstm_norms.append(self._norm(f"lstm_{i}_norm"))
            self.lstm_dropouts.append(
                keras.layers.Dropout(
                    self.dropout, dtype=self.dtype_policy, name=f"lstm_{i}_dropout"
                )
            )
        self.pool = None
        if self.pooling not in (None, "last"):
            self.pool = MaskedPooling(self.pooling, dtype=self.dtype_policy, name="pool")

    def _regularizer(self):
        return keras.regularizers.L2(self.l2) if self.l2 else None

    def _norm(self, name: str):
        if not self.batch_norm:
            return None
        return DistributedBatchNormalization(
            synchronized=self.synchronized_batch_norm, dtype=self.dtype_policy, name=name
        )

    def _create_embeddings(self, policy) -> None:
        self.embedding = keras.layers.Embedding(
            self.vocabulary_size,
            self.embedding_dim,
            mask_zero=True,
            embeddings_regularizer=self._regularizer(),
            dtype=policy,
            name="embedding",
        )
        self.bigram_embedding = None
        if self.bigram_buckets:
            self.bigram_embedding = keras.layers.Embedding(
                self.bigram_buckets + 1,
                self.embedding_dim,
                embeddings_regularizer=self._regularizer(),
                dtype=policy,
                name="bigram_embedding",
            )
        self.embedding_drop = None
        if self.embedding_dropout:
            self.embedding_drop = keras.layers.SpatialDropout1D(
                self.embedding_dropout, dtype=policy, name="embedding_dropout"
            )

    def _lstm_block(self, i: int, policy) -> keras.layers.Layer:
        last = i == len(self.lstm_units) - 1

        def make_lstm(name, go_backwards=False):
            return keras.layers.LSTM(
                self.lstm_units[i],
                return_sequences=not last or self.pooling != "last",
                go_backwards=go_backwards,
                kernel_regularizer=self._regularizer(),
                recurrent_regularizer=self._regularizer(),
                dtype=policy,
                name=name,
            )

        lstm = make_lstm(f"lstm_{i}")
        if not self.bidirectional:
            return lstm
        # An explicit backward layer: Bidirectional's own copy is made by serialising
        # `lstm` twice, and under `load_model`'s shared-object scope the second copy
        # can come back as the first (go_backwards False), which fails intermittently
        # when loading.
        return keras.layers.Bidirectional(
            lstm,
            backward_layer=make_lstm(f"lstm_{i}_backward", go_backwards=True),
            dtype=policy,
            name=f"bilstm_{i}",
        )

    def build(self, input_shape=(None, None)):
        # Explicit so that variables exist right after `build()` under a strategy
        # scope (the trainer builds under `strategy.scope()`), and for loading.
        self.embedding.build(input_shape)
        shape = (*input_shape, self.input_width)
        if self.bigram_embedding is not None:
            self.bigram_embedding.build(input_shape)
        for lstm, norm in zip(self.lstm_layers, self.lstm_norms, strict=True):
            lstm.build(shape)
            shape = tuple(lstm.compute_output_shape(shape))
            if norm is not None:
                norm.build(shape)
        if self.pool is not None:
            self.pool.build(shape)
        self.built = True

    @property
    def input_width(self) -> int:
        """Width of the LSTM input: the character embedding (and the bigram one)."""
        return self.embedding_dim * (2 if self.bigram_embedding is not None else 1)

    @property
    def features(self) -> int:
        """Width of `pooled_output`."""
        units = self.lstm_units[-1] * (2 if self.bidirectional else 1)
        return 2 * units if self.pooling == "mean_max" else units

    def call(self, inputs, training=None):
        """The features of int ids `[batch, time]` (0 = padding, right-padded)."""
        mask = self.embedding.compute_mask(inputs)
        if self.token_dropout and training:
            drop = (
                keras.random.uniform(tf.shape(inputs), seed=self._token_seed) < self.token_dropout
            )
            inputs = tf.where(drop & mask, tf.ones_like(inputs), inputs)
        x = self.embedding(inputs)
        if self.bigram_embedding is not None:
            x = tf.concat([x, self.bigram_embedding(self._bigram_ids(inputs))], axis=-1)
        if self.embedding_drop is not None:
            x = self.embedding_drop(x, training=training)
        for lstm, norm, dropout in zip(
            self.lstm_layers, self.lstm_norms, self.lstm_dropouts, strict=True
        ):
            x = lstm(x, mask=mask, training=training)
            step_mask = mask if len(x.shape) == 3 else None
            if norm is not None:
                x = norm(x, training=training, mask=step_mask)
            x = dropout(x, training=training)
        if self.pooling == "last":
            return {"pooled_output": x}
        outputs = {"sequence_output": x}
        if self.pool is not None:
            outputs["pooled_output"] = self.pool(x, mask=mask)
        return outputs

    def _bigram_ids(self, inputs):
        # `weibo_lstm.models.bigrams` states the hash; its NumPy twin computes the same.
        ids = tf.cast(inputs, tf.int64)
        if self.bigram_context == "next":
            other = tf.pad(ids[:, 1:], [[0, 0], [0, 1]])
        else:
            other = tf.pad(ids[:, :-1], [[0, 0], [1, 0]])
        hashed = (ids * BIGRAM_HASH[0] + other * BIGRAM_HASH[1]) % self.bigram_buckets + 1
        return tf.where(ids > 0, hashed, 0)

    def encoder_layers(self) -> list[keras.layers.Layer]:
        """The layers with weights that map ids to the last block's outputs (what a
        pretrained encoder fills; the attention pooling's are not among them)."""
        layers = [self.embedding]
        if self.bigram_embedding is not None:
            layers.append(self.bigram_embedding)
        for lstm, norm in zip(self.lstm_layers, self.lstm_norms, strict=True):
            layers.append(lstm)
            if norm is not None:
                layers.append(norm)
        return layers

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim,
                "lstm_units": list(self.lstm_units),
                "bidirectional": self.bidirectional,
                "bigram_buckets": self.bigram_buckets,
                "bigram_context": self.bigram_context,
                "embedding_dropout": self.embedding_dropout,
                "token_dropout": self.token_dropout,
                "pooling": self.pooling,
                "dropout": self.dropout,
                "l2": self.l2,
                "batch_norm": self.batch_norm,
                "synchronized_batch_norm": self.synchronized_batch_norm,
            }
        )
        return config
