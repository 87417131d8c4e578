import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import accuracy_score, log_loss, precision_score, recall_score

from tests.helpers import trainer_options as options
from weibo_lstm import WarmupCosineDecay, WeiboLSTM
from weibo_lstm.distribute.strategies import cpu_strategy
from weibo_lstm.errors import ConfigError
from weibo_lstm.models.classifier import WeiboLSTMClassifier
from weibo_lstm.models.layers.batch_norm import has_batch_norm
from weibo_lstm.preprocessing.tokenized_examples import TokenizedExamples
from weibo_lstm.training.checkpointing import TrainingCheckpoint
from weibo_lstm.training.trainer import (
    ControllerOptions,
    DistributedTrainer,
    NonFiniteError,
    TrainerOptions,
)

VOCAB = 30
SMALL = dict(embedding_dim=8, lstm_units=(8, 4), dense_units=4)


def make_examples(n, seed=0):
    """A learnable task: label 1 iff token 3 occurs in the sequence."""
    rng = np.random.default_rng(seed)
    rows = [rng.integers(2, VOCAB, rng.integers(1, 12)).astype(np.int32) for _ in range(n)]
    labels = np.array([int(3 in r) for r in rows], np.int32)
    return TokenizedExamples(np.concatenate(rows), np.cumsum([0] + [len(r) for r in rows]), labels)


STRATEGIES = {
    "default": lambda: tf.distribute.get_strategy(),
    "one_device": lambda: tf.distribute.OneDeviceStrategy("/cpu:0"),
    "mirrored_1": lambda: cpu_strategy(1),
    "mirrored_2": lambda: cpu_strategy(2),
}


def build(strategy, initial=None, **model_kwargs):
    with strategy.scope():
        model = WeiboLSTM(VOCAB, **(SMALL | model_kwargs))
        model.build()
        if initial is not None:
            model.set_weights(initial)
    return model


def train_weights(strategy_name, initial, data, trainer_options=None, **model_kwargs):
    strategy = STRATEGIES[strategy_name]()
    model = build(strategy, initial, **model_kwargs)
    opts, loop = trainer_options or options(32, strategy.num_replicas_in_sync)
    trainer = DistributedTrainer(model=model, strategy=strategy, options=opts)
    trainer.fit(data, None, loop)
    return [w.numpy() for w in model.weights]


@pytest.fixture(scope="module")
def data():
    return make_examples(200)  # 200 = 6 × 32 + 8: the last batch is partial


@pytest.mark.parametrize("strategy_name", ["default", "one_device", "mirrored_2"])
def test_replicas_match_single_replica_at_the_same_global_batch(data, strategy_name):
    """No BatchNorm, no dropout, L2 on: N replicas at global batch B == 1 replica at B."""
    kwargs = dict(batch_norm=False, dropout=0.0, l2=1e-3)
    initial = build(tf.distribute.get_strategy(), **kwargs).get_weights()
    reference = train_weights("mirrored_1", initial, data, **kwargs)
    other = train_weights(strategy_name, initial, data, **kwargs)
    assert max(np.abs(a - b).max() for a, b in zip(reference, other, strict=True)) <= 1e-5
    assert max(np.abs(a - b).max() for a, b in zip(reference, initial, strict=True)) > 1e-3


@pytest.mark.slow
def test_a_fixed_global_batch_is_split_over_the_replicas_with_an_unscaled_rate(data):
    # global_batch_size=32 on 2 replicas: 16 per replica at the given rate, whatever
    # batch_size and lr_scaling say; the same run as batch_size=16 without scaling.
    kwargs = dict(batch_norm=False, dropout=0.0)
    initial = build(tf.distribute.get_strategy(), **kwargs).get_weights()
    fixed_run = options(32, 2, global_batch_size=32, batch_size=5, lr_scaling="linear")
    fixed = fixed_run[0]
    assert (
        DistributedTrainer(
            model=build(cpu_strategy(2)), strategy=cpu_strategy(2), options=fixed
        ).global_batch_size
        == 32
    )
    assert fixed.peak_learning_rate(2) == fixed.learning_rate == 1e-2
    reference = train_weights("mirrored_2", initial, data, **kwargs)
    other = train_weights("mirrored_2", initial, data, fixed_run, **kwargs)
    assert max(np.abs(a - b).max() for a, b in zip(reference, other, strict=True)) == 0
    with pytest.raises(ValueError, match="must be a multiple of the 2 replicas"):
        DistributedTrainer(
            model=build(cpu_strategy(2)),
            strategy=cpu_strategy(2),
            options=options(32, 2, global_batch_size=33)[0],
        )


def test_clipping_clips_the_summed_gradient_as_tf_clip_by_global_norm_does():
    """Each replica's share is scaled so that their sum is `tf.clip_by_global_norm`
    of the summed gradient (not each replica's part clipped on its own)."""
    from weibo_lstm.training.optimization import clip_by_global_norm_across_replicas

    strategy = cpu_strategy(2)
    parts = [  # replica r's gradients: two tensors each
        [tf.constant([3.0, 0.0]), tf.constant([[1.0]])],
        [tf.constant([1.0, -2.0]), tf.constant([[0.5]])],
    ]

    def step(clip_norm, loss_scale):
        r = tf.distribute.get_replica_context().replica_id_in_sync_group
        mine = [tf.where(tf.equal(r, 0), a, b) for a, b in zip(*parts, strict=True)]
        scaled = [g * loss_scale for g in mine]
        return clip_by_global_norm_across_replicas(scaled, clip_norm, loss_scale=loss_scale)

    summed = [a + b for a, b in zip(*parts, strict=True)]  # norm sqrt(16 + 4 + 2.25)
    for clip_norm, loss_scale in ((1.0, 1.0), (2.0, 1024.0), (10.0, 1.0)):
        out = strategy.run(step, args=(clip_norm, loss_scale))
        total = [strategy.reduce("SUM", g, axis=None).numpy() / loss_scale for g in out]
        expected, _ = tf.clip_by_global_norm(summed, clip_norm)
        for got, want in zip(total, expected, strict=True):
            np.testing.assert_allclose(got, want.numpy(), rtol=1e-6)


@pytest.mark.slow
def test_clipped_training_on_two_replicas_matches_one_replica(data):
    kwargs = dict(batch_norm=False, dropout=0.0)
    initial = build(tf.distribute.get_strategy(), **kwargs).get_weights()
    runs = {
        (replicas, clip): train_weights(
            f"mirrored_{replicas}",
            initial,
            data,
            options(32, replicas, epochs=1, clip_global_norm=clip, learning_rate=0.1),
            **kwargs,
        )
        for replicas, clip in ((1, 0.05), (2, 0.05), (1, None))
    }
    reference = runs[1, 0.05]
    assert max(np.abs(a - b).max() for a, b in zip(reference, runs[2, 0.05], strict=True)) <= 1e-5
    # The clip was active: without it the weights end elsewhere.
    assert max(np.abs(a - b).max() for a, b in zip(reference, runs[1, None], strict=True)) > 1e-3


@pytest.mark.slow
def test_synchronized_batch_norm_matches_across_replica_counts(data):
    kwargs = dict(synchronized_batch_norm=True, dropout=0.0)
    initial = build(tf.distribute.get_strategy(), **kwargs).get_weights()
    one = train_weights("mirrored_1", initial, data, **kwargs)
    two = train_weights("mirrored_2", initial, data, **kwargs)
    # Measured: ~1e-6 (float32 sums in a different order).
    assert max(np.abs(a - b).max() for a, b in zip(one, two, strict=True)) <= 1e-4


def test_one_step_changes_every_trainable_weight(data):
    strategy = STRATEGIES["mirrored_2"]()
    model = build(strategy)
    before = [w.numpy() for w in model.trainable_weights]
    trainer = DistributedTrainer(model=model, strategy=strategy, options=options(32, 2)[0])
    trainer.build(data, steps_per_epoch=1, epochs=1)
    from weibo_lstm.training import input_pipeline as batching

    plan = batching.plan_epoch(data.lengths, 32)[:1]
    trainer.train(iter(batching.distribute(strategy, data, plan)), 1)
    after = [w.numpy() for w in model.trainable_weights]
    for b, a, w in zip(before, after, model.trainable_weights, strict=True):
        assert not np.allclose(a, b), w.path
    assert int(trainer.optimizer.iterations.numpy()) == 1


def test_loss_decreases_and_task_is_learned():
    strategy = STRATEGIES["mirrored_2"]()
    train, val = make_examples(1024, seed=1), make_examples(256, seed=2)
    opts, loop = options(64, 2, epochs=12, learning_rate=2e-2)
    trainer = DistributedTrainer(
        # BatchNorm's moving averages lag far behind in a run this short; without it
        # the check is about the loop, not about BatchNorm.
        model=build(strategy, batch_norm=False),
        strategy=strategy,
        options=opts,
    )
    history = trainer.fit(train, val, loop)
    losses = history.series("loss")
    assert losses[-1] < 0.7 * losses[0]
    assert history.best_metrics["val_accuracy"] > 0.9


@pytest.mark.slow
def test_learning_rate_follows_scaled_warmup_cosine(data):
    strategy = STRATEGIES["mirrored_2"]()
    opts, loop = options(32, 2, epochs=4, lr_scaling="sqrt", learning_rate=1e-3, warmup_epochs=2)
    trainer = DistributedTrainer(model=build(strategy), strategy=strategy, options=opts)
    history = trainer.fit(data, None, loop)
    steps = math.ceil(200 / 32)
    peak = 1e-3 * math.sqrt(2)
    schedule = trainer.optimizer.learning_rate  # the optimizer's rate after training
    assert isinstance(trainer.optimizer._learning_rate, WarmupCosineDecay)
    sched = trainer.optimizer._learning_rate
    assert (sched.initial_lr, sched.target_lr) == pytest.approx((peak / 10, peak))
    assert (sched.warmup_steps, sched.decay_steps) == (2 * steps, 4 * steps)

    def reference(step):  # the seed's formula
        if step < 2 * steps:
            return peak / 10 + (peak - peak / 10) * step / (2 * steps)
        progress = min(1, (step - 2 * steps) / (2 * steps))
        return peak * 0.5 * (1 + math.cos(math.pi * progress))

    for entry in history.epochs:
        assert entry["learning_rate"] == pytest.approx(reference(entry["epoch"] * steps), abs=1e-9)
    assert float(schedule) == pytest.approx(0.0, abs=1e-9)


class ScriptedTrainer(DistributedTrainer):
    """Validation accuracy follows a script; weights are snapshotted at each evaluation."""

    def __init__(self, script, **kwargs):
        super().__init__(**kwargs)
        self.script, self.snapshots = list(script), []

    def evaluate(self, examples, prefix=""):
        self.snapshots.append([w.numpy().copy() for w in self.model.weights])
        accuracy = self.script[len(self.snapshots) - 1]
        return {f"{prefix}loss": 1 - accuracy, f"{prefix}accuracy": accuracy}


def test_best_weights_are_restored_not_the_last(data):
    strategy = STRATEGIES["mirrored_2"]()
    opts, loop = options(32, 2, epochs=4)
    trainer = ScriptedTrainer(
        [0.5, 0.9, 0.6, 0.7], model=build(strategy), strategy=strategy, options=opts
    )
    history = trainer.fit(data, data, loop)
    assert history.best_epoch == 2 and history.best_metrics["val_accuracy"] == 0.9
    final = [w.numpy() for w in trainer.model.weights]
    for got, best in zip(final, trainer.snapshots[1], strict=True):
        np.testing.assert_array_equal(got, best)
    assert any(
        not np.array_equal(b, la)
        for b, la in zip(trainer.snapshots[1], trainer.snapshots[-1], strict=True)
    )


def test_min_mode_and_early_stopping(data):
    strategy = STRATEGIES["default"]()
    opts, loop = options(32, 1, epochs=5, monitor="val_loss", mode="min", patience=2)
    trainer = ScriptedTrainer(
        [0.5, 0.9, 0.8, 0.7, 0.95], model=build(strategy), strategy=strategy, options=opts
    )
    history = trainer.fit(data, data, loop)
    assert history.stopped_early and len(history.epochs) == 4 and history.best_epoch == 2
    np.testing.assert_array_equal(trainer.model.weights[0].numpy(), trainer.snapshots[1][0])


def test_exact_evaluation_counts_every_example_once():
    """1,003 examples, 2 replicas, batch 64: metrics equal scikit-learn's."""
    strategy = STRATEGIES["mirrored_2"]()
    data = make_examples(1003, seed=5)
    model = build(strategy)
    trainer = DistributedTrainer(
        model=model, strategy=strategy, options=options(64, 2, eval_batch_size=32)[0]
    )
    trainer.build(data, steps_per_epoch=1, epochs=1)
    model(data.rows(np.arange(64)).to_tensor(), training=True)  # move BN off its init
    probabilities = trainer.predict(data)
    assert probabilities.shape == (1003, 2)
    predicted = probabilities.argmax(1)
    metrics = trainer.evaluate(data)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(data.labels, predicted), abs=1e-12)
    assert metrics["precision"] == pytest.approx(
        precision_score(data.labels, predicted, zero_division=0), abs=1e-12
    )
    assert metrics["recall"] == pytest.approx(recall_score(data.labels, predicted), abs=1e-12)
    assert metrics["loss"] == pytest.approx(log_loss(data.labels, probabilities), rel=1e-5)
    # The same numbers from one replica (predictions are order-independent).
    single = cpu_strategy(1)
    copy = build(single, model.get_weights())
    one = DistributedTrainer(model=copy, strategy=single, options=options(64, 1)[0])
    np.testing.assert_allclose(one.predict(data), probabilities, atol=1e-5)


@pytest.mark.slow
def test_steps_per_loop_runs_every_step_including_the_partial_loop(data):
    strategy = STRATEGIES["mirrored_2"]()
    opts, loop = options(32, 2, epochs=2, steps_per_loop=4)
    trainer = DistributedTrainer(model=build(strategy), strategy=strategy, options=opts)
    trainer.fit(data, None, loop)
    assert int(trainer.optimizer.iterations.numpy()) == 2 * 7  # 7 steps: loops of 4 + 3


def test_variables_built_outside_the_scope_are_refused(data):
    strategy = STRATEGIES["mirrored_2"]()
    model = build(tf.distribute.get_strategy())
    trainer = DistributedTrainer(model=model, strategy=strategy, options=options(32, 2)[0])
    with pytest.raises(ValueError, match=r"outside `strategy\.scope"):
        trainer.fit(data)
    with pytest.raises(ValueError, match="optimizer was created outside"):
        DistributedTrainer(
            model=build(strategy), optimizer=keras.optimizers.Adam(), strategy=strategy
        )


def test_user_optimizer_is_used(data):
    strategy = STRATEGIES["mirrored_2"]()
    with strategy.scope():
        optimizer = keras.optimizers.SGD(0.1)
    opts, loop = options(32, 2, epochs=1)
    trainer = DistributedTrainer(
        model=build(strategy), optimizer=optimizer, strategy=strategy, options=opts
    )
    history = trainer.fit(data, None, loop)
    assert trainer.optimizer is optimizer and history.epochs[0]["learning_rate"] == pytest.approx(
        0.1
    )


def test_options_validation():
    with pytest.raises(ConfigError, match=r"^Argument `epochs` must be >= 1. Received: epochs=0$"):
        ControllerOptions(epochs=0)
    with pytest.raises(ConfigError, match="Received: lr_scaling='cubic'"):
        TrainerOptions(lr_scaling="cubic")
    with pytest.raises(ConfigError, match="Received: mode='up'"):
        ControllerOptions(mode="up")
    with pytest.raises(ConfigError, match="Received: learning_rate=nan"):
        TrainerOptions(learning_rate=float("nan"))


# ------------------------------------------------------------------ non-finite guard
POISON = VOCAB  # a token id that only the poisoned example has


class PoisonedLSTM(WeiboLSTMClassifier):
    """Rows containing the token `POISON` output NaN (`poison="loss"`), or output
    normally but send NaN gradients back (`poison="gradients"`)."""

    def __init__(self, *args, poison="loss", **kwargs):
        parts = WeiboLSTM(*args, **kwargs)  # the same backbone and head, built as usual
        super().__init__(parts.backbone, parts.head, dtype=kwargs.get("dtype"))
        self.poison = poison

    def call(self, inputs, training=None):
        outputs = super().call(inputs, training=training)
        poisoned = tf.reduce_any(tf.equal(inputs, POISON), axis=-1, keepdims=True)
        nan = tf.constant(np.nan, outputs.dtype)
        if self.poison == "loss":
            return tf.where(poisoned, nan, outputs)

        @tf.custom_gradient
        def nan_gradient(x):
            return tf.identity(x), lambda dy: tf.where(poisoned, nan, dy)

        return nan_gradient(outputs)


def poisoned_examples(n=200, row=17):
    data = make_examples(n)
    values = data.values.copy()
    values[data.row_splits[row]] = POISON
    return TokenizedExamples(values, data.row_splits, data.labels)


def poisoned_trainer(strategy_name="mirrored_2", poison="loss", **kwargs):
    """`(trainer, controller options)` of a `PoisonedLSTM`."""
    strategy = STRATEGIES[strategy_name]()
    with strategy.scope():
        model = PoisonedLSTM(VOCAB + 1, poison=poison, **SMALL)
        model.build()
    opts, loop = options(32, strategy.num_replicas_in_sync, **kwargs)
    return DistributedTrainer(model=model, strategy=strategy, options=opts), loop


def state_of(trainer):
    return [v.numpy().copy() for v in (*trainer.model.weights, *trainer.optimizer.variables)]


@pytest.mark.parametrize("poison", ["loss", "gradients"])
def test_a_nonfinite_step_is_undone_on_every_replica(poison):
    """The poisoned row sits in replica 1's half: both replicas undo the whole step."""
    from weibo_lstm.training import input_pipeline as batching

    trainer, _ = poisoned_trainer(poison=poison)
    data = poisoned_examples()
    trainer.build(data, steps_per_epoch=1, epochs=1)
    plan = batching.plan_epoch(data.lengths, 32, shuffle=False, bucket=False)
    before = state_of(trainer)
    # The poisoned batch (rows 0..31: row 17 is replica 1's second row), then a clean
    # one: the call ends after the bad step.
    iterator = iter(batching.distribute(trainer.strategy, data, plan[[0, 1]]))
    result = trainer.train(iterator, 2)
    # With poison="loss", tf.where passes no gradient to the NaN branch: the loss
    # alone gives the step away; with "gradients" the loss is finite.
    assert result == {
        "steps": 1,
        "nonfinite_steps": 1,
        "nonfinite_loss": int(poison == "loss"),
        "nonfinite_gradients": int(poison == "gradients"),
    }
    for got, want in zip(state_of(trainer), before, strict=True):
        np.testing.assert_array_equal(got, want)  # weights, BN statistics, Adam, iterations
    assert trainer.train_loop_end()["loss"] == 0.0  # a skipped step is not in the metrics
    # The caller goes on with the same iterator: the next batch is the clean one.
    result = trainer.train(iterator, 1)
    assert result["nonfinite_steps"] == 0 and int(trainer.optimizer.iterations.numpy()) == 1


def test_stop_raises_a_one_line_error_and_keeps_the_last_good_weights():
    trainer, loop = poisoned_trainer(on_nonfinite="stop", steps_per_loop=7)
    with pytest.raises(NonFiniteError, match=r"non-finite loss at epoch 1, step \d of 7") as info:
        trainer.fit(poisoned_examples(), None, loop)
    assert "\n" not in str(info.value) and "--on-nonfinite skip" in str(info.value)
    steps_done = int(str(info.value).split("step ")[1].split()[0]) - 1
    # The loop stopped right after the bad step, which was undone.
    assert int(trainer.optimizer.iterations.numpy()) == steps_done
    assert all(np.isfinite(w.numpy()).all() for w in trainer.model.weights)


@pytest.mark.slow
def test_skip_goes_on_and_counts_the_skipped_steps(caplog):
    trainer, loop = poisoned_trainer(on_nonfinite="skip", epochs=2)
    initial = [w.numpy().copy() for w in trainer.model.trainable_weights]
    history = trainer.fit(poisoned_examples(), None, loop)
    assert [e["skipped_steps"] for e in history.epochs] == [1, 1]
    assert int(trainer.optimizer.iterations.numpy()) == 2 * 7 - 2
    assert all(math.isfinite(e["loss"]) for e in history.epochs)
    for before, after in zip(initial, trainer.model.trainable_weights, strict=True):
        assert np.isfinite(after.numpy()).all() and not np.array_equal(before, after.numpy())
    assert "skipped 1 of 7 steps with a non-finite loss" in caplog.text


class WeightPoisoningTrainer(ScriptedTrainer):
    """Its weights turn NaN during evaluation of `poison_epoch` (which scores best)."""

    def __init__(self, poison_epoch, **kwargs):
        super().__init__([0.5, 0.9, 0.9], **kwargs)
        self.poison_epoch = poison_epoch

    def evaluate(self, examples, prefix=""):
        metrics = super().evaluate(examples, prefix)
        if len(self.snapshots) == self.poison_epoch:
            kernel = self.model.head.classifier.kernel
            kernel.assign(np.full(kernel.shape, np.nan, "float32"))
        return metrics


def test_nonfinite_weights_are_never_best_nor_checkpointed(data, tmp_path):
    strategy = STRATEGIES["mirrored_1"]()
    opts, loop = options(32, 1, epochs=3, checkpoint_dir=str(tmp_path))
    trainer = WeightPoisoningTrainer(2, model=build(strategy), strategy=strategy, options=opts)
    with pytest.raises(NonFiniteError, match="not finite after epoch 2; they are neither kept"):
        trainer.fit(data, data, loop)
    assert tf.train.latest_checkpoint(tmp_path).endswith("ckpt-7")  # epoch 1's, intact
    restored = build(strategy)
    opt = DistributedTrainer(model=restored, strategy=strategy, options=opts)
    opt.build(data, steps_per_epoch=7, epochs=3)
    state = TrainingCheckpoint(tmp_path, model=restored, optimizer=opt.optimizer).restore()
    assert state["history"]["best_epoch"] == 1
    assert all(np.isfinite(w.numpy()).all() for w in restored.weights)


def test_has_batch_norm_decides_length_buckets_for_the_caller():
    """The trainer buckets when told to; the caller asks `has_batch_norm` (see workflow)."""
    strategy = STRATEGIES["default"]()
    assert has_batch_norm(build(strategy)) and not has_batch_norm(build(strategy, batch_norm=False))
    assert TrainerOptions().bucket_by_length is True
