"""The wide & deep stacking formula in NumPy (no TensorFlow here).

`HybridClassifier` computes `a · logit(p_deep) + b · logit_wide + c` in its graph; this
module is the same formula on host arrays: for fitting the mixing on validation
(`hybrid.fit_mixing`), for benchmarks that stack saved predictions, and for
`weibo_lstm.serving.numpy_predictor`, which runs a model without starting TensorFlow.
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
