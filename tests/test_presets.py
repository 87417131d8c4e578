"""Presets as data: the budgets, and the large-batch budget's global batch (issue 25)."""

import pytest
import tensorflow as tf

from weibo_lstm import SentimentClassifier, WeiboLSTMClassifier
from weibo_lstm.distribute.strategies import cpu_strategy
from weibo_lstm.errors import ConfigError
from weibo_lstm.models.presets import PRESETS, Budget
from weibo_lstm.training.optimization import learning_rate_schedule
from weibo_lstm.training.trainer import DistributedTrainer


def test_the_seed_preset_keeps_the_recipes_gpu_budget():
    budget = PRESETS["seed"].budget("GPU")
    assert (budget.epochs, budget.batch_size, budget.learning_rate, budget.warmup_epochs) == (
        15,
        64,
        1e-4,
        3.0,
    )
    assert budget.global_batch_size is None and PRESETS["seed"].mixed_precision == "off"


def test_the_large_batch_preset_is_the_seed_architecture_at_global_batch_2048():
    preset = PRESETS["seed-large-batch"]
    assert dict(preset.backbone) == dict(PRESETS["seed"].backbone) == {}
    assert preset.mixed_precision == "auto"
    for kind in ("CPU", "GPU"):  # the same budget: its accuracy can be checked on a CPU
        budget = preset.budget(kind)
        assert budget.as_dict() == {
            "epochs": 15,
            "global_batch_size": 2048,
            "learning_rate": 3e-3,
            "warmup_epochs": 1.0,
            "patience": None,
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
    options = classifier.training_options()
    assert options.bucket_by_length and options.pad_to is None  # length buckets
    trainer = DistributedTrainer(model=classifier.backbone, strategy=strategy, options=options)
    assert trainer.global_batch_size == 2048
    # BatchNorm on buckets, with the batch's own statistics at this size.
    assert trainer.buckets_batch_norm and not trainer.renormalizes_batch_norm
    assert options.precise_bn_batches == 5
    schedule = learning_rate_schedule(options, num_replicas=replicas, steps_per_epoch=35)
    # Warmup over the first epoch (35 steps of 2,048 on the weibo sample), then the peak.
    assert float(schedule(0)) == pytest.approx(3e-4)
    assert float(schedule(35)) == pytest.approx(3e-3)
    # A batch the caller gives replaces the budget's global batch.
    assert classifier.training_options(batch_size=64).global_batch_size is None


def test_a_budget_defaults_to_the_trainer_options_defaults():
    from weibo_lstm.training.options import TrainerOptions

    budget = Budget(epochs=1, batch_size=8, learning_rate=1, warmup_epochs=0)
    defaults = TrainerOptions()
    for name in ("patience", "global_batch_size", "precise_bn_batches", "batch_renormalization"):
        assert getattr(budget, name) == getattr(defaults, name), name
    for preset in ("seed", "pretrained", "best"):
        assert PRESETS[preset].budget("CPU").batch_renormalization  # small batches
    with pytest.raises(ConfigError, match="Received: precise_bn_batches=-1"):
        Budget(epochs=1, batch_size=8, learning_rate=1, warmup_epochs=0, precise_bn_batches=-1)


def test_a_budget_has_exactly_one_batch():
    with pytest.raises(ConfigError, match="exactly one of `batch_size` and `global_batch_size`"):
        Budget(epochs=1, batch_size=64, global_batch_size=2048, learning_rate=1, warmup_epochs=0)
    with pytest.raises(ConfigError, match="exactly one of"):
        Budget(epochs=1, batch_size=None, learning_rate=1, warmup_epochs=0)
    with pytest.raises(ConfigError, match="Received: global_batch_size=0"):
        Budget(epochs=1, batch_size=None, global_batch_size=0, learning_rate=1, warmup_epochs=0)
    assert "global_batch_size" not in PRESETS["seed"].budget("GPU").as_dict()


def test_every_preset_builds_on_the_default_strategy(texts_and_labels):
    texts, _ = texts_and_labels(20)
    for name in PRESETS:
        if PRESETS[name].encoder:
            continue  # the shipped encoder: tested in test_classifier
        classifier = SentimentClassifier.from_preset(
            name, vocabulary_texts=texts, strategy=tf.distribute.get_strategy()
        )
        assert isinstance(classifier.backbone, WeiboLSTMClassifier)
        assert classifier.training_options().epochs >= 1
