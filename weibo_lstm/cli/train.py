"""`weibo-lstm train` (and `examples/train_multi_gpu.py`): the training flags and command.

The flags are generated from `RunConfig` and the two option groups (`TrainerOptions`,
`ControllerOptions`) by `flags.py`: one name, default and help per knob; `--config`
reads the same names from a TOML file.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence

from weibo_lstm.cli import common, flags


class _DeviceDefault:
    """The default of a budget option on this machine, computed when `--help` shows it.

    The device kind comes from `device_probe.probable_device_kind`, which does not start
    TensorFlow: `--help` stays instant and `--replicas N` can still split the CPU after.
    """

    def __init__(self, option: str, default: object):
        self.option, self.default = option, default

    def __str__(self) -> str:
        from weibo_lstm.models.presets import describe_default

        return describe_default(self.option, default=self.default)


def add_command(commands) -> None:
    """Adds `train` to the subparsers `commands`."""
    train = commands.add_parser(
        "train", help="train, evaluate on a held-out test set, write a report"
    )
    add_train_arguments(train)
    train.set_defaults(run=train_command)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The training flags, shared by `weibo-lstm train` and the example script.

    One flag per field of `RunConfig`, `TrainerOptions` and `ControllerOptions` (minus
    the fields the job sets), named after the field, with its default and its
    docstring as help; the budget options default to the preset's budget for this
    machine's device.
    """
    from weibo_lstm.jobs.config import JOB_SET_OPTIONS, RunConfig
    from weibo_lstm.models.presets import BUDGET_KEYS
    from weibo_lstm.training.option_groups import OPTION_GROUPS

    parser.add_argument(
        "--config",
        metavar="FILE.toml",
        help="read settings from a TOML file of `name = value` lines, the flags' names "
        "(with _ or -); flags on the command line override it. Every run writes its "
        "resolved settings as settings.toml beside the model: --config on that file "
        "reruns it",
    )
    flags.add_dataclass_flags(parser.add_argument_group("data, model and devices"), RunConfig)
    for group in OPTION_GROUPS:
        defaults = {f.name: f.default for f in dataclasses.fields(group)}
        flags.add_dataclass_flags(
            parser.add_argument_group(common.option_group_title(group)),
            group,
            exclude=JOB_SET_OPTIONS,
            deferred={k: _DeviceDefault(k, defaults[k]) for k in BUDGET_KEYS if k in defaults},
        )
    common.add_verbose_argument(parser)


def apply_config_file(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """Makes the settings of `--config FILE.toml` in `argv` the defaults of the parser
    that has `--config` (the `train` subparser, or the example's parser), so that the
    flags given in `argv` override them.

    Raises:
        UserError: the file is missing, is not TOML, or names an unknown setting.
    """
    target = _parser_with(parser, "--config", argv)
    if target is None:  # a command without --config (--help, predict, ...): nothing to read
        return
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    if known.config is None:
        return
    from weibo_lstm.jobs.config import JOB_SET_OPTIONS, RunConfig, read_settings
    from weibo_lstm.training.option_groups import OPTION_GROUPS

    names = set(flags.dataclass_fields(RunConfig))
    for group in OPTION_GROUPS:
        names |= set(flags.dataclass_fields(group)) - JOB_SET_OPTIONS
    target.set_defaults(**read_settings(known.config, names))


def _parser_with(parser: argparse.ArgumentParser, option: str, argv: Sequence[str]):
    """`parser`, or the subparser named in `argv`, whichever has `option`."""
    if option in parser._option_string_actions:
        return parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for word in argv:
                if word in action.choices:
                    return _parser_with(action.choices[word], option, argv)
    return None


def train_settings(args: argparse.Namespace):
    """`(RunConfig, options)` from parsed train flags: the options are the training
    options given (flat), without the budget ones left to the preset.

    Raises:
        ConfigError: for an invalid value (checked by the dataclasses, before
            TensorFlow starts its devices).
    """
    from weibo_lstm.jobs.config import JOB_SET_OPTIONS, RunConfig
    from weibo_lstm.models.presets import BUDGET_KEYS
    from weibo_lstm.training.option_groups import OPTION_GROUPS, make_options

    config = RunConfig(**flags.dataclass_values(args, RunConfig))
    options = {
        name: value
        for group in OPTION_GROUPS
        for name, value in flags.dataclass_values(args, group, exclude=JOB_SET_OPTIONS).items()
        if not (name in BUDGET_KEYS and value is None)
    }
    make_options(options)  # validates the values now, before devices start
    return config, options


def check_inputs(config) -> None:
    """Answers a CSV or starting model that is not there at once, not after the
    seconds TensorFlow takes to start.

    Raises:
        DataError: `data`, `val_data` or `test_data` is not a file, or `init` (not a
            shipped model's name) or `encoder` is not a model directory.
    """
    from pathlib import Path

    from weibo_lstm.data.text_files import check_file
    from weibo_lstm.errors import DataError
    from weibo_lstm.models.presets import TRAINED_MODELS, encoder_path
    from weibo_lstm.serving import model_format

    for csv in (config.data, config.val_data, config.test_data):
        if csv is not None:
            check_file(Path(csv))
    if config.init is not None and config.init not in TRAINED_MODELS:
        model_format.resolve(config.init)
    if config.encoder is not None and not Path(encoder_path(config.encoder)).is_dir():
        raise DataError(f"{config.encoder}: no such encoder directory")


def train_command(args: argparse.Namespace) -> int:
    """Runs the training job (`weibo_lstm.jobs.train.run_training`), after
    `check_inputs`."""
    config, options = train_settings(args)
    check_inputs(config)
    common.quiet_tensorflow(["--verbose"] if args.verbose else [])
    from weibo_lstm.jobs import train as job

    job.run_training(config, options)
    return 0
