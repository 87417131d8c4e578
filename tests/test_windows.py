"""Long texts read to the end in windows: the windows by hand, the pooling by hand, and
the same probabilities from Keras, the SavedModel (a fresh process) and NumPy."""

import json

import numpy as np
import pytest
import tensorflow as tf

import weibo_lstm as wl
from tests.helpers import blanks_unanswered, load_all_in_fresh_process, windowed_reference
from tests.synthetic import EDGE_CASE_TEXTS, FILLER, INVALID_UTF8
from weibo_lstm.data.label_sets import POLARITY
from weibo_lstm.errors import ConfigError
from weibo_lstm.preprocessing.windows import (
    DEFAULT_POOLING,
    POOLINGS,
    WindowOptions,
    pool,
    window_starts,
)
from weibo_lstm.serving.export import pool_windows, read_metadata, serving_function
from weibo_lstm.serving.numpy_predictor import NumpyPredictor

MAX_LENGTH = 24
RNG = np.random.default_rng(38)


def filler(n: int) -> str:
    """`n` characters of sentiment-free filler."""
    return "".join(RNG.choice(FILLER, n))


#: A 400-character text whose last sentence says it all, both ways.
BODY = filler(395)
HAPPY, SAD = BODY + "好开心满意", BODY + "失望又难过"
#: Around the window size: fits exactly, one over, two windows and a bit, blank-padded.
LONG_TEXTS = [
    HAPPY,
    SAD,
    filler(MAX_LENGTH),
    filler(MAX_LENGTH + 1),
    filler(2 * MAX_LENGTH + 5) + "差",
    "  " + filler(MAX_LENGTH) + "  ",
]


def probe_texts() -> list[str]:
    """Edge cases (the 6,301-character post among them) and the long texts, as `str`."""
    invalid = INVALID_UTF8.decode("utf-8", "replace")
    return [*EDGE_CASE_TEXTS, *LONG_TEXTS, invalid]


@pytest.fixture(scope="module")
def classifier(texts_and_labels, make_classifier):
    """A small wide & deep classifier trained on the generated corpus."""
    texts, labels = texts_and_labels(160, seed=38)
    classifier = make_classifier(
        texts,
        max_length=MAX_LENGTH,
        embedding_dim=8,
        lstm_units=(8,),
        dense_units=4,
        bigram_buckets=30,
        token_dropout=0.0,
        seed=38,
    )
    data = wl.LabeledTexts(texts, labels)
    classifier.fit(data, data, epochs=3, batch_size=16, quiet=True, seed=38)
    assert isinstance(classifier.model, wl.WideAndDeep)
    return classifier


# ------------------------------------------------------------------ the windows
def test_window_starts_match_a_formula_written_another_way():
    for size in (1, 4, 7):
        for stride in range(1, size + 1):
            for length in range(1, 40):
                if length <= size:
                    expected = [0]
                else:  # every `stride` ids before the last start, then the last one
                    expected = [*range(0, length - size, stride), length - size]
                assert window_starts(length, size, stride).tolist() == expected


def test_windows_cover_the_whole_text_by_hand():
    letters = "abcdefghijklmnopqrstuvwxyz"
    tokenizer = wl.Tokenizer(list(letters), max_length=8)
    text = letters[:23]
    ids, text_index = tokenizer.windows([text, "xyz", ""], stride=4, ragged=True)
    expected = ["abcdefgh", "efghijkl", "ijklmnop", "mnopqrst", "pqrstuvw", "xyz"]
    expected = [[letters.index(c) + 2 for c in window] for window in expected]
    assert ids.to_list() == [*expected, [1]]  # the empty text: one OOV id, as __call__
    assert text_index.numpy().tolist() == [0, 0, 0, 0, 0, 1, 2]
    covered = {i for window in expected[:5] for i in window}
    assert covered == {letters.index(c) + 2 for c in text}
    assert expected[4][-1] == letters.index("w") + 2  # the last window ends the text
    # The first window is what training reads: the truncated ids.
    assert ids[0].numpy().tolist() == tokenizer([text])[0].numpy().tolist()
    dense, _ = tokenizer.windows([text], stride=8)
    assert dense.shape == (3, 8)  # stride = size: no overlap, the last one moved back
    assert tokenizer.windows([text])[0].shape == (5, 8)  # default stride 4
    with pytest.raises(ConfigError, match=r"`stride` must be <= max_length \(8\)"):
        tokenizer.windows([text], stride=9)


def test_numpy_windows_match_the_tokenizer(classifier, tmp_path):
    path = classifier.save(tmp_path / "model")
    texts = probe_texts()
    ids, text_index = classifier.tokenizer.windows(texts, ragged=True)
    rows, counts = NumpyPredictor(path).windows(texts)
    assert [row.tolist() for row in rows] == ids.to_list()
    assert counts.tolist() == np.bincount(text_index.numpy(), minlength=len(texts)).tolist()
    assert counts[texts.index(EDGE_CASE_TEXTS[7])] > 100  # the 6,301-character post


# ------------------------------------------------------------------ pooling
def test_pooling_in_numpy_and_tensorflow_by_hand():
    p = np.array([[0.6, 0.4], [0.1, 0.9], [0.1, 0.9], [0.7, 0.3], [0.2, 0.8]], np.float32)
    counts, text_index = np.array([4, 1]), tf.constant([0, 0, 0, 0, 1])
    expected = {
        "mean": [[0.375, 0.625], [0.2, 0.8]],
        "max": [[0.1, 0.9], [0.2, 0.8]],  # windows 1 and 2 tie: the first
        "last": [[0.7, 0.3], [0.2, 0.8]],
    }
    for pooling in POOLINGS:
        np.testing.assert_allclose(pool(p, counts, pooling), expected[pooling], atol=1e-7)
        got = pool_windows(tf.constant(p), text_index, 2, pooling).numpy()
        np.testing.assert_allclose(got, expected[pooling], atol=1e-7)
    ties = tf.constant([[0.5, 0.5], [0.5, 0.5]])
    assert pool_windows(ties, tf.constant([0, 0]), 1, "max").shape == (1, 2)
    assert pool(p[:0], np.array([], np.int64), "mean").shape == (0, 2)


# ------------------------------------------------------------------ the long text
@pytest.mark.parametrize("pooling", POOLINGS)
def test_the_last_sentence_of_a_long_text_counts(classifier, pooling):
    classifier.windows = WindowOptions(pooling=pooling)
    tokenizer, model = classifier.tokenizer, classifier.model
    # The bug: truncated, the two texts are the same ids.
    happy, sad = tokenizer([HAPPY, SAD]).numpy()
    assert happy.tolist() == sad.tolist()
    probabilities = classifier.predict([HAPPY, SAD])
    expected = windowed_reference(model, tokenizer, [HAPPY, SAD], pooling=pooling)
    np.testing.assert_allclose(probabilities, expected, atol=1e-6, rtol=0)
    windows, _ = tokenizer.windows([HAPPY, SAD])
    n = len(windows) // 2  # windows per text (the same length)
    last = model(windows, training=False).numpy()[[n - 1, 2 * n - 1]]
    if pooling == "max":  # here a filler window is the most confident, in both texts
        assert probabilities[0].tolist() == probabilities[1].tolist() != last[0].tolist()
        return
    assert abs(probabilities[0, 1] - probabilities[1, 1]) > 1e-2
    if pooling == "last":  # the last window alone: its sentiment decides
        np.testing.assert_allclose(probabilities, last, atol=1e-6)
        assert probabilities[:, 1].round().tolist() == [1.0, 0.0]


# ------------------------------------------------------------------ three engines
@pytest.mark.slow
def test_keras_the_saved_model_and_numpy_agree_for_each_pooling(classifier, tmp_path):
    texts = probe_texts()
    paths, keras_outputs = [], {}
    for pooling in POOLINGS:
        classifier.windows = WindowOptions(pooling=pooling)
        # The engine's own rows (`predict` leaves a blank text's row NaN).
        keras_outputs[pooling] = classifier.predictor().predict(texts)["probabilities"]
        expected = windowed_reference(
            classifier.model, classifier.tokenizer, texts, pooling=pooling
        )
        np.testing.assert_allclose(keras_outputs[pooling], expected, atol=1e-5, rtol=0)
        model_dir = classifier.save(tmp_path / pooling)
        numpy_outputs = NumpyPredictor(model_dir).predict(texts)["probabilities"]
        np.testing.assert_allclose(numpy_outputs, keras_outputs[pooling], atol=1e-5, rtol=0)
        paths.append(classifier.export(tmp_path / f"{pooling}_serving"))
        assert read_metadata(paths[-1])["windows"]["pooling"] == pooling
    # The poolings differ on long texts (else the comparisons above prove little).
    assert np.ptp([keras_outputs[p][:, 1] for p in POOLINGS], axis=0).max() > 1e-3
    encoded = [t.encode("utf-8") for t in texts[:-1]] + [INVALID_UTF8]
    reports = load_all_in_fresh_process(paths, encoded, tmp_path)
    for pooling, report in zip(POOLINGS, reports, strict=True):
        assert report["loaded_forbidden"] == [] and report["non_core_ops"] == []
        served = np.array(report["outputs"]["probabilities"])
        np.testing.assert_allclose(served, keras_outputs[pooling], atol=1e-5, rtol=0)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_texts_that_fit_are_bit_identical_to_the_model_run_directly(classifier, pooling):
    tokenizer, model = classifier.tokenizer, classifier.model
    fitting = [t for t in probe_texts() if len(t) <= MAX_LENGTH]
    serve = serving_function(model, tokenizer, windows=WindowOptions(pooling=pooling))
    # In a graph, like `serve`: eagerly, the calibration's log and softmax may round
    # differently in the last bit.
    run_model = tf.function(lambda ids: model(ids, training=False))
    direct = run_model(tokenizer(fitting, pad_to_max_length=False)).numpy()
    np.testing.assert_array_equal(serve(tf.constant(fitting))["probabilities"].numpy(), direct)
    # Beside long texts in one batch, the same probabilities (more rows, same padding).
    mixed = serve(tf.constant([*fitting, HAPPY]))["probabilities"].numpy()[:-1]
    np.testing.assert_allclose(mixed, direct, atol=1e-6, rtol=0)


def test_three_classes(texts_and_labels, make_classifier, tmp_path):
    texts, _ = texts_and_labels(60, seed=3)
    classifier = make_classifier(
        texts,
        class_names=POLARITY,
        max_length=16,
        embedding_dim=8,
        lstm_units=(8,),
        bigram_buckets=0,
        seed=3,
    )
    probe = probe_texts()
    assert {"mean", "last", "max"} == set(POOLINGS)
    for pooling in ("mean", "last", "max"):
        classifier.windows = WindowOptions(pooling=pooling, stride=5)
        keras_outputs = classifier.predict(probe)
        expected = windowed_reference(
            classifier.model, classifier.tokenizer, probe, pooling=pooling, stride=5
        )
        np.testing.assert_allclose(keras_outputs, blanks_unanswered(expected, probe), atol=1e-5)
        numpy_outputs = NumpyPredictor(classifier.save(tmp_path / pooling)).predict(probe)
        np.testing.assert_allclose(numpy_outputs["probabilities"], expected, atol=1e-5)
        labels = [POLARITY[i] for i in expected.argmax(1)]
        assert numpy_outputs["label"].tolist() == labels
    # The SavedModel of max pooling (in process: a fresh process is tested above).
    serve = tf.saved_model.load(str(classifier.export(tmp_path / "serving")))
    served = serve.signatures["serve"](texts=tf.constant(probe))
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-5)
    assert [x.decode("utf-8") for x in served["label"].numpy()] == labels


# ------------------------------------------------------------------ the setting
def test_the_setting_is_saved_with_the_model_and_read_by_every_engine(classifier, tmp_path):
    classifier.windows = WindowOptions(pooling="last", stride=5)
    path = classifier.save(tmp_path / "set")
    about = json.loads((path / "classifier.json").read_text("utf-8"))
    assert about["windows"] == {"pooling": "last", "stride": 5}
    assert wl.SentimentClassifier.load(path).windows == classifier.windows
    assert NumpyPredictor(path).window_options == classifier.windows
    texts = [HAPPY, SAD, "好"]
    expected = windowed_reference(
        classifier.model, classifier.tokenizer, texts, pooling="last", stride=5
    )
    outputs = wl.Predictor.load(path).predict(texts)["probabilities"]
    np.testing.assert_allclose(outputs, expected, atol=1e-5, rtol=0)
    exported = classifier.export(tmp_path / "set_serving")
    assert read_metadata(exported)["windows"] == {"pooling": "last", "stride": 5, "size": 24}


def test_a_model_without_the_setting_uses_the_library_default(classifier, tmp_path):
    classifier.windows = None
    path = classifier.save(tmp_path / "unset")
    assert "windows" not in json.loads((path / "classifier.json").read_text("utf-8"))
    assert wl.SentimentClassifier.load(path).windows is None
    assert NumpyPredictor(path).window_options == WindowOptions() == WindowOptions(DEFAULT_POOLING)
    texts = [HAPPY, "好"]
    expected = windowed_reference(
        classifier.model, classifier.tokenizer, texts, pooling=DEFAULT_POOLING
    )
    np.testing.assert_allclose(
        wl.Predictor.load(path).predict(texts)["probabilities"], expected, atol=1e-5
    )
    stated = read_metadata(classifier.export(tmp_path / "unset_serving"))["windows"]
    assert stated == {"pooling": DEFAULT_POOLING, "stride": MAX_LENGTH // 2, "size": MAX_LENGTH}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            dict(pooling="median"),
            "Argument `pooling` must be one of ('mean', 'max', 'last'). Received: pooling='median'",
        ),
        (dict(stride=0), "Argument `stride` must be an integer >= 1 or None. Received: stride=0"),
        (dict(stride=2.5), "Received: stride=2.5"),
    ],
)
def test_window_options_name_and_echo_a_bad_value(kwargs, message):
    with pytest.raises(ConfigError) as error:
        WindowOptions(**kwargs)
    assert message in str(error.value)
    assert WindowOptions.from_json(None) is None
    assert WindowOptions.from_json({"pooling": "max"}) == WindowOptions("max")


def test_numpy_runs_many_windows_in_passes_of_bounded_size(classifier, tmp_path, monkeypatch):
    from weibo_lstm.serving import numpy_predictor

    classifier.windows = None
    predictor = NumpyPredictor(classifier.save(tmp_path / "model"))
    texts = probe_texts()
    whole = predictor.predict(texts)["probabilities"]
    monkeypatch.setattr(numpy_predictor, "_MAX_ROWS", 7)  # passes cut through texts
    assert len(predictor.windows(texts)[0]) > 7 * 10
    np.testing.assert_allclose(predictor.predict(texts)["probabilities"], whole, atol=1e-6)
    np.testing.assert_allclose(
        blanks_unanswered(whole, texts), classifier.predict(texts), atol=1e-5
    )
