"""TokenizedExamples: the token ids of many texts in host memory, ragged."""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from weibo_lstm.data.labeled_texts import LabeledTexts
from weibo_lstm.preprocessing.tokenizer import OOV_ID, Tokenizer

#: The row index that stands for no example (it fills an epoch's last batch).
PADDING_ROW = -1


@dataclasses.dataclass(frozen=True, eq=False)
class TokenizedExamples:
    """Token ids of many texts in host memory (ragged: flat values + row splits).

    Attributes:
        values: int32 ids of all rows, concatenated.
        row_splits: int64 offsets; row `i` is `values[row_splits[i]:row_splits[i + 1]]`.
        labels: int32 class ids.
        expressible: `[rows, classes]` bool, the classes each row's label was chosen
            among (`LabeledTexts.expressible`); None: every class.

    Example:

    >>> examples = TokenizedExamples(np.array([5, 6, 7], np.int32), np.array([0, 2, 3]),
    ...                              np.array([1, 0], np.int32))
    >>> examples.subset([1, 0]).values.tolist(), examples.rows([0, -1]).to_list()
    ([7, 5, 6], [[5, 6], [1]])
    """

    values: np.ndarray
    row_splits: np.ndarray
    labels: np.ndarray
    expressible: np.ndarray | None = None

    @classmethod
    def from_texts(
        cls, tokenizer: Tokenizer, data: LabeledTexts, batch_size: int = 8192
    ) -> TokenizedExamples:
        """Tokenizes `data.texts` (truncated to `tokenizer.max_length`)."""
        values, lengths = [], []
        for start in range(0, len(data), batch_size):
            ids = tokenizer(list(data.texts[start : start + batch_size]), ragged=True)
            values.append(ids.flat_values.numpy())
            lengths.append(ids.row_lengths().numpy())
        lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
        return cls(
            values=np.concatenate(values).astype(np.int32) if values else np.zeros(0, np.int32),
            row_splits=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            labels=np.asarray(data.labels, np.int32),
            expressible=data.expressible,
        )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.row_splits)

    def subset(self, indices: np.ndarray) -> TokenizedExamples:
        """The examples at `indices`, in that order."""
        indices = np.asarray(indices, np.int64)
        values, lengths = self._gather(indices)
        return TokenizedExamples(
            values=values,
            row_splits=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            labels=self.labels[indices],
            expressible=None if self.expressible is None else self.expressible[indices],
        )

    def concatenate(self, other: TokenizedExamples) -> TokenizedExamples:
        """These examples followed by `other`'s.

        >>> a = TokenizedExamples(np.array([5, 6]), np.array([0, 2]), np.array([1]))
        >>> b = a.concatenate(TokenizedExamples(np.array([7]), np.array([0, 1]), np.array([0])))
        >>> b.values.tolist(), b.row_splits.tolist(), b.labels.tolist()
        ([5, 6, 7], [0, 2, 3], [1, 0])
        """
        expressible = None
        if self.expressible is not None or other.expressible is not None:
            width = next(e.shape[1] for e in (self.expressible, other.expressible) if e is not None)
            expressible = np.concatenate(
                [self.expressible_mask(width), other.expressible_mask(width)]
            )
        return TokenizedExamples(
            values=np.concatenate([self.values, other.values]),
            row_splits=np.concatenate(
                [self.row_splits, other.row_splits[1:] + self.row_splits[-1]]
            ),
            labels=np.concatenate([self.labels, other.labels]),
            expressible=expressible,
        )

    def expressible_mask(self, num_classes: int) -> np.ndarray:
        """`expressible` `[rows, num_classes]`, all true where it is None."""
        if self.expressible is not None:
            return self.expressible
        return np.ones((len(self), num_classes), bool)

    def rows(self, indices: np.ndarray) -> tf.RaggedTensor:
        """Ids of rows `indices` as a RaggedTensor; `PADDING_ROW` gives `[OOV_ID]`."""
        values, lengths = self._gather(np.asarray(indices, np.int64))
        return tf.RaggedTensor.from_row_lengths(values, lengths.astype(np.int64))

    def _gather(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`(flat values, lengths)` of rows `indices`, one gather over `values`."""
        real = indices != PADDING_ROW
        lengths = np.where(real, self.lengths[np.where(real, indices, 0)], 1)
        starts = np.where(real, self.row_splits[:-1][np.where(real, indices, 0)], len(self.values))
        offsets = np.cumsum(lengths) - lengths
        flat = np.repeat(starts - offsets, lengths) + np.arange(lengths.sum())
        return np.append(self.values, np.int32(OOV_ID))[flat], lengths
