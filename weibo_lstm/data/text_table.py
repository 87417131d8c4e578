"""TextTable: the rows of a file to score, and the formats such files come in.

`prediction_files.read_table` makes one, `table_writer.write_table` writes one back.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from weibo_lstm.errors import ConfigError

#: The formats `read_table` and `write_table` know.
FORMATS = ("csv", "tsv", "jsonl", "txt")
#: The field delimiter of each delimited format.
DELIMITERS = {"csv": ",", "tsv": "\t"}
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclasses.dataclass(frozen=True)
class TextTable:
    """The rows of a file to score, every column kept, and the text of each row.

    Attributes:
        columns: the column names, in the file's order.
        rows: one tuple per row, aligned with `columns` (strings for CSV, TSV and
            text; any JSON value for JSON lines).
        texts: the text of each row (blank texts kept: the row stays in place).
        line_numbers: the file line each row starts on (1-based; a CSV record may
            span lines).
        text_column: the name of the column the texts come from.
        format: `"csv"`, `"tsv"`, `"jsonl"` or `"txt"`.
        path: the file read, or `""`.
        encoding: `"utf-8"` or `"gb18030"`.

    Example:

    >>> table = TextTable(("text",), (("好",), ("",)), ("好", ""), (1, 2), "text", "txt")
    >>> len(table), table.texts
    (2, ('好', ''))
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    texts: tuple[str, ...]
    line_numbers: tuple[int, ...]
    text_column: str
    format: str
    path: str = ""
    encoding: str = "utf-8"

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ConfigError(
                f"Argument `format` must be one of {FORMATS}. Received: format={self.format!r}"
            )
        if not len(self.rows) == len(self.texts) == len(self.line_numbers):
            raise ValueError(
                "`rows`, `texts` and `line_numbers` must have one entry per row. Received: "
                f"{len(self.rows)}, {len(self.texts)} and {len(self.line_numbers)}"
            )

    def __len__(self) -> int:
        return len(self.rows)


def table_format(path: str | os.PathLike, format: str | None = None) -> str:
    """The format of `path`: `format` if given, else by the extension (`txt` by default).

    Example:

    >>> table_format("a.CSV"), table_format("b.ndjson"), table_format("c.log")
    ('csv', 'jsonl', 'txt')
    >>> table_format("a.csv", format="tsv")
    'tsv'
    """
    if format is None:
        return _EXTENSIONS.get(Path(path).suffix.lower(), "txt")
    name = {"ndjson": "jsonl", "text": "txt"}.get(format.lower(), format.lower())
    if name not in FORMATS:
        raise ConfigError(
            f"Argument `format` must be one of {FORMATS}. Received: format={format!r}"
        )
    return name
