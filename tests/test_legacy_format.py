"""Model directories written by 0.2 (`WeiboLSTM` with its head inside, `HybridClassifier`)
load as today's classes and predict exactly what 0.2 predicted (of a text longer than
`max_length`, the part 0.2 read).

tests/data/legacy_0.2/ was written by the 0.2 code (commit 5037700) with its
make_legacy.py; expected.json holds the probabilities 0.2 computed for its texts.
"""

import json
from pathlib import Path

import numpy as np
import pytest

import weibo_lstm as wl
from tests.helpers import windowed_reference
from weibo_lstm.serving import legacy_format
from weibo_lstm.serving.model_format import read_model_file
from weibo_lstm.serving.numpy_predictor import NumpyPredictor

LEGACY = Path(__file__).resolve().parent / "data" / "legacy_0.2"
EXPECTED = json.loads((LEGACY / "expected.json").read_text("utf-8"))
MODELS = sorted(EXPECTED["probabilities"])
TEXTS = EXPECTED["texts"]
#: The 6,301-character post: 0.2 read its first `max_length` characters, today reads
#: it all in windows (tests/test_windows.py); the others fit.
LONG = [i for i, text in enumerate(TEXTS) if len(text) > 1000]
FIT = [i for i in range(len(TEXTS)) if i not in LONG]


def assert_predicts_like_0_2(classifier, probabilities, expected, atol=0.0):
    """Texts that fit: 0.2's probabilities. The long one: its first window, what 0.2
    read, still gives 0.2's, and `probabilities` are its windows pooled."""
    expected = np.asarray(expected)
    np.testing.assert_allclose(probabilities[FIT], expected[FIT], atol=atol, rtol=0)
    long = [TEXTS[i] for i in LONG]
    truncated = classifier.model(classifier.tokenizer(long), training=False).numpy()
    np.testing.assert_allclose(truncated, expected[LONG], atol=1e-6, rtol=0)
    pooled = windowed_reference(classifier.model, classifier.tokenizer, long)
    np.testing.assert_allclose(probabilities[LONG], pooled, atol=max(atol, 1e-6), rtol=0)


@pytest.mark.parametrize("name", MODELS)
def test_old_directories_predict_what_0_2_predicted(name):
    classifier = wl.SentimentClassifier.load(LEGACY / name)
    expected = EXPECTED["probabilities"][name]
    assert_predicts_like_0_2(classifier, classifier.predict(TEXTS), expected)
    kind = wl.WideAndDeep if name == "wide_and_deep" else wl.WeiboLSTMClassifier
    assert isinstance(classifier.model, kind)


@pytest.mark.parametrize("name", MODELS)
def test_numpy_reads_old_directories_too(name):
    path = LEGACY / name
    config, _ = read_model_file(path / "model.keras", weights=False)
    supported = not (config["class_name"] == "WeiboLSTM" and config["config"]["batch_norm"])
    supported &= not (config["class_name"] == "WeiboLSTM" and config["config"]["bidirectional"])
    assert NumpyPredictor.supports(path) == supported
    if supported:
        got = NumpyPredictor(path).predict(TEXTS)["probabilities"]
        classifier = wl.SentimentClassifier.load(path)
        assert_predicts_like_0_2(classifier, got, EXPECTED["probabilities"][name], atol=1e-5)


def test_every_old_weight_finds_its_new_place():
    """Each weight of each old file is renamed onto a distinct weight of today's model."""
    for name in MODELS:
        config, arrays = read_model_file(LEGACY / name / "model.keras")
        assert legacy_format.is_legacy(config)
        renamed = {legacy_format.convert_weight_key(k, config) for k in arrays}
        assert len(renamed) == len(arrays)
        model = wl.SentimentClassifier.load(LEGACY / name).model
        assert len(model.weights) == len(arrays)


def test_a_saved_model_is_of_the_new_format(tmp_path):
    classifier = wl.SentimentClassifier.load(LEGACY / "best")
    classifier.save(tmp_path / "again")
    config, _ = read_model_file(tmp_path / "again" / "model.keras", weights=False)
    assert not legacy_format.is_legacy(config)
    assert config["class_name"] == "WeiboLSTMClassifier"
    again = wl.SentimentClassifier.load(tmp_path / "again")
    assert_predicts_like_0_2(again, again.predict(TEXTS), EXPECTED["probabilities"]["best"])
