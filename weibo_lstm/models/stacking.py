"""The wide & deep stacking formula in NumPy (no TensorFlow here).

Two classes: `p(class 1) = sigmoid(a · logit(p_deep) + b · logit_wide + c)`.
K classes: `p = softmax(a · log p_deep + b · z_wide + c)`, with `z_wide` the wide
part's K logits and `c` one bias per class; for K = 2 both are the same function.
`WideAndDeep` computes them in its graph; this module is the same formulas on host
arrays, and fits the mixing on validation (`fit_mixing`, `fit_multiclass_mixing`);
`weibo_lstm.serving.numpy_predictor` runs them without TensorFlow.
"""

from __future__ import annotations

import numpy as np

#: Probabilities are clipped to [EPSILON, 1 - EPSILON] before their log-odds.
EPSILON = 1e-7


def log_odds(probabilities: np.ndarray) -> np.ndarray:
    """`[n]` log-odds of class 1 from `[n, 2]` probabilities, clipped as the hybrid clips.

    >>> log_odds(np.array([[0.5, 0.5], [0.0, 1.0]])).round(2).tolist()
    [0.0, 16.12]
    """
    positive = np.clip(np.asarray(probabilities)[:, 1], EPSILON, 1 - EPSILON)
    return np.log(positive) - np.log1p(-positive)


def rows_holding(values: np.ndarray, row_splits: np.ndarray, ids) -> np.ndarray:
    """`[n]` bool: which ragged rows (`values`, `row_splits`) hold one of `ids` (the
    rows the hybrid's `emoticon_mixing` applies to).

    >>> rows_holding(np.array([5, 9, 6]), np.array([0, 2, 3]), (9,)).tolist()
    [True, False]
    """
    marked = np.concatenate([[0], np.cumsum(np.isin(values, ids))])
    return marked[row_splits[1:]] > marked[row_splits[:-1]]


def stacked_logits(
    probabilities: np.ndarray, linear_logits: np.ndarray, mixing: tuple[float, float, float]
) -> np.ndarray:
    """`[n]` logits `a · log_odds(probabilities) + b · linear_logits + c` of the stack.

    >>> stacked_logits(np.array([[0.5, 0.5]]), np.array([2.0]), (1.0, 0.5, -1.0)).tolist()
    [0.0]
    """
    a, b, c = mixing
    return a * log_odds(probabilities) + b * np.asarray(linear_logits) + c


def stacked_probabilities(
    probabilities: np.ndarray,
    wide_logits: np.ndarray,
    mixing: tuple[float, ...],
    temperature: float = 1.0,
) -> np.ndarray:
    """`[n, K]` probabilities `softmax((a · log p + b · z_wide + c) / temperature)` of the
    K-class stack (`mixing` = `(a, b, c_0, …, c_{K-1})`).

    >>> p = stacked_probabilities(np.array([[0.2, 0.8, 1e-9]]), np.zeros((1, 3)), (1, 0, 0, 0, 0))
    >>> p.round(3).tolist()
    [[0.2, 0.8, 0.0]]
    """
    logits = _multiclass_logits(np.asarray(probabilities), np.asarray(wide_logits), mixing)
    logits = logits / temperature
    logits -= logits.max(1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(1, keepdims=True)


def _multiclass_logits(probabilities, wide_logits, mixing) -> np.ndarray:
    a, b, *c = mixing
    return a * np.log(np.clip(probabilities, EPSILON, 1.0)) + b * wide_logits + np.asarray(c)


def fit_multiclass_mixing(
    deep_probabilities: np.ndarray,
    wide_logits: np.ndarray,
    labels: np.ndarray,
    expressible: np.ndarray | None = None,
) -> tuple[float, ...]:
    """`(a, b, c_0, …, c_{K-1})` of the K-class stack, `a, b ≥ 0`, fitted on validation
    rows by the likelihood of each label among the row's expressible classes.

    The objective is `fit_mixing`'s: `MIXING_C · Σ loss + ½ (a² + b²)` (biases
    unpenalised, `c_0 = 0`), minimised with bounded L-BFGS.

    Args:
        deep_probabilities: `[n, K]` validation probabilities of the deep part.
        wide_logits: `[n, K]` validation logits of the wide part.
        labels: `[n]` validation labels.
        expressible: `[n, K]` bool (None: every class for every row).

    Example:

    >>> rng = np.random.default_rng(0)
    >>> labels = rng.integers(0, 3, 300)
    >>> wide = np.eye(3)[labels] * 2 + rng.normal(size=(300, 3))
    >>> a, b, *c = fit_multiclass_mixing(np.full((300, 3), 1 / 3), wide, labels)
    >>> b > 0.5
    True
    """
    from scipy.optimize import minimize

    n, k = np.shape(wide_logits)
    deep = np.log(np.clip(np.asarray(deep_probabilities), EPSILON, 1.0))
    wide = np.asarray(wide_logits, np.float64)
    mask = np.ones((n, k), bool) if expressible is None else np.asarray(expressible, bool)
    onehot = np.eye(k)[np.asarray(labels)]
    blocked = np.where(mask, 0.0, -np.inf)

    def objective(theta):
        a, b, c = theta[0], theta[1], np.concatenate([[0.0], theta[2:]])
        z = a * deep + b * wide + c + blocked
        top = z.max(1, keepdims=True)
        exp = np.exp(z - top)
        total = exp.sum(1, keepdims=True)
        loss = np.sum(np.log(total[:, 0]) + top[:, 0] - np.sum(onehot * np.where(mask, z, 0), 1))
        residual = exp / total - onehot
        grad = [np.sum(residual * deep) * MIXING_C + a, np.sum(residual * wide) * MIXING_C + b]
        grad += list(MIXING_C * residual.sum(0)[1:])
        return MIXING_C * loss + 0.5 * (a * a + b * b), np.array(grad)

    bounds = [(0.0, None), (0.0, None)] + [(None, None)] * (k - 1)
    start = np.concatenate([[1.0, 1.0], np.zeros(k - 1)])
    theta = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds).x
    return (float(theta[0]), float(theta[1]), 0.0, *(float(v) for v in theta[2:]))


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
