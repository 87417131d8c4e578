"""The hashed character bigrams of `WeiboLSTMBackbone`, in NumPy (no TensorFlow here).

Position t of a row of ids gets the bigram of its character and a neighbour (the next
one, or the previous one for a language model), hashed into `1..buckets`
(0 stays padding):

    (id_t · 1,000,003 + id_neighbour · 7,919) mod buckets + 1

The backbone computes it in its graph with `BIGRAM_HASH`; `bigram_ids` is the same
function for `weibo_lstm.serving.numpy_predictor`, which runs a model without TensorFlow.
"""

from __future__ import annotations

import numpy as np

#: The multipliers of a bigram's two ids in its hash.
BIGRAM_HASH = (1_000_003, 7_919)


def bigram_ids(ids: np.ndarray, buckets: int, context: str) -> np.ndarray:
    """`[batch, time]` bigram ids of right-padded `ids` (`context`: `"next"` or
    `"previous"`).

    >>> bigram_ids(np.array([[2, 3, 0]]), 10, "next").tolist()
    [[4, 10, 0]]
    """
    ids = np.asarray(ids, np.int64)
    if context == "next":
        other = np.pad(ids[:, 1:], [[0, 0], [0, 1]])
    else:
        other = np.pad(ids[:, :-1], [[0, 0], [1, 0]])
    hashed = (ids * BIGRAM_HASH[0] + other * BIGRAM_HASH[1]) % buckets + 1
    return np.where(ids > 0, hashed, 0)
