"""TF-IDF n-gram features of id rows on the host, in NumPy (no TensorFlow).

What `NgramLogisticRegression` fits and what its NumPy twin computes; importable
without TensorFlow, so `weibo_lstm.serving.numpy_predictor` can score the wide part of a
shipped model in a process that never starts TensorFlow.
"""

from __future__ import annotations

import numpy as np

KEY_BITS = 21  # ids of one n-gram, 21 bits each, packed into one int64 key
MAX_ORDER = 3


def ngram_keys(values: np.ndarray, row_splits: np.ndarray, max_order: int = 3):
    """Host-side n-gram keys of ragged id rows.

    Args:
        values: flat int ids of all rows.
        row_splits: row `i` is `values[row_splits[i]:row_splits[i + 1]]`.
        max_order: n-grams of order 1 … `max_order` (at most 3).

    Returns:
        `(rows, keys)`: the row of each n-gram occurrence and its int64 key.
    """
    values = np.asarray(values, np.int64)
    row_of = np.repeat(np.arange(len(row_splits) - 1), np.diff(row_splits))
    rows, keys = [row_of], [values]
    key = values.copy()
    for order in range(2, max_order + 1):
        # key of the n-gram starting at position i, valid while it stays in its row
        shifted = values[order - 1 :]
        key = (key[: len(shifted)] << KEY_BITS) | shifted
        same_row = row_of[: len(shifted)] == row_of[order - 1 :]
        rows.append(row_of[: len(shifted)][same_row])
        keys.append(key[same_row])
    return np.concatenate(rows), np.concatenate(keys)


def tfidf_logits(
    values: np.ndarray,
    row_splits: np.ndarray,
    *,
    keys: np.ndarray,
    idf: np.ndarray,
    coef: np.ndarray,
    intercept: float | np.ndarray,
    max_order: int,
) -> np.ndarray:
    """Logits `coef · tfidf(row) / ‖tfidf(row)‖ + intercept` of ragged id rows: `[n]` for
    a binary model's `coef` `[V]`, `[n, K]` for a multinomial one's `[V, K]`.

    Args:
        values, row_splits: unpadded id rows (every id > 0).
        keys: the sorted n-gram keys of the vocabulary.
        idf, coef: their idf and logistic-regression weights.
        intercept: the bias (`[K]` for a multinomial model).
        max_order: the longest n-gram.

    Raises:
        ValueError: for a padding id (0) or a negative one in `values`.
    """
    n = len(row_splits) - 1
    if np.any(np.asarray(values) <= 0):
        raise ValueError("Argument `values` must be unpadded ids (all > 0).")
    rows, ngrams = ngram_keys(values, row_splits, max_order)
    size = len(keys)
    position = np.minimum(np.searchsorted(keys, ngrams), size - 1)
    found = keys[position] == ngrams
    pairs, counts = np.unique(rows[found] * np.int64(size) + position[found], return_counts=True)
    pair_rows, columns = pairs // size, pairs % size
    value = (1 + np.log(counts)) * idf[columns]
    norm = np.maximum(np.sqrt(np.bincount(pair_rows, value * value, minlength=n)), 1e-12)
    if coef.ndim == 1:
        dot = np.bincount(pair_rows, value * coef[columns], minlength=n)
        return (dot / norm + intercept).astype(np.float32)
    dot = np.stack(
        [
            np.bincount(pair_rows, value * coef[columns, k], minlength=n)
            for k in range(coef.shape[1])
        ],
        axis=1,
    )
    return (dot / norm[:, None] + intercept).astype(np.float32)
