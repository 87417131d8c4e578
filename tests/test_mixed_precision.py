"""Mixed precision in the custom loop: per-model dtype policies, float32 probabilities,
dynamic loss scaling for float16 (skips are the scaler's, not the non-finite guard's),
checkpoints with the loss scale, and a float32 export.

On this TensorFlow build the CPU kernels run Keras's LSTM (and every other layer of
`WeiboLSTM`) in both float16 and bfloat16, forward and backward; they are slower
than float32 there, so these tests only check behaviour, never speed.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import trainer_options as options
from tests.helpers import windowed_reference
from weibo_lstm import SentimentClassifier, Tokenizer, WeiboLSTM
from weibo_lstm.cli import common as cli_common
from weibo_lstm.cli import train as train_cli
from weibo_lstm.distribute.strategies import cpu_strategy
from weibo_lstm.errors import ConfigError, NonFiniteError, UserError
from weibo_lstm.models.classifier import WeiboLSTMClassifier
from weibo_lstm.preprocessing.tokenized_examples import TokenizedExamples
from weibo_lstm.serving.export import export
from weibo_lstm.training import input_pipeline as batching
from weibo_lstm.training import mixed_precision
from weibo_lstm.training.checkpointing import TrainingCheckpoint
from weibo_lstm.training.mixed_precision import dtype_policy
from weibo_lstm.training.trainer import DistributedTrainer

VOCAB = 30
POISON = VOCAB  # a token id that only the poisoned example has
SMALL = dict(embedding_dim=8, lstm_units=(8, 4), dense_units=4)
MODES = ["float16", "bfloat16"]
# The float16 case of the slower tests runs with `-m slow` (bfloat16 stays in the default suite).
MODES_FLOAT16_SLOW = [pytest.param("float16", marks=pytest.mark.slow), "bfloat16"]


def make_examples(n, seed=0, poison_row=None):
    """A learnable task: label 1 iff token 3 occurs; `poison_row` gets the POISON token."""
    rng = np.random.default_rng(seed)
    rows = [rng.integers(2, VOCAB, rng.integers(1, 12)).astype(np.int32) for _ in range(n)]
    labels = np.array([int(3 in r) for r in rows], np.int32)
    if poison_row is not None:
        rows[poison_row][0] = POISON
    return TokenizedExamples(np.concatenate(rows), np.cumsum([0] + [len(r) for r in rows]), labels)


class PoisonedLSTM(WeiboLSTMClassifier):
    """Rows with the token `POISON` output NaN (`poison="loss"`), or output normally
    but send infinite gradients back (`poison="gradients"`: an overflow)."""

    def __init__(self, *args, poison="gradients", **kwargs):
        parts = WeiboLSTM(*args, **kwargs)  # the same backbone and head, built as usual
        super().__init__(parts.backbone, parts.head, dtype=kwargs.get("dtype"))
        self.poison = poison

    def call(self, inputs, training=None):
        outputs = super().call(inputs, training=training)
        poisoned = tf.reduce_any(tf.equal(inputs, POISON), axis=-1, keepdims=True)
        if self.poison == "loss":
            return tf.where(poisoned, tf.constant(np.nan, outputs.dtype), outputs)

        @tf.custom_gradient
        def inf_gradient(x):
            return tf.identity(x), lambda dy: tf.where(poisoned, tf.constant(np.inf, dy.dtype), dy)

        return inf_gradient(outputs)


def build(strategy, mode, initial=None, model_class=WeiboLSTM, **kwargs):
    with strategy.scope():
        model = model_class(VOCAB + 1, dtype=dtype_policy(mode), **(SMALL | kwargs))
        model.build()
        if initial is not None:
            model.set_weights(initial)
    return model


@pytest.fixture(scope="module")
def data():
    return make_examples(200)  # 200 = 6 × 32 + 8: the last batch is partial


# ------------------------------------------------------------------ the model
@pytest.mark.parametrize("mode", MODES)
def test_layers_compute_in_half_precision_and_the_softmax_in_float32(
    mode, serialization_round_trip
):
    model = build(tf.distribute.get_strategy(), mode, pooling="attention")
    half = {"float16": "float16", "bfloat16": "bfloat16"}[mode]
    backbone, head = model.backbone, model.head
    assert backbone.lstm_layers[0].compute_dtype == half and head.hidden.compute_dtype == half
    assert backbone.pool.compute_dtype == half and backbone.lstm_norms[0].compute_dtype == half
    assert all(w.dtype == "float32" for w in model.weights)
    assert head.classifier.compute_dtype == "float32"
    assert backbone(np.array([[5, 6, 0]]))["pooled_output"].dtype == half
    ids = np.array([[5, 6, 7, 0], [8, 0, 0, 0]])
    assert model(ids, training=False).dtype == tf.float32

    def call(m):  # the restored model has fresh weights: give it the original's
        if m is not model:
            m.build()
            m.set_weights(model.get_weights())
        return m(ids, training=False)

    restored = serialization_round_trip(model, call)
    assert restored.dtype_policy.name == f"mixed_{mode}"


def test_classifier_option_and_float32_probabilities(texts_and_labels):
    texts, _ = texts_and_labels(40)
    classifier = SentimentClassifier.from_preset(
        "best",
        vocabulary_texts=texts,
        max_length=16,
        embedding_dim=8,
        lstm_units=(8,),
        bigram_buckets=0,
        mixed_precision="bfloat16",
    )
    assert classifier.model.dtype_policy.name == "mixed_bfloat16"
    probabilities = classifier.predict(texts[:5])
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-6)
    with pytest.raises(ConfigError, match="mixed_precision"):
        SentimentClassifier.from_preset("best", vocabulary_texts=texts, mixed_precision="fp8")


def test_the_train_flag_reaches_the_run_config():
    parser = cli_common.ArgumentParser(prog="train")
    train_cli.add_train_arguments(parser)
    config, _ = train_cli.train_settings(parser.parse_args(["--mixed-precision", "bfloat16"]))
    assert config.mixed_precision == "bfloat16"
    # Not given: the preset's mode (`auto` for seed-large-batch, off for the others).
    assert train_cli.train_settings(parser.parse_args([]))[0].mixed_precision is None
    assert (
        train_cli.train_settings(parser.parse_args(["--mixed-precision", "auto"]))[
            0
        ].mixed_precision
        == "auto"
    )
    with pytest.raises(UserError, match="invalid choice: 'fp16'"):
        parser.parse_args(["--mixed-precision", "fp16"])


# Details as `tf.config.experimental.get_device_details` gives them on CUDA builds.
A100 = {"device_name": "NVIDIA A100-SXM4-80GB", "compute_capability": (8, 0)}
H200 = {"device_name": "NVIDIA H200", "compute_capability": (9, 0)}
RTX_4090 = {"device_name": "NVIDIA GeForce RTX 4090", "compute_capability": (8, 9)}
V100 = {"device_name": "Tesla V100-SXM2-16GB", "compute_capability": (7, 0)}
T4 = {"device_name": "Tesla T4", "compute_capability": (7, 5)}
NO_CAPABILITY = {"device_name": "a GPU of another platform"}


@pytest.mark.parametrize(
    ("gpus", "mode"),
    [
        ([A100], "bfloat16"),
        ([H200] * 8, "bfloat16"),
        ([RTX_4090, A100], "bfloat16"),
        ([V100], "off"),
        ([T4], "off"),
        ([H200, T4], "off"),  # one slow replica would pace every step
        ([NO_CAPABILITY], "off"),
        ([], "off"),  # a CPU
    ],
)
def test_bfloat16_is_chosen_only_where_every_gpu_supports_it(gpus, mode):
    assert mixed_precision.choose_mode(gpus) == mode


def test_auto_reads_this_machines_gpus_and_is_off_on_a_cpu_strategy(monkeypatch):
    gpus = {"/physical_device:GPU:0": H200, "/physical_device:GPU:1": T4}
    fake = [tf.config.PhysicalDevice(name, "GPU") for name in gpus]
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: list(fake))
    monkeypatch.setattr(
        tf.config.experimental, "get_device_details", lambda device: gpus[device.name]
    )
    assert mixed_precision.resolve_mode("auto", "GPU") == "off"  # the T4
    gpus["/physical_device:GPU:1"] = A100
    assert mixed_precision.resolve_mode("auto", "GPU") == "bfloat16"
    assert mixed_precision.resolve_mode("auto", "CPU") == "off"  # GPUs not used
    assert mixed_precision.resolve_mode("float16", "CPU") == "float16"  # as given


def test_the_large_batch_preset_computes_in_float32_on_a_cpu(texts_and_labels):
    texts, _ = texts_and_labels(40)
    small = dict(max_length=16, embedding_dim=8, lstm_units=(8,), dense_units=4)
    auto = SentimentClassifier.from_preset("seed-large-batch", vocabulary_texts=texts, **small)
    assert auto.model.dtype_policy.name == "float32"  # auto -> off on a CPU
    given = SentimentClassifier.from_preset(
        "seed-large-batch", vocabulary_texts=texts, mixed_precision="bfloat16", **small
    )
    assert given.model.dtype_policy.name == "mixed_bfloat16"


# ------------------------------------------------------------------ training
@pytest.mark.parametrize("mode", MODES_FLOAT16_SLOW)
def test_a_tiny_model_trains_on_two_replicas(mode, data):
    strategy = cpu_strategy(2)
    model = build(strategy, mode, batch_norm=False)
    opts, loop = options(32, 2, epochs=2, steps_per_loop=7)
    trainer = DistributedTrainer(model=model, strategy=strategy, options=opts)
    before = trainer.evaluate(data)["loss"]
    history = trainer.fit(data, None, loop)
    after = trainer.evaluate(data)["loss"]
    assert after < before - 0.05, (before, after)
    assert [e["skipped_steps"] for e in history.epochs] == [0, 0]
    assert trainer.loss_scaling == (mode == "float16")
    assert trainer.predict(data).dtype == np.float32


def train_weights(replicas, mode, initial, data):
    strategy = cpu_strategy(replicas)
    model = build(strategy, mode, initial, batch_norm=False, dropout=0.0, l2=1e-3)
    opts, loop = options(32, replicas)
    trainer = DistributedTrainer(model=model, strategy=strategy, options=opts)
    trainer.fit(data, None, loop)
    return [w.numpy() for w in model.weights]


@pytest.mark.slow
def test_two_replicas_match_one_replica_in_bfloat16(data):
    """Same global batch, same initial weights: 1 and 2 replicas agree up to rounding.

    bfloat16 keeps 8 significant bits (~3 decimal digits; relative rounding up to
    2^-9 ≈ 0.2 %), and the two runs round partial sums of the backward pass over
    16 rather than 32 rows, so their gradients differ at that level. Adam moves
    a weight by about the learning rate (1e-2) per step whatever the gradient's
    size, and the 14 steps move the weights by ~0.07. Tolerance: the runs differ by
    less than half of one Adam step (5e-3; measured ~1e-3), i.e. no weight ever
    stepped the other way, and by less than bfloat16 and float32 differ on one
    replica (the independent reference for "rounding-sized"; float32 runs agree
    across replica counts to 1e-5, see test_trainer).
    """
    initial = build(tf.distribute.get_strategy(), "bfloat16", batch_norm=False).get_weights()
    one = train_weights(1, "bfloat16", initial, data)
    two = train_weights(2, "bfloat16", initial, data)
    full = train_weights(1, "off", initial, data)

    def gap(x, y):
        return max(np.abs(a - b).max() for a, b in zip(x, y, strict=True))

    assert gap(one, initial) > 5e-2  # it trained
    assert gap(one, two) <= 5e-3
    assert gap(one, two) < gap(one, full)


# ------------------------------------------------------------------ loss scaling
def poisoned_trainer(strategy, poison, **kwargs):
    """`(trainer, controller options)` of a float16 `PoisonedLSTM`."""
    model = build(strategy, "float16", model_class=PoisonedLSTM, poison=poison)
    opts, loop = options(32, strategy.num_replicas_in_sync, **kwargs)
    return DistributedTrainer(model=model, strategy=strategy, options=opts), loop


def test_an_overflow_on_one_replica_is_skipped_by_loss_scaling_not_the_guard():
    """Replica 1 alone overflows (its half holds the poisoned row): every replica skips
    the step, the scale halves and stays halved, and nothing counts as non-finite."""
    strategy = cpu_strategy(2)
    trainer, _ = poisoned_trainer(strategy, "gradients")
    data = make_examples(64, poison_row=17)  # rows 16..31 are replica 1's
    trainer.build(data, steps_per_epoch=2, epochs=1)
    plan = batching.plan_epoch(data.lengths, 32, shuffle=False, bucket=False)
    weights = [w.numpy().copy() for w in trainer.model.trainable_weights]
    scale = float(trainer.optimizer.dynamic_scale.numpy())

    result = trainer.train(iter(batching.distribute(strategy, data, plan[[0]])), 1)
    assert result == {
        "steps": 1,
        "nonfinite_steps": 0,
        "nonfinite_loss": 0,
        "nonfinite_gradients": 0,
    }
    assert float(trainer.optimizer.dynamic_scale.numpy()) == scale / 2
    assert int(trainer.optimizer.iterations.numpy()) == 0  # skipped
    # (The BatchNorm statistics did move: the forward pass was finite, as in `Model.fit`.)
    for got, want in zip(trainer.model.trainable_weights, weights, strict=True):
        np.testing.assert_array_equal(got.numpy(), want)

    # A clean batch is applied. (At the default scale, 2^14 after the halving, float16
    # gradients of this model may still overflow now and then, which is normal and
    # made this check flaky; scale 1 cannot overflow finite float16 gradients here.)
    trainer.optimizer.dynamic_scale.assign(1.0)
    result = trainer.train(iter(batching.distribute(strategy, data, plan[[1]])), 1)
    assert result["nonfinite_steps"] == 0 and int(trainer.optimizer.iterations.numpy()) == 1
    assert all(np.isfinite(w.numpy()).all() for w in trainer.model.weights)


@pytest.mark.slow
def test_overflows_from_a_huge_loss_scale_do_not_stop_a_run(data):
    """float16 overflows at scale 2^40: the scaler halves its way down; `stop` never fires."""
    strategy = cpu_strategy(2)
    model = build(strategy, "float16", batch_norm=False)
    with strategy.scope():
        optimizer = keras.optimizers.LossScaleOptimizer(
            keras.optimizers.Adam(1e-2), initial_scale=2.0**40
        )
    opts, loop = options(32, 2, epochs=2, on_nonfinite="stop")
    trainer = DistributedTrainer(model=model, strategy=strategy, optimizer=optimizer, options=opts)
    history = trainer.fit(data, None, loop)
    assert [e["skipped_steps"] for e in history.epochs] == [0, 0]
    scale = float(optimizer.dynamic_scale.numpy())
    skipped = 2 * 7 - int(optimizer.iterations.numpy())
    assert skipped > 0 and scale == 2.0 ** (40 - skipped)
    # The history records the scale at each epoch's end, falling as overflows halve it.
    scales = [e["loss_scale"] for e in history.epochs]
    assert scales[-1] == scale and scales[0] >= scales[1] and scales[0] < 2.0**40
    assert all(np.isfinite(w.numpy()).all() for w in model.weights)


@pytest.mark.slow
def test_a_nonfinite_loss_is_still_the_guards():
    strategy = cpu_strategy(2)
    trainer, loop = poisoned_trainer(strategy, "loss", on_nonfinite="stop", steps_per_loop=7)
    with pytest.raises(NonFiniteError, match="non-finite loss"):
        trainer.fit(make_examples(200, poison_row=17), None, loop)
    assert all(np.isfinite(w.numpy()).all() for w in trainer.model.weights)


@pytest.mark.slow
def test_checkpoints_resume_with_the_loss_scale(data, tmp_path):
    strategy = cpu_strategy(2)
    opts, loop = options(32, 2, epochs=1, checkpoint_dir=str(tmp_path))
    trainer = DistributedTrainer(model=build(strategy, "float16"), strategy=strategy, options=opts)
    trainer.fit(data, None, loop)
    scale, counter = (
        v.numpy() for v in (trainer.optimizer.dynamic_scale, trainer.optimizer.step_counter)
    )
    assert scale < 2.0**15  # float16 overflowed at Keras's initial scale

    restored = DistributedTrainer(model=build(strategy, "float16"), strategy=strategy, options=opts)
    restored.build(data, steps_per_epoch=7, epochs=1)
    assert restored.optimizer.dynamic_scale.numpy() == 2.0**15
    TrainingCheckpoint(tmp_path, model=restored.model, optimizer=restored.optimizer).restore()
    assert restored.optimizer.dynamic_scale.numpy() == scale
    assert restored.optimizer.step_counter.numpy() == counter
    assert restored.optimizer.iterations.numpy() == trainer.optimizer.iterations.numpy()


# ------------------------------------------------------------------ export
@pytest.mark.parametrize("mode", MODES_FLOAT16_SLOW)
@pytest.mark.slow
def test_export_serves_float32_with_plain_tensorflow(
    mode, tmp_path, edge_case_texts, load_in_fresh_process
):
    tokenizer = Tokenizer(["好", "差", "开", "心"], max_length=16)
    model = WeiboLSTM(tokenizer.vocabulary_size, dtype=dtype_policy(mode), **SMALL)
    path = export(model, tokenizer, tmp_path / "serving")
    result = load_in_fresh_process(path, edge_case_texts, tmp_path)
    assert result["loaded_forbidden"] == []
    assert result["dtypes"]["probabilities"] == "float32"
    assert result["dtypes"]["positive_probability"] == "float32"
    expected = windowed_reference(model, tokenizer, edge_case_texts)  # the long one pooled
    np.testing.assert_allclose(np.array(result["outputs"]["probabilities"]), expected, atol=1e-6)
