"""The raw-text SavedModel, `Predictor`, and `weibo-lstm export` / `predict`."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import windowed_reference
from weibo_lstm import LabeledTexts, Predictor, SentimentClassifier, Tokenizer, WeiboLSTM
from weibo_lstm.cli import main as cli
from weibo_lstm.distribute.strategies import cpu_strategy
from weibo_lstm.models.layers.batch_norm import has_batch_norm
from weibo_lstm.preprocessing.tokenized_examples import TokenizedExamples
from weibo_lstm.serving.export import export, read_metadata
from weibo_lstm.training.option_groups import make_options
from weibo_lstm.training.trainer import DistributedTrainer

SMALL = dict(embedding_dim=16, lstm_units=(16, 8), dense_units=8)


def train_small(texts_and_labels, strategy, tokenizer_options, seed=0):
    texts, labels = texts_and_labels(320, seed=seed)
    tokenizer = Tokenizer(max_length=32, **tokenizer_options)
    tokenizer.adapt(texts)
    with strategy.scope():
        model = WeiboLSTM(tokenizer.vocabulary_size, **SMALL)
    options, loop = make_options(
        dict(
            epochs=6,
            batch_size=32 // strategy.num_replicas_in_sync,
            learning_rate=1e-2,
            lr_scaling="none",
            warmup_epochs=0.5,
            quiet=True,
            bucket_by_length=not has_batch_norm(model),
        )
    )
    trainer = DistributedTrainer(model=model, strategy=strategy, options=options)
    trainer.fit(TokenizedExamples.from_texts(tokenizer, LabeledTexts(texts, labels)), None, loop)
    return model, tokenizer


def reference_probabilities(model, tokenizer, texts):
    """The in-process model on ids padded to `max_length` (the training layout), long
    texts read in windows pooled by hand (`tests.helpers.windowed_reference`)."""
    return windowed_reference(model, tokenizer, texts)


@pytest.fixture(scope="module")
def trained(texts_and_labels):
    """A small model trained with non-default tokenizer options."""
    return train_small(
        texts_and_labels,
        tf.distribute.get_strategy(),
        dict(strip_emoticons=True, fold_width=True, lowercase=True),
    )


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    model, tokenizer = trained
    return export(model, tokenizer, tmp_path_factory.mktemp("export") / "serving")


# Runs in a fresh interpreter that cannot import weibo_lstm or tensorflow_text.
@pytest.mark.slow
def test_saved_model_loads_with_only_tensorflow_and_matches_the_model(
    trained, exported, tmp_path, edge_case_texts, load_in_fresh_process
):
    model, tokenizer = trained
    texts = edge_case_texts
    result = load_in_fresh_process(exported, texts, tmp_path)

    assert result["loaded_forbidden"] == [] and result["non_core_ops"] == []
    assert result["input"] == {"texts": ["string", [None]]} and result["serving_default"]
    assert result["dtypes"] == {
        "positive_probability": "float32",
        "probabilities": "float32",
        "label_id": "int32",
    }
    outputs = {k: np.array(v) for k, v in result["outputs"].items()}
    expected = reference_probabilities(model, tokenizer, texts)
    assert outputs["probabilities"].shape == (len(texts), 2)
    np.testing.assert_allclose(outputs["probabilities"], expected, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(outputs["positive_probability"], outputs["probabilities"][:, 1])
    np.testing.assert_array_equal(outputs["label_id"], expected.argmax(1))
    # The model learned something, so the comparison is not between constants.
    assert np.ptp(expected[:, 1]) > 0.05


def test_saved_model_applies_the_tokenizer_options_it_was_trained_with(exported):
    serve = tf.saved_model.load(str(exported)).signatures["serve"]
    pairs = [
        ("好喜欢[哈哈]", "好喜欢"),  # strip_emoticons=True
        ("ＯＫ好", "ok好"),  # fold_width + lowercase
        ("  差\u3000\u3000了 ", "差 了"),  # collapse_whitespace
    ]
    texts = tf.constant([t for pair in pairs for t in pair])
    p = serve(texts=texts)["probabilities"].numpy()
    np.testing.assert_allclose(p[0::2], p[1::2], atol=1e-6, rtol=0)
    metadata = read_metadata(exported)
    assert metadata["tokenizer"]["strip_emoticons"] is True
    assert metadata["tokenizer"]["max_length"] == 32 and metadata["class_names"] == ["消极", "积极"]


@pytest.mark.slow
def test_export_of_a_model_trained_on_two_replicas(
    tmp_path, texts_and_labels, edge_case_texts, load_in_fresh_process
):
    """Mirrored variables (and MEAN-aggregated BatchNorm statistics) export as plain ones.

    Reference: the same weights copied into a model built outside any strategy.
    """
    strategy = cpu_strategy(2)
    model, tokenizer = train_small(texts_and_labels, strategy, dict(strip_emoticons=False), seed=3)
    assert isinstance(model.weights[0].value, tf.distribute.DistributedValues)
    single = WeiboLSTM(tokenizer.vocabulary_size, **SMALL)
    single.build()
    single.set_weights(model.get_weights())
    moving_mean = next(v for v in model.weights if "moving_mean" in v.path)
    assert np.abs(moving_mean.numpy()).max() > 1e-3  # training updated the statistics

    path = export(model, tokenizer, tmp_path / "serving")
    texts = edge_case_texts
    outputs = load_in_fresh_process(path, texts, tmp_path)["outputs"]
    expected = reference_probabilities(single, tokenizer, texts)
    np.testing.assert_allclose(np.array(outputs["probabilities"]), expected, atol=1e-5, rtol=0)


def test_export_rejects_a_model_that_is_not_binary(tmp_path):
    tokenizer = Tokenizer(["好"], max_length=4)
    model = WeiboLSTM(tokenizer.vocabulary_size, lstm_units=(4,), dense_units=0, num_classes=3)
    with pytest.raises(ValueError, match="must output 2 class probabilities"):
        export(model, tokenizer, tmp_path / "x")


@pytest.mark.slow
def test_predictor_buckets_by_length_and_keeps_the_input_order(
    trained, exported, texts_and_labels, edge_case_strings
):
    model, tokenizer = trained
    texts, _ = texts_and_labels(53, seed=7)
    texts = [*texts, *edge_case_strings]
    expected = reference_probabilities(model, tokenizer, texts)
    calls = []
    keras_predictor = Predictor.from_keras(model, tokenizer, batch_size=8)
    serve = keras_predictor.serve
    keras_predictor.serve = lambda batch: calls.append(batch.numpy().tolist()) or serve(batch)
    for predictor in (keras_predictor, Predictor.from_saved_model(exported, batch_size=8)):
        outputs = predictor.predict(texts)
        np.testing.assert_allclose(outputs["probabilities"], expected, atol=1e-5, rtol=0)
        np.testing.assert_array_equal(outputs["label_id"], expected.argmax(1))
    # Each batch holds texts of neighbouring lengths: the batches are sorted.
    lengths = [len(t.decode("utf-8")) for batch in calls for t in batch]
    assert len(calls) == 8 and lengths == sorted(lengths)

    streamed = list(Predictor.from_saved_model(exported, batch_size=4).stream(texts, window=10))
    assert [t for t, _ in streamed] == texts
    np.testing.assert_allclose(
        [o["positive_probability"] for _, o in streamed], expected[:, 1], atol=1e-5, rtol=0
    )
    empty = keras_predictor.predict([])
    assert empty["probabilities"].shape == (0, 2) and empty["label_id"].dtype == np.int32


@pytest.fixture(scope="module")
def model_dir(trained, tmp_path_factory):
    model, tokenizer = trained
    path = tmp_path_factory.mktemp("train") / "model_1"
    SentimentClassifier(tokenizer=tokenizer, model=model).save(
        path, metadata={"report": {"final_test_accuracy": 0.9}}
    )
    return path


def predict_lines(args, stdin, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO(stdin))
    assert cli.main(["predict", *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_cli_export_then_predict_from_either_artifact(
    model_dir, tmp_path, monkeypatch, capsys, texts_and_labels
):
    output = tmp_path / "serving"
    assert cli.main(["export", "--model", str(model_dir), "--output", str(output)]) == 0
    assert "signature 'serve'" in capsys.readouterr().out
    metadata = read_metadata(output)
    assert metadata["training_run"]["report"]["final_test_accuracy"] == 0.9

    texts, _ = texts_and_labels(40, seed=11)
    stdin = "\n".join([*texts, "", "好[哈哈]"]) + "\n"
    from_dir = predict_lines(
        ["--model", str(model_dir), "--window", "7", "--batch-size", "3"],
        stdin,
        monkeypatch,
        capsys,
    )
    from_saved = predict_lines(["--model", str(output)], stdin, monkeypatch, capsys)
    # Every line answered in place; the blank one unlabelled.
    assert [x["text"] for x in from_saved] == [*texts, "", "好[哈哈]"]
    assert [x["line"] for x in from_saved] == list(range(1, len(texts) + 3))
    assert [x["text"] for x in from_dir] == [x["text"] for x in from_saved]
    blank = len(texts)
    assert from_saved[blank]["label"] == from_dir[blank]["label"] == ""
    assert from_saved[blank]["positive_probability"] is None
    del from_dir[blank], from_saved[blank]
    np.testing.assert_allclose(
        [x["positive_probability"] for x in from_dir],
        [x["positive_probability"] for x in from_saved],
        atol=2e-6,
    )
    assert {x["label"] for x in from_saved} <= {"积极", "消极"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "--model", "{tmp}/nowhere", "好"], "no such model directory or SavedModel"),
        (["export", "--model", "{tmp}/nowhere", "--output", "{tmp}/o"], "no such model directory"),
        (["predict", "--model", "{tmp}/busy", "好"], "neither a trained model directory"),
        (["export", "--model", "{tmp}/busy", "--output", "{tmp}/o"], "neither a trained model"),
        (["export", "--model", "{model}", "--output", "{tmp}/busy"], "already exists (use --force"),
        (
            ["export", "--model", "{model}", "--output", "{tmp}/busy", "--force"],
            "already exists and is not a SavedModel",
        ),
        (["predict", "--model", "{model}", "--window", "0"], "--window: must be > 0"),
    ],
)
def test_cli_user_errors(model_dir, tmp_path, args, message, capsys):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("keep me")
    args = [a.format(tmp=tmp_path, model=model_dir) for a in args]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert (tmp_path / "busy" / "notes.txt").read_text() == "keep me"


def test_cli_export_force_replaces_a_saved_model(model_dir, exported, tmp_path, capsys):
    output = tmp_path / "serving"
    assert cli.main(["export", "--model", str(model_dir), "--output", str(output)]) == 0
    (output / "stale").write_text("x")
    assert cli.main(["export", "--model", str(model_dir), "--output", str(output)]) == 2
    assert cli.main(["export", "--model", str(model_dir), "--output", str(output), "--force"]) == 0
    assert not (output / "stale").exists() and (output / "saved_model.pb").is_file()
    capsys.readouterr()


def test_exported_graph_runs_on_a_single_post(exported):
    """Serving often sends one text; the signature takes a batch of one."""
    serve = tf.saved_model.load(str(exported)).signatures["serve"]
    outputs = serve(texts=tf.constant(["好"]))
    assert outputs["probabilities"].shape == (1, 2)
    assert Path(exported, "assets.extra", "weibo_lstm.json").is_file()


@pytest.mark.slow
def test_cli_export_model_version_writes_the_tf_serving_layout(model_dir, tmp_path, capsys):
    """`--model-version 3` writes BASE/3/, and the `saved_model_cli run` command the
    export prints (the one docs/serving.md shows) runs the serving signature."""
    import shlex
    import subprocess

    base = tmp_path / "models" / "weibo"
    status = cli.main(
        ["export", "--model", str(model_dir), "--output", str(base), "--model-version", "3"]
    )
    assert status == 0 and (base / "3" / "saved_model.pb").is_file()
    check = capsys.readouterr().out.splitlines()[-1].removeprefix("check it: ")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "saved_model_cli"), *shlex.split(check)[1:]],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "label_id" in result.stdout and "probabilities" in result.stdout
