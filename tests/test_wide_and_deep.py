"""WideAndDeep: stacking a neural classifier and NgramLogisticRegression."""

import numpy as np
import pytest

from tests.helpers import windowed_reference
from weibo_lstm import LabeledTexts, Tokenizer, WeiboLSTM
from weibo_lstm.models.ngram_logistic import NgramLogisticRegression
from weibo_lstm.models.stacking import fit_mixing
from weibo_lstm.models.wide_and_deep import WideAndDeep
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
    model(tokenizer(texts[:4]))  # built, as a trained one is (unbuilt, it saves no weights)
    return WideAndDeep(model, linear, mixing=(0.7, 1.3, -0.2)), tokenizer, texts


@pytest.fixture(scope="module")
def gated_hybrid(hybrid):
    """The same parts with a second mixing for rows holding an opening bracket."""
    model, tokenizer, texts = hybrid
    brackets = tuple(tokenizer(["[", "［"], ragged=True).flat_values.numpy().tolist())
    gated = WideAndDeep(
        model.deep,
        model.wide,
        mixing=(0.7, 1.3, -0.2),
        emoticon_mixing=(1.6, 0.2, 0.4),
        emoticon_ids=tuple(i for i in brackets if i > 1),
    )
    return gated, tokenizer, texts


def test_emoticon_mixing_applies_to_the_rows_with_an_emoticon(gated_hybrid):
    model, tokenizer, texts = gated_hybrid
    probe = [*texts[:10], "好[哈哈]", "差［泪］", "[", "没有表情"]
    ids = tokenizer(probe)
    deep = model.deep(ids).numpy()[:, 1]
    linear = model.wide(ids).numpy()
    marked = np.array(["[" in t or "［" in t for t in probe])
    assert marked.any() and not marked.all()
    a, b, c = np.where(marked[None], np.array([[1.6], [0.2], [0.4]]), [[0.7], [1.3], [-0.2]])
    expected = 1 / (1 + np.exp(-(a * np.log(deep / (1 - deep)) + b * linear + c)))
    np.testing.assert_allclose(model(ids).numpy()[:, 1], expected, rtol=1e-5)
    with pytest.raises(ValueError, match="go together"):
        WideAndDeep(model.deep, model.wide, emoticon_mixing=(1.0, 1.0, 0.0))


def test_wide_and_deep_fits_one_mixing_per_kind_of_post():
    """The mixings equal `fit_mixing` on the validation rows with and without the
    marker id, split here by reading the rows; one kind without both classes gives one
    mixing for all rows."""

    rng = np.random.default_rng(4)

    def rows(n, marked_labels=(0, 1)):
        labels = rng.integers(0, 2, n).astype(np.int32)
        marked = rng.random(n) < 0.5
        labels[marked] = rng.choice(marked_labels, marked.sum())
        lists = [
            [2 + int(label if rng.random() < 0.8 else 1 - label), *rng.integers(4, 9, 3)]
            + ([9] if m else [])
            for label, m in zip(labels, marked, strict=True)
        ]
        values = np.concatenate(lists).astype(np.int32)
        splits = np.cumsum([0] + [len(r) for r in lists])
        return TokenizedExamples(values, splits, labels), marked

    train, _ = rows(600)
    validation, marked = rows(800)
    sign = np.where(validation.labels == 1, 1.0, -1.0)
    deep_logit = np.where(marked, 3 * sign, 0) + rng.normal(size=800)
    deep = np.stack([1 / (1 + np.exp(deep_logit)), 1 / (1 + np.exp(-deep_logit))], 1)
    model = WeiboLSTM(10, lstm_units=(4,), dense_units=0)
    hybrid = WideAndDeep.fit(model, train, validation, deep, emoticon_ids=(9,))
    wide = hybrid.wide.decision_function(validation.values, validation.row_splits)
    bounds = zip(validation.row_splits[:-1], validation.row_splits[1:], strict=True)
    reading = np.array([9 in validation.values[a:b] for a, b in bounds])
    np.testing.assert_array_equal(reading, marked)
    for got, rows_ in ((hybrid.mixing, ~marked), (hybrid.emoticon_mixing, marked)):
        expected = fit_mixing(deep[rows_], wide[rows_], validation.labels[rows_])
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert hybrid.emoticon_mixing[0] > hybrid.mixing[0]  # the deep part decides there

    one_class, marked = rows(800, marked_labels=(1,))
    fallback = WideAndDeep.fit(model, train, one_class, deep, emoticon_ids=(9,))
    assert fallback.emoticon_mixing is None and fallback.emoticon_ids == ()


def test_probabilities_follow_the_stacking_formula(hybrid):
    model, tokenizer, texts = hybrid
    ids = tokenizer(texts[:20])
    neural = model.deep(ids).numpy()[:, 1]
    linear = model.wide(ids).numpy()
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

    from weibo_lstm.models.stacking import MIXING_C, log_odds

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


@pytest.mark.parametrize("kind", ["hybrid", "gated_hybrid"])
@pytest.mark.slow
def test_save_load_and_export_with_plain_tensorflow(
    kind, request, tmp_path, edge_case_texts, load_in_fresh_process
):
    import keras

    model, tokenizer, texts = request.getfixturevalue(kind)
    ids = tokenizer(texts[:10])
    model.save(tmp_path / "hybrid.keras")
    loaded = keras.models.load_model(tmp_path / "hybrid.keras")
    np.testing.assert_allclose(loaded(ids).numpy(), model(ids).numpy(), rtol=1e-6)

    path = export(model, tokenizer, tmp_path / "serving")
    edge_cases = edge_case_texts
    report = load_in_fresh_process(path, edge_cases, tmp_path)
    assert report["non_core_ops"] == [] and report["loaded_forbidden"] == []
    expected = windowed_reference(model, tokenizer, edge_cases)  # the long one pooled
    np.testing.assert_allclose(report["outputs"]["probabilities"], expected, atol=1e-5)
