"""A next-character language model whose encoder is exactly `WeiboLSTM`'s encoder.

`CharLanguageModel` wraps a `WeiboLSTM` backbone (character embedding [+ previous-
character bigram embedding] → LSTM stack) and adds an output projection over the
vocabulary. Its encoder weights transfer 1:1 into a `WeiboLSTM` classifier of the
same architecture (`weibo_lstm.models.encoder`). `LanguageModelObjective` is the loss the
`DistributedTrainer` optimises for it: the mean negative log-likelihood of each
next character, with a sampled softmax in training (the output layer dominates the
cost of a CPU step otherwise) and the full softmax for evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from weibo_lstm.models.backbone import WeiboLSTM
from weibo_lstm.training.objectives import Objective

#: The `WeiboLSTM` arguments that define the encoder (what must match for a transfer).
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
    """Predicts each next character from the `WeiboLSTM` encoder's outputs.

    `call(ids)` returns the encoder's hidden states `[batch, time, units]`; the
    logits of the character after position t are `hidden[:, t] @ output_kernel.T +
    output_bias`. The backbone's classification head exists (so that its weights
    line up with a classifier's) but is never run nor trained.

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
        self.backbone = WeiboLSTM(
            self.vocabulary_size,
            embedding_dim=self.embedding_dim,
            lstm_units=self.lstm_units,
            bigram_buckets=self.bigram_buckets,
            bigram_context="previous",
            pooling="mean",
            dense_units=0,
            batch_norm=False,
            l2=0.0,
            dropout=self.dropout,
            embedding_dropout=self.embedding_dropout,
            dtype=self.dtype_policy,
            name="backbone",
        )
        self.backbone.pool.trainable = False
        self.backbone.classifier.trainable = False
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
        return self.backbone.encode(inputs, training=training)

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
        """The `WeiboLSTM` arguments of the encoder (`ENCODER_ARGUMENTS`)."""
        config = self.backbone.get_config()
        return {key: config[key] for key in ENCODER_ARGUMENTS}


def log_uniform_candidates(
    seed: tf.Tensor, num_sampled: int, range_max: int, offset: int = 0
) -> tuple[tf.Tensor, tf.Tensor]:
    """Stateless log-uniform (Zipf) samples of class ids and their probabilities.

    Class `offset + k` (`0 <= k < range_max`) is drawn with probability

        P(k) = (log(k + 2) - log(k + 1)) / log(range_max + 1)

    by inverse transform, `k = floor(exp(u * log(range_max + 1))) - 1` with
    `u ~ U[0, 1)` from `tf.random.stateless_uniform(seed)`, with replacement. A
    frequency-ranked vocabulary (the tokenizer's) is roughly Zipfian, so this
    proposal is close to the unigram distribution. Being a pure function of `seed`,
    a resumed run draws exactly the samples of an uninterrupted one.

    Args:
        seed: int32/int64 `[2]` stateless seed.
        num_sampled: how many candidates.
        range_max: number of classes to draw from.
        offset: id of class `k = 0`.

    Returns:
        `(candidates [num_sampled] int64, probabilities [range_max] float32)` with
        `probabilities[k] = P(k)`.

    Example:

    >>> ids, p = log_uniform_candidates(tf.constant([1, 2]), 4, 10, offset=1)
    >>> ids.shape, bool(tf.reduce_all((ids >= 1) & (ids <= 10))), round(float(tf.reduce_sum(p)), 5)
    (TensorShape([4]), True, 1.0)
    """
    log_range = math.log(range_max + 1)
    u = tf.random.stateless_uniform([num_sampled], seed=seed, dtype=tf.float64)
    k = tf.cast(tf.floor(tf.exp(u * log_range)), tf.int64) - 1
    k = tf.clip_by_value(k, 0, range_max - 1)
    ranks = tf.range(range_max, dtype=tf.float64)
    probabilities = (tf.math.log(ranks + 2.0) - tf.math.log(ranks + 1.0)) / log_range
    return k + offset, tf.cast(probabilities, tf.float32)


class LanguageModelObjective(Objective):
    """Next-character negative log-likelihood of a `CharLanguageModel`.

    Every position t with a real next character (id > 0 at t + 1) predicts it; the
    first character of a row is context only. A row's loss is the mean NLL of its
    predicted characters (rows shorter than 2 contribute 0 and should be dropped
    from the corpus, see `texts_to_examples`).

    In training with `num_sampled`, the loss is `tf.nn.sampled_softmax_loss` with
    `num_sampled` negatives shared by the replica's batch, drawn log-uniformly over
    ids 1 … V-1 (`log_uniform_candidates`), seeded by the model's `sampler_seed`
    (one step of the generator per training step, saved in checkpoints) folded with
    the replica id: bit-exact on resume, distinct samples on each replica. In
    evaluation (and with `num_sampled=None` everywhere) it is the full softmax.

    Args:
        num_sampled: negatives per training step; None: full softmax.

    Example:

    >>> lm = CharLanguageModel(12, embedding_dim=4, lstm_units=(4,))
    >>> batch = {"ids": tf.constant([[2, 3, 4, 0], [5, 6, 0, 0]]),
    ...          "weights": tf.constant([1.0, 1.0])}
    >>> loss, stats = LanguageModelObjective()(lm, batch, training=False)
    >>> loss.shape, stats.numpy()[1:].tolist()
    (TensorShape([2]), [3.0, 2.0])
    """

    stat_names = ("nll_sum", "tokens", "rows")

    def __init__(self, num_sampled: int | None = None):
        if num_sampled is not None and num_sampled < 1:
            raise ValueError(
                f"Argument `num_sampled` must be >= 1 or None. Received: num_sampled={num_sampled}"
            )
        self.num_sampled = num_sampled

    def __call__(self, model, batch, training):
        ids = batch["ids"]
        # The output layer and its softmax stay float32 under mixed precision.
        hidden = tf.cast(model(ids, training=training)[:, :-1], tf.float32)
        targets = tf.cast(ids[:, 1:], tf.int64)
        mask = tf.cast(targets > 0, tf.float32)
        if training and self.num_sampled:
            nll = self._sampled_nll(model, hidden, targets)
        else:
            nll = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=targets, logits=model.logits(hidden)
            )
        nll *= mask
        tokens = tf.reduce_sum(mask, axis=1)
        per_example_loss = tf.math.divide_no_nan(tf.reduce_sum(nll, axis=1), tokens)
        real = tf.cast(batch["weights"] > 0, tf.float32)
        stats = tf.stack(
            [
                tf.reduce_sum(tf.reduce_sum(nll, axis=1) * real),
                tf.reduce_sum(tokens * real),
                tf.reduce_sum(real),
            ]
        )
        return per_example_loss, stats

    def _sampled_nll(self, model, hidden, targets):
        vocabulary = model.vocabulary_size
        num_sampled = min(self.num_sampled, vocabulary - 1)
        replica = tf.distribute.get_replica_context()
        replica_id = 0 if replica is None else replica.replica_id_in_sync_group
        seed = model.sampler_seed.next()
        seed = tf.stack([seed[0], seed[1] * 4096 + tf.cast(replica_id, seed.dtype)])
        # Ids 1 … V-1 (padding is never a target): rank k ↔ id k + 1.
        candidates, probabilities = log_uniform_candidates(seed, num_sampled, vocabulary - 1, 1)
        probabilities = tf.concat([[0.0], probabilities], 0)
        flat_targets = tf.reshape(targets, [-1, 1])
        expected_true = num_sampled * tf.gather(probabilities, tf.maximum(flat_targets, 1))
        expected_sampled = num_sampled * tf.gather(probabilities, candidates)
        nll = tf.nn.sampled_softmax_loss(
            weights=model.output_kernel,
            biases=model.output_bias,
            labels=tf.maximum(flat_targets, 1),
            inputs=tf.reshape(hidden, [-1, model.units]),
            num_sampled=num_sampled,
            num_classes=vocabulary,
            sampled_values=(candidates, expected_true, expected_sampled),
            remove_accidental_hits=True,
        )
        return tf.reshape(nll, tf.shape(targets))

    def metrics(self, stats: np.ndarray, prefix: str = "") -> dict[str, float]:
        """`loss` (mean NLL per predicted character), `perplexity`, `tokens`, `rows`."""
        s = dict(zip(self.stat_names, np.asarray(stats, np.float64), strict=True))
        loss = float(s["nll_sum"] / max(s["tokens"], 1.0))
        return {
            f"{prefix}loss": loss,
            f"{prefix}perplexity": math.exp(min(loss, 50.0)),
            f"{prefix}tokens": float(s["tokens"]),
            f"{prefix}rows": float(s["rows"]),
        }
