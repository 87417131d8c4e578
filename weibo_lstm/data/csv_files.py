"""Reading labelled CSVs: the seed's formats, any label set, encodings, one-line errors."""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from weibo_lstm.data.label_sets import UnknownLabel, class_id, infer_class_names
from weibo_lstm.data.labeled_texts import LabeledTexts, LoadStats
from weibo_lstm.data.text_files import TEXT_COLUMNS, read_text_file
from weibo_lstm.errors import DataError

logger = logging.getLogger("weibo_lstm")

# Columns the loader recognises, by role (TEXT_COLUMNS: see text_files).
LABEL_COLUMNS = ("label",)

_SEED_FILES = ("all_utf8.csv", "weibo_senti_100k.csv")


def _clip(value, limit: int = 80) -> str:
    """`repr(value)`, cut short: binary junk can decode as a very long "header"."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-1]}"


def _label_ids(
    path: Path, labels: list[str], lines: list[int], class_names: Sequence[str] | None
) -> tuple[tuple[str, ...], np.ndarray]:
    """The class names (given, or inferred from the labels) and each label's id; an
    unknown label is a `DataError` naming its line."""
    if class_names is None:
        try:
            class_names = infer_class_names(labels)
        except UnknownLabel as e:
            line = lines[[label.strip() for label in labels].index(e.label)]
            raise DataError(f"{path}, line {line}: {e}") from None
    ids = np.empty(len(labels), np.int32)
    known: dict[str, int] = {}
    for i, label in enumerate(labels):
        if label not in known:
            try:
                known[label] = class_id(label, class_names)
            except UnknownLabel as e:
                raise DataError(f"{path}, line {lines[i]}: {e}") from None
        ids[i] = known[label]
    return tuple(class_names), ids


def load_csv(
    path: str | os.PathLike,
    *,
    class_names: Sequence[str] | None = None,
    drop_duplicates: bool = False,
    on_bad_rows: str = "error",
    max_chars: int | None = 20_000,
) -> LabeledTexts:
    """Reads a labelled CSV (the seed's two formats, or any label set).

    The header names the columns: a text column (`review`, `evaluation`, `text`,
    `content`, `comment` or `sentence`) and `label`; other columns are ignored.
    Binary labels keep the seed's meaning: 1/0, 积极/消极, 正面/负面, positive/negative
    and pos/neg. With 中性 (neutral, neu) the classes are 消极, 积极, 中性; other label
    names (happy, angry, …) or integers 0 … K-1 are classes of their own
    (`weibo_lstm.data.label_sets.infer_class_names`).
    UTF-8, UTF-8 with BOM and GB18030 (a superset of GBK and GB2312) are detected.

    Args:
        path: the CSV file.
        class_names: the classes in id order (None: inferred from the labels). A
            label may then be a class name, a polarity spelling of one, or an id.
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
            columns, an unknown label (a polarity file with another label, or a label
            not among `class_names`), a ragged row, or no usable rows.

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
    text, encoding = read_text_file(path, kind="CSV")
    texts, raw_labels, lines, counts = _read_rows(
        path, text, on_bad_rows=on_bad_rows, max_chars=max_chars
    )
    class_names, label_ids = _label_ids(path, raw_labels, lines, class_names)
    texts_kept = [i for i, t in enumerate(texts) if t is not None]
    texts = [texts[i] for i in texts_kept]
    labels = label_ids[texts_kept].tolist()
    duplicates, conflicting = _repeated_texts(texts, labels)
    kept = list(zip(texts, labels, strict=True))
    if drop_duplicates:
        seen: set[str] = set()
        unique = []
        for review, label in kept:
            if review not in seen and review not in conflicting:
                unique.append((review, label))
            seen.add(review)
        kept = unique
    if not kept:
        raise DataError(
            f"{path}: no usable rows ({counts['rows']} read, {counts['dropped_empty']} with empty text)"
        )
    stats = LoadStats(
        kept=len(kept),
        duplicates=duplicates,
        conflicting=len(conflicting),
        dropped_duplicates=len(texts) - len(kept),
        encoding=encoding,
        **counts,
    )
    _log_stats(path, stats)
    return LabeledTexts(
        tuple(t for t, _ in kept),
        np.array([y for _, y in kept], np.int32),
        str(path),
        stats,
        class_names=class_names,
    )


def _repeated_texts(texts: list[str], labels: list[int]) -> tuple[int, set[str]]:
    """`(rows that repeat an earlier text, texts that appear with both labels)`."""
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
    return duplicates, conflicting


def _read_rows(
    path: Path, text: str, *, on_bad_rows: str, max_chars: int | None
) -> tuple[list[str | None], list[str], list[int], dict[str, int]]:
    """The texts (None where empty), raw labels and first lines of a CSV's rows, and
    the counts of `LoadStats`."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    previous_limit = csv.field_size_limit()
    csv.field_size_limit(1 << 30)  # Posts can be long; max_chars bounds what we keep.
    texts, labels, lines = [], [], []
    counts = dict.fromkeys(("rows", "dropped_empty", "dropped_bad_rows", "truncated"), 0)
    line = 1
    try:
        header = next(reader, None)
        width, text_col, label_col = _columns(path, header)
        line = reader.line_num + 1  # first line of the next record (records may span lines)
        for row in reader:
            start, line = line, reader.line_num + 1
            if not row:
                continue
            counts["rows"] += 1
            if len(row) != width:
                if on_bad_rows == "skip":
                    counts["dropped_bad_rows"] += 1
                    continue
                raise DataError(
                    f"{path}, line {start}: expected {width} fields, "
                    f"found {len(row)} (unquoted comma or newline in a text?)"
                )
            review = row[text_col]
            if not review.strip():
                counts["dropped_empty"] += 1
                review = None  # its label still counts towards the label set
            elif max_chars is not None and len(review) > max_chars:
                review = review[:max_chars]
                counts["truncated"] += 1
            texts.append(review)
            labels.append(row[label_col])
            lines.append(start)
    except csv.Error as e:
        raise DataError(f"{path}, line {line}: malformed CSV: {e}") from None
    finally:
        csv.field_size_limit(previous_limit)
    return texts, labels, lines, counts


def _columns(path: Path, header: list[str] | None) -> tuple[int, int, int]:
    """`(number of fields, text column, label column)` named by the header."""
    names = [h.strip().lstrip("\ufeff").lower() for h in header or []]
    text_col = next((names.index(c) for c in TEXT_COLUMNS if c in names), None)
    label_col = next((names.index(c) for c in LABEL_COLUMNS if c in names), None)
    if text_col is None or label_col is None:
        raise DataError(
            f"{path}, line 1: missing column(s): need a text column "
            f"({'/'.join(TEXT_COLUMNS)}) and `label`; found header {_clip(header)}"
        )
    return len(names), text_col, label_col


def _log_stats(path, stats: LoadStats) -> None:
    logger.info("%s: %d rows read (%s), %d kept", path, stats.rows, stats.encoding, stats.kept)
    for field, one, many in (
        ("dropped_empty", "row with empty text dropped", "rows with empty text dropped"),
        (
            "dropped_bad_rows",
            "row with the wrong number of fields skipped",
            "rows with the wrong number of fields skipped",
        ),
        ("duplicates", "row repeats an earlier text", "rows repeat an earlier text"),
        ("conflicting", "text appears under both labels", "texts appear under both labels"),
        (
            "dropped_duplicates",
            "duplicate/conflicting row dropped",
            "duplicate/conflicting rows dropped",
        ),
        ("truncated", "text truncated", "texts truncated"),
    ):
        count = getattr(stats, field)
        if count:
            logger.warning("%s: %d %s", path, count, one if count == 1 else many)


def find_input_file(input_dir: str | os.PathLike = "data/input") -> Path | None:
    """The seed's data file in `input_dir`: `all_utf8.csv`, else `weibo_senti_100k.csv`."""
    for name in _SEED_FILES:
        candidate = Path(input_dir) / name
        if candidate.is_file():
            return candidate
    return None
