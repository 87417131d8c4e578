"""One configuration vocabulary: every training knob has one name and one default from
the `weibo-lstm train` flag down to the dataclass that uses it."""

import argparse
import dataclasses
import re
import types

import pytest
import tensorflow as tf

from tests.helpers import run_python
from weibo_lstm.cli import common, flags
from weibo_lstm.cli import main as cli
from weibo_lstm.cli import pretrain as pretrain_cli
from weibo_lstm.cli import train as train_cli
from weibo_lstm.errors import UserError
from weibo_lstm.jobs.train import JOB_SET_OPTIONS, RunConfig
from weibo_lstm.models.presets import BUDGET_KEYS, DEFAULT_PRESET, PRESETS
from weibo_lstm.training.controller_options import ControllerOptions
from weibo_lstm.training.option_groups import OPTION_GROUPS, make_options
from weibo_lstm.training.options import TrainerOptions

#: Flags of `weibo-lstm train` that are not a setting of the run (they steer the process;
#: `--config FILE.toml` supplies the flags' defaults, it is not a knob of its own).
PROCESS_FLAGS = {"--help", "--verbose", "--config"}


def train_parser() -> argparse.ArgumentParser:
    parser = common.ArgumentParser(prog="train")
    train_cli.add_train_arguments(parser)
    return parser


def knobs():
    """(dataclass, field) of every training knob."""
    for cls, exclude in ((RunConfig, ()), *((group, JOB_SET_OPTIONS) for group in OPTION_GROUPS)):
        for field in dataclasses.fields(cls):
            if field.name not in exclude:
                yield cls, field


def test_every_knob_has_one_flag_with_its_name_and_default():
    actions = {
        max(a.option_strings, key=len) if a.dest == "help" else a.option_strings[0]: a
        for a in train_parser()._actions
    }
    seen = set()
    for cls, field in knobs():
        flag = flags.flag_name(field.name)
        assert flag in actions, f"{cls.__name__}.{field.name} has no flag {flag}"
        action = actions[flag]
        # No alias: the flag, and for a tri-state or default-True switch its negation.
        negation = (
            ["--no-" + flag[2:]] if isinstance(action, argparse.BooleanOptionalAction) else []
        )
        assert action.option_strings == [flag, *negation] and action.dest == field.name
        if field.name in BUDGET_KEYS:
            # Decided by the preset and the device when the run starts (see the help test).
            assert action.default is None
        else:
            assert action.default == field.default, field.name
        if field.name in BUDGET_KEYS:
            assert "%(device_default)s" in action.help
        seen.add(flag)
    # Nothing else: no second name for a knob, no flag that maps to nothing.
    assert set(actions) - seen == PROCESS_FLAGS
    # One name per knob: no field in two of the dataclasses.
    names = [f.name for cls in (RunConfig, *OPTION_GROUPS) for f in dataclasses.fields(cls)]
    assert len(names) == len(set(names))


def test_no_flags_give_the_dataclass_defaults():
    config, options = train_cli.train_settings(train_parser().parse_args([]))
    assert config == RunConfig()
    assert set(options) == {f.name for _, f in knobs() if f.name in options}
    assert not set(options) & set(BUDGET_KEYS)  # left to the preset's budget
    assert make_options(options) == (TrainerOptions(), ControllerOptions())


def test_given_flags_reach_their_fields_by_name():
    args = train_parser().parse_args(
        [
            *("--batch-size", "8", "--learning-rate", "0.5", "--patience", "2"),
            *("--no-bucket-by-length", "--multi-worker", "--steps-per-loop", "none"),
            *("--preset", "seed", "--synchronized-batch-norm"),
        ]
    )
    config, options = train_cli.train_settings(args)
    assert options["batch_size"] == 8 and options["learning_rate"] == 0.5
    assert options["patience"] == 2 and options["bucket_by_length"] is False
    assert options["steps_per_loop"] is None and "epochs" not in options
    assert config.multi_worker is True and config.preset == "seed"
    assert config.synchronized_batch_norm


def test_help_text_is_the_field_docstring():
    docs = flags.field_docs(ControllerOptions)
    help_text = train_parser().format_help()
    assert "keep_checkpoints" in docs and "patience" in docs
    squashed = " ".join(help_text.split())
    assert " ".join(docs["keep_checkpoints"].split()) in squashed
    assert " ".join(flags.field_docs(TrainerOptions)["pad_to"].split()) in squashed
    assert " ".join(flags.field_docs(RunConfig)["emoticon_dropout"].split()) in squashed


def test_train_help_shows_the_real_defaults_of_this_device(repo_root):
    """In a real process: the defaults shown are this machine's, and computing them
    leaves TensorFlow's devices uninitialised (`--replicas 2` still works after)."""
    kind = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    preset = PRESETS[DEFAULT_PRESET[kind]]
    code = (
        "from weibo_lstm.cli import main as cli\n"
        "from weibo_lstm.distribute.devices import configure_cpu_devices\n"
        "try:\n"
        "    cli.main(['train', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "configure_cpu_devices(2)  # raises if the help initialised the devices\n"
    )
    text = " ".join(run_python(code, repo_root).split())
    defaults = {f.name: f.default for g in OPTION_GROUPS for f in dataclasses.fields(g)}
    for key in BUDGET_KEYS:
        value = preset.budget(kind).get(key, defaults[key])
        value = "none" if value is None else value
        expected = f"default: {value} on this {kind} machine (preset {preset.name}"
        flag = key.replace("_", "-")  # `--flag N`, or `--flag, --no-flag` for a bool
        assert re.search(rf"--{flag}(?: \w+|, --no-{flag}) .*?{re.escape(expected)}", text), key


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epochs", "x"], "argument --epochs: expected an int, got 'x'"),
        (["--preset", "huge"], "argument --preset: invalid choice: 'huge'"),
    ],
)
def test_type_errors_are_the_parsers_value_errors_the_dataclasses(argv, message):
    with pytest.raises(UserError, match=re.escape(message)):
        train_parser().parse_args(argv)


def test_generator_handles_the_field_kinds():
    @dataclasses.dataclass(frozen=True)
    class Options:
        """Options.

        Attributes:
            count: how many.
            rate: how fast, in %.
            name: a name; None: none.
            flag: switch on.
            tristate: None: decide later.
        """

        count: int = 3
        rate: float = 0.5
        name: str | None = None
        flag: bool = False
        tristate: bool | None = None

    parser = argparse.ArgumentParser()
    assert flags.add_dataclass_flags(parser, Options) == [
        "count",
        "rate",
        "name",
        "flag",
        "tristate",
    ]
    assert "how fast, in %" in parser.format_help()
    values = flags.dataclass_values(parser.parse_args([]), Options)
    assert Options(**values) == Options()
    args = parser.parse_args(["--count", "4", "--name", "x", "--flag", "--no-tristate"])
    assert Options(**flags.dataclass_values(args, Options)) == Options(4, 0.5, "x", True, False)


def test_pretrain_flags_come_from_its_config_with_defaults_and_choices(capsys):
    """`pretrain --help` is generated like `train`'s: every flag shows its default."""
    from weibo_lstm.jobs.config import PRETRAIN_OPTIONS, PretrainConfig

    with pytest.raises(SystemExit):
        cli.main(["pretrain", "--help"])
    text = " ".join(capsys.readouterr().out.split()).split(" options: ", 1)[1]  # past usage
    defaults = PretrainConfig()
    for flag, shown in (
        ("--epochs N", f"(default: {PRETRAIN_OPTIONS['epochs']})"),
        ("--learning-rate X", f"(default: {PRETRAIN_OPTIONS['learning_rate']})"),
        ("--vocabulary-size N", f"(default: {defaults.vocabulary_size})"),
        ("--lstm-units N [N ...]", "(default: 128 128)"),
        ("--mixed-precision {off,float16,bfloat16}", "(default: off)"),
        ("--on-nonfinite {stop,skip}", "(default: skip)"),
    ):
        assert flag in text
        assert shown in text.split(flag, 1)[1].split(" --", 1)[0], flag
    assert "--bucket-by-length" not in text and "--monitor" not in text


def test_pretrain_settings_split_config_and_trainer_options():
    parser = cli.build_parser()
    args = parser.parse_args(
        ["pretrain", "--text", "a.txt", "b.csv", "--lstm-units", "16", "8", "--epochs", "2"]
    )
    config, options = pretrain_cli.pretrain_settings(args)
    assert config.text == ("a.txt", "b.csv") and config.lstm_units == (16, 8)
    assert options["epochs"] == 2 and options["batch_size"] == 128 and "monitor" not in options
    with pytest.raises(UserError, match=r"^Argument `epochs` must be >= 1. Received: epochs=0$"):
        pretrain_cli.pretrain_settings(
            parser.parse_args(["pretrain", "--text", "a", "--epochs", "0"])
        )


def test_quiet_means_no_progress_bar_only(tmp_path, monkeypatch):
    """`--quiet` reaches `ControllerOptions.quiet` and leaves the log level alone, for
    `pretrain` as for `train` (it used to lower `pretrain`'s to WARNING)."""
    import logging

    seen = {}

    def fake_pretrain(config, options):
        seen["options"], seen["level"] = options, logging.getLogger().getEffectiveLevel()
        return types.SimpleNamespace(report={})

    monkeypatch.setattr("weibo_lstm.jobs.pretrain.run_pretraining", fake_pretrain)
    monkeypatch.setattr(logging.getLogger(), "level", logging.NOTSET)
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    assert cli.main(["pretrain", "--text", str(tmp_path / "t.txt"), "--quiet"]) == 0
    assert seen["options"]["quiet"] is True and seen["level"] == logging.INFO
