"""Predictions over an endless stream of texts, a window at a time (no TensorFlow here)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

#: What a binary model's predictor returns per text (a K-class one: no
#: `positive_probability`), and `stream` yields.
OUTPUT_KEYS = ("positive_probability", "probabilities", "label_id")


def stream(
    predict: Callable[[Sequence[str]], dict[str, np.ndarray]],
    texts: Iterable[str],
    *,
    window: int = 4096,
) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    """Yields `(text, outputs)` per text, in input order, calling `predict` on `window`
    texts at a time, so an endless stream is served with bounded memory;
    `window=1` answers each text as soon as it arrives.

    >>> fake = lambda texts: {k: np.array([len(t) for t in texts]) for k in OUTPUT_KEYS}
    >>> [(t, int(o["label_id"])) for t, o in stream(fake, ["a", "bb", "ccc"], window=2)]
    [('a', 1), ('bb', 2), ('ccc', 3)]
    """
    if window < 1:
        raise ValueError(f"Argument `window` must be >= 1. Received: window={window}")
    iterator = iter(texts)
    while chunk := list(itertools.islice(iterator, window)):
        outputs = predict(chunk)
        for i, text in enumerate(chunk):
            yield text, {key: value[i] for key, value in outputs.items()}
