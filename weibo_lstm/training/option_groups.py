"""Flat training options → the option groups, Orbit's way.

What the runner needs is `TrainerOptions`, what the outer loop needs is
`ControllerOptions`; each field belongs to exactly one of them. A user still writes
the options flat (`SentimentClassifier.fit(epochs=4, batch_size=64, seed=1)`, one
command-line flag per field): `split_options` sends each to its group, and
`make_options` builds the two validated objects.

Example:

>>> trainer, controller = make_options({"epochs": 4, "batch_size": 64, "seed": 1})
>>> trainer.batch_size, trainer.seed, controller.epochs
(64, 1, 4)
>>> make_options({"epoch": 4})
Traceback (most recent call last):
...
weibo_lstm.errors.ConfigError: Argument `epoch` is not a training option (a field of TrainerOptions or ControllerOptions). Received: epoch=4
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from weibo_lstm.errors import ConfigError
from weibo_lstm.training.controller_options import ControllerOptions
from weibo_lstm.training.options import TrainerOptions

#: The option groups of a training run, in the order `make_options` returns them.
OPTION_GROUPS = (TrainerOptions, ControllerOptions)


def option_fields(group: type) -> tuple[str, ...]:
    """The field names of option group `group`, in order."""
    return tuple(f.name for f in dataclasses.fields(group) if f.init)


def split_options(
    options: Mapping[str, object], groups: Sequence[type] = OPTION_GROUPS
) -> tuple[dict[str, object], ...]:
    """`options` as one dict per group of `groups`: each field to the group that declares it.

    Raises:
        ConfigError: naming the first field that no group declares.
    """
    owner = {name: i for i, group in enumerate(groups) for name in option_fields(group)}
    parts: tuple[dict[str, object], ...] = tuple({} for _ in groups)
    for name, value in options.items():
        if name not in owner:
            names = " or ".join(group.__name__ for group in groups)
            raise ConfigError(
                f"Argument `{name}` is not a training option (a field of {names}). "
                f"Received: {name}={value!r}"
            )
        parts[owner[name]][name] = value
    return parts


def make_options(
    options: Mapping[str, object] | None = None,
    *,
    base: tuple[TrainerOptions, ControllerOptions] | None = None,
) -> tuple[TrainerOptions, ControllerOptions]:
    """`(TrainerOptions, ControllerOptions)` with the flat `options` over `base`.

    Args:
        options: fields of either group, by name.
        base: the two groups to start from (None: their defaults).

    Raises:
        ConfigError: for an unknown field or an invalid value (the groups' own
            validation).
    """
    trainer_fields, controller_fields = split_options(options or {})
    if base is None:
        return TrainerOptions(**trainer_fields), ControllerOptions(**controller_fields)
    trainer, controller = base
    return (
        dataclasses.replace(trainer, **trainer_fields),
        dataclasses.replace(controller, **controller_fields),
    )


def flat_options(*groups: object) -> dict[str, object]:
    """Every field of the given option objects in one dict (for reports and settings).

    Example:

    >>> sorted(flat_options(*make_options()))[:3]
    ['batch_renormalization', 'batch_size', 'bucket_by_length']
    """
    return {k: v for group in groups for k, v in dataclasses.asdict(group).items()}
