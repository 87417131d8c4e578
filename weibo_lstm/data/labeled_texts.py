"""LabeledTexts: texts with binary sentiment labels, and what loading did to them."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

#: Class names indexed by label id: 0 = 消极 (negative), 1 = 积极 (positive).
CLASS_NAMES = ("消极", "积极")


@dataclasses.dataclass(frozen=True)
class LoadStats:
    """What loading did to the rows of a file.

    Attributes:
        rows: data rows read (blank lines excluded).
        kept: rows in the result.
        dropped_empty: rows whose text was empty or whitespace only (dropped).
        dropped_bad_rows: rows with the wrong number of fields (dropped only with
            `on_bad_rows="skip"`; otherwise they are an error).
        duplicates: rows whose exact text appeared on an earlier row.
        conflicting: distinct texts that appear with both labels.
        dropped_duplicates: rows removed by `drop_duplicates=True`.
        truncated: texts cut to `max_chars`.
        encoding: the encoding the file was read with.
    """

    rows: int = 0
    kept: int = 0
    dropped_empty: int = 0
    dropped_bad_rows: int = 0
    duplicates: int = 0
    conflicting: int = 0
    dropped_duplicates: int = 0
    truncated: int = 0
    encoding: str = "utf-8"


@dataclasses.dataclass(frozen=True, eq=False)
class LabeledTexts:
    """Texts with binary sentiment labels (1 = 积极, 0 = 消极).

    Attributes:
        texts: the texts, in file order.
        labels: int32 array of 0/1, same length as `texts`.
        source: where the rows came from (a path or a corpus name).
        stats: what loading dropped or counted.
    """

    texts: tuple[str, ...]
    labels: np.ndarray
    source: str = "<memory>"
    stats: LoadStats = dataclasses.field(default_factory=LoadStats)

    def __post_init__(self):
        labels = np.asarray(self.labels, dtype=np.int32)
        if labels.shape != (len(self.texts),):
            raise ValueError(
                f"`labels` must have one entry per text. Received {labels.shape} for "
                f"{len(self.texts)} texts"
            )
        if labels.size and not np.isin(labels, (0, 1)).all():
            raise ValueError(f"`labels` must be 0 or 1. Received values {np.unique(labels)}")
        object.__setattr__(self, "texts", tuple(self.texts))
        object.__setattr__(self, "labels", labels)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int] | np.ndarray, source: str | None = None):
        """Rows at `indices`, in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        return LabeledTexts(
            tuple(self.texts[i] for i in indices),
            self.labels[indices],
            source=source or self.source,
            stats=self.stats,
        )

    def class_counts(self) -> dict[str, int]:
        """Rows per class name."""
        return {name: int((self.labels == i).sum()) for i, name in enumerate(CLASS_NAMES)}
