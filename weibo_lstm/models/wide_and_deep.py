"""WideAndDeep: a trained neural classifier and a TF-IDF linear model, stacked on validation.

Two classes: `p(positive) = sigmoid(a · logit_deep + b · logit_wide + c)`, where
`logit_deep` is the log-odds of the deep part (a trained `WeiboLSTMClassifier`),
`logit_wide` that of an `NgramLogisticRegression` fitted on the same training rows, and
`(a, b, c)` a two-feature logistic regression fitted on the *validation* rows (both
parts are fitted on the training rows only, so their validation outputs are honest;
`weibo_lstm.models.stacking.fit_mixing`). K classes: `p = softmax(a · log p_deep +
b · z_wide + c)` with one bias per class (`stacking.fit_multiclass_mixing`). It takes
the same token ids and returns the same `[batch, K]` probabilities as its deep part,
so it evaluates, predicts, saves and exports through the same code.

When a corpus's labels follow its emoticons, one mixing cannot serve both kinds of
post: on posts with an emoticon the deep part reads the label off it, on posts without
one the wide part carries more of the evidence. Then a second mixing,
`emoticon_mixing`, serves the rows that contain one of `emoticon_ids` (the ids of the
opening brackets `[` / `［`), each fitted on its own kind of validation post.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from weibo_lstm.models.ngram_logistic import NgramLogisticRegression
from weibo_lstm.models.stacking import (
    EPSILON,
    fit_mixing,
    fit_multiclass_mixing,
    rows_holding,
)
from weibo_lstm.preprocessing.tokenized_examples import TokenizedExamples


@keras.saving.register_keras_serializable(package="weibo_lstm")
class WideAndDeep(keras.Model):
    """Stacks a probability classifier (the deep part) and an `NgramLogisticRegression`.

    Build one with `WideAndDeep.fit`, which fits the wide part and the mixing for a
    trained deep part; `save` (Keras's) writes it, and
    `weibo_lstm.serving.export.export` exports it like any classifier.

    Args:
        deep: a model mapping ids `[batch, time]` to `[batch, K]` probabilities.
        wide: an `NgramLogisticRegression` over the same ids, with the same classes.
        mixing: `(a, b, c)`: the weights of the two log-odds and the bias (two
            classes), or `(a, b, c_0, …, c_{K-1})`: the weights of the deep part's
            log-probabilities and the wide part's logits, and one bias per class.
        emoticon_mixing: the same for the rows holding one of `emoticon_ids`
            (None: `mixing` for every row).
        emoticon_ids: token ids that mark a row as one with an emoticon.
        temperature: the mixed logits are divided by it (`weibo_lstm.models.calibration`;
            1: as the mixing gives them).
        **kwargs: passed to `keras.Model`.

    Example:

    >>> from weibo_lstm.models.classifier import WeiboLSTM
    >>> wide = NgramLogisticRegression.fit(
    ...     np.array([2, 3, 2, 4, 5, 4]), np.array([0, 3, 6]), np.array([1, 0]), min_df=1)
    >>> model = WideAndDeep(WeiboLSTM(8, lstm_units=(4,), dense_units=0), wide,
    ...                     mixing=(0.0, 1.0, 0.0))
    >>> probabilities = model(np.array([[2, 3, 0], [4, 5, 4]]))
    >>> probabilities.shape, bool(probabilities[0, 1] > 0.5 > probabilities[1, 1])
    (TensorShape([2, 2]), True)
    """

    def __init__(
        self,
        deep: keras.Model,
        wide: NgramLogisticRegression,
        mixing: tuple[float, float, float] = (1.0, 1.0, 0.0),
        emoticon_mixing: tuple[float, float, float] | None = None,
        emoticon_ids: tuple[int, ...] = (),
        temperature: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.deep = deep
        self.wide = wide
        self.temperature = float(temperature)
        self.num_classes = wide.num_classes
        self.mixing = _mixing(mixing, "mixing", self.num_classes)
        self.emoticon_mixing = (
            None
            if emoticon_mixing is None
            else _mixing(emoticon_mixing, "emoticon_mixing", self.num_classes)
        )
        self.emoticon_ids = tuple(int(i) for i in emoticon_ids)
        if (self.emoticon_mixing is None) != (not self.emoticon_ids):
            raise ValueError(
                "Arguments `emoticon_mixing` and `emoticon_ids` go together. Received: "
                f"emoticon_mixing={emoticon_mixing}, emoticon_ids={emoticon_ids}"
            )

    @classmethod
    def fit(
        cls,
        deep: keras.Model,
        train: TokenizedExamples,
        validation: TokenizedExamples,
        deep_validation_probabilities: np.ndarray,
        *,
        strategy: tf.distribute.Strategy | None = None,
        emoticon_ids: tuple[int, ...] = (),
        **wide_options,
    ) -> WideAndDeep:
        """The wide & deep classifier of a trained deep part.

        The wide part is fitted on the `train` rows; the mixing of the two log-odds on
        the `validation` rows (`stacking.fit_mixing`), where the deep part's
        probabilities are `deep_validation_probabilities` (neither part saw them in
        training). Not Keras's `Model.fit`: nothing is trained by gradient here.

        Args:
            deep: the trained classifier (ids → `[batch, 2]` probabilities).
            train, validation: tokenized rows with labels.
            deep_validation_probabilities: `[len(validation), 2]` outputs of `deep`.
            strategy: create the wide part's variables under it (None: the current one).
            emoticon_ids: with ids, two mixings: `emoticon_mixing` fitted on the
                validation rows that hold one of them, `mixing` on the others (each kind
                needs both classes; else one mixing for all rows).
            **wide_options: passed to `NgramLogisticRegression.fit` (e.g. `max_features`).

        Returns:
            A built `WideAndDeep` named `wide_and_deep`.

        Raises:
            ValueError: when the wide part or the mixing cannot be fitted (e.g. one class
                only, or no n-gram in two training rows).

        Example:

        >>> from weibo_lstm.models.classifier import WeiboLSTM
        >>> lists = [[2, 3], [4, 5], [2, 3, 3], [4, 4, 5]] * 4
        >>> rows = TokenizedExamples(np.concatenate(lists).astype(np.int32),
        ...                          np.cumsum([0] + [len(r) for r in lists]),
        ...                          np.array([1, 0, 1, 0] * 4, np.int32))
        >>> deep = WeiboLSTM(8, lstm_units=(4,), dense_units=0)
        >>> model = WideAndDeep.fit(deep, rows, rows, np.full((16, 2), 0.5))
        >>> model(rows.rows(range(4)).to_tensor()).numpy().argmax(1).tolist()
        [1, 0, 1, 0]
        """
        strategy = strategy or tf.distribute.get_strategy()
        labels = np.asarray(validation.labels)
        deep_probabilities = np.asarray(deep_validation_probabilities)
        num_classes = deep_probabilities.shape[1]
        if len(np.unique(labels)) < 2:
            raise ValueError("the validation rows hold one class only: the mixing needs both")
        with strategy.scope():
            wide = NgramLogisticRegression.fit(
                train.values,
                train.row_splits,
                train.labels,
                num_classes=num_classes,
                expressible=train.expressible,
                name="wide",
                **wide_options,
            )
        wide_logits = wide.decision_function(validation.values, validation.row_splits)
        kinds = _fit_mixings(deep_probabilities, wide_logits, validation, emoticon_ids)
        with strategy.scope():
            model = cls(deep, wide, name="wide_and_deep", **kinds)
            model(tf.ones([1, 1], tf.int32))  # built, so it saves and exports at once
        return model

    def call(self, ids, training=None):
        probabilities = self.deep(ids, training=training)
        wide = self.wide(ids)
        if self.num_classes == 2:
            deep = _log_odds(probabilities)
        else:
            deep = tf.math.log(tf.clip_by_value(probabilities, EPSILON, 1.0))
        logits = _mixed(self.mixing, deep, wide)
        if self.emoticon_mixing is not None:
            marked = tf.equal(tf.cast(ids, tf.int32)[:, :, None], self.emoticon_ids)
            has_emoticon = tf.reduce_any(marked, axis=[1, 2])
            if self.num_classes > 2:
                has_emoticon = has_emoticon[:, None]
            logits = tf.where(has_emoticon, _mixed(self.emoticon_mixing, deep, wide), logits)
        if self.temperature != 1.0:
            logits = logits / self.temperature
        if self.num_classes > 2:
            return tf.nn.softmax(logits)
        positive = tf.sigmoid(logits)
        return tf.stack([1 - positive, positive], axis=-1)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "deep": keras.saving.serialize_keras_object(self.deep),
                "wide": keras.saving.serialize_keras_object(self.wide),
                "mixing": list(self.mixing),
                "emoticon_mixing": (
                    None if self.emoticon_mixing is None else list(self.emoticon_mixing)
                ),
                "emoticon_ids": list(self.emoticon_ids),
            }
        )
        if self.temperature != 1.0:  # uncalibrated configs stay what they were
            config["temperature"] = self.temperature
        return config

    @classmethod
    def from_config(cls, config: dict) -> WideAndDeep:
        config = dict(config)
        config["deep"] = keras.saving.deserialize_keras_object(config["deep"])
        config["wide"] = keras.saving.deserialize_keras_object(config["wide"])
        return cls(**config)


def _mixing(weights, name: str, num_classes: int) -> tuple[float, ...]:
    weights = tuple(float(w) for w in weights)
    expected = 3 if num_classes == 2 else 2 + num_classes
    if len(weights) != expected:
        shape = "(a, b, c)" if num_classes == 2 else f"(a, b) and {num_classes} biases"
        raise ValueError(f"Argument `{name}` must be {shape}. Received: {name}={weights}")
    return weights


def _mixed(mixing, deep, wide):
    a, b, *c = mixing
    bias = c[0] if len(c) == 1 else tf.constant(c, deep.dtype)
    return a * deep + b * wide + bias


def _fit_mixings(deep_probabilities, wide_logits, validation, emoticon_ids) -> dict:
    """`{"mixing"}`, or with `emoticon_ids` `{"mixing", "emoticon_mixing", "emoticon_ids"}`:
    the mixing of the validation rows without an emoticon id and that of the rows with
    one (one mixing for all rows when either kind misses a class)."""
    labels = np.asarray(validation.labels)
    marked = None
    if emoticon_ids:
        marked = rows_holding(validation.values, validation.row_splits, emoticon_ids)
    if marked is not None and any(len(np.unique(labels[m])) < 2 for m in (marked, ~marked)):
        marked = None  # one kind of post is missing a class: one mixing for all rows
    parts = (deep_probabilities, wide_logits, labels)
    if marked is None:
        return {"mixing": _fit_mixing(*parts, validation.expressible)}
    mixing, emoticon_mixing = (
        _fit_mixing(*(x[m] for x in parts), _rows(validation.expressible, m))
        for m in (~marked, marked)
    )
    return {
        "mixing": mixing,
        "emoticon_mixing": emoticon_mixing,
        "emoticon_ids": tuple(emoticon_ids),
    }


def _fit_mixing(deep_probabilities, wide_logits, labels, expressible):
    if deep_probabilities.shape[1] == 2:
        return fit_mixing(deep_probabilities, wide_logits, labels)
    return fit_multiclass_mixing(deep_probabilities, wide_logits, labels, expressible)


def _rows(expressible, rows):
    return None if expressible is None else expressible[rows]


def _log_odds(probabilities):
    # The graph's twin of `stacking.log_odds`, with the same clip.
    positive = tf.clip_by_value(probabilities[:, 1], EPSILON, 1 - EPSILON)
    return tf.math.log(positive) - tf.math.log(1 - positive)
