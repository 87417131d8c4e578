"""NgramLogisticRegression against scikit-learn's TfidfVectorizer + LogisticRegression."""

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from weibo_lstm.models.ngram_logistic import NgramLogisticRegression, ngram_keys


def _rows(rng, n):
    rows = [list(rng.integers(1, 40, rng.integers(1, 12))) for _ in range(n)]
    labels = np.array([int(sum(r) % 3 == 0 or 7 in r) for r in rows])
    return rows, labels


def _ragged(rows):
    values = np.concatenate([np.asarray(r, np.int32) for r in rows])
    return values, np.concatenate([[0], np.cumsum([len(r) for r in rows])])


def _dense(rows):
    width = max(len(r) for r in rows) + 2  # extra padding columns must not matter
    ids = np.zeros((len(rows), width), np.int32)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
    return ids


def _ngrams(row):
    return [" ".join(map(str, row[i : i + n])) for n in (1, 2, 3) for i in range(len(row) - n + 1)]


def test_logits_match_sklearn_tfidf_and_logistic_regression():
    rng = np.random.default_rng(0)
    train, labels = _rows(rng, 300)
    test, _ = _rows(rng, 50)
    layer = NgramLogisticRegression.fit(*_ragged(train), labels, min_df=2, C=4.0, tol=1e-6)

    # Independent reference: scikit-learn on the same n-grams spelled as strings.
    vectorizer = TfidfVectorizer(analyzer=_ngrams, sublinear_tf=True, min_df=2)
    reference = LogisticRegression(C=4.0, max_iter=3000, tol=1e-6)
    reference.fit(vectorizer.fit_transform(train), labels)
    expected = reference.decision_function(vectorizer.transform(test))

    assert layer.vocabulary_size == len(vectorizer.vocabulary_)
    np.testing.assert_allclose(layer(_dense(test)).numpy(), expected, atol=1e-4)


def test_host_decision_function_matches_the_graph_and_sklearn():
    rng = np.random.default_rng(1)
    train, labels = _rows(rng, 300)
    test, _ = _rows(rng, 60)
    layer = NgramLogisticRegression.fit(*_ragged(train), labels, tol=1e-6)
    host = layer.decision_function(*_ragged(test))
    np.testing.assert_allclose(host, layer(_dense(test)).numpy(), atol=1e-5)
    vectorizer = TfidfVectorizer(analyzer=_ngrams, sublinear_tf=True, min_df=2)
    reference = LogisticRegression(C=4.0, max_iter=3000, tol=1e-6)
    reference.fit(vectorizer.fit_transform(train), labels)
    np.testing.assert_allclose(
        host, reference.decision_function(vectorizer.transform(test)), atol=1e-4
    )
    with pytest.raises(ValueError, match="unpadded"):
        layer.decision_function(np.array([3, 0]), np.array([0, 2]))


def test_max_features_keeps_the_most_frequent_ngrams_as_sklearn_does():
    rng = np.random.default_rng(2)
    train, labels = _rows(rng, 300)
    vectorizer = TfidfVectorizer(analyzer=_ngrams, sublinear_tf=True, min_df=2)
    counts = np.asarray(
        TfidfVectorizer(analyzer=_ngrams, min_df=2, use_idf=False, norm=None)
        .fit_transform(train)
        .sum(0)
    ).ravel()
    # A cut where the n-gram counts differ, so that ties cannot decide the set.
    ordered = np.sort(counts)[::-1]
    limit = next(k for k in range(50, len(ordered)) if ordered[k - 1] > ordered[k])
    vectorizer.set_params(max_features=limit)
    reference = LogisticRegression(C=4.0, max_iter=3000, tol=1e-6)
    reference.fit(vectorizer.fit_transform(train), labels)
    layer = NgramLogisticRegression.fit(*_ragged(train), labels, max_features=limit, tol=1e-6)
    assert layer.vocabulary_size == limit == len(vectorizer.vocabulary_) < len(counts)
    test, _ = _rows(rng, 40)
    expected = reference.decision_function(vectorizer.transform(test))
    np.testing.assert_allclose(layer(_dense(test)).numpy(), expected, atol=1e-4)


def test_host_keys_match_the_in_graph_keys_and_stay_within_rows():
    rows, keys = ngram_keys(np.array([5, 6, 7, 8, 9]), np.array([0, 3, 5]))
    # Row 0 = [5, 6, 7]: 3 unigrams, 2 bigrams, 1 trigram; row 1 = [8, 9]: 2 + 1.
    assert np.bincount(rows).tolist() == [6, 3]
    assert (6 << 21 | 7) in keys and (7 << 21 | 8) not in keys  # no n-gram across rows
    assert (5 << 42 | 6 << 21 | 7) in keys


def test_unknown_ngrams_and_padding_are_ignored():
    layer = NgramLogisticRegression.fit(
        np.array([2, 3, 2, 4, 5, 4]), np.array([0, 3, 6]), np.array([1, 0]), min_df=1
    )
    unknown = layer(np.array([[30, 31, 0, 0]])).numpy()[0]
    assert unknown == pytest.approx(float(layer.intercept.numpy()))
    padded = layer(np.array([[2, 3, 2, 0, 0, 0]])).numpy()
    np.testing.assert_allclose(padded, layer(np.array([[2, 3, 2]])).numpy(), rtol=1e-6)


def test_serialization_round_trip_keeps_the_weights(tmp_path, serialization_round_trip):
    import keras

    rng = np.random.default_rng(1)
    train, labels = _rows(rng, 100)
    layer = NgramLogisticRegression.fit(*_ragged(train), labels)
    ids = _dense(train[:10])
    restored = serialization_round_trip(layer, lambda obj: obj(ids).shape)
    inputs = keras.Input((None,), dtype="int32")
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "linear.keras")
    loaded = keras.models.load_model(tmp_path / "linear.keras")
    np.testing.assert_allclose(loaded(ids).numpy(), layer(ids).numpy(), rtol=1e-6)
    assert restored.vocabulary_size == layer.vocabulary_size
