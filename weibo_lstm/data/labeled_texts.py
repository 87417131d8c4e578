"""LabeledTexts: texts with class labels, their class names, and what loading did to them."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

#: The class names of binary sentiment, indexed by label id: 0 = 消极 (negative),
#: 1 = 积极 (positive). The default label set.
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
    """Texts with class labels: label `i` is the class `class_names[i]`.

    A row may come from a corpus whose labels say less than the model's classes: a
    binary corpus (积极/消极) pooled into a three-class polarity model cannot say
    中性. `expressible` records, per row, the classes its corpus's labels can express;
    training then scores the row's label against those classes only
    (`weibo_lstm.data.label_sets.relabel` sets it).

    Attributes:
        texts: the texts, in file order.
        labels: int32 class ids in `[0, len(class_names))`, one per text.
        source: where the rows came from (a path or a corpus name).
        stats: what loading dropped or counted.
        class_names: the name of each class id (default: 消极, 积极).
        expressible: `[len(texts), len(class_names)]` bool: the classes each row's
            label was chosen among (its own class always included); None: every class.

    Example:

    >>> data = LabeledTexts(["好", "差", "一般"], [1, 0, 2], class_names=("消极", "积极", "中性"))
    >>> data.class_counts()
    {'消极': 1, '积极': 1, '中性': 1}
    """

    texts: tuple[str, ...]
    labels: np.ndarray
    source: str = "<memory>"
    stats: LoadStats = dataclasses.field(default_factory=LoadStats)
    class_names: tuple[str, ...] = CLASS_NAMES
    expressible: np.ndarray | None = None

    def __post_init__(self):
        labels = np.asarray(self.labels, dtype=np.int32)
        names = tuple(str(name) for name in self.class_names)
        if labels.shape != (len(self.texts),):
            raise ValueError(
                f"`labels` must have one entry per text. Received {labels.shape} for "
                f"{len(self.texts)} texts"
            )
        if len(names) < 2 or len(set(names)) != len(names):
            raise ValueError(
                f"`class_names` must be at least two distinct names. Received: {names}"
            )
        if labels.size and not ((labels >= 0) & (labels < len(names))).all():
            expected = "0 or 1" if len(names) == 2 else f"in [0, {len(names)})"
            raise ValueError(f"`labels` must be {expected}. Received values {np.unique(labels)}")
        expressible = self.expressible
        if expressible is not None:
            expressible = np.asarray(expressible, bool)
            if expressible.shape != (len(labels), len(names)):
                raise ValueError(
                    f"`expressible` must be [texts, classes] = {[len(labels), len(names)]}. "
                    f"Received shape {list(expressible.shape)}"
                )
            if labels.size and not expressible[np.arange(len(labels)), labels].all():
                raise ValueError("`expressible` must include each row's own class")
            if expressible.all():
                expressible = None  # every row can say every class: plain labels
        object.__setattr__(self, "texts", tuple(self.texts))
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "class_names", names)
        object.__setattr__(self, "expressible", expressible)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, indices: Sequence[int] | np.ndarray, source: str | None = None):
        """Rows at `indices`, in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        return LabeledTexts(
            tuple(self.texts[i] for i in indices),
            self.labels[indices],
            source=source or self.source,
            stats=self.stats,
            class_names=self.class_names,
            expressible=None if self.expressible is None else self.expressible[indices],
        )

    def with_texts(self, texts: Sequence[str]) -> LabeledTexts:
        """The same rows (labels, classes, …) with other texts, one per row."""
        return dataclasses.replace(self, texts=tuple(texts))

    def class_counts(self) -> dict[str, int]:
        """Rows per class name."""
        return {name: int((self.labels == i).sum()) for i, name in enumerate(self.class_names)}
