"""What each text gets from a classifier: its class probabilities, or nothing if blank.

A blank text (empty, or whitespace only: `is_blank`) has nothing to label. Rather than
the label the network happens to give an empty input, every user-facing answer leaves
it unlabelled, in its place: `weibo_lstm.pipeline` gives it `[]`,
`SentimentClassifier.predict` a row of NaN, `weibo-lstm predict` an empty label and
null scores. The engines themselves (`Predictor`, `NumpyPredictor`, the SavedModel)
still compute a row for it. No TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from weibo_lstm.errors import ConfigError


def is_blank(text: str) -> bool:
    """Whether `text` is empty or whitespace only (full-width spaces included).

    >>> is_blank(""), is_blank(" \\u3000\\n"), is_blank("好")
    (True, True, False)
    """
    return not text.strip()


def text_list(texts: Iterable[str]) -> list[str]:
    """`texts` as a list of `str`.

    Raises:
        ConfigError: for `texts` that are not strings, e.g. a pandas column with NaN.
    """
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ConfigError(
                "Argument `texts` must be a str or a sequence of str. Received: "
                f"texts[{i}]={text!r} (a {type(text).__name__})"
            )
    return texts


def probabilities(
    predict: Callable[[list[str]], dict[str, np.ndarray]],
    texts: Sequence[str],
    num_classes: int,
    *,
    batch_size: int | None = None,
) -> np.ndarray:
    """Class probabilities `[len(texts), num_classes]` (float32), a row of NaN for
    each blank text.

    Args:
        predict: an engine's `predict` (texts to outputs with `probabilities`), given
            only the texts that are not blank.
        texts: the texts, in their order.
        num_classes: K.
        batch_size: texts per `predict` call, sorted by length so that each call
            pads to a similar length (None: one call).

    Example:

    >>> fake = lambda texts: {"probabilities": np.array([[0.2, 0.8]] * len(texts))}
    >>> probabilities(fake, ["好", " "], 2)
    array([[0.2, 0.8],
           [nan, nan]], dtype=float32)
    """
    texts = text_list(texts)
    result = np.full((len(texts), num_classes), np.nan, np.float32)
    rows = [i for i, text in enumerate(texts) if not is_blank(text)]
    rows.sort(key=lambda i: len(texts[i]))  # stable: equal lengths keep their order
    step = batch_size or max(len(rows), 1)
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        result[chunk] = predict([texts[i] for i in chunk])["probabilities"]
    return result


def top_classes(row: np.ndarray, class_names: Sequence[str], top_k: int | None) -> list[dict]:
    """The `top_k` most probable classes of one probability row, highest first, as
    `{"label", "score"}` (None: every class); `[]` for a blank text's NaN row.

    >>> top_classes(np.array([0.1, 0.7, 0.2]), ["消极", "积极", "中性"], 2)
    [{'label': '积极', 'score': 0.7}, {'label': '中性', 'score': 0.2}]
    >>> top_classes(np.array([np.nan, np.nan]), ["消极", "积极"], 1)
    []
    """
    if np.isnan(row).any():
        return []
    order = np.argsort(-row, kind="stable")[: len(row) if top_k is None else top_k]
    return [{"label": class_names[i], "score": float(row[i])} for i in order]
