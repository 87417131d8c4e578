import re

import numpy as np
import pytest
import tensorflow as tf

from weibo_lstm import Tokenizer

MIXED = [
    "@张晓鹏jonathan 土耳其的事要认真对待[哈哈]，否则直接开除。",
    "美~~~~~[爱你] http://t.cn/zOXAaic 😀😀",
    "ＡＢＣ全角ｘｙｚ１２３！　ok?  [good]  [泪][泪]",
    "[分享自 @百度知道] 今天天气不错 ＃话题＃",
    "",
    "   \t\n ",
    "WeiBo 微博 emoji🙂 mixed ［赞］ end",
]

# The documented normalisation, implemented independently with Python's `re`.
_WS = "\t\n\f\r "
_EMOTICON = re.compile(rf"[\[［][^\[\]［］{_WS}]{{1,10}}[\]］]")
_SPACES = re.compile(rf"[{_WS}\u00a0\u3000]+")


def reference_normalize(text, strip_emoticons=False):
    if strip_emoticons:
        text = _EMOTICON.sub("", text)
    text = _SPACES.sub(" ", text).strip(" ")
    out = []
    for ch in text:
        cp = ord(ch)
        if 0xFF01 <= cp <= 0xFF5E:
            cp -= 0xFEE0
        if 0x41 <= cp <= 0x5A:
            cp += 0x20
        out.append(chr(cp))
    return "".join(out)


def reference_ids(text, vocabulary, max_length, strip_emoticons=False):
    index = {ch: i for i, ch in enumerate(vocabulary, start=2)}
    ids = [index.get(ch, 1) for ch in reference_normalize(text, strip_emoticons)][:max_length]
    return ids or [1]


@pytest.fixture
def tokenizer():
    t = Tokenizer(max_length=24)
    t.adapt(MIXED[:4])
    return t


def test_adapt_orders_by_frequency_then_codepoint():
    t = Tokenizer()
    t.adapt(["bba", "cab", "ddd d"])
    # b: 3, d: 4, a: 2, space: 1, c: 1 (ties by code point: " " < "c").
    assert t.vocabulary == ["d", "b", "a", " ", "c"]
    assert t.vocabulary_size == 7


def test_adapt_min_count_and_max_tokens():
    texts = ["aaaabbbccd"]
    t = Tokenizer(min_count=2)
    t.adapt(texts)
    assert t.vocabulary == ["a", "b", "c"]
    t = Tokenizer(max_tokens=4)
    t.adapt(texts)
    assert t.vocabulary == ["a", "b"] and t.vocabulary_size == 4


@pytest.mark.parametrize("strip", [False, True])
def test_ids_match_plain_python_reference(tokenizer, strip):
    tokenizer = Tokenizer(tokenizer.vocabulary, max_length=24, strip_emoticons=strip)
    ragged = tokenizer(MIXED, ragged=True).to_list()
    dense = tokenizer(MIXED).numpy()
    assert dense.dtype == np.int32 and dense.shape == (len(MIXED), 24)
    for text, row, dense_row in zip(MIXED, ragged, dense, strict=True):
        expected = reference_ids(text, tokenizer.vocabulary, 24, strip)
        assert row == expected, text
        assert dense_row.tolist() == expected + [0] * (24 - len(expected))


def test_normalisation_details(tokenizer):
    assert reference_normalize("ＡＢＣ　Ｘ") == "abc x"
    t = Tokenizer(list("abcx [哈]"), max_length=20)
    assert t(["ＡＢＣ　ｘ"], ragged=True).to_list() == [[2, 3, 4, 6, 5]]
    stripper = Tokenizer(list("abcx [哈]好"), strip_emoticons=True)
    # Emoticons removed; a bracket with a space in it is ordinary text.
    assert stripper(["好[哈哈]好［哈］"], ragged=True).to_list() == [[10, 10]]
    assert stripper(["[哈 哈]"], ragged=True).to_list() == [[7, 8, 6, 8, 9]]


def test_emoticon_only_and_empty_texts_give_one_token(tokenizer):
    stripper = Tokenizer(tokenizer.vocabulary, strip_emoticons=True)
    rows = stripper(["[哈哈][泪]", "", "  ", "\u3000"], ragged=True).to_list()
    assert rows == [[1], [1], [1], [1]]


def test_truncation_and_padding_options(tokenizer):
    long_text = "哈" * 100
    assert tokenizer([long_text]).shape == (1, 24)
    assert tokenizer([long_text], ragged=True).row_lengths().numpy().tolist() == [24]
    short = tokenizer(["哈", "哈哈哈"], pad_to_max_length=False)
    assert short.shape == (2, 3)
    assert tokenizer("哈哈").shape == (24,)


def test_eager_function_and_dataset_agree(tokenizer):
    eager = tokenizer(MIXED).numpy()
    graph = tf.function(lambda x: tokenizer(x))(tf.constant(MIXED)).numpy()
    ds = tf.data.Dataset.from_tensor_slices(MIXED).batch(3).map(tokenizer)
    mapped = np.concatenate([b.numpy() for b in ds])
    np.testing.assert_array_equal(eager, graph)
    np.testing.assert_array_equal(eager, mapped)
    ragged = tf.data.Dataset.from_tensor_slices(MIXED).map(lambda x: tokenizer(x, ragged=True))
    for row, expected in zip(ragged, tokenizer(MIXED, ragged=True).to_list(), strict=True):
        assert row.numpy().tolist() == expected


def test_invalid_utf8_is_replaced_not_fatal(tokenizer):
    t = Tokenizer(list("ok \ufffd"))
    # Each invalid byte becomes U+FFFD.
    assert t(tf.constant([b"\xff\xfe ok"]), ragged=True).to_list() == [[5, 5, 4, 2, 3]]


def test_save_load_round_trip(tmp_path, tokenizer):
    tokenizer = Tokenizer(
        [*tokenizer.vocabulary, "\t", "\u2028"], max_length=24, strip_emoticons=True
    )
    tokenizer.save(tmp_path)
    vocab_lines = (tmp_path / "vocabulary.tsv").read_text("utf-8").splitlines()
    assert vocab_lines[:3] == ["id\tcodepoint\tchar", "0\t-\t<pad>", "1\t-\t<oov>"]
    assert vocab_lines[3].startswith("2\tU+")
    loaded = Tokenizer.load(tmp_path)
    assert loaded.get_config() == tokenizer.get_config()
    np.testing.assert_array_equal(loaded(MIXED).numpy(), tokenizer(MIXED).numpy())


def test_config_round_trip(tokenizer, serialization_round_trip):
    serialization_round_trip(tokenizer, lambda t: t(MIXED))


def test_errors():
    with pytest.raises(ValueError, match="no vocabulary"):
        Tokenizer()(["x"])
    with pytest.raises(ValueError, match="Received: max_length=0"):
        Tokenizer(max_length=0)
    with pytest.raises(ValueError, match="single characters"):
        Tokenizer(["ab"])
    with pytest.raises(ValueError, match="unique"):
        Tokenizer(["a", "a"])
