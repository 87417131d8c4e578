"""Reading texts longer than `max_length` at inference: overlapping windows, pooled.

Training truncates (`Tokenizer.__call__` keeps a text's first `max_length` ids);
prediction reads every id. A text of `L` ids is read in windows of `size =
max_length` ids, `stride` ids apart, the last one ending at the text's end:

    windows:  n = 1 + ceil(max(L - size, 0) / stride)
    window j: ids[start_j : start_j + min(L, size)],  start_j = min(j * stride, max(L - size, 0))

A text that fits (`L <= size`) is one window, its ids as `Tokenizer.__call__` gives
them, and its probabilities are the model's, unchanged. The first window of a long text
is exactly what truncation reads. The model runs on every window and the text's
probabilities pool the windows' (`pooling`):

- `"mean"`: the mean of the windows' probabilities;
- `"max"`: the probabilities of the most confident window, the one whose largest
  class probability is the highest (ties: the earliest such window), so the result is
  one window's distribution;
- `"last"`: the probabilities of the last window (the one that ends the text).

This module is the NumPy definition (no TensorFlow): `window_starts` and `pool` are
what `NumpyPredictor` runs and what the TensorFlow twins (`Tokenizer.windows`,
`weibo_lstm.serving.export.pool_windows`) are tested against. `WindowOptions` is the
setting a model carries (`classifier.json`'s `windows`); a model without one uses
`WindowOptions()`, i.e. `DEFAULT_POOLING` and a stride of half the window.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from weibo_lstm.errors import check_argument, check_fields

#: How the windows' probabilities make the text's (see the module docstring).
POOLINGS = ("mean", "max", "last")
#: The pooling of a model that does not name one (every model saved before windows).
DEFAULT_POOLING = "mean"


@dataclasses.dataclass(frozen=True)
class WindowOptions:
    """How a model reads texts longer than its tokenizer's `max_length`.

    Example:

    >>> options = WindowOptions(pooling="last")
    >>> options.stride_for(180), WindowOptions.from_json(options.to_json()) == options
    (90, True)
    """

    pooling: str = DEFAULT_POOLING
    """One of `POOLINGS`."""
    stride: int | None = None
    """Ids between the starts of two windows, 1 to `max_length`; None: `max_length // 2`
    (at least 1), so every id but those of the first and last half-windows is read twice."""

    def __post_init__(self):
        stride = self.stride
        integer = isinstance(stride, int | np.integer) and not isinstance(stride, bool)
        check_fields(
            self,
            pooling=(self.pooling in POOLINGS, f"one of {POOLINGS}"),
            stride=(stride is None or (integer and stride >= 1), "an integer >= 1 or None"),
        )

    def stride_for(self, max_length: int) -> int:
        """The stride for windows of `max_length` ids.

        Raises:
            ConfigError: if `stride` is larger than `max_length` (ids would be skipped).
        """
        if self.stride is None:
            return max(max_length // 2, 1)
        check_argument(
            "stride",
            self.stride,
            self.stride <= max_length,
            f"<= max_length ({max_length}), or ids between windows would be skipped",
        )
        return int(self.stride)

    def to_json(self) -> dict:
        """The setting as `classifier.json` stores it."""
        return {"pooling": self.pooling, "stride": self.stride}

    @classmethod
    def from_json(cls, value: Mapping | None) -> WindowOptions | None:
        """The setting `to_json` wrote (None stays None: the library default)."""
        if value is None:
            return None
        return cls(pooling=value.get("pooling", DEFAULT_POOLING), stride=value.get("stride"))


def window_starts(length: int, size: int, stride: int) -> np.ndarray:
    """Where each window of a text of `length` ids starts (int64), by the formula above.

    Example:

    >>> window_starts(10, 4, 3).tolist(), window_starts(3, 4, 2).tolist()
    ([0, 3, 6], [0])
    >>> window_starts(9, 4, 2).tolist()  # the last window ends at the text's end
    [0, 2, 4, 5]
    """
    extra = max(length - size, 0)
    count = 1 + -(-extra // stride)
    return np.minimum(np.arange(count, dtype=np.int64) * stride, extra)


def pool(probabilities: np.ndarray, counts: np.ndarray, pooling: str) -> np.ndarray:
    """The texts' probabilities `[N, K]` from their windows' `[sum(counts), K]`, the
    windows of text 0 first, then those of text 1, …; every count is >= 1.

    Example:

    >>> p = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]])
    >>> pool(p, np.array([3, 1]), "mean").round(3).tolist()
    [[0.5, 0.5], [0.3, 0.7]]
    >>> pool(p, np.array([3, 1]), "max").tolist(), pool(p, np.array([3, 1]), "last").tolist()
    ([[0.9, 0.1], [0.3, 0.7]], [[0.4, 0.6], [0.3, 0.7]])
    """
    check_argument("pooling", pooling, pooling in POOLINGS, f"one of {POOLINGS}")
    counts = np.asarray(counts, np.int64)
    if len(counts) == 0:
        return probabilities[:0]
    ends = np.cumsum(counts)
    starts = ends - counts
    if pooling == "last":
        return probabilities[ends - 1]
    if pooling == "mean":
        sums = np.add.reduceat(probabilities, starts, axis=0)
        return (sums / counts[:, None]).astype(probabilities.dtype)
    confidence = probabilities.max(axis=1)
    chosen = [s + int(np.argmax(confidence[s:e])) for s, e in zip(starts, ends, strict=True)]
    return probabilities[chosen]
