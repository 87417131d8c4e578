"""Precise BatchNorm: population statistics of shuffled batches, equal on 1 or 2 replicas."""

import numpy as np
import pytest
import tensorflow as tf

from weibo_lstm import WeiboLSTM
from weibo_lstm.distribute.strategies import cpu_strategy
from weibo_lstm.preprocessing.tokenized_examples import TokenizedExamples
from weibo_lstm.training import input_pipeline as batching
from weibo_lstm.training.precise_bn import (
    PreciseBatchNorm,
    batch_norm_layers,
)

SMALL = dict(embedding_dim=8, lstm_units=(6, 4), dense_units=5)


def recompute_batch_norm_statistics(
    model, examples, *, strategy, global_batch_size, num_batches=200, seed=0, epoch=0
):
    """A one-off `PreciseBatchNorm` (what the controller runs before each validation)."""
    precise = PreciseBatchNorm(
        model, strategy=strategy, global_batch_size=global_batch_size, num_batches=num_batches
    )
    return precise(examples, seed=seed, epoch=epoch)


def _examples(n=96, seed=0):
    rng = np.random.default_rng(seed)
    rows = [rng.integers(2, 30, rng.integers(1, 15)) for _ in range(n)]
    return TokenizedExamples(
        values=np.concatenate(rows).astype(np.int32),
        row_splits=np.cumsum([0] + [len(r) for r in rows]).astype(np.int64),
        labels=rng.integers(0, 2, n).astype(np.int32),
    )


def _model(strategy, weights=None):
    with strategy.scope():
        model = WeiboLSTM(30, **SMALL)
        model.build()
        if weights is not None:
            model.set_weights(weights)
    return model


def test_first_layer_statistics_equal_the_masked_numpy_moments_of_its_inputs():
    examples = _examples()
    strategy = tf.distribute.get_strategy()
    model = _model(strategy)
    used = recompute_batch_norm_statistics(
        model, examples, strategy=strategy, global_batch_size=16, num_batches=4, seed=3
    )
    assert used == 4
    # Independent reference: the rows of those 4 batches through embedding + first LSTM.
    plan = batching.plan_epoch(examples.lengths, 16, seed=3, epoch=0, bucket=False)[:4]
    ids = examples.rows(plan.reshape(-1)).to_tensor()
    backbone = model.backbone
    outputs = backbone.lstm_layers[0](backbone.embedding(ids), mask=ids > 0).numpy()
    real = outputs[ids.numpy() > 0]
    norm = backbone.lstm_norms[0]
    np.testing.assert_allclose(norm.moving_mean.numpy(), real.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(norm.moving_variance.numpy(), real.var(axis=0), atol=1e-6)


def test_two_replicas_give_the_statistics_of_one_at_the_same_global_batch():
    examples = _examples(seed=1)
    one = _model(cpu_strategy(1))
    two = _model(cpu_strategy(2), weights=one.get_weights())
    for model, strategy in ((one, cpu_strategy(1)), (two, cpu_strategy(2))):
        recompute_batch_norm_statistics(
            model, examples, strategy=strategy, global_batch_size=16, num_batches=5, seed=7
        )
    for a, b in zip(batch_norm_layers(one), batch_norm_layers(two), strict=True):
        np.testing.assert_allclose(a.moving_mean.numpy(), b.moving_mean.numpy(), atol=1e-5)
        np.testing.assert_allclose(a.moving_variance.numpy(), b.moving_variance.numpy(), atol=1e-5)


def test_weights_other_than_the_statistics_do_not_change_and_models_without_bn_are_left_alone():
    examples = _examples(seed=2)
    strategy = tf.distribute.get_strategy()
    model = _model(strategy)
    before = {v.path: v.numpy().copy() for v in model.trainable_weights}
    recompute_batch_norm_statistics(model, examples, strategy=strategy, global_batch_size=16)
    for v in model.trainable_weights:
        np.testing.assert_array_equal(v.numpy(), before[v.path])
    plain = WeiboLSTM(30, batch_norm=False, **SMALL)
    plain.build()
    assert (
        recompute_batch_norm_statistics(plain, examples, strategy=strategy, global_batch_size=16)
        == 0
    )


@pytest.mark.slow
def test_the_trainer_recomputes_the_statistics_before_each_validation(monkeypatch):
    import weibo_lstm.training.controller
    from tests.helpers import trainer_options
    from weibo_lstm.training.trainer import DistributedTrainer

    calls = []

    class Recording(PreciseBatchNorm):
        def __call__(self, examples, *, seed=0, epoch=0):
            calls.append(
                (seed, epoch, [v.numpy().copy() for v in self.model.non_trainable_weights])
            )
            return super().__call__(examples, seed=seed, epoch=epoch)

    monkeypatch.setattr(weibo_lstm.training.controller, "PreciseBatchNorm", Recording)
    examples = _examples(n=64, seed=3)
    strategy = cpu_strategy(2)
    model = _model(strategy)
    options, loop = trainer_options(16, 2, epochs=1, bucket_by_length=True, precise_bn_batches=3)
    trainer = DistributedTrainer(model=model, strategy=strategy, options=options)
    trainer.fit(examples, examples, loop)
    ((seed, epoch, before),) = calls
    assert (seed, epoch) == (42, 1)
    trained = [(v.path, v.numpy().copy()) for v in model.non_trainable_weights]
    # The same recomputation by hand, from the statistics training left: the same result.
    for variable, value in zip(model.non_trainable_weights, before, strict=True):
        variable.assign(value)
    recompute_batch_norm_statistics(
        model, examples, strategy=strategy, global_batch_size=16, num_batches=3, seed=42, epoch=1
    )
    for (path, expected), after in zip(trained, model.non_trainable_weights, strict=True):
        np.testing.assert_allclose(after.numpy(), expected, atol=1e-6, err_msg=path)
    assert any(not np.allclose(a, b) for a, (_, b) in zip(before, trained, strict=True))


def test_a_reused_instance_resets_its_sums_and_matches_a_fresh_one():
    examples = _examples(seed=4)
    strategy = cpu_strategy(2)
    reused = _model(strategy)
    fresh = _model(strategy, weights=reused.get_weights())
    precise = PreciseBatchNorm(reused, strategy=strategy, global_batch_size=16, num_batches=3)
    assert precise(examples, seed=1, epoch=1) == 3
    first = [v.numpy().copy() for v in reused.non_trainable_weights]
    precise(examples, seed=1, epoch=2)  # other batches: other statistics
    after = [v.numpy() for v in reused.non_trainable_weights]
    assert any(not np.allclose(a, b) for a, b in zip(first, after, strict=True))
    recompute_batch_norm_statistics(
        fresh, examples, strategy=strategy, global_batch_size=16, num_batches=3, seed=1, epoch=2
    )
    for a, b in zip(reused.non_trainable_weights, fresh.non_trainable_weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


def test_without_length_buckets_or_with_zero_batches_the_moving_averages_stay():
    from tests.helpers import trainer_options
    from weibo_lstm.training.controller import Controller
    from weibo_lstm.training.trainer import DistributedTrainer

    strategy = tf.distribute.get_strategy()
    for overrides, expected in (
        ({}, True),
        ({"bucket_by_length": False}, False),
        ({"precise_bn_batches": 0}, False),
        # Plain batch statistics on buckets: the moving averages are still biased.
        ({"batch_renormalization": False}, True),
    ):
        options, loop = trainer_options(16, 1, **overrides)
        trainer = DistributedTrainer(model=_model(strategy), strategy=strategy, options=options)
        controller = Controller(trainer, loop)
        assert (controller.precise_bn is not None) is expected, overrides
