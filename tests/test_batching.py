import itertools

import numpy as np
import pytest
import tensorflow as tf

from weibo_lstm import Tokenizer
from weibo_lstm.data.labeled_texts import LabeledTexts
from weibo_lstm.distribute.strategies import mirrored_strategy
from weibo_lstm.preprocessing.tokenized_examples import PADDING_ROW, TokenizedExamples
from weibo_lstm.training.input_pipeline import (
    MAP_PARALLEL_CALLS,
    PREFETCH_BATCHES,
    EpochDatasets,
    distribute,
    loss_weights,
    plan_epoch,
)


def random_examples(n, seed=0, max_len=30):
    rng = np.random.default_rng(seed)
    rows = [rng.integers(2, 50, rng.integers(1, max_len + 1)).astype(np.int32) for _ in range(n)]
    return TokenizedExamples(
        values=np.concatenate(rows),
        row_splits=np.cumsum([0] + [len(r) for r in rows]),
        labels=rng.integers(0, 2, n).astype(np.int32),
    ), rows


def test_from_texts_matches_tokenizer():
    texts = ["好开心[哈哈]", "难过", "", "x" * 500]
    tokenizer = Tokenizer(max_length=20)
    tokenizer.adapt(texts)
    examples = TokenizedExamples.from_texts(
        tokenizer, LabeledTexts(texts, [1, 0, 0, 1]), batch_size=3
    )
    expected = tokenizer(texts, ragged=True).to_list()
    assert examples.rows(np.arange(4)).to_list() == expected
    assert examples.lengths.tolist() == [len(r) for r in expected]


def test_rows_gathers_and_pads():
    examples, rows = random_examples(10)
    got = examples.rows(np.array([3, PADDING_ROW, 0])).to_list()
    assert got == [rows[3].tolist(), [1], rows[0].tolist()]


@pytest.mark.parametrize("bucket", [False, True])
@pytest.mark.parametrize("n", [1, 63, 64, 1003])
def test_plan_covers_every_example_once(bucket, n):
    lengths = np.random.default_rng(n).integers(1, 100, n)
    plan = plan_epoch(lengths, 64, seed=1, epoch=3, bucket=bucket)
    assert plan.shape == (-(-n // 64), 64)
    real = plan[plan != PADDING_ROW]
    assert sorted(real.tolist()) == list(range(n))
    np.testing.assert_array_equal(plan, plan_epoch(lengths, 64, seed=1, epoch=3, bucket=bucket))
    if n > 64:
        assert not np.array_equal(plan, plan_epoch(lengths, 64, seed=1, epoch=4, bucket=bucket))


def test_bucketing_reduces_padding():
    lengths = np.random.default_rng(0).integers(1, 180, 5000)

    def padded_cells(plan):
        real = np.where(plan == PADDING_ROW, 0, lengths[np.maximum(plan, 0)])
        return (real.max(axis=1) * plan.shape[1]).sum()

    free = padded_cells(plan_epoch(lengths, 64, bucket=False))
    bucketed = padded_cells(plan_epoch(lengths, 64, bucket=True))
    assert bucketed < 0.6 * free


def test_loss_weights_make_each_batch_a_mean():
    plan = np.array([[0, 1, 2, 3], [4, 5, PADDING_ROW, PADDING_ROW]])
    weights = loss_weights(plan)
    np.testing.assert_allclose(weights, [[1, 1, 1, 1], [2, 2, 0, 0]])
    # sum(w * l) / G equals the mean over real rows.
    losses = np.array([[1.0, 2, 3, 4], [5, 7, 100, 100]])
    np.testing.assert_allclose((weights * losses).sum(1) / 4, [2.5, 6.0])


@pytest.mark.parametrize("devices", [["/cpu:0"], ["/cpu:0", "/cpu:1"]])
def test_distributed_batches_hold_each_example_once_padded_to_batch_max(devices):
    strategy = mirrored_strategy(devices)
    examples, rows = random_examples(203, seed=2)
    plan = plan_epoch(examples.lengths, 16, seed=0, epoch=1)
    seen = []
    for batch in distribute(strategy, examples, plan):
        for replica in strategy.experimental_local_results(batch):
            ids, index = replica["ids"].numpy(), replica["index"].numpy()
            assert ids.shape[0] == 16 // len(devices)
            lengths = [len(rows[i]) if i >= 0 else 1 for i in index]
            assert ids.shape[1] == max(lengths)  # padded to this batch's longest row
            for row, i in zip(ids, index, strict=True):
                if i >= 0:
                    assert row[: len(rows[i])].tolist() == rows[i].tolist()
                    assert not row[len(rows[i]) :].any()
            seen.extend(index[index >= 0].tolist())
    assert sorted(seen) == list(range(203))


@pytest.mark.parametrize("devices", [["/cpu:0"], ["/cpu:0", "/cpu:1"]])
def test_replica_batches_have_a_static_batch_size(devices):
    """As `batch(drop_remainder=True)` gives it: an LSTM over zero steps (a replica
    whose batch is all one-id filler rows, shifted by one) needs the batch size."""
    strategy = mirrored_strategy(devices)
    examples, _ = random_examples(20, seed=3)
    plan = plan_epoch(examples.lengths, 64, shuffle=False)  # replicas after the first: fillers
    dataset = distribute(strategy, examples, plan)

    @tf.function
    def traced_batch_size(iterator):
        # The batch size the replica function sees when it is traced (-1: unknown).
        batch = next(iterator)
        return strategy.run(lambda b: tf.constant(b["ids"].shape[0] or -1), args=(batch,))

    sizes = strategy.experimental_local_results(traced_batch_size(iter(dataset)))
    assert [int(s) for s in sizes] == [64 // len(devices)] * len(devices)


def expected_batch(rows, labels, index, weights, pad_to=None):
    """A replica's batch written out with NumPy from the raw rows (padding: `[1]`)."""
    ids = [rows[i].tolist() if i >= 0 else [1] for i in index]
    width = pad_to or max(len(r) for r in ids)
    return {
        "ids": np.array([(r + [0] * width)[:width] for r in ids], np.int32),
        "labels": np.array([labels[i] if i >= 0 else 0 for i in index], np.int32),
        "weights": np.asarray(weights, np.float32),
        "index": np.asarray(index, np.int64),
    }


@pytest.mark.parametrize("pad_to", [None, 12])
def test_one_epoch_datasets_feeds_every_epoch_plan(pad_to):
    # The examples become tensors once; each epoch (and a resumed one) only indexes them.
    strategy = mirrored_strategy(["/cpu:0", "/cpu:1"])
    examples, rows = random_examples(101, seed=6)
    datasets = EpochDatasets(strategy, examples, pad_to=pad_to)
    for epoch, skip in ((1, 0), (2, 0), (3, 2)):
        plan = plan_epoch(examples.lengths, 16, seed=5, epoch=epoch, labels=examples.labels)
        weights = loss_weights(plan)
        batches = list(datasets.distribute(plan, weights=weights, skip_steps=skip))
        assert len(batches) == len(plan) - skip
        for step, batch in enumerate(batches, start=skip):
            for r, replica in enumerate(strategy.experimental_local_results(batch)):
                cols = slice(8 * r, 8 * (r + 1))
                expected = expected_batch(
                    rows, examples.labels, plan[step, cols], weights[step, cols], pad_to
                )
                assert replica.keys() == expected.keys()
                for key, value in expected.items():
                    assert replica[key].dtype == value.dtype, key
                    np.testing.assert_array_equal(replica[key].numpy(), value, err_msg=key)


def test_fixed_padding_and_skip():
    strategy = tf.distribute.get_strategy()
    examples, _ = random_examples(50, seed=3)
    plan = plan_epoch(examples.lengths, 10, seed=0, epoch=0)
    batches = list(distribute(strategy, examples, plan, pad_to=40, skip_steps=2))
    assert len(batches) == 3
    assert all(b["ids"].shape == (10, 40) for b in batches)
    np.testing.assert_array_equal(batches[0]["index"].numpy(), plan[2])


def test_input_pipelines_run_without_autotuning():
    # Autotuning's model thread made deleting an iterator block for up to 60 s at
    # epoch ends (`batching.input_options`): no pipeline of ours may start one.
    class InspectingStrategy:
        def distribute_datasets_from_function(self, dataset_fn):
            return dataset_fn(tf.distribute.InputContext())

    examples, _ = random_examples(20, seed=4)
    plan = plan_epoch(examples.lengths, 4, seed=0, epoch=0)
    dataset = distribute(InspectingStrategy(), examples, plan)
    assert dataset.options().autotune.enabled is False
    # No parallelism or buffer size left to the autotuner (tf.data.AUTOTUNE is -1).
    graph = tf.compat.v1.GraphDef.FromString(dataset._as_serialized_graph().numpy())
    nodes = {node.name: node for node in graph.node}

    def constant_input(op, position):
        (node,) = [n for n in graph.node if n.op.startswith(op)]
        inputs = [i for i in node.input if not i.startswith("^")]
        source = nodes[inputs[position].split(":")[0]]
        return tf.make_ndarray(source.attr["value"].tensor)

    # The map's inputs: the dataset, the tensors its function captures, the parallelism.
    assert constant_input("ParallelMapDataset", -1) == MAP_PARALLEL_CALLS > 0
    assert constant_input("PrefetchDataset", 1) == PREFETCH_BATCHES > 0
    assert len(list(dataset)) == len(plan)


@pytest.mark.parametrize("devices", [["/cpu:0"], ["/cpu:0", "/cpu:1"]])
def test_distributed_iterators_run_without_autotuning(devices):
    # The per-device datasets tf.distribute builds behind a distributed iterator
    # have autotuning off too (`batching._disable_autotuning_on_devices`).
    examples, _ = random_examples(40, seed=5)
    plan = plan_epoch(examples.lengths, 8, seed=0, epoch=0)
    iterator = iter(distribute(mirrored_strategy(devices), examples, plan))
    (worker,) = iterator._iterators
    per_device = worker._iterator._device_iterators
    assert len(per_device) == len(devices)
    assert all(it._dataset.options().autotune.enabled is False for it in per_device)
    assert sum(1 for _ in iterator) == len(plan)


def test_bucketing_keeps_the_class_mix_when_length_predicts_the_label():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 4096)
    lengths = np.where(labels == 1, rng.integers(60, 120, 4096), rng.integers(10, 70, 4096))
    share = lambda plan: np.array([labels[b].mean() for b in plan])  # noqa: E731
    plain = plan_epoch(lengths, 128, seed=0, bucket=True)
    dealt = plan_epoch(lengths, 128, seed=0, bucket=True, labels=labels)
    assert share(plain).std() > 0.3  # length buckets are nearly one-class
    assert share(dealt).std() < 0.05
    assert sorted(dealt.ravel().tolist()) == list(range(4096))
    # Still far less padding than no bucketing.
    pad = lambda plan: (lengths[plan].max(1) * 128).sum()  # noqa: E731
    assert pad(dealt) < 0.8 * pad(plan_epoch(lengths, 128, seed=0, bucket=False))


@pytest.mark.parametrize("devices", [["/cpu:0"], ["/cpu:0", "/cpu:1"]])
def test_large_batch_plans_feed_right_padded_length_buckets_without_masked_rows(devices):
    # The seed-large-batch budget (global batch 2,048, issue 25), through the
    # trainer's plan and the controller's pipeline. cuDNN's LSTM needs every row
    # right-padded with at least one token; buckets pad each batch only to its own
    # longest row. One bucketing window (16 global batches) minus 5 rows: the last
    # batch ends with 5 padding rows.
    from tests.helpers import batch_mask_problems
    from weibo_lstm import WeiboLSTM
    from weibo_lstm.models.presets import PRESETS
    from weibo_lstm.preprocessing.tokenizer import OOV_ID
    from weibo_lstm.training.option_groups import make_options
    from weibo_lstm.training.trainer import DistributedTrainer

    global_batch, n = 2048, 16 * 2048 - 5
    rng = np.random.default_rng(11)
    lengths = np.minimum(rng.geometric(1 / 60, n), 180)  # weibo-like: 1..180, mean ~60
    examples = TokenizedExamples(
        values=rng.integers(2, 5000, lengths.sum()).astype(np.int32),
        row_splits=np.concatenate([[0], np.cumsum(lengths)]),
        labels=rng.integers(0, 2, n).astype(np.int32),
    )
    strategy = mirrored_strategy(devices)
    preset = PRESETS["seed-large-batch"]
    trainer = DistributedTrainer(
        model=WeiboLSTM(5000, **preset.backbone),  # BatchNorm: buckets without class dealing
        strategy=strategy,
        options=make_options(preset.budget("GPU"))[0],
    )
    assert trainer.global_batch_size == global_batch and trainer.options.bucket_by_length
    plan = trainer.plan_epoch(examples, epoch=3)
    assert plan.shape == (16, global_batch) and (plan == PADDING_ROW).sum() == 5
    weights = loss_weights(plan)
    batches = list(EpochDatasets(strategy, examples).distribute(plan, weights=weights))
    assert len(batches) == len(plan)

    ranges = []  # (shortest, longest) real row of each global batch
    for step, batch in enumerate(batches):
        for replica in strategy.experimental_local_results(batch):
            ids, index = replica["ids"].numpy(), replica["index"].numpy()
            filler = index == PADDING_ROW
            tokens = (ids != 0).sum(axis=1)
            assert batch_mask_problems(ids) == []  # right-padded, >= 1 token per row
            np.testing.assert_array_equal(tokens[~filler], lengths[index[~filler]])
            # Fillers are one OOV token with weight 0, never an all-zero row.
            assert (ids[filler, 0] == OOV_ID).all() and (tokens[filler] == 1).all()
            assert (replica["weights"].numpy()[filler] == 0).all()
            assert ids.shape[1] == tokens.max()  # padded to this replica's longest row
        real = plan[step][plan[step] != PADDING_ROW]
        ranges.append((lengths[real].min(), lengths[real].max()))
    # One window sorted by length and cut into batches: their ranges do not overlap.
    ranges.sort()
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(ranges))
    # Padding adds under 10 % to the tokens (the seed's padding to 180: about 3x).
    assert sum(hi * global_batch for _, hi in ranges) < 1.1 * lengths.sum()
