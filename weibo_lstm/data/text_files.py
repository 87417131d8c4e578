"""Reading a user's text file: UTF-8 (with or without BOM) or GB18030/GBK, one-line errors.

Shared by `csv_files.load_csv` (labelled training data) and `prediction_files.read_table`
(files to score), so both accept and refuse the same files with the same messages, and
look for the text in the same columns. No NumPy or TensorFlow here.
"""

from __future__ import annotations

from pathlib import Path

from weibo_lstm.errors import DataError

#: Columns that hold the text, by name (any case), in order of preference. The seed's
#: two formats are `label,review` (weibo_senti_100k.csv) and `evaluation,label` (all_utf8.csv).
TEXT_COLUMNS = ("review", "evaluation", "text", "content", "comment", "sentence")

# The order matters: a GBK file can look like valid UTF-8 only by accident, the
# reverse is common, so UTF-8 (with or without BOM) is tried first.
ENCODINGS = ("utf-8-sig", "gb18030")


def check_file(path: Path, *, kind: str = "CSV") -> None:
    """Raises `DataError` (one line) unless `path` is a file: cheap, for a command to
    answer a wrong path before it starts TensorFlow.

    >>> check_file(Path("missing.csv"))
    Traceback (most recent call last):
    ...
    weibo_lstm.errors.DataError: missing.csv: no such file
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a directory; give the {kind} file inside it")
    if not path.is_file():
        raise DataError(f"{path}: no such file")


def read_text_file(path: Path, *, kind: str = "CSV") -> tuple[str, str]:
    """The decoded text of `path` and the encoding it was read with.

    Args:
        path: the file.
        kind: what the file should be (`"CSV"`, `"JSON lines"`, ...), for the messages.

    Returns:
        `(text, encoding)`, the encoding `"utf-8"` (a BOM is dropped) or `"gb18030"`.

    Raises:
        DataError: one line naming the file (and the line, where one applies): a
            directory, a missing, unreadable or empty (blank) file, NUL bytes (binary
            or UTF-16), or bytes that are neither UTF-8 nor GB18030.

    Example:

    >>> import pathlib, tempfile
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "gbk.txt"
    >>> _ = f.write_bytes("很好\\n".encode("gbk"))
    >>> read_text_file(f, kind="text")
    ('很好\\n', 'gb18030')
    >>> _ = f.write_bytes(b"ok\\n\\xff\\xfe\\x81\\n")
    >>> read_text_file(f, kind="text")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    weibo_lstm.errors.DataError: ...gbk.txt, line 2: not UTF-8 or GB18030/GBK text; save it as UTF-8 text
    """
    check_file(path, kind=kind)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read the file: {e.strerror or e}") from None
    if not raw.strip():
        raise DataError(f"{path}: the file is empty")
    if b"\x00" in raw:
        line = _line_of(raw, raw.index(b"\x00"))
        raise DataError(
            f"{path}, line {line}: contains NUL bytes: "
            f"a binary file or UTF-16 text; save it as UTF-8 {kind}"
        )
    failed_at = 0
    for encoding in ENCODINGS:
        try:
            return raw.decode(encoding), ("gb18030" if encoding == "gb18030" else "utf-8")
        except UnicodeDecodeError as e:
            # The encoding that read further is the one the file was meant to be in.
            failed_at = max(failed_at, e.start)
    raise DataError(
        f"{path}, line {_line_of(raw, failed_at)}: not UTF-8 or GB18030/GBK text; "
        f"save it as UTF-8 {kind}"
    )


def _line_of(raw: bytes, offset: int) -> int:
    return raw.count(b"\n", 0, offset) + 1
