"""Files in and out for prediction: CSV, TSV, JSON lines and plain text, every row kept.

`read_table` reads the file a user wants scored, `write_table` writes it back with new
columns (label, score, ...) in the same order, and `read_lines` reads standard input.
No TensorFlow (nor NumPy) here: the command line answers a bad file before TensorFlow
starts.

Formats, chosen by the file's extension unless `format` names one:

- `csv` (`.csv`), `tsv` (`.tsv`): a header row, then one row per record, parsed and
  written by the `csv` module (quoted fields may hold commas, tabs, quotes and
  newlines). A blank line is not a row (the `csv` module skips it); a row whose text
  is empty is one (a one-column CSV writes it as `""`).
- `jsonl` (`.jsonl`, `.ndjson`): one JSON object per line. The columns are every key,
  in order of first appearance; a key absent from a line reads as None and is written
  back as null. Blank lines are not rows.
- `txt` (`.txt` and anything else): one text per line, blank lines included, so output
  row i is input line i. The table has one column, `text`.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from weibo_lstm.data.table_writer import write_table
from weibo_lstm.data.text_files import TEXT_COLUMNS, read_text_file
from weibo_lstm.data.text_table import DELIMITERS, FORMATS, TextTable, table_format
from weibo_lstm.errors import DataError

__all__ = ["FORMATS", "TextTable", "read_lines", "read_table", "table_format", "write_table"]

_KINDS = {"csv": "CSV", "tsv": "TSV", "jsonl": "JSON lines", "txt": "text"}
_DELIMITER_NAMES = {"csv": "comma", "tsv": "tab"}


def read_table(
    path: str | os.PathLike, *, text_column: str | None = None, format: str | None = None
) -> TextTable:
    """Reads a CSV, TSV, JSON lines or plain-text file to score, every row kept in order.

    The text column is `text_column` if given (an exact name, else the one name equal
    to it up to case and spaces); else the first of `review`, `evaluation`, `text`,
    `content`, `comment`, `sentence` present (any case); else the only column.
    UTF-8, UTF-8 with BOM and GB18030/GBK are read, as `load_csv` reads them.

    Args:
        path: the file.
        text_column: the column holding the texts.
        format: `"csv"`, `"tsv"`, `"jsonl"` or `"txt"`; by default the extension's.

    Returns:
        The table: every column and row of the file, and the text of each row.

    Raises:
        DataError: one line naming the file (and the line, where one applies): a
            missing, empty, unreadable or undecodable file, a ragged or malformed CSV
            row, a line that is not a JSON object, a text that is missing or not a
            string, or no text column to be found.
        ConfigError: an unknown `format`.

    Example:

    >>> import pathlib, tempfile
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "posts.csv"
    >>> _ = f.write_text('id,review\\n7,"好吃, 还会再来"\\n8,\\n', "utf-8")
    >>> table = read_table(f)
    >>> table.columns, table.rows, table.texts, table.line_numbers
    (('id', 'review'), (('7', '好吃, 还会再来'), ('8', '')), ('好吃, 还会再来', ''), (2, 3))
    """
    path = Path(path)
    fmt = table_format(path, format)
    text, encoding = read_text_file(path, kind=_KINDS[fmt])
    if fmt == "txt":
        lines = text.split("\n")
        if lines[-1] == "":  # the newline that ends the last line
            lines.pop()
        columns = ("text",)
        rows = [(line[:-1] if line.endswith("\r") else line,) for line in lines]
        numbers = list(range(1, len(rows) + 1))
    elif fmt == "jsonl":
        columns, rows, numbers = _json_lines(path, text)
    else:
        columns, rows, numbers = _delimited(path, text, fmt)
    index = _text_index(path, columns, text_column, fmt)
    texts = [row[index] for row in rows]
    if fmt == "jsonl":
        _check_json_texts(path, texts, numbers, columns[index])
    return TextTable(
        columns, tuple(rows), tuple(texts), tuple(numbers), columns[index], fmt, str(path), encoding
    )


def _delimited(path: Path, text: str, fmt: str) -> tuple[tuple[str, ...], list, list[int]]:
    """`(header, rows, line numbers)` of a CSV or TSV text."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=DELIMITERS[fmt], strict=True)
    previous_limit = csv.field_size_limit(1 << 30)  # posts can be long
    header: tuple[str, ...] | None = None
    rows, numbers = [], []
    line = 1
    try:
        for row in reader:
            start, line = line, reader.line_num + 1  # a record may span lines
            if not row:
                continue
            if header is None:
                header = tuple(row)
            elif len(row) == len(header):
                rows.append(tuple(row))
                numbers.append(start)
            else:
                raise DataError(
                    f"{path}, line {start}: expected {len(header)} fields, found {len(row)} "
                    f"(unquoted {_DELIMITER_NAMES[fmt]} or newline in a text?)"
                )
    except csv.Error as e:
        raise DataError(f"{path}, line {line}: malformed {_KINDS[fmt]}: {e}") from None
    finally:
        csv.field_size_limit(previous_limit)
    return header or (), rows, numbers


def _json_lines(path: Path, text: str) -> tuple[tuple[str, ...], list, list[int]]:
    """`(keys in order of first appearance, rows, line numbers)` of a JSON lines text."""
    objects, numbers = [], []
    keys: dict[str, None] = {}
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(
                f"{path}, line {number}: not valid JSON: {e.msg} (column {e.colno})"
            ) from None
        if not isinstance(value, dict):
            raise DataError(
                f"{path}, line {number}: expected a JSON object, found {type(value).__name__}"
            )
        if len(value) != len(keys) or value.keys() != keys.keys():
            keys.update(dict.fromkeys(value))
        objects.append(value)
        numbers.append(number)
    columns = tuple(keys)
    rows = [tuple(map(obj.get, columns)) for obj in objects]
    return columns, rows, numbers


def _text_index(path: Path, columns: tuple[str, ...], wanted: str | None, fmt: str) -> int:
    """The index in `columns` of the text column (see `read_table`)."""
    folded = [c.strip().lower() for c in columns]
    if wanted is not None:
        if wanted in columns:
            return columns.index(wanted)
        if folded.count(wanted.strip().lower()) == 1:
            return folded.index(wanted.strip().lower())
        if fmt == "txt":
            raise DataError(
                f"{path}: read as plain text (one text per line), which has no column "
                f"{wanted!r}; give --format csv, tsv or jsonl if it has columns"
            )
        raise DataError(
            f"{path}: no column {wanted!r} (--text-column); the columns are {_names(columns)}"
        )
    for name in TEXT_COLUMNS:
        if name in folded:
            return folded.index(name)
    if len(columns) == 1:
        return 0
    raise DataError(
        f"{path}: which column holds the texts? None is named {'/'.join(TEXT_COLUMNS)}; "
        f"the columns are {_names(columns)}: give --text-column NAME"
    )


def _check_json_texts(path: Path, texts: list, numbers: list[int], column: str) -> None:
    if all(type(t) is str for t in texts):
        return
    i = next(i for i, t in enumerate(texts) if not isinstance(t, str))
    found = "missing or null" if texts[i] is None else f"not a string: {_clip(texts[i])}"
    raise DataError(f"{path}, line {numbers[i]}: the text field {column!r} is {found}")


def _names(columns: tuple[str, ...], limit: int = 12) -> str:
    shown = ", ".join(_clip(c, 40) for c in columns[:limit])
    return f"[{shown}{', ...' if len(columns) > limit else ''}] ({len(columns)})"


def _clip(value: Any, limit: int = 60) -> str:
    """`repr(value)`, cut short: a junk header can be one very long field."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-1]}"


def read_lines(
    stream: BinaryIO | Iterable[bytes], *, name: str = "<stdin>"
) -> Iterator[tuple[int, str]]:
    """`(line number, text)` for each line of a binary stream of UTF-8 text.

    Blank lines are yielded too. The line ending (`\\n` or `\\r\\n`) is removed and the
    text is otherwise as given; a UTF-8 BOM before the first line is dropped.

    Args:
        stream: lines of bytes, e.g. `sys.stdin.buffer` (not `sys.stdin`).
        name: what the messages call the stream.

    Yields:
        `(line_number, text)`, numbered from 1.

    Raises:
        DataError: one line naming the line that is not UTF-8 or holds a NUL byte;
            lines before it have been yielded.

    Example:

    >>> import io
    >>> list(read_lines(io.BytesIO("\\ufeff很好\\r\\n\\n 差 \\n".encode())))
    [(1, '很好'), (2, ''), (3, ' 差 ')]
    >>> list(read_lines(io.BytesIO("好\\n".encode() + "坏\\n".encode("gbk"))))
    Traceback (most recent call last):
    ...
    weibo_lstm.errors.DataError: <stdin>, line 2: not UTF-8 text (byte 0xbb); convert it first, e.g. `iconv -f GBK -t UTF-8`
    """
    for number, raw in enumerate(stream, 1):
        if not isinstance(raw, bytes):
            raise TypeError(
                "Argument `stream` must give bytes (sys.stdin.buffer, not sys.stdin). "
                f"Received a line of type {type(raw).__name__}"
            )
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1] if raw.endswith(b"\n") else raw
        if b"\x00" in raw:
            raise DataError(
                f"{name}, line {number}: contains NUL bytes: UTF-16 or binary, not UTF-8 text"
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(
                f"{name}, line {number}: not UTF-8 text (byte {raw[e.start]:#04x}); "
                "convert it first, e.g. `iconv -f GBK -t UTF-8`"
            ) from None
        yield number, text
