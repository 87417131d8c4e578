"""NumpyPredictor against the Keras model it reads, and the CLI path that uses it."""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import weibo_lstm as wl
from weibo_lstm.models.presets import trained_model_path
from weibo_lstm.serving.numpy_predictor import NumpyPredictor, UnsupportedModel


def _texts(edge_case_texts):
    # As a Python program (the CLI) holds them: str, invalid bytes as U+FFFD.
    return [t.decode("utf-8", "replace") for t in edge_case_texts] + ["Ａ\u00a0B\x0bc [哈\u3000哈]"]


def _keras(classifier, texts):
    """The TensorFlow engine's probabilities: every row, blank texts included (the
    engines agree on those too; `SentimentClassifier.predict` leaves them NaN)."""
    return classifier.predictor().predict(texts)["probabilities"]


@pytest.mark.parametrize(
    "backbone, strip_emoticons",
    [
        (dict(pooling="mean_max", dense_units=8, bigram_buckets=50), False),
        (dict(pooling="last", dense_units=0, lstm_units=(6, 5), bigram_context="next"), True),
        (dict(pooling="max", dense_units=4, bigram_buckets=0, lstm_units=(7,)), True),
        (dict(pooling="mean", dense_units=4, bigram_buckets=30), False),
    ],
)
def test_probabilities_and_ids_match_keras(
    tmp_path, texts_and_labels, edge_case_texts, backbone, strip_emoticons
):
    texts, labels = texts_and_labels(80, seed=7)
    classifier = wl.SentimentClassifier.from_preset(
        "best",
        vocabulary_texts=texts,
        max_length=40,
        strip_emoticons=strip_emoticons,
        **{"embedding_dim": 8, "lstm_units": (8,), "token_dropout": 0.0, **backbone},
    )
    data = wl.LabeledTexts(texts, labels)
    classifier.fit(data, data, epochs=1, batch_size=16, quiet=True)  # wide & deep
    path = classifier.save(tmp_path / "model")
    predictor = NumpyPredictor(path)
    probe = _texts(edge_case_texts)
    expected_ids = classifier.tokenizer(probe, ragged=True).to_list()
    assert [row.tolist() for row in predictor.ids(probe)] == expected_ids
    outputs = predictor.predict(probe)
    np.testing.assert_allclose(
        outputs["probabilities"], _keras(classifier, probe), atol=1e-5, rtol=0
    )
    assert outputs["label_id"].tolist() == outputs["probabilities"].argmax(1).tolist()
    assert predictor.predict([])["probabilities"].shape == (0, 2)


def test_the_deep_part_alone_and_the_shipped_model(tmp_path, edge_case_texts, texts_and_labels):
    texts, labels = texts_and_labels(60, seed=8)
    classifier = wl.SentimentClassifier.from_preset(
        "best", vocabulary_texts=texts, max_length=30, embedding_dim=8, lstm_units=(8,)
    )
    data = wl.LabeledTexts(texts, labels)
    classifier.fit(data, data, epochs=1, batch_size=16, quiet=True, wide=False)
    probe = _texts(edge_case_texts)
    path = classifier.save(tmp_path / "deep")
    np.testing.assert_allclose(
        NumpyPredictor(path).predict(probe)["probabilities"],
        _keras(classifier, probe),
        atol=1e-5,
    )
    shipped = wl.SentimentClassifier.load(trained_model_path())
    np.testing.assert_allclose(
        NumpyPredictor(trained_model_path()).predict(probe)["probabilities"],
        _keras(shipped, probe),
        atol=1e-5,
    )


def test_unsupported_models_are_refused(tmp_path, texts_and_labels):
    texts, _ = texts_and_labels(20, seed=9)
    classifier = wl.SentimentClassifier.from_preset(
        "seed", vocabulary_texts=texts, max_length=20, embedding_dim=4, lstm_units=(4,)
    )
    classifier.model(classifier.tokenizer(texts[:2]))
    path = classifier.save(tmp_path / "seed")  # BatchNorm
    assert not NumpyPredictor.supports(path) and not NumpyPredictor.supports(tmp_path)
    unbuilt = wl.SentimentClassifier.from_preset(
        "best", vocabulary_texts=texts, max_length=20, embedding_dim=4, lstm_units=(4,)
    )
    with warnings.catch_warnings():  # Keras warns that the model is not built
        warnings.simplefilter("ignore")
        unbuilt_path = unbuilt.save(tmp_path / "unbuilt")
    assert not NumpyPredictor.supports(unbuilt_path)  # no weights: the TensorFlow engine
    with pytest.raises(UnsupportedModel, match="saved before the model was built"):
        NumpyPredictor(unbuilt_path)
    assert wl.pipeline(unbuilt_path)("很好")[0]["label"] in ("消极", "积极")
    with pytest.raises(UnsupportedModel, match="BatchNorm"):
        NumpyPredictor(path)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "weibo_lstm",
            "predict",
            "--model",
            str(path),
            "--engine",
            "numpy",
            "好",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2 and "--engine tensorflow" in result.stderr


def test_cli_predict_answers_without_starting_tensorflow(repo_root):
    """`predict TEXT` with the shipped model never imports TensorFlow."""
    code = (
        "import sys, runpy; sys.argv = ['weibo-lstm', 'predict', '很差', '太好吃了'];\n"
        "from weibo_lstm.cli.main import main\n"
        "status = main(sys.argv[1:])\n"
        "print('TF' if 'tensorflow' in sys.modules else 'no TF', status)"
    )
    env = dict(os.environ, PYTHONPATH=str(repo_root))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    lines = result.stdout.splitlines()
    assert lines[-1] == "no TF 0", result.stderr[-2000:]
    assert [json.loads(line)["label"] for line in lines[:-1]] == ["消极", "积极"]


def test_the_emoticon_gated_wide_and_deep_matches_keras(tmp_path, edge_case_texts):
    """Trained with emoticon dropout, the hybrid mixes posts with an emoticon its own
    way; the NumPy engine computes the same probabilities."""
    rng = np.random.default_rng(5)
    texts, labels = [], []
    for i in range(160):
        label = int(rng.random() < 0.5)
        word = ("好" if label else "差") if rng.random() < 0.7 else "的"
        texts.append(f"今天{word}{i % 11}" + ("[哈哈]" if label else "[泪]"))
        labels.append(label)
    data = wl.LabeledTexts(texts, labels)
    classifier = wl.SentimentClassifier.from_preset(
        "best", vocabulary_texts=texts, max_length=30, embedding_dim=8, lstm_units=(8,)
    )
    classifier.fit(data, data, epochs=1, batch_size=16, quiet=True, emoticon_dropout=0.5)
    assert classifier.model.emoticon_mixing is not None
    path = classifier.save(tmp_path / "gated")
    probe = [*_texts(edge_case_texts), "今天好[哈哈]", "今天差", "[泪]", "［泪］好"]
    np.testing.assert_allclose(
        NumpyPredictor(path).predict(probe)["probabilities"],
        _keras(classifier, probe),
        atol=1e-5,
    )
