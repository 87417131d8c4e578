"""Calibrated scores: the fitted temperature, the scaled probabilities in every engine."""

import numpy as np
import pytest

import weibo_lstm as wl
from tests.synthetic import EDGE_CASE_TEXTS
from weibo_lstm.models.calibration import (
    expected_calibration_error,
    fit_temperature,
    temperature_scaled,
)
from weibo_lstm.serving.numpy_predictor import NumpyPredictor


def test_the_fitted_temperature_minimises_the_negative_log_likelihood():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 500)
    logits = rng.normal(size=(500, 3)) + 3 * np.eye(3)[labels] * (rng.random(500) < 0.6)[:, None]
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    fitted = fit_temperature(probabilities, labels)
    # By brute force: the negative log-likelihood on a fine grid of temperatures.
    grid = np.linspace(0.2, 5, 4801)
    nll = [
        -np.log(temperature_scaled(probabilities, t)[np.arange(500), labels]).sum() for t in grid
    ]
    assert fitted == pytest.approx(grid[int(np.argmin(nll))], abs=2e-3)


def test_expected_calibration_error_by_hand():
    probabilities = np.array([[0.8, 0.2], [0.7, 0.3], [0.4, 0.6], [0.1, 0.9]])
    labels = np.array([0, 1, 1, 1])
    # Bins of width 1/15: 0.6 → bin 9, 0.7 → bin 10, 0.8 → bin 12, 0.9 → bin 13, one row
    # each: |0.6 - 1| + |0.7 - 0| + |0.8 - 1| + |0.9 - 1|, over 4 rows.
    expected = (0.4 + 0.7 + 0.2 + 0.1) / 4
    assert expected_calibration_error(probabilities, labels) == pytest.approx(expected)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory, texts_and_labels, make_classifier):
    # Noisy labels and held-out validation rows: a temperature well inside its bounds.
    texts, labels = texts_and_labels(240, seed=11, noise=0.25)
    train = wl.LabeledTexts(texts[:160], labels[:160])
    data = wl.LabeledTexts(texts[160:], labels[160:])
    classifier = make_classifier(texts, batch_norm=False)
    classifier.fit(train, data, epochs=2, batch_size=16, learning_rate=1e-2, quiet=True)
    path = classifier.save(tmp_path_factory.mktemp("calibrated") / "model")
    return classifier, data, path


def test_fit_calibrates_the_served_network_and_the_score_is_the_hand_computation(calibrated):
    classifier, data, path = calibrated
    # The stack's mixing is itself a logistic regression fitted on validation, so its
    # fitted temperature stays near 1 (a deep-only classifier's moves more: below).
    assert isinstance(classifier.model, wl.WideAndDeep) and 0.5 < classifier.model.temperature < 2
    texts = list(data.texts[:20])
    raw_classifier = wl.SentimentClassifier.load(path)  # each load traces afresh
    raw_classifier.model.temperature = 1.0
    hot = wl.SentimentClassifier.load(path)
    hot.model.temperature = 2.5
    raw, scaled = raw_classifier.predict(texts), hot.predict(texts)
    # Two classes: P(积极) = sigmoid(logit / T), logit the stack's log-odds.
    raw64 = np.clip(raw.astype(np.float64), 1e-12, 1)
    logit = np.log(raw64[:, 1]) - np.log(raw64[:, 0])
    np.testing.assert_allclose(scaled[:, 1], 1 / (1 + np.exp(-logit / 2.5)), atol=1e-5)
    assert (scaled.argmax(1) == raw.argmax(1)).all()  # the labels stay
    assert np.abs(scaled - raw).max() > 1e-3  # and the scores soften
    # A temperature set after predicting is applied too (nothing traced keeps the old).
    raw_classifier.model.temperature = 2.5
    np.testing.assert_allclose(raw_classifier.predict(texts), scaled, atol=1e-6)
    rows = raw_classifier.tokenize(data.subset(np.arange(20)))
    np.testing.assert_allclose(raw_classifier.predict_examples(rows), scaled, atol=1e-5)
    raw_classifier.model.temperature = 1.0  # and back, with one evaluator kept, not one per T
    np.testing.assert_allclose(raw_classifier.predict_examples(rows), raw, atol=1e-5)
    assert list(raw_classifier._evaluators) == ["model"]
    # The report kept with the model: its ECE on validation, before and after.
    report = wl.SentimentClassifier.load(path).metadata["calibration"]
    assert report["temperature"] == classifier.model.temperature
    assert report["rows"] == len(data.texts)
    raw_all = raw_classifier.predict(list(data.texts))
    labels = np.asarray(data.labels)
    before = expected_calibration_error(raw_all, labels)
    after = expected_calibration_error(temperature_scaled(raw_all, report["temperature"]), labels)
    assert report["ece_before"] == pytest.approx(before, abs=2e-3)
    assert report["ece_after"] == pytest.approx(after, abs=2e-3)


def test_every_engine_applies_the_temperature(calibrated, tmp_path, load_in_fresh_process):
    classifier, _, path = calibrated
    texts = [t for t in EDGE_CASE_TEXTS if t.strip()]
    expected = classifier.predict(texts)
    np.testing.assert_allclose(
        NumpyPredictor(path).predict(texts)["probabilities"], expected, atol=1e-5
    )
    np.testing.assert_allclose(
        wl.SentimentClassifier.load(path).predict(texts), expected, atol=1e-5
    )
    exported = classifier.export(tmp_path / "serving")
    served = load_in_fresh_process(exported, [t.encode() for t in texts], tmp_path)
    np.testing.assert_allclose(served["outputs"]["probabilities"], expected, atol=1e-5)


def test_a_deep_only_classifier_is_calibrated_too(texts_and_labels, make_classifier, tmp_path):
    texts, labels = texts_and_labels(240, seed=12, noise=0.25)
    train, data = (
        wl.LabeledTexts(texts[:160], labels[:160]),
        wl.LabeledTexts(texts[160:], labels[160:]),
    )
    classifier = make_classifier(texts, batch_norm=False)
    classifier.fit(train, data, epochs=2, batch_size=16, learning_rate=1e-2, quiet=True, wide=False)
    assert classifier.model is classifier.deep and abs(classifier.deep.temperature - 1.0) > 0.01
    path = classifier.save(tmp_path / "deep")
    texts = list(data.texts[:10])
    np.testing.assert_allclose(
        NumpyPredictor(path).predict(texts)["probabilities"], classifier.predict(texts), atol=1e-5
    )
