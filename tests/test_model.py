import json
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from weibo_lstm import DistributedBatchNormalization, WeiboLSTM
from weibo_lstm.distribute.strategies import cpu_strategy, mirrored_strategy
from weibo_lstm.errors import ConfigError
from weibo_lstm.models.backbone import WeiboLSTMBackbone
from weibo_lstm.models.bigrams import bigram_ids
from weibo_lstm.models.classification_head import ClassificationHead
from weibo_lstm.models.classifier import WeiboLSTMClassifier, split_arguments

VOCAB = 300


def leaf_layers(model):
    """The layers of the classifier's backbone and head (what one flat model would hold)."""
    return [
        layer
        for part in (model.backbone, model.head)
        for layer in part._flatten_layers(include_self=False, recursive=False)
    ]


def seed_model(vocab):
    """The seed architecture, written out independently as a Sequential model."""
    l2 = keras.regularizers.L2(1e-5)
    return keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(vocab, 100, mask_zero=True, embeddings_regularizer=l2),
            keras.layers.LSTM(
                128, return_sequences=True, kernel_regularizer=l2, recurrent_regularizer=l2
            ),
            keras.layers.BatchNormalization(),
            keras.layers.Dropout(0.3),
            keras.layers.LSTM(64, kernel_regularizer=l2, recurrent_regularizer=l2),
            keras.layers.BatchNormalization(),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(32, activation="relu", kernel_regularizer=l2),
            keras.layers.BatchNormalization(),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(2, activation="softmax", kernel_regularizer=l2),
        ]
    )


def layer_signature(layer):
    config = layer.get_config()
    keys = (
        "input_dim",
        "output_dim",
        "mask_zero",
        "units",
        "return_sequences",
        "rate",
        "activation",
    )
    sig = {k: config[k] for k in keys if k in config}
    for reg in ("embeddings_regularizer", "kernel_regularizer", "recurrent_regularizer"):
        if config.get(reg):
            sig[reg] = config[reg]["config"]["l2"]
    base = "BatchNormalization" if isinstance(layer, keras.layers.BatchNormalization) else None
    return base or type(layer).__name__, sig


def test_default_is_the_seed_architecture():
    model = WeiboLSTM(VOCAB)
    model.build()
    reference = seed_model(VOCAB)
    ours = [layer_signature(layer) for layer in leaf_layers(model)]
    theirs = [layer_signature(layer) for layer in reference.layers]
    # Our layers are listed by attribute group; compare as multisets and in counts.
    assert sorted(map(repr, ours)) == sorted(map(repr, theirs))
    assert model.count_params() == reference.count_params()
    assert len(model.trainable_weights) == len(reference.trainable_weights)
    # Same regularised tensors: 1 embedding + 2 per LSTM + 1 per Dense.
    assert len(model.losses) == len(reference.losses) == 7


def test_same_weights_give_the_seed_models_outputs():
    model = WeiboLSTM(VOCAB)
    model.build()
    reference = seed_model(VOCAB)
    backbone, head = model.backbone, model.head
    ordered = [
        backbone.embedding,
        backbone.lstm_layers[0],
        backbone.lstm_norms[0],
        backbone.lstm_layers[1],
        backbone.lstm_norms[1],
        head.hidden,
        head.hidden_norm,
        head.classifier,
    ]
    weighted = [layer for layer in reference.layers if layer.weights]
    for ours, theirs in zip(ordered, weighted, strict=True):
        theirs.set_weights(ours.get_weights())
    x = np.random.default_rng(0).integers(1, VOCAB, (4, 12))
    x[1, 5:] = 0
    np.testing.assert_allclose(model(x, training=False), reference(x, training=False), atol=1e-6)


def test_padding_does_not_change_predictions():
    model = WeiboLSTM(VOCAB, lstm_units=(16, 8), dense_units=8)
    x = np.array([[5, 6, 7, 8]])
    padded = np.pad(x, ((0, 0), (0, 20)))
    np.testing.assert_allclose(model(x, training=False), model(padded, training=False), atol=1e-6)


def test_options_change_the_stack():
    model = WeiboLSTM(VOCAB, lstm_units=(32,), dense_units=0, batch_norm=False, l2=0.0)
    model.build()
    assert [type(layer).__name__ for layer in leaf_layers(model)] == [
        "Embedding",
        "LSTM",
        "Dropout",
        "Dense",
    ]
    assert model.losses == []
    sync = WeiboLSTM(VOCAB, synchronized_batch_norm=True)
    sync.build()
    norms = [la for la in leaf_layers(sync) if isinstance(la, DistributedBatchNormalization)]
    assert len(norms) == 3 and all(la.synchronize_moments for la in norms)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(vocabulary_size=1), "vocabulary_size=1"),
        (dict(lstm_units=()), "lstm_units=()"),
        (dict(dropout=1.0), "dropout=1.0"),
        (dict(l2=-1.0), "l2=-1.0"),
    ],
)
def test_validation(kwargs, message):
    args = dict(vocabulary_size=VOCAB) | kwargs
    with pytest.raises(ConfigError, match=re.escape(message)):
        WeiboLSTM(**args)


def test_config_round_trip(serialization_round_trip):
    model = WeiboLSTM(VOCAB, lstm_units=(16, 8), dense_units=8, synchronized_batch_norm=True)
    x = np.random.default_rng(1).integers(0, VOCAB, (3, 9))
    x[:, 0] = 1
    restored = serialization_round_trip(model, lambda m: m(x, training=False), atol=1.0)
    assert restored.count_params() == model.count_params()


def test_save_and_load_give_identical_predictions(tmp_path):
    model = WeiboLSTM(VOCAB, lstm_units=(16, 8), dense_units=8)
    x = np.random.default_rng(2).integers(1, VOCAB, (5, 11))
    model(x, training=True)  # move BatchNorm statistics away from their initial values
    expected = model(x, training=False)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert isinstance(loaded, WeiboLSTMClassifier)
    np.testing.assert_array_equal(loaded(x, training=False), expected)


def test_sync_batch_norm_masked_moments_match_numpy():
    layer = DistributedBatchNormalization(momentum=0.0, epsilon=0.0, center=False, scale=False)
    x = np.random.default_rng(3).normal(size=(2, 5, 3)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    layer(x, training=True, mask=mask)
    valid = x[mask]
    np.testing.assert_allclose(layer.moving_mean.numpy(), valid.mean(0), atol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), valid.var(0), atol=1e-5)


def test_sync_batch_norm_two_replicas_equal_one_global_batch():
    x = np.random.default_rng(4).normal(size=(8, 6, 3)).astype("float32")
    mask = np.random.default_rng(5).random((8, 6)) < 0.7
    mask[:, 0] = True

    def run(devices):
        strategy = mirrored_strategy(devices)
        n = strategy.num_replicas_in_sync
        with strategy.scope():
            layer = DistributedBatchNormalization(synchronized=True, momentum=0.5)
            layer.build((None, None, 3))

        def shard(array):
            def value_fn(ctx):
                i = ctx.replica_id_in_sync_group
                return tf.constant(array[i * 8 // n : (i + 1) * 8 // n])

            return strategy.experimental_distribute_values_from_function(value_fn)

        step = tf.function(lambda a, m: layer(a, training=True, mask=m))
        out = strategy.run(step, args=(shard(x), shard(mask)))
        outputs = np.concatenate([o.numpy() for o in strategy.experimental_local_results(out)])
        return outputs, layer.moving_mean.numpy(), layer.moving_variance.numpy()

    one = run(["/cpu:0"])
    two = run(["/cpu:0", "/cpu:1"])
    for a, b in zip(one, two, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_moving_statistics_are_the_same_on_every_replica():
    """Keras's BatchNormalization keeps per-replica moving statistics; ours averages."""
    x = np.random.default_rng(6).normal(size=(8, 3)).astype("float32")
    strategy = cpu_strategy(2)
    with strategy.scope():
        ours = DistributedBatchNormalization(momentum=0.0)
        ours.build((None, 3))
        keras_bn = keras.layers.BatchNormalization(momentum=0.0)
        keras_bn.build((None, 3))
    halves = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(x[ctx.replica_id_in_sync_group * 4 :][:4])
    )

    @tf.function
    def step(batch):
        return strategy.run(
            lambda b: (ours(b, training=True), keras_bn(b, training=True)), (batch,)
        )

    step(halves)

    def components(layer):
        return [c.numpy() for c in strategy.experimental_local_results(layer.moving_mean.value)]

    expected = (x[:4].mean(0) + x[4:].mean(0)) / 2
    for component in components(ours):
        np.testing.assert_allclose(component, expected, atol=1e-6)
    # The upstream behaviour this layer exists for: replicas disagree.
    keras_components = components(keras_bn)
    assert not np.allclose(keras_components[0], keras_components[1])


OPTIONS = [
    dict(bidirectional=True),
    dict(pooling="mean"),
    dict(pooling="max"),
    dict(pooling="attention", bidirectional=True),
    dict(pooling="mean_max", bigram_buckets=97),
    dict(pooling="mean_max", embedding_dropout=0.3, token_dropout=0.3, batch_norm=False),
]


@pytest.mark.parametrize(
    "kwargs", OPTIONS, ids=lambda k: "-".join(f"{a}={b}" for a, b in k.items())
)
def test_options_ignore_padding_and_round_trip(kwargs, tmp_path):
    model = WeiboLSTM(VOCAB, **(dict(embedding_dim=8, lstm_units=(8, 6), dense_units=4) | kwargs))
    x = np.random.default_rng(7).integers(2, VOCAB, (3, 6))
    x[0, 3:] = 0
    padded = np.pad(x, ((0, 0), (0, 9)))
    np.testing.assert_allclose(model(x, training=False), model(padded, training=False), atol=1e-6)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded(x, training=False), model(x, training=False))


def test_bigram_ids_match_a_python_reference():
    """The graph's hash (the backbone's) and the NumPy one (`bigrams`) against a loop."""
    x = np.array([[5, 6, 7, 0], [9, 0, 0, 0]])
    for context, partner in (("next", lambda r: [*r[1:], 0]), ("previous", lambda r: [0, *r[:-1]])):
        backbone = WeiboLSTMBackbone(VOCAB, bigram_buckets=50, bigram_context=context)
        expected = [
            [
                (a * 1_000_003 + b * 7_919) % 50 + 1 if a else 0
                for a, b in zip(row, partner(row), strict=True)
            ]
            for row in x.tolist()
        ]
        assert backbone._bigram_ids(tf.constant(x)).numpy().tolist() == expected
        assert bigram_ids(x, 50, context).tolist() == expected


def test_token_dropout_only_in_training():
    model = WeiboLSTM(VOCAB, token_dropout=0.5, dropout=0.0, batch_norm=False)
    x = np.random.default_rng(8).integers(2, VOCAB, (4, 20))
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))
    assert not np.allclose(model(x, training=True), model(x, training=True))


def test_backbone_outputs_features_without_a_head():
    x = np.random.default_rng(9).integers(2, VOCAB, (3, 7))
    x[0, 4:] = 0
    common = dict(embedding_dim=8, lstm_units=(8, 6))
    last = WeiboLSTMBackbone(VOCAB, **common)(x)
    assert set(last) == {"pooled_output"} and last["pooled_output"].shape == (3, 6)
    pooled = WeiboLSTMBackbone(VOCAB, pooling="mean_max", bidirectional=True, **common)(x)
    assert pooled["pooled_output"].shape == (3, 24)
    assert pooled["sequence_output"].shape == (3, 7, 12)
    sequence = WeiboLSTMBackbone(VOCAB, pooling=None, batch_norm=False, **common)(x)
    assert set(sequence) == {"sequence_output"}
    assert not any(w for w in WeiboLSTMBackbone(VOCAB, **common).weights if "classifier" in w.path)


def test_the_classifier_is_its_head_on_its_backbones_pooled_output():
    model = WeiboLSTM(VOCAB, embedding_dim=8, lstm_units=(8,), pooling="mean", num_classes=3)
    x = np.random.default_rng(10).integers(2, VOCAB, (4, 5))
    features = model.backbone(x, training=False)["pooled_output"]
    np.testing.assert_array_equal(model(x, training=False), model.head(features, training=False))
    assert model.num_classes == 3 and model.head.classifier.units == 3


#: The flat arguments of the 0.2 `WeiboLSTM` (its `get_config` keys): `WeiboLSTM(...)`
#: still takes every one of them.
FLAT_KEYS = (
    "embedding_dim",
    "lstm_units",
    "dense_units",
    "dropout",
    "l2",
    "batch_norm",
    "synchronized_batch_norm",
    "num_classes",
    "bidirectional",
    "pooling",
    "embedding_dropout",
    "bigram_buckets",
    "token_dropout",
    "bigram_context",
)


def test_flat_arguments_build_the_model_the_parts_build():
    flat = dict(
        embedding_dim=8,
        lstm_units=[8, 6],
        dense_units=5,
        dropout=0.1,
        l2=1e-4,
        batch_norm=True,
        synchronized_batch_norm=True,
        num_classes=3,
        bidirectional=True,
        pooling="attention",
        embedding_dropout=0.2,
        bigram_buckets=31,
        token_dropout=0.3,
        bigram_context="previous",
    )
    assert tuple(flat) == FLAT_KEYS
    x = np.random.default_rng(11).integers(2, VOCAB, (3, 7))
    built = []
    for make in (
        lambda: WeiboLSTM(VOCAB, **flat),
        lambda: WeiboLSTMClassifier(
            WeiboLSTMBackbone(
                VOCAB,
                embedding_dim=8,
                lstm_units=(8, 6),
                bidirectional=True,
                bigram_buckets=31,
                bigram_context="previous",
                embedding_dropout=0.2,
                token_dropout=0.3,
                pooling="attention",
                dropout=0.1,
                l2=1e-4,
                synchronized_batch_norm=True,
                name="backbone",
            ),
            ClassificationHead(
                3, dense_units=5, dropout=0.1, l2=1e-4, synchronized_batch_norm=True, name="head"
            ),
        ),
    ):
        keras.utils.set_random_seed(5)
        model = make()
        model.build()
        weights = [w.numpy() for w in model.weights]
        keras.utils.set_random_seed(6)
        built.append((weights, model(x, training=True).numpy(), model(x, training=False).numpy()))
    for ours, theirs in zip(*built, strict=True):
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(a, b)


def test_split_arguments_names_an_unknown_argument():
    backbone, head = split_arguments({"pooling": "mean", "num_classes": 3, "l2": 0.0})
    assert backbone == {"pooling": "mean", "l2": 0.0} and head == {"num_classes": 3, "l2": 0.0}
    with pytest.raises(ConfigError, match="Unknown model arguments \\['lstm_size'\\]"):
        WeiboLSTM(VOCAB, lstm_size=8)


def test_get_config_keeps_plain_types():
    """NumPy scalars and `dropout=0` become plain ints and floats (JSON in model.keras)."""
    model = WeiboLSTM(
        np.int64(VOCAB),
        embedding_dim=np.int64(8),
        lstm_units=(np.int32(8),),
        dense_units=np.int64(4),
        dropout=0,
        l2=0,
        embedding_dropout=np.float32(0.25),
        bidirectional=1,
    )
    backbone, head = model.backbone.get_config(), model.head.get_config()
    types = {
        k: type(backbone[k]) for k in ("vocabulary_size", "lstm_units", "dropout", "bidirectional")
    }
    assert types == dict(vocabulary_size=int, lstm_units=list, dropout=float, bidirectional=bool)
    assert {k: type(head[k]) for k in ("dense_units", "l2")} == dict(dense_units=int, l2=float)
    assert backbone["lstm_units"] == [8] and backbone["embedding_dropout"] == 0.25
    json.dumps(model.get_config())


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: WeiboLSTMBackbone(1),
            "Argument `vocabulary_size` must be >= 2. Received: vocabulary_size=1",
        ),
        (lambda: WeiboLSTMBackbone(VOCAB, embedding_dim=0), "Received: embedding_dim=0"),
        (
            lambda: WeiboLSTMBackbone(VOCAB, lstm_units=[]),
            "`lstm_units` must be non-empty and positive. Received: lstm_units=()",
        ),
        (lambda: WeiboLSTMBackbone(VOCAB, lstm_units=(8, 0)), "Received: lstm_units=(8, 0)"),
        (lambda: WeiboLSTMBackbone(VOCAB, bigram_buckets=-1), "Received: bigram_buckets=-1"),
        (
            lambda: WeiboLSTMBackbone(VOCAB, bigram_context="left"),
            "'next' or 'previous'. Received: bigram_context='left'",
        ),
        (
            lambda: WeiboLSTMBackbone(VOCAB, embedding_dropout=1.0),
            "Received: embedding_dropout=1.0",
        ),
        (lambda: WeiboLSTMBackbone(VOCAB, token_dropout=-0.1), "Received: token_dropout=-0.1"),
        (lambda: WeiboLSTMBackbone(VOCAB, pooling="sum"), "Received: pooling='sum'"),
        (lambda: WeiboLSTMBackbone(VOCAB, l2=-1e-5), "`l2` must be >= 0. Received: l2=-1e-05"),
        (lambda: ClassificationHead(dense_units=-1), "Received: dense_units=-1"),
        (lambda: ClassificationHead(1), "`num_classes` must be >= 2. Received: num_classes=1"),
        (
            lambda: ClassificationHead(dropout=1.0),
            "`dropout` must be in [0, 1). Received: dropout=1.0",
        ),
    ],
)
def test_arguments_are_validated(make, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make()
