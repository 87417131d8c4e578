"""HybridClassifier: a neural classifier and the TF-IDF linear model, stacked on validation.

`p(positive) = sigmoid(a · logit_neural + b · logit_linear + c)`, where `logit_neural`
is the log-odds of the neural classifier (e.g. a fine-tuned `WeiboLSTM`),
`logit_linear` that of an `NgramLogisticRegression` fitted on the same training rows,
and `(a, b, c)` a two-feature logistic regression fitted on the *validation* split
(both base models are fitted on the training split only, so their validation
outputs are honest). The hybrid takes the same token ids and returns the same
`[batch, 2]` probabilities as the classifier it wraps, so it trains nothing more,
evaluates, predicts and exports through the same code.

When a corpus's labels follow its emoticons, one mixing cannot serve both kinds of
post: on posts with an emoticon the deep part reads the label off it, on posts without
one the wide part carries more of the evidence. The hybrid then holds a second mixing,
`emoticon_mixing`, used for the rows that contain one of `emoticon_ids` (the ids of
the opening brackets `[` / `［`), each fitted on its own kind of validation post.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from weibo_lstm.models.ngram_logistic import NgramLogisticRegression
from weibo_lstm.models.stacking import EPSILON, log_odds, rows_holding
from weibo_lstm.preprocessing.tokenized_examples import TokenizedExamples


@keras.saving.register_keras_serializable(package="weibo_lstm")
class HybridClassifier(keras.Model):
    """Stacks a probability classifier and an `NgramLogisticRegression`.

    Args:
        classifier: a model mapping ids `[batch, time]` to `[batch, 2]` probabilities.
        linear: an `NgramLogisticRegression` over the same ids.
        mixing: `(a, b, c)`: the weights of the two log-odds and the bias.
        emoticon_mixing: `(a, b, c)` for the rows holding one of `emoticon_ids`
            (None: `mixing` for every row).
        emoticon_ids: token ids that mark a row as one with an emoticon.
        **kwargs: passed to `keras.Model`.

    Example:

    >>> from weibo_lstm import WeiboLSTM
    >>> linear = NgramLogisticRegression.fit(
    ...     np.array([2, 3, 2, 4, 5, 4]), np.array([0, 3, 6]), np.array([1, 0]), min_df=1)
    >>> hybrid = HybridClassifier(WeiboLSTM(8, lstm_units=(4,), dense_units=0), linear,
    ...                           mixing=(0.0, 1.0, 0.0))
    >>> probabilities = hybrid(np.array([[2, 3, 0], [4, 5, 4]]))
    >>> probabilities.shape, bool(probabilities[0, 1] > 0.5 > probabilities[1, 1])
    (TensorShape([2, 2]), True)
    """

    def __init__(
        self,
        classifier: keras.Model,
        linear: NgramLogisticRegression,
        mixing: tuple[float, float, float] = (1.0, 1.0, 0.0),
        emoticon_mixing: tuple[float, float, float] | None = None,
        emoticon_ids: tuple[int, ...] = (),
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.classifier = classifier
        self.linear = linear
        self.mixing = _mixing(mixing, "mixing")
        self.emoticon_mixing = (
            None if emoticon_mixing is None else _mixing(emoticon_mixing, "emoticon_mixing")
        )
        self.emoticon_ids = tuple(int(i) for i in emoticon_ids)
        if (self.emoticon_mixing is None) != (not self.emoticon_ids):
            raise ValueError(
                "Arguments `emoticon_mixing` and `emoticon_ids` go together. Received: "
                f"emoticon_mixing={emoticon_mixing}, emoticon_ids={emoticon_ids}"
            )

    def call(self, ids, training=None):
        deep = _log_odds(self.classifier(ids, training=training))
        wide = self.linear(ids)
        a, b, c = self.mixing
        logit = a * deep + b * wide + c
        if self.emoticon_mixing is not None:
            a, b, c = self.emoticon_mixing
            marked = tf.equal(tf.cast(ids, tf.int32)[:, :, None], self.emoticon_ids)
            has_emoticon = tf.reduce_any(marked, axis=[1, 2])
            logit = tf.where(has_emoticon, a * deep + b * wide + c, logit)
        positive = tf.sigmoid(logit)
        return tf.stack([1 - positive, positive], axis=-1)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "classifier": keras.saving.serialize_keras_object(self.classifier),
                "linear": keras.saving.serialize_keras_object(self.linear),
                "mixing": list(self.mixing),
                "emoticon_mixing": (
                    None if self.emoticon_mixing is None else list(self.emoticon_mixing)
                ),
                "emoticon_ids": list(self.emoticon_ids),
            }
        )
        return config

    @classmethod
    def from_config(cls, config: dict) -> HybridClassifier:
        config = dict(config)
        config["classifier"] = keras.saving.deserialize_keras_object(config["classifier"])
        config["linear"] = keras.saving.deserialize_keras_object(config["linear"])
        return cls(**config)


def _mixing(weights, name: str) -> tuple[float, float, float]:
    weights = tuple(float(w) for w in weights)
    if len(weights) != 3:
        raise ValueError(f"Argument `{name}` must be (a, b, c). Received: {name}={weights}")
    return weights


def _log_odds(probabilities):
    # The graph's twin of `stacking.log_odds`, with the same clip.
    positive = tf.clip_by_value(probabilities[:, 1], EPSILON, 1 - EPSILON)
    return tf.math.log(positive) - tf.math.log(1 - positive)


def fit_mixing(
    neural_probabilities: np.ndarray, linear_logits: np.ndarray, labels: np.ndarray
) -> tuple[float, float, float]:
    """`(a, b, c)` of a logistic regression on the two log-odds of validation rows,
    with `a, b ≥ 0`.

    The weights are constrained as in stacked regression (Breiman, 1996): both parts
    predict the label, so a negative weight only exploits their correlation on these
    rows, and it turns a part's evidence around wherever the parts disagree more than
    on validation (e.g. posts without emoticons, when validation posts have them).
    When the unconstrained fit has a negative weight, the optimum lies where that
    weight is 0: the better of the two one-part fits (each clamped at 0) is returned.

    Args:
        neural_probabilities: `[n, 2]` validation probabilities of the classifier.
        linear_logits: `[n]` validation logits of the linear model.
        labels: `[n]` validation labels.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> labels = rng.integers(0, 2, 400)
    >>> linear = np.where(labels == 1, 1.0, -1.0) + rng.normal(size=400)
    >>> useless = np.full((400, 2), 0.5)
    >>> a, b, c = fit_mixing(useless, linear, labels)
    >>> b > 0.5
    True
    """
    features = np.stack([log_odds(neural_probabilities), linear_logits], axis=1)
    labels = np.asarray(labels)
    weights, bias = _logistic_fit(features, labels)
    if np.all(weights >= 0):
        return float(weights[0]), float(weights[1]), bias
    candidates = []
    for kept in (0, 1):
        weight, bias = _logistic_fit(features[:, [kept]], labels)
        weights = np.zeros(2)
        weights[kept] = max(float(weight[0]), 0.0)
        if weight[0] < 0:  # neither part: the bias alone
            _, bias = _logistic_fit(np.zeros((len(labels), 1)), labels)
        candidates.append((_mixing_objective(features, labels, weights, bias), weights, bias))
    _, weights, bias = min(candidates, key=lambda c: c[0])
    return float(weights[0]), float(weights[1]), bias


#: The inverse L2 strength of the mixing's logistic regression (scikit-learn's `C`).
MIXING_C = 100.0


def _logistic_fit(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=MIXING_C, max_iter=1000).fit(features, labels)
    return model.coef_[0], float(model.intercept_[0])


def _mixing_objective(features, labels, weights, bias) -> float:
    """scikit-learn's objective for `_logistic_fit`: C · Σ log-loss + ½‖w‖²."""
    logits = features @ weights + bias
    losses = np.logaddexp(0.0, logits) - labels * logits
    return float(MIXING_C * losses.sum() + 0.5 * weights @ weights)


def wide_and_deep(
    deep: keras.Model,
    train: TokenizedExamples,
    validation: TokenizedExamples,
    deep_validation_probabilities: np.ndarray,
    *,
    strategy: tf.distribute.Strategy | None = None,
    emoticon_ids: tuple[int, ...] = (),
    **linear_kwargs,
) -> HybridClassifier:
    """The wide & deep classifier of a trained deep model.

    The wide part, an `NgramLogisticRegression`, is fitted on the `train` rows; the
    mixing of the two log-odds on the `validation` rows (`fit_mixing`), where the
    deep model's probabilities are `deep_validation_probabilities` (neither part saw
    them in training).

    Args:
        deep: the trained classifier (ids → `[batch, 2]` probabilities).
        train, validation: tokenized rows with labels.
        deep_validation_probabilities: `[len(validation), 2]` outputs of `deep`.
        strategy: create the wide part's variables under it (None: the current one).
        emoticon_ids: with ids, two mixings: `emoticon_mixing` fitted on the
            validation rows that hold one of them, `mixing` on the others (each kind
            needs both classes; else one mixing for all rows).
        **linear_kwargs: passed to `NgramLogisticRegression.fit` (e.g. `max_features`).

    Returns:
        A built `HybridClassifier` named `wide_and_deep`.

    Raises:
        ValueError: when the wide part or the mixing cannot be fitted (e.g. one class
            only, or no n-gram in two training rows).

    Example:

    >>> from weibo_lstm import WeiboLSTM
    >>> lists = [[2, 3], [4, 5], [2, 3, 3], [4, 4, 5]] * 4
    >>> rows = TokenizedExamples(np.concatenate(lists).astype(np.int32),
    ...                          np.cumsum([0] + [len(r) for r in lists]),
    ...                          np.array([1, 0, 1, 0] * 4, np.int32))
    >>> deep = WeiboLSTM(8, lstm_units=(4,), dense_units=0)
    >>> hybrid = wide_and_deep(deep, rows, rows, np.full((16, 2), 0.5))
    >>> probabilities = hybrid(rows.rows(range(4)).to_tensor()).numpy()
    >>> probabilities.argmax(1).tolist()  # the wide part decides: the deep part is useless
    [1, 0, 1, 0]
    """
    strategy = strategy or tf.distribute.get_strategy()
    if len(np.unique(validation.labels)) < 2:
        raise ValueError("the validation rows hold one class only: the mixing needs both")
    with strategy.scope():
        linear = NgramLogisticRegression.fit(
            train.values, train.row_splits, train.labels, name="wide", **linear_kwargs
        )
    linear_logits = linear.decision_function(validation.values, validation.row_splits)
    deep_validation_probabilities = np.asarray(deep_validation_probabilities)
    labels = np.asarray(validation.labels)
    marked = None
    if emoticon_ids:
        marked = rows_holding(validation.values, validation.row_splits, emoticon_ids)
    if marked is not None and any(len(np.unique(labels[m])) < 2 for m in (marked, ~marked)):
        marked = None  # one kind of post is missing a class: one mixing for all rows
    if marked is None:
        mixing = fit_mixing(deep_validation_probabilities, linear_logits, labels)
        kinds = {}
    else:
        mixing, emoticon_mixing = (
            fit_mixing(deep_validation_probabilities[m], linear_logits[m], labels[m])
            for m in (~marked, marked)
        )
        kinds = {"emoticon_mixing": emoticon_mixing, "emoticon_ids": tuple(emoticon_ids)}
    with strategy.scope():
        hybrid = HybridClassifier(deep, linear, mixing=mixing, name="wide_and_deep", **kinds)
        hybrid(tf.ones([1, 1], tf.int32))  # built, so it saves and exports at once
    return hybrid
