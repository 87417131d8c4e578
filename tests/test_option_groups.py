"""The training options in two groups (the runner's, the controller's), routed by name."""

import dataclasses

import pytest

from weibo_lstm.errors import ConfigError, check_argument
from weibo_lstm.jobs.config import PRETRAIN_OPTION_FIELDS, PRETRAIN_OPTIONS, pretrain_options
from weibo_lstm.models.presets import BUDGET_KEYS
from weibo_lstm.training.controller_options import ControllerOptions
from weibo_lstm.training.option_groups import (
    OPTION_GROUPS,
    flat_options,
    make_options,
    split_options,
)
from weibo_lstm.training.options import TrainerOptions

#: What each group must hold (the runner's step, optimizer and input; the outer loop).
RUNNER = {
    *("batch_size", "global_batch_size", "eval_batch_size", "learning_rate", "lr_scaling"),
    *("initial_lr_fraction", "warmup_epochs", "min_lr_fraction", "clip_global_norm", "seed"),
    *("bucket_by_length", "batch_renormalization", "pad_to"),
}
LOOP = {
    *("epochs", "steps_per_loop", "monitor", "mode", "patience", "precise_bn_batches"),
    *("quiet", "summary_dir", "checkpoint_dir", "checkpoint_every_steps", "keep_checkpoints"),
    *("fresh", "on_nonfinite"),
}


def names(group):
    return [f.name for f in dataclasses.fields(group)]


def test_every_option_is_in_exactly_one_small_group():
    assert (TrainerOptions, ControllerOptions) == OPTION_GROUPS
    assert set(names(TrainerOptions)) == RUNNER and set(names(ControllerOptions)) == LOOP
    everything = [name for group in OPTION_GROUPS for name in names(group)]
    assert len(everything) == len(set(everything))  # no field declared twice
    assert all(len(names(group)) <= 15 for group in OPTION_GROUPS)
    # The options that only experiments used, and the task's, are in neither group.
    assert not {"adversarial_epsilon", "emoticon_dropout"} & set(everything)
    # The budgets, the pretraining options and its defaults name options of the groups.
    assert set(BUDGET_KEYS) | set(PRETRAIN_OPTION_FIELDS) | set(PRETRAIN_OPTIONS) <= set(everything)


def test_flat_options_go_to_the_group_that_declares_them():
    flat = {"epochs": 4, "batch_size": 64, "seed": 1, "quiet": True, "clip_global_norm": 1.0}
    trainer_part, loop_part = split_options(flat)
    assert trainer_part == {"batch_size": 64, "seed": 1, "clip_global_norm": 1.0}
    assert loop_part == {"epochs": 4, "quiet": True}
    trainer, loop = make_options(flat)
    assert trainer == TrainerOptions(batch_size=64, seed=1, clip_global_norm=1.0)
    assert loop == ControllerOptions(epochs=4, quiet=True)
    assert flat_options(trainer, loop) == {
        **dataclasses.asdict(TrainerOptions()),
        **dataclasses.asdict(ControllerOptions()),
        **flat,
    }
    # Over given groups, only the named fields change.
    base = (TrainerOptions(learning_rate=0.5), ControllerOptions(patience=2))
    trainer, loop = make_options({"epochs": 3}, base=base)
    assert (trainer, loop) == (base[0], dataclasses.replace(base[1], epochs=3))


@pytest.mark.parametrize("name", ["epoch", "adversarial_epsilon", "emoticon_dropout"])
def test_an_unknown_option_is_a_config_error_naming_it(name):
    with pytest.raises(ConfigError) as info:
        make_options({"epochs": 2, name: 0.5})
    assert str(info.value) == (
        f"Argument `{name}` is not a training option (a field of TrainerOptions or "
        f"ControllerOptions). Received: {name}=0.5"
    )
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("group", "field", "value", "expected"),
    [
        (TrainerOptions, "batch_size", 0, ">= 1"),
        (TrainerOptions, "learning_rate", float("nan"), "> 0"),
        (TrainerOptions, "lr_scaling", "cubic", "'sqrt', 'linear' or 'none'"),
        (TrainerOptions, "pad_to", 0, ">= 1 or None"),
        (ControllerOptions, "epochs", 0, ">= 1"),
        (ControllerOptions, "on_nonfinite", "ignore", "'stop' or 'skip'"),
        (ControllerOptions, "keep_checkpoints", 0, ">= 1"),
    ],
)
def test_each_group_validates_with_the_one_message(group, field, value, expected):
    with pytest.raises(ConfigError) as info:
        group(**{field: value})
    with pytest.raises(ConfigError) as reference:
        check_argument(field, value, False, expected)
    assert str(info.value) == str(reference.value)
    assert str(info.value) == f"Argument `{field}` must be {expected}. Received: {field}={value!r}"


def test_a_global_batch_must_divide_over_the_replicas():
    with pytest.raises(ConfigError, match="must be a multiple of the 3 replicas"):
        TrainerOptions(global_batch_size=32).global_batch(3)


def test_pretraining_options_are_its_defaults_under_the_users():
    trainer, loop = pretrain_options({"epochs": 1}, summary_dir="tb")
    assert (loop.epochs, loop.monitor, loop.mode, loop.summary_dir) == (1, "val_loss", "min", "tb")
    assert trainer.batch_size == PRETRAIN_OPTIONS["batch_size"]
    assert loop.on_nonfinite == PRETRAIN_OPTIONS["on_nonfinite"] == "skip"
    with pytest.raises(ConfigError, match=r"\['bucket_by_length'\] are not pretraining options"):
        pretrain_options({"bucket_by_length": False}, summary_dir="tb")
