"""`weibo-lstm pretrain`: a character language model on unlabelled text → an encoder.

The flags come from `PretrainConfig` and the training options pretraining offers
(`PRETRAIN_OPTION_FIELDS` of `TrainerOptions` and `ControllerOptions`), with
pretraining's own defaults (`PRETRAIN_OPTIONS`).
"""

from __future__ import annotations

import argparse
import json

from weibo_lstm.cli import common, flags


def add_command(commands) -> None:
    """Adds `pretrain` to the subparsers `commands`."""
    from weibo_lstm.jobs.config import PRETRAIN_OPTION_FIELDS, PRETRAIN_OPTIONS, PretrainConfig
    from weibo_lstm.training.option_groups import OPTION_GROUPS

    pretrain = commands.add_parser(
        "pretrain", help="pretrain the encoder as a character language model on unlabelled text"
    )
    flags.add_dataclass_flags(
        pretrain.add_argument_group("data, model and devices"), PretrainConfig
    )
    for group in OPTION_GROUPS:
        flags.add_dataclass_flags(
            pretrain.add_argument_group(common.option_group_title(group)),
            group,
            exclude=set(flags.dataclass_fields(group)) - set(PRETRAIN_OPTION_FIELDS),
            defaults=PRETRAIN_OPTIONS,
        )
    common.add_verbose_argument(pretrain)
    pretrain.set_defaults(run=pretrain_command)


def pretrain_settings(args: argparse.Namespace):
    """`(PretrainConfig, options)` from parsed pretrain flags.

    Raises:
        ConfigError: for an invalid value, before TensorFlow starts its devices.
    """
    from weibo_lstm.jobs.config import PRETRAIN_OPTION_FIELDS, PretrainConfig, pretrain_options

    config = PretrainConfig(**flags.dataclass_values(args, PretrainConfig))
    options = {name: getattr(args, name) for name in PRETRAIN_OPTION_FIELDS}
    pretrain_options(options, summary_dir="")  # validates the values now
    return config, options


def pretrain_command(args: argparse.Namespace) -> int:
    """Runs `weibo-lstm pretrain` and prints its report as one JSON line."""
    from weibo_lstm.jobs.pretrain import run_pretraining

    config, options = pretrain_settings(args)
    result = run_pretraining(config, options=options)
    print(json.dumps({k: v for k, v in result.report.items() if k != "config"}, default=str))
    return 0
