"""SentimentClassifier: presets, training from texts, and the one on-disk format."""

import json
import random

import numpy as np
import pytest
import tensorflow as tf

import weibo_lstm as wl
from tests.helpers import blanks_unanswered, windowed_reference
from weibo_lstm.models.presets import PRESETS
from weibo_lstm.serving.export import read_metadata
from weibo_lstm.serving.model_format import is_model_directory
from weibo_lstm.tasks.wide_part import part_accuracies


@pytest.fixture(scope="module")
def corpus(texts_and_labels):
    texts, labels = texts_and_labels(240, seed=4)
    data = wl.LabeledTexts(texts, labels)
    return data.subset(np.arange(200)), data.subset(np.arange(200, 240))


@pytest.fixture(scope="module")
def fitted(corpus, make_classifier):
    train, val = corpus
    classifier = make_classifier(train.texts)
    history = classifier.fit(
        train, val, epochs=3, batch_size=16, learning_rate=1e-2, warmup_epochs=0.5, quiet=True
    )
    return classifier, history


def test_from_preset_builds_the_presets_backbone(corpus):
    train, _ = corpus
    classifier = wl.SentimentClassifier.from_preset(
        "best", vocabulary_texts=train.texts, max_length=20, strip_emoticons=True
    )
    model = classifier.model
    config = {**model.backbone.get_config(), **model.head.get_config()}
    for key, value in PRESETS["best"].backbone.items():
        assert config[key] == value, key
    assert classifier.tokenizer.max_length == 20 and classifier.tokenizer.strip_emoticons
    assert classifier.tokenizer.vocabulary_size == model.backbone.vocabulary_size
    with pytest.raises(wl.ConfigError, match="Argument `preset` must be one of"):
        wl.SentimentClassifier.from_preset("huge", vocabulary_texts=train.texts)


def test_from_preset_seed_repeats_the_weights_and_keeps_the_random_state(corpus, make_classifier):
    """`seed` fixes the new weights whatever the global state, and leaves it as it was."""

    train, _ = corpus

    def weights(seed, preset="best"):
        if preset == "pretrained":  # the encoder fixes the architecture
            classifier = wl.SentimentClassifier.from_preset(
                preset, seed=seed, strategy=tf.distribute.get_strategy()
            )
        else:
            classifier = make_classifier(train.texts, preset=preset, seed=seed)
        classifier.model(classifier.tokenizer(["好"]))  # build
        return classifier.model.get_weights()

    for preset in ("best", "pretrained"):  # a new backbone; a head on a shipped encoder
        random.seed(1)
        first = weights(5, preset)
        random.seed(2)
        np.random.seed(2)
        again, other = weights(5, preset), weights(6, preset)
        for a, b in zip(first, again, strict=True):
            np.testing.assert_array_equal(a, b)
        assert any(not np.array_equal(a, b) for a, b in zip(first, other, strict=True)), preset
    random.seed(9)
    np.random.seed(9)
    expected = random.random(), np.random.random()
    random.seed(9)
    np.random.seed(9)
    weights(5)
    assert (random.random(), np.random.random()) == expected


def test_seeded_from_preset_and_fit_repeat_a_run(corpus, make_classifier):
    """Dropout on: two runs with the same seeds predict the same; another seed does not."""
    train, val = corpus

    def run(seed):
        classifier = make_classifier(train.texts, seed=seed, dropout=0.3)
        classifier.fit(train, val, wide=False, epochs=2, batch_size=16, seed=seed, quiet=True)
        return classifier.predict(list(val.texts)), classifier.deep.get_weights()

    first, again, other = run(3), run(3), run(4)
    np.testing.assert_allclose(first[0], again[0], atol=1e-6)
    for a, b in zip(first[1], again[1], strict=True):
        np.testing.assert_array_equal(a, b)
    # Weights, not predictions: calibration flattens a barely trained model's
    # predictions towards 1/K whatever its seed.
    assert any(not np.allclose(a, b, atol=1e-3) for a, b in zip(first[1], other[1], strict=True))


def test_training_options_fill_the_budget_of_the_preset_and_device(fitted):
    classifier, _ = fitted
    budget = PRESETS["best"].budget("CPU")
    options, loop = classifier.training_options(epochs=2)
    assert loop.epochs == 2 and options.batch_size == budget["batch_size"]
    assert options.learning_rate == budget["learning_rate"]
    assert options.warmup_epochs == budget["warmup_epochs"]
    with pytest.raises(ValueError, match="Argument `epochs` must be >= 1"):
        classifier.training_options(epochs=0)
    with pytest.raises(ValueError, match="Argument `epoch` is not a training option"):
        classifier.training_options(epoch=2)


def test_fit_learns_from_labelled_texts(fitted, corpus):
    classifier, history = fitted
    _, val = corpus
    assert len(history.epochs) == 3 and history.best_epoch is not None
    metrics = classifier.evaluate(val)
    # The deep part is the best epoch; the wide & deep model is what evaluate scores.
    assert isinstance(classifier.model, wl.WideAndDeep)
    parts = part_accuracies(classifier, classifier.tokenize(val))
    assert parts["deep"] == pytest.approx(history.best_metrics["val_accuracy"], abs=1e-6)
    probabilities = classifier.predict(list(val.texts))
    assert probabilities.shape == (len(val), 2)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-5)
    # Independent count: exact metrics from the trainer vs argmax of predict.
    accuracy = np.mean(probabilities.argmax(1) == val.labels)
    assert metrics["accuracy"] == pytest.approx(accuracy, abs=1e-9)


@pytest.mark.slow
def test_fit_passes_wide_options_to_the_wide_part(corpus, make_classifier):
    train, val = corpus
    classifier = make_classifier(train.texts)
    with pytest.raises(wl.ConfigError, match="`wide_options` must be None with wide=False"):
        classifier.fit(train, val, wide=False, wide_options={"max_features": 40})
    assert classifier.trainer is None  # refused before any training
    options = dict(epochs=1, batch_size=16, quiet=True)
    classifier.fit(train, val, **options, wide_options={"max_features": 40})
    assert classifier.model.wide.vocabulary_size == 40
    full = make_classifier(train.texts)
    full.fit(train, val, **options)
    assert full.model.wide.vocabulary_size > 40  # the limit above did bind


def test_save_load_round_trip_matches_the_in_memory_model(fitted, corpus, tmp_path):
    classifier, _ = fitted
    _, val = corpus
    texts = [*val.texts, "", "好[哈哈]", "差" * 500]
    path = classifier.save(tmp_path / "model", metadata={"report": {"accuracy": 0.5}})
    assert sorted(p.name for p in path.iterdir()) == ["classifier.json", "model.keras", "tokenizer"]
    about = json.loads((path / "classifier.json").read_text("utf-8"))
    assert about["format"] == "weibo_lstm.SentimentClassifier/1" and about["preset"] == "best"

    loaded = wl.SentimentClassifier.load(path)
    assert loaded.preset == "best" and loaded.metadata["report"] == {"accuracy": 0.5}
    assert loaded.tokenizer.get_config() == classifier.tokenizer.get_config()
    expected = windowed_reference(classifier.model, classifier.tokenizer, texts)
    labelled = blanks_unanswered(expected, texts)  # "": nothing to label
    np.testing.assert_allclose(loaded.predict(texts), labelled, atol=1e-6, rtol=0)
    np.testing.assert_allclose(classifier.predict(texts), labelled, atol=1e-6, rtol=0)
    assert loaded.evaluate(val) == pytest.approx(classifier.evaluate(val), abs=1e-6)
    # Predictor.load reads the same format.
    outputs = wl.Predictor.load(path).predict(texts)
    np.testing.assert_allclose(outputs["probabilities"], expected, atol=1e-6, rtol=0)


@pytest.mark.slow
def test_export_serves_the_same_probabilities(
    fitted, tmp_path, edge_case_texts, load_in_fresh_process
):
    """The wide & deep model `fit` made, exported, in a process without weibo_lstm and
    tensorflow_text: empty, blank, emoji-only, 5,000-character and invalid UTF-8 texts."""
    classifier, _ = fitted
    assert isinstance(classifier.model, wl.WideAndDeep)
    classifier.metadata["report"] = {"accuracy": 0.5}
    path = classifier.export(tmp_path / "serving")
    report = load_in_fresh_process(path, edge_case_texts, tmp_path)
    assert report["non_core_ops"] == [] and report["loaded_forbidden"] == []
    texts = [t.decode("utf-8", "replace") for t in edge_case_texts]
    assert "" in texts and "😀👍🏻" in texts and max(map(len, texts)) > 1000
    np.testing.assert_allclose(
        report["outputs"]["probabilities"],
        classifier.predictor().predict(texts)["probabilities"],  # blank texts too
        atol=1e-5,
        rtol=0,
    )
    assert read_metadata(path)["training_run"]["report"] == {"accuracy": 0.5}


def test_load_of_a_directory_that_is_not_a_model(tmp_path):
    with pytest.raises(wl.DataError, match="not a trained model directory"):
        wl.SentimentClassifier.load(tmp_path)
    assert not is_model_directory(tmp_path)


def test_a_tokenizer_without_vocabulary_is_refused():
    with pytest.raises(wl.ConfigError, match="must have a vocabulary"):
        wl.SentimentClassifier(tokenizer=wl.Tokenizer(), model=wl.WeiboLSTM(10))


@pytest.mark.slow
def test_serving_does_not_import_the_training_job(fitted, tmp_path, repo_root):
    """`Predictor.load` of a saved classifier runs without `weibo_lstm.jobs.train`."""
    from tests.helpers import run_python

    classifier, _ = fitted
    path = classifier.save(tmp_path / "model")
    code = (
        "import sys\n"
        "from weibo_lstm.serving.predictor import Predictor\n"
        f"outputs = Predictor.load({str(path)!r}).predict(['好开心'])\n"
        "assert outputs['probabilities'].shape == (1, 2)\n"
        "print(sorted(m for m in sys.modules if m.startswith('weibo_lstm.')))\n"
    )
    loaded = run_python(code, repo_root).strip().splitlines()[-1]
    assert "weibo_lstm.jobs.train" not in loaded and "weibo_lstm.cli.main" not in loaded
