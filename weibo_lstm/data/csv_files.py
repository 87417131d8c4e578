"""Reading labelled sentiment CSVs: the seed's formats, encodings, one-line errors."""

from __future__ import annotations

import csv
import io
import logging
import os
from pathlib import Path

import numpy as np

from weibo_lstm.data.labeled_texts import LabeledTexts, LoadStats
from weibo_lstm.data.text_files import TEXT_COLUMNS, read_text_file
from weibo_lstm.errors import DataError

logger = logging.getLogger("weibo_lstm")

# Columns the loader recognises, by role (TEXT_COLUMNS: see text_files).
LABEL_COLUMNS = ("label",)
POSITIVE_LABELS = frozenset({"1", "1.0", "积极", "正面", "positive", "pos"})
NEGATIVE_LABELS = frozenset({"0", "0.0", "消极", "负面", "negative", "neg"})

_SEED_FILES = ("all_utf8.csv", "weibo_senti_100k.csv")


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
    text, encoding = read_text_file(path, kind="CSV")
    texts, labels, counts = _read_rows(path, text, on_bad_rows=on_bad_rows, max_chars=max_chars)
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
        tuple(t for t, _ in kept), np.array([y for _, y in kept], np.int32), str(path), stats
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
) -> tuple[list[str], list[int], dict[str, int]]:
    """The non-empty texts and labels of a CSV's rows, and the counts of `LoadStats`."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    previous_limit = csv.field_size_limit()
    csv.field_size_limit(1 << 30)  # Posts can be long; max_chars bounds what we keep.
    texts, labels = [], []
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
            label = _parse_label(row[label_col], path, start)
            review = row[text_col]
            if not review.strip():
                counts["dropped_empty"] += 1
                continue
            if max_chars is not None and len(review) > max_chars:
                review = review[:max_chars]
                counts["truncated"] += 1
            texts.append(review)
            labels.append(label)
    except csv.Error as e:
        raise DataError(f"{path}, line {line}: malformed CSV: {e}") from None
    finally:
        csv.field_size_limit(previous_limit)
    return texts, labels, counts


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
