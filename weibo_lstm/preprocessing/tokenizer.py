"""Character-level tokenizer for Chinese social-media text."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence

import keras
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from weibo_lstm.data.emoticons import EMOTICON_PATTERN
from weibo_lstm.preprocessing import tokenizer_files
from weibo_lstm.preprocessing.normalization import (
    ASCII_CAPITALS,
    FULL_WIDTH,
    FULL_WIDTH_OFFSET,
    LOWERCASE_OFFSET,
    OOV_ID,
    PAD_ID,
    WHITESPACE_PATTERN,
)
from weibo_lstm.preprocessing.windows import WindowOptions

#: Characters per text after normalisation, unless a tokenizer is given another `max_length`.
DEFAULT_MAX_LENGTH = 180


@keras.saving.register_keras_serializable(package="weibo_lstm")
class Tokenizer(tf.Module):
    """Maps raw text to character ids: 0 = padding, 1 = out-of-vocabulary.

    The call path uses only core TensorFlow ops (`tf.strings.regex_replace`,
    `tf.strings.unicode_decode` via tensorflow-text's `UnicodeCharTokenizer`, a
    `tf.lookup.StaticHashTable`), so the same object runs eagerly, inside
    `tf.function`, inside `tf.data.Dataset.map`, and inside an exported SavedModel
    that loads without `import tensorflow_text`.

    Normalisation, applied in this order:

    1. `strip_emoticons`: deletes every match of `EMOTICON_PATTERN`, i.e. `[` or `［`,
       then 1-10 characters that are neither brackets nor whitespace, then `]` or `］`
       (`[哈哈]`, `[泪]`, `[good]`, `［赞］`). Nothing else is removed; `[分享自 @百度知道]`
       contains a space and stays.
    2. `collapse_whitespace`: every run of ASCII whitespace, U+00A0 and U+3000 becomes
       one ASCII space; leading and trailing spaces are removed.
    3. `fold_width`: full-width forms U+FF01-U+FF5E (`！`…`～`, including `Ａ`-`ｚ`,
       `０`-`９`) become their ASCII counterparts U+0021-U+007E. Other characters,
       including CJK punctuation such as `，` `。` `【】`, are untouched.
    4. `lowercase`: ASCII `A`-`Z` become `a`-`z` (after width folding, so `Ａ` → `a`).
       Non-ASCII letters keep their case.

    Invalid UTF-8 bytes decode to U+FFFD. A text that is empty after normalisation
    becomes the single id `OOV_ID`, so no row is ever fully masked (a fully masked
    row breaks the cuDNN LSTM kernel).

    Args:
        vocabulary: characters for ids 2, 3, …, or None before `adapt`.
        max_length: ids per text after truncation; dense outputs are padded to it.
        min_count: `adapt` keeps characters seen at least this many times.
        max_tokens: `adapt` keeps at most this many ids including padding and OOV.
        strip_emoticons: remove bracketed emoticons (see above).
        fold_width: map full-width ASCII forms to ASCII.
        lowercase: lower-case ASCII letters.
        collapse_whitespace: collapse and trim whitespace.
        name: module name.

    Example:

    >>> tokenizer = Tokenizer(max_length=8)
    >>> tokenizer.adapt(["好开心[哈哈]", "难过[泪]"])
    >>> tokenizer(["好难过"]).numpy().tolist()
    [[5, 10, 9, 0, 0, 0, 0, 0]]
    >>> tokenizer(["[泪]"], ragged=True).to_list()
    [[2, 8, 3]]
    """

    def __init__(
        self,
        vocabulary: Sequence[str] | None = None,
        *,
        max_length: int = DEFAULT_MAX_LENGTH,
        min_count: int = 1,
        max_tokens: int | None = None,
        strip_emoticons: bool = False,
        fold_width: bool = True,
        lowercase: bool = True,
        collapse_whitespace: bool = True,
        name: str | None = None,
    ):
        super().__init__(name=name)
        if max_length < 1:
            raise ValueError(
                f"Argument `max_length` must be >= 1. Received: max_length={max_length}"
            )
        if min_count < 1:
            raise ValueError(f"Argument `min_count` must be >= 1. Received: min_count={min_count}")
        if max_tokens is not None and max_tokens < 3:
            raise ValueError(
                f"Argument `max_tokens` must be >= 3 (padding, OOV and one character). "
                f"Received: max_tokens={max_tokens}"
            )
        self.max_length = int(max_length)
        self.min_count = int(min_count)
        self.max_tokens = None if max_tokens is None else int(max_tokens)
        self.strip_emoticons = bool(strip_emoticons)
        self.fold_width = bool(fold_width)
        self.lowercase = bool(lowercase)
        self.collapse_whitespace = bool(collapse_whitespace)
        self._char_tokenizer = tf_text.UnicodeCharTokenizer()
        self._vocabulary: list[str] | None = None
        self._table = None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)

    # ------------------------------------------------------------------ vocabulary
    @property
    def vocabulary(self) -> list[str] | None:
        """Characters for ids 2, 3, … (padding and OOV are implicit)."""
        return None if self._vocabulary is None else list(self._vocabulary)

    @property
    def vocabulary_size(self) -> int:
        """Number of ids, including padding (0) and OOV (1)."""
        self._require_vocabulary()
        return len(self._vocabulary) + 2

    def set_vocabulary(self, vocabulary: Sequence[str]) -> None:
        """Sets the characters for ids 2, 3, … and rebuilds the lookup table.

        Raises:
            ValueError: if an entry is not exactly one character or appears twice.
        """
        vocabulary = list(vocabulary)
        for i, char in enumerate(vocabulary):
            if not isinstance(char, str) or len(char) != 1:
                raise ValueError(
                    f"Vocabulary entries must be single characters. Received: {char!r} at index {i}"
                )
        if len(set(vocabulary)) != len(vocabulary):
            dup = next(c for c, n in Counter(vocabulary).items() if n > 1)
            raise ValueError(f"Vocabulary entries must be unique. Received {dup!r} twice")
        self._vocabulary = vocabulary
        keys = np.array([ord(c) for c in vocabulary], dtype=np.int64)
        values = np.arange(2, len(vocabulary) + 2, dtype=np.int64)
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(keys, values, tf.int64, tf.int64),
            default_value=OOV_ID,
        )

    def adapt(self, texts: Iterable[str], batch_size: int = 4096) -> None:
        """Builds the vocabulary from `texts` (normalised exactly as `__call__` does).

        Ids 2, 3, … go to characters by descending frequency, ties broken by ascending
        code point; characters seen fewer than `min_count` times are dropped, and at
        most `max_tokens - 2` characters are kept. Texts are not truncated for counting.
        """
        counts: Counter[int] = Counter()
        batch: list[str] = []

        def flush():
            codepoints = self._normalized_codepoints(tf.constant(batch, tf.string))
            unique, freq = np.unique(codepoints.flat_values.numpy(), return_counts=True)
            counts.update(dict(zip(unique.tolist(), freq.tolist(), strict=True)))
            batch.clear()

        for text in texts:
            batch.append(text)
            if len(batch) == batch_size:
                flush()
        if batch:
            flush()
        ranked = sorted(
            (cp for cp, n in counts.items() if n >= self.min_count),
            key=lambda cp: (-counts[cp], cp),
        )
        if self.max_tokens is not None:
            ranked = ranked[: self.max_tokens - 2]
        self.set_vocabulary([chr(cp) for cp in ranked])

    # ------------------------------------------------------------------ call path
    def normalize(self, texts: tf.Tensor | Sequence[str]) -> tf.Tensor:
        """Applies the string-level normalisation (emoticons, whitespace)."""
        texts = tf.convert_to_tensor(texts, tf.string)
        if self.strip_emoticons:
            texts = tf.strings.regex_replace(texts, EMOTICON_PATTERN, "")
        if self.collapse_whitespace:
            texts = tf.strings.strip(tf.strings.regex_replace(texts, WHITESPACE_PATTERN, " "))
        return texts

    def _normalized_codepoints(self, texts: tf.Tensor) -> tf.RaggedTensor:
        codepoints = self._char_tokenizer.tokenize(self.normalize(texts))
        codepoints = tf.cast(codepoints, tf.int64)

        def fold(cp):
            if self.fold_width:
                wide = (cp >= FULL_WIDTH[0]) & (cp <= FULL_WIDTH[1])
                cp = tf.where(wide, cp - FULL_WIDTH_OFFSET, cp)
            if self.lowercase:
                upper = (cp >= ASCII_CAPITALS[0]) & (cp <= ASCII_CAPITALS[1])
                cp = tf.where(upper, cp + LOWERCASE_OFFSET, cp)
            return cp

        return tf.ragged.map_flat_values(fold, codepoints)

    def __call__(
        self,
        texts: tf.Tensor | Sequence[str] | str,
        *,
        ragged: bool = False,
        pad_to_max_length: bool = True,
    ) -> tf.Tensor | tf.RaggedTensor:
        """Tokenizes a batch of strings (or one string).

        Args:
            texts: a string or a 1-D batch of strings.
            ragged: return a `tf.RaggedTensor` of ids without padding.
            pad_to_max_length: for dense outputs, pad to `max_length` (a static shape);
                otherwise pad to the longest row of the batch.

        Returns:
            int32 ids of shape `[batch, max_length]` (or `[max_length]` for a scalar),
            truncated to `max_length`, padded with 0. Training and evaluation read
            these; prediction reads long texts to the end with `windows`.
        """
        self._require_vocabulary()
        texts = tf.convert_to_tensor(texts, tf.string)
        scalar = texts.shape.rank == 0
        if scalar:
            texts = tf.reshape(texts, [1])
        ids = self._dense(self._ragged_ids(texts, self.max_length), ragged, pad_to_max_length)
        if scalar:
            ids = ids[0]
        return ids

    def windows(
        self,
        texts: tf.Tensor | Sequence[str],
        *,
        stride: int | None = None,
        ragged: bool = False,
        pad_to_max_length: bool = True,
    ) -> tuple[tf.Tensor | tf.RaggedTensor, tf.Tensor]:
        """Every id of every text, in overlapping windows of `max_length` ids, for
        prediction (`__call__`, which training uses, keeps the first `max_length`).

        Text `i` of `L` ids gives `1 + ceil(max(L - max_length, 0) / stride)` windows,
        window `j` starting at `min(j * stride, max(L - max_length, 0))`: the last one
        ends at the text's end, and a text that fits is one window, its `__call__` row
        (`weibo_lstm.preprocessing.windows` is the NumPy twin and says how the windows'
        probabilities pool). Core TensorFlow ops only, like `__call__`.

        Args:
            texts: a 1-D batch of strings.
            stride: ids between the starts of two windows, 1 to `max_length` (None:
                `max_length // 2`).
            ragged: return the windows as a `tf.RaggedTensor` without padding.
            pad_to_max_length: as for `__call__`.

        Returns:
            `(windows, text_index)`: int32 ids `[num_windows, max_length]` (the windows
            of text 0 first, in order, then those of text 1, …) and int32
            `[num_windows]`, the text each window belongs to.

        Example:

        >>> tokenizer = Tokenizer(list("abcdefg"), max_length=4)
        >>> ids, text_index = tokenizer.windows(["abcdefg", "ab"], stride=2, ragged=True)
        >>> ids.to_list(), text_index.numpy().tolist()
        ([[2, 3, 4, 5], [4, 5, 6, 7], [5, 6, 7, 8], [2, 3]], [0, 0, 0, 1])
        """
        self._require_vocabulary()
        stride = WindowOptions(stride=stride).stride_for(self.max_length)
        ids = self._ragged_ids(tf.convert_to_tensor(texts, tf.string), None)
        lengths = ids.row_lengths()
        extra = tf.maximum(lengths - self.max_length, 0)
        counts = 1 + (extra + stride - 1) // stride
        text_index = tf.repeat(tf.range(tf.size(lengths, tf.int64)), counts)
        position = tf.ragged.range(counts).flat_values  # j, within each text
        starts = tf.minimum(position * stride, tf.gather(extra, text_index))
        offsets = tf.gather(ids.row_starts(), text_index) + starts
        window_lengths = tf.minimum(tf.gather(lengths, text_index), self.max_length)
        positions = tf.ragged.range(offsets, offsets + window_lengths)
        windows = positions.with_flat_values(tf.gather(ids.flat_values, positions.flat_values))
        return self._dense(windows, ragged, pad_to_max_length), tf.cast(text_index, tf.int32)

    def _ragged_ids(self, texts: tf.Tensor, limit: int | None) -> tf.RaggedTensor:
        """int64 ids of a 1-D batch, each row cut to `limit` ids (None: all)."""
        codepoints = self._normalized_codepoints(texts)
        if limit is not None:
            codepoints = codepoints[:, :limit]
        ids = tf.ragged.map_flat_values(self._table.lookup, codepoints)
        # Never emit an empty row: give it a single OOV id.
        empty = tf.equal(ids.row_lengths(), 0)
        filler = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(tf.cast(empty, tf.int32))], tf.constant(OOV_ID, tf.int64)),
            tf.cast(empty, tf.int64),
        )
        return tf.concat([ids, filler], axis=1)

    def _dense(
        self, ids: tf.RaggedTensor, ragged: bool, pad_to_max_length: bool
    ) -> tf.Tensor | tf.RaggedTensor:
        ids = tf.cast(ids, tf.int32)
        if not ragged:
            width = self.max_length if pad_to_max_length else None
            ids = ids.to_tensor(PAD_ID, shape=[None, width])
        return ids

    def _require_vocabulary(self):
        if self._vocabulary is None:
            raise ValueError(
                "The tokenizer has no vocabulary: call `adapt(texts)` or pass `vocabulary=`."
            )

    # ------------------------------------------------------------------ persistence
    def get_config(self) -> dict:
        return {
            "vocabulary": self.vocabulary,
            "max_length": self.max_length,
            "min_count": self.min_count,
            "max_tokens": self.max_tokens,
            "strip_emoticons": self.strip_emoticons,
            "fold_width": self.fold_width,
            "lowercase": self.lowercase,
            "collapse_whitespace": self.collapse_whitespace,
        }

    @classmethod
    def from_config(cls, config: dict) -> Tokenizer:
        return cls(**config)

    def save(self, path: str | os.PathLike) -> None:
        """Writes `tokenizer.json` (options) and `vocabulary.tsv` into directory `path`
        (`weibo_lstm.preprocessing.tokenizer_files`)."""
        self._require_vocabulary()
        config = self.get_config()
        del config["vocabulary"]
        tokenizer_files.write(path, config, self._vocabulary)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tokenizer:
        """Reads a tokenizer written by `save`.

        Raises:
            ValueError: for a malformed vocabulary file.
        """
        config, vocabulary = tokenizer_files.read(path)
        return cls(vocabulary, **config)
