"""WeiboLSTM: the stacked-LSTM sentiment classifier of the weibo_senti_100k recipe."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras
import tensorflow as tf

from weibo_lstm.models.layers.batch_norm import DistributedBatchNormalization
from weibo_lstm.models.layers.pooling import POOLING_MODES, MaskedPooling


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """The encoder of `WeiboLSTM`: embeddings and the LSTM stack (what pretraining fills).

    Each field is the `WeiboLSTM` keyword argument of the same name.

    Attributes:
        vocabulary_size: number of token ids, padding and OOV included.
        embedding_dim: embedding width.
        lstm_units: units of each stacked LSTM; all but the last return sequences.
        bidirectional: wrap each LSTM in `Bidirectional`.
        bigram_buckets: hashed character-bigram embeddings (0: none).
        bigram_context: `"next"` or `"previous"` character of the bigram.
        embedding_dropout: `SpatialDropout1D` rate on the embeddings.
        token_dropout: in training, this share of the characters becomes OOV.

    Example:

    >>> EncoderConfig(5000, lstm_units=[64]).lstm_units
    (64,)
    >>> EncoderConfig(5000, bigram_context="before")
    Traceback (most recent call last):
    ...
    ValueError: Argument `bigram_context` must be 'next' or 'previous'. Received: bigram_context='before'
    """

    vocabulary_size: int
    embedding_dim: int = 100
    lstm_units: tuple[int, ...] = (128, 64)
    bidirectional: bool = False
    bigram_buckets: int = 0
    bigram_context: str = "next"
    embedding_dropout: float = 0.0
    token_dropout: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "lstm_units", tuple(int(u) for u in self.lstm_units))
        _check(
            self,
            vocabulary_size=(self.vocabulary_size >= 2, ">= 2"),
            embedding_dim=(self.embedding_dim >= 1, ">= 1"),
            lstm_units=(
                bool(self.lstm_units) and min(self.lstm_units) >= 1,
                "non-empty and positive",
            ),
            bigram_buckets=(self.bigram_buckets >= 0, ">= 0"),
            bigram_context=(self.bigram_context in ("next", "previous"), "'next' or 'previous'"),
            embedding_dropout=(0 <= self.embedding_dropout < 1, "in [0, 1)"),
            token_dropout=(0 <= self.token_dropout < 1, "in [0, 1)"),
        )
        _coerce(
            self,
            {
                int: ("vocabulary_size", "embedding_dim", "bigram_buckets"),
                float: ("embedding_dropout", "token_dropout"),
                bool: ("bidirectional",),
            },
        )


@dataclasses.dataclass(frozen=True)
class HeadConfig:
    """The head of `WeiboLSTM`: from the encoder's output to class probabilities.

    Each field is the `WeiboLSTM` keyword argument of the same name.

    Attributes:
        pooling: `"last"` (the last LSTM's final state) or a `MaskedPooling` mode.
        dense_units: width of the hidden dense layer (0 removes it).
        num_classes: output classes (softmax).
    """

    pooling: str = "last"
    dense_units: int = 32
    num_classes: int = 2

    def __post_init__(self):
        _check(
            self,
            pooling=(self.pooling in ("last", *POOLING_MODES), f"'last' or one of {POOLING_MODES}"),
            dense_units=(self.dense_units >= 0, ">= 0"),
            num_classes=(self.num_classes >= 2, ">= 2"),
        )
        _coerce(self, {int: ("dense_units", "num_classes")})


@dataclasses.dataclass(frozen=True)
class Regularization:
    """What regularises every block of `WeiboLSTM`, encoder and head alike.

    Each field is the `WeiboLSTM` keyword argument of the same name.

    Attributes:
        dropout: dropout rate after each LSTM block and the hidden dense block.
        l2: L2 factor of the embeddings and of every kernel (0 disables).
        batch_norm: BatchNormalization after each block.
        synchronized_batch_norm: BatchNorm statistics over the global batch across
            replicas.
    """

    dropout: float = 0.3
    l2: float = 1e-5
    batch_norm: bool = True
    synchronized_batch_norm: bool = False

    def __post_init__(self):
        _check(
            self,
            dropout=(0 <= self.dropout < 1, "in [0, 1)"),
            l2=(self.l2 >= 0, ">= 0"),
        )
        _coerce(self, {float: ("dropout", "l2"), bool: ("batch_norm", "synchronized_batch_norm")})


def _check(config, **checks: tuple[bool, str]) -> None:
    """Raises the project's ValueError for the first `name=(ok, expected)` not ok."""
    for name, (ok, expected) in checks.items():
        if not ok:
            value = getattr(config, name)
            shown = repr(value) if isinstance(value, str) else value
            raise ValueError(f"Argument `{name}` must be {expected}. Received: {name}={shown}")


def _coerce(config, casts: dict[type, tuple[str, ...]]) -> None:
    """Casts fields to plain Python types: a NumPy scalar or `dropout=0` must not reach
    the layers and `get_config` (whose JSON stays what it always was)."""
    for cast, names in casts.items():
        for name in names:
            object.__setattr__(config, name, cast(getattr(config, name)))


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

    The keyword arguments fall into three groups, kept as `model.encoder_config`
    (`EncoderConfig`), `model.head_config` (`HeadConfig`) and `model.regularization`
    (`Regularization`); `WeiboLSTM.from_parts` builds the model from these objects.
    `get_config` stays flat: the keyword arguments below.

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
        bidirectional: wrap each LSTM in `Bidirectional` (forward and backward
            outputs concatenated).
        pooling: `"last"` (the seed: the last LSTM returns its final state) or a
            `MaskedPooling` mode over the last LSTM's outputs: `"mean"`, `"max"`,
            `"mean_max"`, `"attention"`.
        embedding_dropout: `SpatialDropout1D` rate on the embeddings (drops whole
            embedding channels).
        token_dropout: in training, replace this fraction of the characters by the
            OOV id (word dropout at character level): the model cannot memorise
            exact strings.
        bigram_buckets: when > 0, each position also gets an embedding of its
            character bigram `(c_t, c_t+1)`, hashed into this many buckets from the
            character ids inside the model (no tokenizer change), concatenated
            with the character embedding as the LSTM input. Character bigrams are
            the standard extra input of Chinese character-level models.
        bigram_context: which neighbour forms the bigram: `"next"` (the pair
            `(c_t, c_t+1)`, the default and what models trained before this option
            use) or `"previous"` (`(c_t-1, c_t)`). A left-to-right language model
            must use `"previous"`: the next character is its target. Encoders
            pretrained by `weibo_lstm.models.language_model` use `"previous"`.
        **kwargs: passed to `keras.Model` (e.g. `name`, or `dtype`: a dtype policy
            such as `"mixed_bfloat16"`, which every layer gets, except that the
            softmax computes in the policy's variable dtype, float32).

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
        bidirectional: bool = False,
        pooling: str = "last",
        embedding_dropout: float = 0.0,
        bigram_buckets: int = 0,
        token_dropout: float = 0.0,
        bigram_context: str = "next",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.encoder_config = EncoderConfig(
            vocabulary_size=vocabulary_size,
            embedding_dim=embedding_dim,
            lstm_units=tuple(lstm_units),
            bidirectional=bidirectional,
            bigram_buckets=bigram_buckets,
            bigram_context=bigram_context,
            embedding_dropout=embedding_dropout,
            token_dropout=token_dropout,
        )
        self.head_config = HeadConfig(
            pooling=pooling, dense_units=dense_units, num_classes=num_classes
        )
        self.regularization = Regularization(
            dropout=dropout,
            l2=l2,
            batch_norm=batch_norm,
            synchronized_batch_norm=synchronized_batch_norm,
        )
        # One attribute per argument (the Keras convention; `get_config` reads them).
        for config in (self.encoder_config, self.head_config, self.regularization):
            for field in dataclasses.fields(config):
                setattr(self, field.name, getattr(config, field.name))
        self._token_seed = (
            keras.random.SeedGenerator(name="token_dropout_seed") if self.token_dropout else None
        )
        # Keras does not hand a model's dtype policy down to the layers it creates:
        # every layer gets it explicitly (and the softmax its variable dtype).
        self._create_encoder_layers(self.dtype_policy)
        self._create_head_layers(self.dtype_policy)

    @classmethod
    def from_parts(
        cls,
        encoder: EncoderConfig,
        head: HeadConfig | None = None,
        regularization: Regularization | None = None,
        **kwargs,
    ) -> WeiboLSTM:
        """The `WeiboLSTM` of an encoder, a head and a regularisation config.

        The same model as the keyword arguments the configs' fields name (and the same
        `get_config`, so it saves and loads like any other).

        Args:
            encoder: the embeddings and the LSTM stack.
            head: pooling, hidden dense block and classes (None: `HeadConfig()`).
            regularization: dropout, L2 and BatchNorm (None: `Regularization()`).
            **kwargs: passed to `keras.Model` (`name`, `dtype`).

        Example:

        >>> encoder = EncoderConfig(50, lstm_units=(8,))
        >>> model = WeiboLSTM.from_parts(encoder, HeadConfig(pooling="mean"), name="m")
        >>> model.get_config() == WeiboLSTM(
        ...     50, lstm_units=(8,), pooling="mean", name="m").get_config()
        True
        """
        parts = (encoder, head or HeadConfig(), regularization or Regularization())
        arguments = {}
        for part in parts:
            arguments.update(dataclasses.asdict(part))
        return cls(**arguments, **kwargs)

    def _regularizer(self):
        return keras.regularizers.L2(self.l2) if self.l2 else None

    def _norm(self, name: str, policy):
        if not self.batch_norm:
            return None
        return DistributedBatchNormalization(
            synchronized=self.synchronized_batch_norm, dtype=policy, name=name
        )

    def _create_encoder_layers(self, policy) -> None:
        """Embeddings, bigram embeddings and the LSTM blocks, in checkpoint order."""
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
        self.lstm_layers, self.lstm_norms, self.lstm_dropouts = [], [], []
        for i in range(len(self.lstm_units)):
            self.lstm_layers.append(self._lstm_block(i, policy))
            self.lstm_norms.append(self._norm(f"lstm_{i}_norm", policy))
            self.lstm_dropouts.append(
                keras.layers.Dropout(self.dropout, dtype=policy, name=f"lstm_{i}_dropout")
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

    def _create_head_layers(self, policy) -> None:
        """Pooling, the hidden dense block and the softmax."""
        self.pool = None
        if self.pooling != "last":
            self.pool = MaskedPooling(self.pooling, dtype=policy, name="pool")
        self.hidden = None
        if self.dense_units:
            self.hidden = keras.layers.Dense(
                self.dense_units,
                activation="relu",
                kernel_regularizer=self._regularizer(),
                dtype=policy,
                name="hidden",
            )
            self.hidden_norm = self._norm("hidden_norm", policy)
            self.hidden_dropout = keras.layers.Dropout(
                self.dropout, dtype=policy, name="hidden_dropout"
            )
        self.classifier = keras.layers.Dense(
            self.num_classes,
            activation="softmax",
            kernel_regularizer=self._regularizer(),
            # The softmax and the probabilities stay in the variable dtype (float32
            # under "mixed_float16" / "mixed_bfloat16"): half-precision
            # probabilities would round the loss and saturate near 0 and 1.
            dtype=policy.variable_dtype,
            name="classifier",
        )

    def build(self, input_shape=(None, None)):
        # Explicit so that variables exist right after `build()` under a strategy
        # scope (the trainer builds under `strategy.scope()`), and for loading.
        self.embedding.build(input_shape)
        shape = (*input_shape, self.embedding_dim)
        if self.bigram_embedding is not None:
            self.bigram_embedding.build(input_shape)
            shape = (*input_shape, 2 * self.embedding_dim)
        for lstm, norm in zip(self.lstm_layers, self.lstm_norms, strict=True):
            lstm.build(shape)
            shape = tuple(lstm.compute_output_shape(shape))
            if norm is not None:
                norm.build(shape)
        if self.pool is not None:
            self.pool.build(shape)
            shape = tuple(self.pool.compute_output_shape(shape))
        if self.hidden is not None:
            self.hidden.build(shape)
            shape = self.hidden.compute_output_shape(shape)
            if self.hidden_norm is not None:
                self.hidden_norm.build(shape)
        self.classifier.build(shape)
        self.built = True

    @property
    def input_width(self) -> int:
        """Width `D` of the LSTM input `x` `[batch, time, D]` that `perturbation` adds to."""
        return self.embedding_dim * (2 if self.bigram_embedding is not None else 1)

    def call(self, inputs, training=None, perturbation=None):
        """Class probabilities `[batch, num_classes]`.

        Args:
            inputs: int ids `[batch, time]`, 0 = padding (right-padded).
            training: whether dropout (and token dropout) is active.
            perturbation: optional `[batch, time, input_width]` tensor added to the
                embeddings (see `encode`); for adversarial training
                (`ClassificationObjective(adversarial_epsilon=...)`). Training only:
                it is not part of the config nor of an exported model.
        """
        mask = self.embedding.compute_mask(inputs)
        encoded = self.encode(inputs, training=training, perturbation=perturbation)
        return self.head(encoded, mask, training=training)

    def encode(self, inputs, training=None, perturbation=None):
        """The encoder: embeddings (+ bigram embeddings) → the LSTM stack.

        Args:
            inputs: int ids `[batch, time]`, 0 = padding (right-padded).
            training: whether dropout (and token dropout) is active.
            perturbation: optional `[batch, time, input_width]` tensor added to the
                embeddings (concatenated with the bigram embeddings when present)
                before embedding dropout; cast to their dtype.

        Returns:
            The last LSTM block's outputs (after its BatchNorm and dropout):
            `[batch, time, units]` when `pooling != "last"`, else `[batch, units]`.
        """
        mask = self.embedding.compute_mask(inputs)
        if self.token_dropout and training:
            drop = (
                keras.random.uniform(tf.shape(inputs), seed=self._token_seed) < self.token_dropout
            )
            inputs = tf.where(drop & mask, tf.ones_like(inputs), inputs)
        x = self.embedding(inputs)
        if self.bigram_embedding is not None:
            x = tf.concat([x, self.bigram_embedding(self._bigram_ids(inputs))], axis=-1)
        if perturbation is not None:
            x = x + tf.cast(perturbation, x.dtype)
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
        return x

    def head(self, encoded, mask, training=None):
        """Pooling → hidden dense block → class probabilities, from `encode`'s output."""
        x = encoded
        if self.pool is not None:
            x = self.pool(x, mask=mask)
        if self.hidden is not None:
            x = self.hidden(x)
            if self.hidden_norm is not None:
                x = self.hidden_norm(x, training=training)
            x = self.hidden_dropout(x, training=training)
        return self.classifier(x)

    def encoder_layers(self) -> list[keras.layers.Layer]:
        """The layers `encode` runs that hold weights (what a pretrained encoder fills)."""
        layers = [self.embedding]
        if self.bigram_embedding is not None:
            layers.append(self.bigram_embedding)
        for lstm, norm in zip(self.lstm_layers, self.lstm_norms, strict=True):
            layers.append(lstm)
            if norm is not None:
                layers.append(norm)
        return layers

    def _bigram_ids(self, inputs):
        ids = tf.cast(inputs, tf.int64)
        if self.bigram_context == "next":
            other = tf.pad(ids[:, 1:], [[0, 0], [0, 1]])
        else:
            other = tf.pad(ids[:, :-1], [[0, 0], [1, 0]])
        # A multiplicative hash of the pair into 1..buckets; 0 stays padding.
        hashed = (ids * 1_000_003 + other * 7_919) % self.bigram_buckets + 1
        return tf.where(ids > 0, hashed, 0)

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
                "bidirectional": self.bidirectional,
                "pooling": self.pooling,
                "embedding_dropout": self.embedding_dropout,
                "bigram_buckets": self.bigram_buckets,
                "token_dropout": self.token_dropout,
                "bigram_context": self.bigram_context,
            }
        )
        return config
