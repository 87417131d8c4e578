"""HybridClassifier: stacking a neural classifier and NgramLogisticRegression."""

import numpy as np
import pytest
import tensorflow as tf

from weibo_lstm import LabeledTexts, Tokenizer, WeiboLSTM
from weibo_lstm.models.hybrid import HybridClassifier, fit_mixing
from weibo_lstm.models.ngram_logistic import NgramLogisticRegression
from weibo_lstm.preprocessing.tokenized_examples import TokenizedExamples
from weibo_lstm.serving.export import export


@pytest.fixture(scope="module")
def hybrid(texts_and_labels):
    texts, labels = texts_and_labels(300, seed=3)
    tokenizer = Tokenizer(max_length=32)
    tokenizer.adapt(texts)
    examples = TokenizedExamples.from_texts(tokenizer, LabeledTexts(texts, labels))
    linear = NgramLogisticRegression.fit(examples.values, examples.row_splits, examples.labels)
    model = WeiboLSTM(tokenizer.vocabulary_size, embedding_dim=8, lstm_units=(8,), dense_units=0)
    return HybridClassifier(model, linear, mixing=(0.7, 1.3, -0.2)), tokenizer, texts


def test_probabilities_follow_the_stacking_formula(hybrid):
    model, tokenizer, texts = hybrid
    ids = tokenizer(texts[:20])
    neural = model.classifier(ids).numpy()[:, 1]
    linear = model.linear(ids).numpy()
    expected = 1 / (1 + np.exp(-(0.7 * np.log(neural / (1 - neural)) + 1.3 * linear - 0.2)))
    probabilities = model(ids).numpy()
    np.testing.assert_allclose(probabilities[:, 1], expected, rtol=1e-5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)


def test_fit_mixing_prefers_the_informative_model():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 1000)
    informative = np.where(labels == 1, 2.0, -2.0) + rng.normal(size=1000)
    noise = 1 / (1 + np.exp(-rng.normal(size=1000)))
    a, b, _ = fit_mixing(np.stack([1 - noise, noise], 1), informative, labels)
    assert b > 0.5 and abs(a) < 0.3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_mixing_matches_a_bounded_optimizer_when_a_weight_would_be_negative(seed):
    """Two correlated parts, one nearly a copy of the other: unconstrained, one weight
    goes negative. The constrained fit equals scipy's L-BFGS-B with bounds a, b ≥ 0 on
    the same objective (C · Σ log-loss + ½‖w‖², bias unpenalised)."""
    from scipy.optimize import minimize
    from sklearn.linear_model import LogisticRegression

    from weibo_lstm.models.hybrid import MIXING_C
    from weibo_lstm.models.stacking import log_odds

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 3000)
    signal = np.where(labels == 1, 1.0, -1.0) + rng.normal(size=3000)
    deep_logit = 2.0 * signal
    linear = 1.5 * signal + 0.3 * rng.normal(size=3000) - 0.4 * np.where(labels == 1, 1, -1)
    deep = np.stack([1 / (1 + np.exp(deep_logit)), 1 / (1 + np.exp(-deep_logit))], 1)
    features = np.stack([log_odds(deep), linear], 1)
    free = LogisticRegression(C=MIXING_C, max_iter=1000).fit(features, labels).coef_[0]
    assert free.min() < 0  # the case this test is about

    def objective(x):
        logits = features @ x[:2] + x[2]
        return MIXING_C * np.sum(np.logaddexp(0, logits) - labels * logits) + 0.5 * x[:2] @ x[:2]

    reference = minimize(
        objective, np.zeros(3), method="L-BFGS-B", bounds=[(0, None), (0, None), (None, None)]
    )
    mixing = np.array(fit_mixing(deep, linear, labels))
    assert mixing[:2].min() >= 0
    np.testing.assert_allclose(mixing, reference.x, atol=2e-3)
    assert objective(mixing) <= reference.fun + 1e-3 * abs(reference.fun)


def test_save_load_and_export_with_plain_tensorflow(
    hybrid, tmp_path, edge_case_texts, load_in_fresh_process
):
    import keras

    model, tokenizer, texts = hybrid
    ids = tokenizer(texts[:10])
    model.save(tmp_path / "hybrid.keras")
    loaded = keras.models.load_model(tmp_path / "hybrid.keras")
    np.testing.assert_allclose(loaded(ids).numpy(), model(ids).numpy(), rtol=1e-6)

    path = export(model, tokenizer, tmp_path / "serving")
    edge_cases = edge_case_texts
    report = load_in_fresh_process(path, edge_cases, tmp_path)
    assert report["non_core_ops"] == [] and report["loaded_forbidden"] == []
    expected = model(tokenizer(tf.constant(edge_cases)), training=False).numpy()
    np.testing.assert_allclose(report["outputs"]["probabilities"], expected, atol=1e-5)
