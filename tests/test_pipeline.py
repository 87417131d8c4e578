"""`wl.pipeline`: labels and scores of raw texts, against the Keras network's own
output (computed here from `model(tokenizer(texts))`, not through the pipeline's code),
on both engines, for two and three classes; blank texts unlabelled in place."""

import json
import shutil

import numpy as np
import pytest

import weibo_lstm as wl
from tests.helpers import run_python
from weibo_lstm.data.label_sets import POLARITY
from weibo_lstm.serving.numpy_predictor import NumpyPredictor

BLANK = ("", "   \u3000 ", "\n\t")


def _fit(make_classifier, texts, labels, class_names, path):
    """A small wide & deep classifier fitted for one epoch, saved at `path`."""
    data = wl.LabeledTexts(texts, labels, class_names=class_names)
    classifier = make_classifier(
        texts,
        class_names=class_names,
        max_length=40,
        embedding_dim=8,
        lstm_units=(8,),
        dense_units=4,
        bigram_buckets=30,
    )
    classifier.fit(data, data, epochs=1, batch_size=16, quiet=True)
    classifier.save(path)
    return classifier


@pytest.fixture(scope="module")
def binary(texts_and_labels, tmp_path_factory, make_classifier):
    texts, labels = texts_and_labels(80, seed=11)
    path = tmp_path_factory.mktemp("binary") / "model"
    return _fit(make_classifier, texts, labels, wl.CLASS_NAMES, path), path


@pytest.fixture(scope="module")
def three_classes(tmp_path_factory, make_classifier):
    rng = np.random.default_rng(3)
    cues, filler = "好差中", list("的了是我你他这那在有和")
    texts, labels = [], []
    for i in range(90):
        words = list(rng.choice(filler, 5)) + [cues[i % 3]] * 2
        rng.shuffle(words)
        texts.append("".join(words))
        labels.append(i % 3)
    path = tmp_path_factory.mktemp("three") / "model"
    return _fit(make_classifier, texts, labels, POLARITY, path), path


def _keras(classifier, texts):
    """The network's probabilities, straight from Keras; NaN rows for blank texts."""
    expected = np.full((len(texts), len(classifier.class_names)), np.nan, np.float32)
    rows = [i for i, t in enumerate(texts) if t.strip()]
    ids = classifier.tokenizer([texts[i] for i in rows])
    expected[rows] = classifier.model(ids, training=False).numpy()
    return expected


def _probe(edge_case_strings, texts_and_labels):
    ordinary, _ = texts_and_labels(12, seed=12)
    return [*ordinary, *edge_case_strings, *BLANK, "很好", "太差了[泪]"]


def _as_matrix(answers, class_names):
    """Every class's score per text (`top_k=None` answers), NaN for `[]`."""
    matrix = np.full((len(answers), len(class_names)), np.nan)
    for i, answer in enumerate(answers):
        for item in answer:
            matrix[i, class_names.index(item["label"])] = item["score"]
    return matrix


@pytest.mark.parametrize("engine", ["numpy", "tensorflow"])
def test_scores_are_the_networks_probabilities(binary, engine, edge_case_strings, texts_and_labels):
    classifier, path = binary
    texts = _probe(edge_case_strings, texts_and_labels)
    expected = _keras(classifier, texts)
    pipe = wl.pipeline(str(path), top_k=None, engine=engine, batch_size=4)
    assert pipe.engine == engine and pipe.class_names == wl.CLASS_NAMES
    answers = pipe(texts)
    assert len(answers) == len(texts)
    for text, answer in zip(texts, answers, strict=True):
        assert len(answer) == (0 if not text.strip() else 2), text
        scores = [item["score"] for item in answer]
        assert scores == sorted(scores, reverse=True)
        assert all(type(s) is float for s in scores)
    np.testing.assert_allclose(_as_matrix(answers, pipe.class_names), expected, atol=1e-5)
    # and SentimentClassifier.predict agrees: blank rows NaN, in place
    np.testing.assert_allclose(classifier.predict(texts), expected, atol=1e-5)
    assert np.isnan(classifier.predict(texts)).any(axis=1).tolist() == [
        not t.strip() for t in texts
    ]


def test_top_k_and_one_string(binary):
    classifier, path = binary
    texts = ["很好很好", "", "差差差", "一般"]
    expected = _keras(classifier, texts)
    pipe = wl.pipeline(path)  # a Path too
    best = pipe(texts)
    for row, answer in zip(expected, best, strict=True):
        if np.isnan(row).any():
            assert answer == []
            continue
        (item,) = answer
        assert item["label"] == wl.CLASS_NAMES[int(row.argmax())]
        assert item["score"] == pytest.approx(float(row.max()), abs=1e-5)
    assert pipe(texts, top_k=2)[0] == pipe(texts, top_k=None)[0]
    assert [len(a) for a in pipe(texts, top_k=5)] == [2, 0, 2, 2]  # at most K
    # One str: one text, not its characters.
    assert pipe("很好很好") == best[0] and pipe("") == []
    one = classifier.predict("很好很好")
    assert one.shape == (2,)
    np.testing.assert_allclose(one, expected[0], atol=1e-5)
    assert np.isnan(classifier.predict(" ")).all()
    assert classifier.predict([]).shape == (0, 2)


def test_engines_agree_and_the_engine_is_built_once(
    binary, edge_case_strings, texts_and_labels, monkeypatch
):
    _, path = binary
    texts = _probe(edge_case_strings, texts_and_labels)
    built = []
    original = NumpyPredictor.__init__
    monkeypatch.setattr(
        NumpyPredictor, "__init__", lambda self, p: built.append(p) or original(self, p)
    )
    numpy_pipe = wl.pipeline(path)
    tf_pipe = wl.pipeline(path, engine="tensorflow", batch_size=3)
    assert numpy_pipe.engine == "numpy" and tf_pipe.engine == "tensorflow"
    np.testing.assert_allclose(
        numpy_pipe.probabilities(texts), tf_pipe.probabilities(texts), atol=1e-5
    )
    for batch in (texts[:1], texts[:5], texts):  # more calls, other batch shapes
        numpy_pipe(batch)
        tf_pipe(batch)
    assert len(built) == 1
    assert tf_pipe.predictor.serve.experimental_get_tracing_count() == 1  # no retracing


def test_three_classes_are_named_in_the_answers(three_classes):
    classifier, path = three_classes
    texts = ["好好好", "差差", "中中中", " "]
    expected = _keras(classifier, texts)
    for engine in ("numpy", "tensorflow"):
        pipe = wl.pipeline(path, top_k=None, engine=engine)
        assert pipe.class_names == POLARITY
        answers = pipe(texts)
        assert [sorted(a["label"] for a in answer) for answer in answers[:3]] == [
            sorted(POLARITY)
        ] * 3
        np.testing.assert_allclose(_as_matrix(answers, POLARITY), expected, atol=1e-5)
        assert [len(a) for a in pipe(texts, top_k=2)] == [2, 2, 2, 0]


def test_every_kind_of_model_argument(binary, tmp_path):
    """A SentimentClassifier, a training output directory (its newest run), an
    exported SavedModel, and a device: the same answers."""
    classifier, path = binary
    texts = ["很好", "", "差"]
    expected = wl.pipeline(path, top_k=None)(texts)
    runs = tmp_path / "output"
    shutil.copytree(path, runs / "model_20250101_000000")
    shutil.copytree(path, runs / "model_20260101_000000")
    exported = classifier.export(tmp_path / "saved_model")
    pipes = {
        "object": wl.pipeline(classifier, top_k=None),
        "output dir": wl.pipeline(runs, top_k=None),
        "saved model": wl.pipeline(exported, top_k=None),
        "device": wl.pipeline(path, top_k=None, device="/cpu:0"),
        "object on a device": wl.pipeline(classifier, top_k=None, device="/cpu:0"),
    }
    assert pipes["output dir"].engine == "numpy"
    for name in ("object", "saved model", "device", "object on a device"):
        assert pipes[name].engine == "tensorflow", name
    for name, pipe in pipes.items():
        np.testing.assert_allclose(
            _as_matrix(pipe(texts), wl.CLASS_NAMES),
            _as_matrix(expected, wl.CLASS_NAMES),
            atol=1e-5,
            err_msg=name,
        )


def test_wrong_arguments_are_one_line_errors(binary, tmp_path, texts_and_labels):
    classifier, path = binary
    cases = [
        (dict(model=tmp_path / "nowhere"), wl.DataError, "no such model directory or SavedModel"),
        (dict(model=tmp_path), wl.DataError, "neither a trained model directory"),
        (dict(model=42), wl.ConfigError, "Argument `model` must be a shipped model's name"),
        (dict(model=path, engine="jax"), wl.ConfigError, "Received: engine='jax'"),
        (dict(model=path, top_k=0), wl.ConfigError, "Received: top_k=0"),
        (dict(model=path, top_k=True), wl.ConfigError, "Received: top_k=True"),
        (dict(model=path, batch_size=0), wl.ConfigError, "Received: batch_size=0"),
        (dict(model=path, engine="numpy", device="/cpu:0"), wl.ConfigError, "CPU only"),
        (dict(model=path, device="/gpu:7"), wl.ConfigError, "Received: device='/gpu:7'"),
        (dict(model=classifier, engine="numpy"), wl.ConfigError, "save it to run it in NumPy"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=None) as raised:
            wl.pipeline(**kwargs)
        assert message in str(raised.value) and "\n" not in str(raised.value), kwargs
    # A model the NumPy engine does not compute (BatchNorm): TensorFlow, unless forced.
    texts, _ = texts_and_labels(20, seed=9)
    seed = wl.SentimentClassifier.from_preset(
        "seed", vocabulary_texts=texts, max_length=20, embedding_dim=4, lstm_units=(4,)
    )
    seed.model(seed.tokenizer(texts[:2]))
    batch_norm = seed.save(tmp_path / "seed")
    assert wl.pipeline(batch_norm).engine == "tensorflow"
    with pytest.raises(wl.ConfigError, match="the NumPy engine runs model directories"):
        wl.pipeline(batch_norm, engine="numpy")
    with pytest.raises(wl.ConfigError, match=r"texts\[1\]=nan \(a float\)"):
        wl.pipeline(path)(["好", float("nan")])
    with pytest.raises(wl.ConfigError, match="Received: top_k=-1"):
        wl.pipeline(path)("好", top_k=-1)


def test_the_shipped_model_answers_without_tensorflow(repo_root):
    """In a fresh process: `wl.pipeline()` loads the shipped model on the NumPy engine
    and answers, TensorFlow and Keras never imported."""
    code = (
        "import json, sys\n"
        "import weibo_lstm as wl\n"
        "pipe = wl.pipeline()\n"
        "answers = [pipe('很差'), pipe(['太好吃了', '', '很差'])]\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'sklearn') if m in sys.modules)\n"
        "print(json.dumps([answers, pipe.engine, heavy], ensure_ascii=False))\n"
    )
    answers, engine, heavy = json.loads(run_python(code, repo_root).strip().splitlines()[-1])
    assert heavy == [] and engine == "numpy"
    one, several = answers
    assert [a["label"] for a in one] == ["消极"] and 0.5 < one[0]["score"] <= 1
    assert [[a["label"] for a in answer] for answer in several] == [["积极"], [], ["消极"]]
    assert several[2] == one
