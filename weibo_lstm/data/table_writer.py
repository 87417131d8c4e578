"""Writing a scored table back: every input row and column, then the new columns, atomically.

See `prediction_files` for the formats; `write_table` is re-exported there.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from weibo_lstm.data.text_table import DELIMITERS, TextTable, table_format
from weibo_lstm.errors import DataError


def write_table(
    path: str | os.PathLike,
    table: TextTable,
    columns: Mapping[str, Sequence[Any]],
    *,
    format: str | None = None,
) -> tuple[str, ...]:
    """Writes `table` with `columns` added to every row, atomically.

    The format follows `path`'s extension (`format` overrides it), whatever the input's:

    - `csv`, `tsv`: a header, then every input column and the new ones; UTF-8 without
      BOM, lines ending in `\\n`, fields quoted as the `csv` module quotes them. A value
      that is not a string is written as JSON (None as an empty field).
    - `jsonl`: one JSON object per row: the input's fields, then the new ones.
    - `txt`: one JSON object per line: `{"text": ..., <new fields>}`; the other input
      columns are left out. Line i is row i (for a .txt input, its line i).

    JSON is written with `ensure_ascii=False`, so Chinese text and emoji stay readable;
    NumPy scalars are written as numbers (float32 by its shortest decimal). A new
    column named like an input column is written as `<name>_pred` (`<name>_pred2`,
    ... if that is taken too). The output goes to a temporary file next to `path`,
    then is renamed over it: a failed write leaves an earlier `path` as it was.

    Args:
        path: the output file.
        table: the rows read by `read_table`.
        columns: new column name -> one value per row of `table` (label, score, ...).
        format: `"csv"`, `"tsv"`, `"jsonl"` or `"txt"`; by default the extension's.

    Returns:
        The names the new columns were written under, in order.

    Raises:
        DataError: one line naming `path`: it is a directory, or its directory is
            missing or cannot be written.
        ValueError: a column does not have one value per row.

    Example:

    >>> import pathlib, tempfile
    >>> from weibo_lstm.data.prediction_files import read_table
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "in.csv").write_text("label,review\\n1,好\\n0,\\n", "utf-8")
    >>> table = read_table(folder / "in.csv")
    >>> write_table(folder / "out.csv", table, {"label": ["积极", ""], "score": [0.9, None]})
    ('label_pred', 'score')
    >>> print((folder / "out.csv").read_text("utf-8"), end="")
    label,review,label_pred,score
    1,好,积极,0.9
    0,,,
    >>> _ = write_table(folder / "out.txt", table, {"score": [0.9, None]})
    >>> print((folder / "out.txt").read_text("utf-8"), end="")
    {"text": "好", "score": 0.9}
    {"text": "", "score": null}
    """
    path = Path(path)
    fmt = table_format(path, format)
    names = _output_names(("text",) if fmt == "txt" else table.columns, list(columns))
    values = []
    for name, column in columns.items():
        values.append(list(column))
        if len(values[-1]) != len(table):
            raise ValueError(
                f"Argument `columns` must hold one value per row ({len(table)}). "
                f"Received: {len(values[-1])} for {name!r}"
            )
    extras = zip(*values, strict=True) if values else [()] * len(table)
    if fmt == "txt":
        rows = zip(((t,) for t in table.texts), extras, strict=True)
        write = _json_writer(("text", *names), rows)
    elif fmt == "jsonl":
        write = _json_writer((*table.columns, *names), zip(table.rows, extras, strict=True))
    else:
        write = _delimited_writer(table, names, values, fmt)
    _replace_atomically(path, write)
    return names


def _output_names(inputs: Sequence[str], names: list[str]) -> tuple[str, ...]:
    """`names`, each taken input name given the suffix `_pred` (`_pred2`, ...)."""
    taken, reserved, chosen_names = set(inputs), set(names), []
    for name in names:
        chosen, n = name, 1
        while chosen in taken or (chosen != name and chosen in reserved):
            chosen, n = f"{name}_pred{n if n > 1 else ''}", n + 1
        taken.add(chosen)
        chosen_names.append(chosen)
    return tuple(chosen_names)


def _json_writer(keys: tuple[str, ...], rows: Iterable[tuple[tuple, tuple]]):
    encode = json.JSONEncoder(ensure_ascii=False, default=_plain).encode

    def write(f: TextIO) -> None:
        for row, extra in rows:
            f.write(encode(dict(zip(keys, (*row, *extra), strict=True))) + "\n")

    return write


def _delimited_writer(table: TextTable, names: tuple[str, ...], values: list[list], fmt: str):
    def write(f: TextIO) -> None:
        writer = csv.writer(f, delimiter=DELIMITERS[fmt], lineterminator="\n")
        writer.writerow([*table.columns, *names])
        rows: Iterable = table.rows
        if table.format == "jsonl":  # values of any JSON type
            rows = ([_cell(v) for v in row] for row in table.rows)
        new = [[_cell(v) for v in column] for column in values]
        extras = zip(*new, strict=True) if new else [()] * len(table)
        writer.writerows([*row, *extra] for row, extra in zip(rows, extras, strict=True))

    return write


def _cell(value: Any) -> str:
    """A CSV field: strings as they are, None empty, anything else as JSON."""
    kind = type(value)
    if kind is str:
        return value
    if kind is float or kind is int:
        return repr(value)
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, default=_plain)


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays as JSON values, without importing NumPy."""
    if hasattr(value, "dtype") and hasattr(value, "tolist"):
        if getattr(value, "ndim", 1) == 0 and value.dtype.kind == "f":
            return float(str(value))  # float32 0.94 as 0.94, not 0.9399999976158142
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _replace_atomically(path: Path, write: Callable[[TextIO], None]) -> None:
    """Runs `write` on a temporary file next to `path`, then renames it to `path`."""
    if path.is_dir():
        raise DataError(f"{path}: is a directory; give a file name for the output")
    if not path.parent.is_dir():
        raise DataError(f"{path}: no such directory: {path.parent}")
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        raise DataError(f"{path}: cannot write the output: {e.strerror or e}") from None
    try:
        with open(fd, "w", encoding="utf-8", newline="") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(e, OSError):
            raise DataError(f"{path}: cannot write the output: {e.strerror or e}") from None
        raise
