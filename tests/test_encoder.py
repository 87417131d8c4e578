"""Pretrained encoders: save/load, transfer into a backbone or classifier, fine-tune, export."""

import keras
import numpy as np
import pytest

from tests.synthetic import texts_and_labels, write_csv
from weibo_lstm.jobs.pretrain import PretrainConfig, run_pretraining
from weibo_lstm.jobs.train import RunConfig, run_training
from weibo_lstm.models.encoder import (
    backbone_from_encoder,
    classifier_from_encoder,
    load_encoder,
    save_encoder,
)
from weibo_lstm.serving.export import export

TINY = dict(embedding_dim=8, lstm_units=(16, 12), bigram_buckets=40)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A tiny language model pretrained on synthetic posts with our trainer."""
    keras.utils.set_random_seed(0)
    texts, _ = texts_and_labels(400, seed=11)
    config = PretrainConfig(
        output=str(tmp_path_factory.mktemp("encoder")),
        vocabulary_size=80,
        embedding_dim=8,
        lstm_units=(16, 12),
        bigram_buckets=40,
        num_sampled=16,
        val_fraction=0.1,
        weights_dtype="float32",
    )
    return run_pretraining(config, texts, options={"epochs": 2, "batch_size": 32, "quiet": True})


def test_the_classifier_encodes_exactly_like_the_language_model(pretrained):
    arguments, weights, tokenizer = load_encoder(pretrained.encoder_dir)
    assert arguments == {
        "vocabulary_size": tokenizer.vocabulary_size,
        "embedding_dim": 8,
        "lstm_units": (16, 12),
        "bigram_buckets": 40,
        "bigram_context": "previous",
        "batch_norm": False,
    }
    model, tokenizer = classifier_from_encoder(
        pretrained.encoder_dir, pooling="mean_max", dense_units=4, dropout=0.5
    )
    backbone, _ = backbone_from_encoder(pretrained.encoder_dir, pooling=None)
    from weibo_lstm.models.language_model import CharLanguageModel

    lm = CharLanguageModel(tokenizer.vocabulary_size, **TINY)
    lm.build()
    for layer in lm.backbone.encoder_layers():
        for i, w in enumerate(layer.weights):
            w.assign(weights[f"{layer.name}/{i}"])
    ids = tokenizer(["好喜欢这个", "太差了[泪]"], pad_to_max_length=False)
    expected = lm(ids, training=False).numpy()
    np.testing.assert_array_equal(
        model.backbone(ids, training=False)["sequence_output"].numpy(), expected
    )
    np.testing.assert_array_equal(
        backbone(ids, training=False)["sequence_output"].numpy(), expected
    )


def test_float16_storage_is_small_and_close(pretrained, tmp_path):
    model, tokenizer = backbone_from_encoder(pretrained.encoder_dir, pooling="mean")
    save_encoder(tmp_path / "half", model, tokenizer, dtype="float16")
    _, half, _ = load_encoder(tmp_path / "half")
    _, full, _ = load_encoder(pretrained.encoder_dir)
    for key, value in full.items():
        assert half[key].dtype == np.float16
        np.testing.assert_allclose(half[key].astype(np.float32), value, rtol=1e-3, atol=1e-4)


def test_encoder_arguments_cannot_be_overridden(pretrained):
    with pytest.raises(ValueError, match="lstm_units"):
        backbone_from_encoder(pretrained.encoder_dir, lstm_units=(8,))


@pytest.mark.slow
def test_fine_tune_from_the_encoder_then_export_loads_with_plain_tensorflow(
    pretrained, tmp_path, load_in_fresh_process
):
    data = write_csv(tmp_path / "posts.csv", 300, seed=6)
    result = run_training(
        RunConfig(
            data=str(data),
            output_dir=str(tmp_path / "out"),
            encoder=str(pretrained.encoder_dir),
            max_length=24,
        ),
        {"epochs": 3, "batch_size": 16, "learning_rate": 1e-2, "quiet": True},
    )
    losses = result.history.series("loss")
    assert losses[-1] < losses[0]
    assert result.report_row["model"] == "pretrained"
    assert result.report_row["encoder"] == str(pretrained.encoder_dir)

    model = keras.models.load_model(result.model_dir / "model.keras")
    backbone = model.deep.backbone  # the default model is wide & deep; its deep part's
    assert backbone.bigram_context == "previous" and backbone.lstm_units == (16, 12)
    from weibo_lstm.preprocessing.tokenizer import Tokenizer

    tokenizer = Tokenizer.load(result.model_dir / "tokenizer")
    assert tokenizer.vocabulary == load_encoder(pretrained.encoder_dir)[2].vocabulary
    texts = ["好喜欢[哈哈]", "太差了", ""]
    path = export(model, tokenizer, tmp_path / "serving")
    loaded = load_in_fresh_process(path, [t.encode() for t in texts], tmp_path)
    assert loaded["non_core_ops"] == []
    expected = model(tokenizer(texts, pad_to_max_length=False), training=False).numpy()
    np.testing.assert_allclose(loaded["outputs"]["probabilities"], expected, atol=1e-5)
