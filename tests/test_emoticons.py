"""Emoticon labels: the audit, emoticon dropout, and the stripped test accuracy."""

import logging

import numpy as np
import pytest

from tests.synthetic import texts_and_labels
from weibo_lstm import LabeledTexts, SentimentClassifier
from weibo_lstm.data.emoticons import (
    choose_emoticon_dropout,
    drop_emoticons,
    emoticon_audit,
    emoticons,
)


def emoticon_labelled(n, seed=0):
    """Posts whose only cue is an emoticon half the time (as weibo_senti_100k)."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = int(rng.random() < 0.5)
        word = ("好" if label else "差") if rng.random() < 0.5 else "的"
        texts.append(f"今天{word}{i % 13}" + ("[哈哈]" if label else "[泪]"))
        labels.append(label)
    return LabeledTexts(texts, labels)


def tiny_classifier(train):
    return SentimentClassifier.from_preset(
        "best",
        vocabulary_texts=train.texts,
        max_length=24,
        embedding_dim=8,
        lstm_units=(8,),
        bigram_buckets=0,
    )


def test_the_audit_finds_emoticon_labels_and_only_them():
    audit = emoticon_audit(emoticon_labelled(200))
    assert audit.share == 1.0 and audit.agreement == 1.0 and audit.labels_from_emoticons
    words_only = LabeledTexts(["好吃", "难吃", "很好", "很差"] * 10, [1, 0, 1, 0] * 10)
    assert emoticon_audit(words_only) == type(audit)(0.0, 0.0, False)
    # Emoticons that do not follow the labels are not a leak.
    mixed = LabeledTexts(["好[哈哈]", "差[哈哈]", "好[泪]", "差[泪]"] * 10, [1, 0, 1, 0] * 10)
    assert not emoticon_audit(mixed).labels_from_emoticons


def test_drop_emoticons_strips_a_seeded_share_and_keeps_labels():
    data = emoticon_labelled(2000, seed=1)
    dropped = drop_emoticons(data, 0.5, seed=7)
    stripped = [t for t in dropped.texts if not emoticons(t)]
    assert abs(len(stripped) / len(data) - 0.5) < 0.05
    assert dropped.texts == drop_emoticons(data, 0.5, seed=7).texts  # seeded
    np.testing.assert_array_equal(dropped.labels, data.labels)
    for before, after in zip(data.texts, dropped.texts, strict=True):
        assert after in (before, before.replace("[哈哈]", "").replace("[泪]", ""))
    assert drop_emoticons(LabeledTexts(["[泪]"], [0]), 1.0).texts == ("[泪]",)  # never empty
    with pytest.raises(ValueError, match="share"):
        drop_emoticons(data, 1.5)


@pytest.mark.parametrize("corpus, expected", [("emoticons", 0.7), ("words", 0.0)])
def test_fit_decides_emoticon_dropout_from_the_audit_and_says_so(
    corpus, expected, caplog, monkeypatch
):
    if corpus == "emoticons":
        train = emoticon_labelled(128)
    else:
        texts, labels = texts_and_labels(128, seed=3)
        train = LabeledTexts([t.replace("[", "").replace("]", "") for t in texts], labels)
    with caplog.at_level(logging.INFO, logger="weibo_lstm"):
        assert choose_emoticon_dropout(train, None) == expected
    said = [r.getMessage() for r in caplog.records if "follow the emoticons" in r.getMessage()]
    assert len(said) == int(expected > 0)
    assert choose_emoticon_dropout(train, 0.2) == 0.2  # a given share is kept
    with pytest.raises(ValueError, match=r"Received: emoticon_dropout=1\.5"):
        choose_emoticon_dropout(train, 1.5)
    # `fit` decides it the same way, and drops that share of the training posts'
    # emoticons (seeded by the data order's seed) before it tokenizes them.
    import weibo_lstm.tasks.sentiment_classifier as module

    seen = []

    def spy(data, share, *, seed):
        seen.append((len(data), share, seed))
        return drop_emoticons(data, share, seed=seed)

    monkeypatch.setattr(module, "drop_emoticons", spy)
    classifier = tiny_classifier(train)
    classifier.fit(train, train, epochs=1, batch_size=32, quiet=True, wide=False, seed=3)
    assert classifier.emoticon_dropout == expected
    assert seen == ([(len(train), expected, 3)] if expected else [])


@pytest.mark.parametrize("share", [0.5, 0.0])
def test_the_mixing_sees_the_emoticon_posts_raw_and_stripped_under_emoticon_dropout(
    share, monkeypatch
):
    import weibo_lstm.tasks.wide_part as module

    train = emoticon_labelled(128, seed=2)
    validation = LabeledTexts(
        [*emoticon_labelled(48, seed=3).texts, "好", "差"],
        [*emoticon_labelled(48, seed=3).labels, 1, 0],
    )
    classifier = tiny_classifier(train)
    seen = []

    def spy(deep, train_rows, mixing_rows, *args, emoticon_ids=(), **kwargs):
        seen.append((mixing_rows, emoticon_ids))
        return real(deep, train_rows, mixing_rows, *args, emoticon_ids=emoticon_ids, **kwargs)

    real = module.WideAndDeep.fit
    monkeypatch.setattr(module.WideAndDeep, "fit", spy)
    classifier.fit(train, validation, epochs=1, batch_size=32, quiet=True, emoticon_dropout=share)
    ((rows, ids),) = seen
    if share:
        # Every validation post, then the 48 with an emoticon again without it.
        stripped = [t.replace("[哈哈]", "").replace("[泪]", "") for t in validation.texts[:48]]
        reference = LabeledTexts(
            [*validation.texts, *stripped], [*validation.labels, *validation.labels[:48]]
        )
        assert ids == tuple(classifier.tokenizer(["["], ragged=True).flat_values.numpy())
        assert classifier.model.emoticon_mixing is not None
    else:
        reference = validation
        assert ids == () and classifier.model.emoticon_mixing is None
    expected = classifier.tokenize(reference)
    np.testing.assert_array_equal(rows.values, expected.values)
    np.testing.assert_array_equal(rows.labels, expected.labels)
