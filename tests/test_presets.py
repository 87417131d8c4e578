"""Presets as data: the budgets, and the large-batch budget's global batch (issue 25)."""

import pytest
import tensorflow as tf

from weibo_lstm import SentimentClassifier, WeiboLSTMClassifier
from weibo_lstm.distribute.strategies import cpu_strategy
from weibo_lstm.errors import ConfigError
from weibo_lstm.models.presets import BUDGET_KEYS, PRESETS, Preset
from weibo_lstm.training.optimization import learning_rate_schedule
from weibo_lstm.training.option_groups import make_options
from weibo_lstm.training.trainer import ControllerOptions, DistributedTrainer


def test_the_seed_preset_keeps_the_recipes_gpu_budget():
    budget = PRESETS["seed"].budget("GPU")
    assert budget == {"epochs": 15, "batch_size": 64, "learning_rate": 1e-4, "warmup_epochs": 3.0}
    assert PRESETS["seed"].mixed_precision == "off"


def test_the_large_batch_preset_is_the_seed_architecture_at_global_batch_2048():
    preset = PRESETS["seed-large-batch"]
    assert dict(preset.backbone) == dict(PRESETS["seed"].backbone) == {}
    assert preset.mixed_precision == "auto"
    for kind in ("CPU", "GPU"):  # the same budget: its accuracy can be checked on a CPU
        budget = preset.budget(kind)
        assert budget == {
            "epochs": 15,
            "global_batch_size": 2048,
            "learning_rate": 3e-3,
            "warmup_epochs": 1.0,
            # Chosen on validation: plain batch statistics, which a batch of 2,048
            # estimates well, and precise statistics from 10,240 posts.
            "precise_bn_batches": 5,
            "batch_renormalization": False,
        }


@pytest.mark.parametrize("replicas", [1, 2])
def test_the_large_batch_budget_trains_2048_per_step_at_3e_3_on_any_replica_count(
    replicas, texts_and_labels
):
    strategy = cpu_strategy(replicas)
    texts, _ = texts_and_labels(20)
    classifier = SentimentClassifier.from_preset(
        "seed-large-batch", vocabulary_texts=texts, strategy=strategy
    )
    options, loop = classifier.training_options()
    assert options.bucket_by_length and options.pad_to is None  # length buckets
    trainer = DistributedTrainer(model=classifier.model, strategy=strategy, options=options)
    assert trainer.global_batch_size == 2048
    # BatchNorm on buckets, with the batch's own statistics at this size.
    assert trainer.buckets_batch_norm and not trainer.renormalizes_batch_norm
    assert loop.precise_bn_batches == 5 and loop.epochs == 15
    schedule = learning_rate_schedule(
        options, num_replicas=replicas, steps_per_epoch=35, epochs=loop.epochs
    )
    # Warmup over the first epoch (35 steps of 2,048 on the weibo sample), then the peak.
    assert float(schedule(0)) == pytest.approx(3e-4)
    assert float(schedule(35)) == pytest.approx(3e-3)
    # A batch the caller gives replaces the budget's global batch.
    assert classifier.training_options(batch_size=64)[0].global_batch_size is None


def test_every_budget_is_valid_options_and_leaves_the_rest_to_their_defaults():
    for preset in PRESETS.values():
        for kind in ("CPU", "GPU"):
            budget = preset.budget(kind)
            assert set(budget) <= set(BUDGET_KEYS)
            options, loop = make_options(budget)  # the groups' own validation
            for name, value in budget.items():
                assert getattr(options if hasattr(options, name) else loop, name) == value
            if "patience" not in budget:
                assert loop.patience is ControllerOptions().patience
    for name in ("seed", "pretrained", "best"):  # small batches: batch renormalization
        assert make_options(PRESETS[name].budget("CPU"))[0].batch_renormalization


def preset_with(budget):
    return Preset(
        name="custom", description="", backbone={}, budgets={"CPU": budget, "GPU": budget}
    )


def test_a_budget_with_a_bad_value_fails_with_the_options_message(texts_and_labels):
    """A budget is plain data: its values are checked by the option groups, with their
    message, when a run builds its options (here through the classifier)."""
    texts, _ = texts_and_labels(20)
    classifier = SentimentClassifier.from_preset(
        "best", vocabulary_texts=texts, strategy=tf.distribute.get_strategy(), lstm_units=(4,)
    )
    for budget, message in (
        ({"epochs": 0}, "Argument `epochs` must be >= 1. Received: epochs=0"),
        (
            {"precise_bn_batches": -1},
            "Argument `precise_bn_batches` must be >= 0. Received: precise_bn_batches=-1",
        ),
        (
            {"learning_rate": 0.0},
            "Argument `learning_rate` must be > 0. Received: learning_rate=0.0",
        ),
    ):
        with pytest.raises(ConfigError) as direct:
            make_options(budget)
        assert str(direct.value) == message
        with pytest.MonkeyPatch.context() as patch:
            patch.setitem(PRESETS, "best", preset_with(budget))
            with pytest.raises(ConfigError) as through_the_task:
                classifier.training_options()
        assert str(through_the_task.value) == message
    with pytest.raises(ConfigError, match="Argument `budgets` must be a budget for each of"):
        preset_with({"epoch": 3})  # a name that is not a budget option
    with pytest.raises(ConfigError, match="Argument `budgets` must be"):
        Preset(name="x", description="", backbone={}, budgets={"CPU": {"epochs": 1}})


def test_a_budget_batch_is_per_replica_or_global():
    options, _ = make_options(PRESETS["seed-large-batch"].budget("CPU"))
    assert options.global_batch(2) == 2048  # the default batch_size is not used
    assert make_options(PRESETS["seed"].budget("GPU"))[0].global_batch(2) == 128
    assert "global_batch_size" not in PRESETS["seed"].budget("GPU")


def test_every_preset_builds_on_the_default_strategy(texts_and_labels):
    texts, _ = texts_and_labels(20)
    for name in PRESETS:
        if PRESETS[name].encoder:
            continue  # the shipped encoder: tested in test_classifier
        classifier = SentimentClassifier.from_preset(
            name, vocabulary_texts=texts, strategy=tf.distribute.get_strategy()
        )
        assert isinstance(classifier.model, WeiboLSTMClassifier)
        assert classifier.training_options()[1].epochs >= 1
