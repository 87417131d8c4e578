"""LanguageModelObjective: next-character NLL of a `CharLanguageModel`, full or sampled softmax."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from weibo_lstm.training.objectives import Objective


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

    >>> from weibo_lstm.models.language_model import CharLanguageModel
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
