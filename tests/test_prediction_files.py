"""Files in and out for prediction: weibo_lstm.data.prediction_files.

The expected values are the Python rows the test files are built from (or bytes
written out by hand), and outputs are parsed back with the standard library's `csv`
and `json`, never with the module under test.
"""

import csv
import io
import json
import os

import numpy as np
import pytest

from tests.helpers import run_python
from weibo_lstm.data.prediction_files import read_lines, read_table, write_table
from weibo_lstm.errors import ConfigError, DataError

#: Texts that break naive readers and writers: emoticons, emoji (with modifiers and
#: joiners), full-width forms, delimiters, quotes and newlines inside a field.
HOSTILE_TEXTS = [
    "今天很开心[哈哈]^_^",
    "(╯°□°）╯︵ ┻━┻ 气死了",
    "笑死😂👍🏽 一家人👨‍👩‍👧",
    "全角，标点！ＡＢＣ１２３\u3000空格",
    '有逗号, 也有"引号"',
    "第一行\n第二行",
    "windows\r\n换行",
    "制表\t符",
    "  前后空格  ",
    "",
    "线\u2028分隔\x85符",
]


def _write(tmp_path, name, content, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def _csv_bytes(header, rows, delimiter=","):
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=delimiter).writerows([header, *rows])
    return out.getvalue().encode("utf-8")


def _one_line_error(info, path, *fragments):
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)), message
    for fragment in fragments:
        assert fragment in message, message


# ----------------------------------------------------------------- round trips
@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_delimited_round_trip_keeps_every_column_row_and_character(tmp_path, fmt):
    delimiter = "," if fmt == "csv" else "\t"
    rows = [[str(i), text, f"备注{i}"] for i, text in enumerate(HOSTILE_TEXTS)]
    source = _write(tmp_path, f"in.{fmt}", _csv_bytes(["id", "review", "note"], rows, delimiter))
    table = read_table(source)
    assert table.columns == ("id", "review", "note") and table.text_column == "review"
    assert table.texts == tuple(HOSTILE_TEXTS) and [list(r) for r in table.rows] == rows
    labels = ["积极" if t else "" for t in HOSTILE_TEXTS]
    scores = [i / 8 if t else None for i, t in enumerate(HOSTILE_TEXTS)]
    out = tmp_path / f"out.{fmt}"
    assert write_table(out, table, {"label": labels, "score": scores}) == ("label", "score")
    raw = out.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    parsed = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline=""), delimiter=delimiter))
    assert parsed[0] == ["id", "review", "note", "label", "score"]
    expected = [
        [*row, label, "" if score is None else repr(score)]
        for row, label, score in zip(rows, labels, scores, strict=True)
    ]
    assert parsed[1:] == expected


def test_csv_output_bytes_are_what_the_csv_module_would_write(tmp_path):
    content = 'review\n"a, ""b"""\n""\nc\n'
    table = read_table(_write(tmp_path, "in.csv", content))
    write_table(tmp_path / "out.csv", table, {"label": ["消极", "", "积极"]})
    expected = 'review,label\n"a, ""b""",消极\n,\nc,积极\n'
    assert (tmp_path / "out.csv").read_bytes().decode() == expected
    write_table(tmp_path / "same.csv", table, {})  # a lone empty field stays quoted
    assert (tmp_path / "same.csv").read_bytes().decode() == content


def test_jsonl_round_trip_keeps_values_and_adds_fields(tmp_path):
    objects = [
        {"id": i, "text": t, "meta": {"tags": ["微博", "😂"]}, "ok": i % 2 == 0}
        for i, t in enumerate(HOSTILE_TEXTS)
    ]
    lines = [json.dumps(o, ensure_ascii=i % 2 == 0) for i, o in enumerate(objects)]
    source = _write(tmp_path, "in.jsonl", "\n".join(lines) + "\n")
    table = read_table(source)
    assert table.columns == ("id", "text", "meta", "ok")
    assert table.texts == tuple(HOSTILE_TEXTS)
    labels = [f"L{i}" for i in range(len(objects))]
    write_table(tmp_path / "out.jsonl", table, {"label": labels})
    text = (tmp_path / "out.jsonl").read_text("utf-8")
    assert "😂" in text and "\u2028" in text and "\\u" not in text  # ensure_ascii=False
    back = [json.loads(line) for line in text.split("\n") if line]  # not splitlines: U+2028
    assert back == [{**o, "label": y} for o, y in zip(objects, labels, strict=True)]
    assert list(back[0]) == ["id", "text", "meta", "ok", "label"]


def test_jsonl_keys_absent_from_a_line_are_written_as_null(tmp_path):
    source = _write(tmp_path, "in.ndjson", '{"text": "好"}\n\n{"text": "坏", "id": 2}\n')
    table = read_table(source)
    assert table.columns == ("text", "id") and table.line_numbers == (1, 3)
    write_table(tmp_path / "out.jsonl", table, {"label": ["积极", "消极"]})
    back = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text("utf-8").splitlines()]
    assert back == [
        {"text": "好", "id": None, "label": "积极"},
        {"text": "坏", "id": 2, "label": "消极"},
    ]


def test_txt_round_trip_keeps_blank_lines_in_place(tmp_path):
    texts = [t for t in HOSTILE_TEXTS if "\n" not in t and "\r" not in t]
    lines = [texts[0], "", texts[1], "   ", *texts[2:], ""]
    source = _write(tmp_path, "in.txt", "\r\n".join(lines) + "\n")
    table = read_table(source)
    assert table.texts == tuple(lines) and table.line_numbers == tuple(range(1, len(lines) + 1))
    assert table.columns == ("text",) and table.rows == tuple((t,) for t in lines)
    scores = [float(i) for i in range(len(lines))]
    write_table(tmp_path / "out.txt", table, {"score": scores})
    out_lines = (tmp_path / "out.txt").read_text("utf-8").split("\n")
    assert out_lines[-1] == ""  # every line ends with a newline
    back = [json.loads(line) for line in out_lines[:-1]]
    assert back == [{"text": t, "score": s} for t, s in zip(lines, scores, strict=True)]


def test_cross_format_and_non_string_values(tmp_path):
    source = _write(tmp_path, "in.jsonl", '{"text": "好", "n": 1.5, "tags": ["a"], "x": null}\n')
    table = read_table(source)
    scores = np.array([0.94], np.float32)  # what a predictor returns
    write_table(tmp_path / "out.csv", table, {"score": scores, "label": np.array([1])})
    parsed = list(csv.reader(io.StringIO((tmp_path / "out.csv").read_text("utf-8"))))
    assert parsed == [
        ["text", "n", "tags", "x", "score", "label"],
        ["好", "1.5", '["a"]', "", "0.94", "1"],
    ]
    write_table(tmp_path / "out.json", table, {"score": scores}, format="jsonl")
    assert json.loads((tmp_path / "out.json").read_text("utf-8"))["score"] == 0.94


def test_a_new_column_named_like_an_input_column_gets_a_suffix(tmp_path):
    source = _write(tmp_path, "in.csv", "label,label_pred,review\n1,x,好\n")
    table = read_table(source)
    names = write_table(tmp_path / "out.csv", table, {"label": ["积极"], "score": [0.5]})
    assert names == ("label_pred2", "score")
    header = (tmp_path / "out.csv").read_text("utf-8").splitlines()[0]
    assert header == "label,label_pred,review,label_pred2,score"


def test_a_column_of_the_wrong_length_is_refused(tmp_path):
    table = read_table(_write(tmp_path, "in.txt", "a\nb\n"))
    with pytest.raises(ValueError, match=r"one value per row \(2\). Received: 1 for 'label'"):
        write_table(tmp_path / "out.txt", table, {"label": ["x"]})


# ------------------------------------------------------- rows and line numbers
def test_blank_texts_stay_in_place_with_their_line_numbers(tmp_path):
    content = 'id,text\n1,好\n2,""\n\n3,"两\n行"\n4,  \n5,坏\n'
    table = read_table(_write(tmp_path, "in.csv", content))
    assert table.texts == ("好", "", "两\n行", "  ", "坏")
    assert table.line_numbers == (2, 3, 5, 7, 8)
    assert [r[0] for r in table.rows] == ["1", "2", "3", "4", "5"]


# -------------------------------------------------------------- text column
@pytest.mark.parametrize(
    ("header", "text_column", "expected"),
    [
        ("id,Text,Review", None, "Review"),  # review before text, any case
        ("id,content,comment", None, "content"),
        ("body", None, "body"),  # the only column
        ("id,body,review", "body", "body"),
        ("id, Body ,review", "body", " Body "),  # the one name equal up to case and spaces
    ],
)
def test_text_column_detection(tmp_path, header, text_column, expected):
    width = header.count(",") + 1
    path = _write(
        tmp_path, "in.csv", header + "\n" + ",".join(f"v{i}" for i in range(width)) + "\n"
    )
    table = read_table(path, text_column=text_column)
    assert table.text_column == expected
    assert table.texts == (f"v{table.columns.index(expected)}",)


def test_text_column_errors_name_the_columns(tmp_path):
    path = _write(tmp_path, "in.csv", "id,body\n1,好\n")
    with pytest.raises(DataError) as info:
        read_table(path)
    _one_line_error(info, path, "['id', 'body'] (2)", "--text-column")
    with pytest.raises(DataError) as info:
        read_table(path, text_column="review")
    _one_line_error(info, path, "no column 'review'", "['id', 'body'] (2)")
    txt = _write(tmp_path, "in.txt", "好\n")
    with pytest.raises(DataError) as info:
        read_table(txt, text_column="review")
    _one_line_error(info, txt, "plain text", "--format")


def test_format_overrides_the_extension(tmp_path):
    path = _write(tmp_path, "posts.data", "review\tid\n好\t1\n")
    assert read_table(path).texts == ("review\tid", "好\t1")  # unknown extension: text
    assert read_table(path, format="tsv").texts == ("好",)
    with pytest.raises(ConfigError, match=r"Received: format='xlsx'"):
        read_table(path, format="xlsx")


# ---------------------------------------------------------------- encodings
@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8-sig"])
def test_reads_gbk_gb18030_and_bom_files(tmp_path, encoding):
    texts = ["质量很好，推荐！", "太差了", "𠀀€" if encoding != "gbk" else "一般"]
    csv_path = _write(tmp_path, "in.csv", "review\n" + "\n".join(texts) + "\n", encoding)
    txt_path = _write(tmp_path, "in.txt", "\n".join(texts), encoding)
    for path in (csv_path, txt_path):
        table = read_table(path)
        assert table.texts == tuple(texts)
        assert table.encoding == ("utf-8" if encoding == "utf-8-sig" else "gb18030")


@pytest.mark.parametrize(
    ("name", "content", "fragments"),
    [
        (
            "in.csv",
            "review\n好\n".encode() + b"\x81\xff\xfe\n",
            ("line 3", "not UTF-8 or GB18030/GBK"),
        ),
        ("in.txt", "好\n坏\n".encode("utf-16"), ("contains NUL bytes",)),
        ("in.jsonl", b"", ("the file is empty",)),
        ("in.txt", b"\n \n", ("the file is empty",)),
        ("in.csv", b'review,id\n"a,1\nb,2\n', ("line 2", "malformed CSV")),
        ("in.csv", b"review,id\na,1\nb,2,3\n", ("line 3", "expected 2 fields, found 3", "comma")),
        ("in.tsv", b"review\tid\na\n", ("line 2", "expected 2 fields, found 1", "tab")),
        ("in.jsonl", b'{"text": "a"}\n\n{"text": "b",}\n', ("line 3", "not valid JSON")),
        ("in.jsonl", b'{"text": "a"}\n["b"]\n', ("line 2", "expected a JSON object, found list")),
        ("in.jsonl", b'{"text": "a"}\n{"id": 1}\n', ("line 2", "'text' is missing or null")),
        ("in.jsonl", b'{"text": "a"}\n{"text": 5}\n', ("line 2", "'text' is not a string: 5")),
    ],
)
def test_bad_files_give_one_line_naming_file_and_line(tmp_path, name, content, fragments):
    path = _write(tmp_path, name, content)
    with pytest.raises(DataError) as info:
        read_table(path)
    _one_line_error(info, path, *fragments)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError) as info:
        read_table(tmp_path / "nope.csv")
    _one_line_error(info, tmp_path / "nope.csv", "no such file")
    with pytest.raises(DataError) as info:
        read_table(tmp_path, format="jsonl")
    _one_line_error(info, tmp_path, "is a directory; give the JSON lines file inside it")


# --------------------------------------------------------------------- stdin
def test_read_lines_strips_endings_and_bom_and_keeps_blank_lines():
    data = "\ufeff很好😂\r\n\n 差 \r\n全角，\u2028分隔\nlast".encode()
    assert list(read_lines(io.BytesIO(data))) == [
        (1, "很好😂"),
        (2, ""),
        (3, " 差 "),
        (4, "全角，\u2028分隔"),
        (5, "last"),
    ]


def test_read_lines_stops_at_the_first_line_that_is_not_utf8():
    data = "好\n还行\n".encode() + "很差\n".encode("gbk") + "好\n".encode()
    lines = read_lines(io.BytesIO(data))
    assert next(lines) == (1, "好") and next(lines) == (2, "还行")
    with pytest.raises(DataError) as info:
        next(lines)
    message = str(info.value)
    assert message.startswith("<stdin>, line 3: not UTF-8 text") and "\n" not in message


def test_read_lines_refuses_nul_bytes_and_text_streams():
    with pytest.raises(DataError, match=r"^<stdin>, line 1: contains NUL bytes"):
        list(read_lines(io.BytesIO("ok\n".encode("utf-16-le"))))
    with pytest.raises(TypeError, match=r"sys\.stdin\.buffer"):
        list(read_lines(io.StringIO("好\n")))


# -------------------------------------------------------------------- writing
def test_a_failed_write_leaves_the_old_output_and_no_temporary_file(tmp_path):
    rows = [[f"第{i}条", str(i)] for i in range(100_000)]
    table = read_table(_write(tmp_path, "in.csv", _csv_bytes(["review", "id"], rows)))
    out = _write(tmp_path, "out.csv", "old output\n")
    scores: list = [0.5] * len(table)
    scores[90_000] = object()  # not writable: fails after ~3 MB have gone to the temp file
    with pytest.raises(TypeError, match="not JSON serializable"):
        write_table(out, table, {"score": scores}, format="jsonl")
    assert out.read_text() == "old output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


def test_a_failed_rename_is_a_one_line_error_and_leaves_the_old_output(tmp_path, monkeypatch):
    table = read_table(_write(tmp_path, "in.txt", "好\n"))
    out = _write(tmp_path, "out.txt", "old\n")

    def deny(*args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", deny)
    with pytest.raises(DataError) as info:
        write_table(out, table, {"label": ["积极"]})
    _one_line_error(info, out, "cannot write the output: Permission denied")
    assert out.read_text() == "old\n" and len(list(tmp_path.iterdir())) == 2


def test_unwritable_destinations_are_one_line_errors(tmp_path):
    table = read_table(_write(tmp_path, "in.txt", "好\n"))
    blocker = _write(tmp_path, "blocker", "a file")
    for path, fragment in [
        (tmp_path, "is a directory"),
        (tmp_path / "missing" / "out.csv", "no such directory"),
        (blocker / "out.csv", "no such directory"),
    ]:
        with pytest.raises(DataError) as info:
            write_table(path, table, {"label": ["积极"]})
        _one_line_error(info, path, fragment)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_directory_is_a_one_line_error(tmp_path):
    table = read_table(_write(tmp_path, "in.txt", "好\n"))
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    with pytest.raises(DataError) as info:
        write_table(folder / "out.csv", table, {"label": ["积极"]})
    _one_line_error(info, folder / "out.csv", "cannot write the output")


# -------------------------------------------------------------- large and light
def test_a_100k_row_file_reads_whole(tmp_path):
    rows = [[str(i), f"第{i}条微博，很好😂" if i % 7 else ""] for i in range(100_000)]
    table = read_table(_write(tmp_path, "big.csv", _csv_bytes(["id", "content"], rows)))
    assert len(table) == 100_000 and table.text_column == "content"
    assert table.texts[99_999] == rows[99_999][1] and table.texts[7] == ""
    assert table.line_numbers[-1] == 100_001


def test_importing_the_module_loads_no_tensorflow_keras_sklearn_or_numpy(repo_root):
    code = (
        "import sys\n"
        "import weibo_lstm.data.prediction_files\n"
        "heavy = ('tensorflow', 'keras', 'sklearn', 'numpy')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    assert run_python(code, repo_root).strip().splitlines()[-1] == "[]"
