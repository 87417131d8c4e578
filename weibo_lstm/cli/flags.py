"""Command-line flags generated from config dataclasses: one name, one default, one help.

Each field of a frozen config dataclass (`RunConfig`, `TrainerOptions`, …) becomes
``--field-name`` with the field's type and default, and the help text of its entry in
the class docstring's ``Attributes:`` section. A knob therefore has one name and one
default from the command line down to the object that uses it, and a new field is a
new flag without touching the command line. Values are checked by the dataclass's own
`__post_init__` (one place), not by the parser; the parser only converts types.

Example:

>>> import argparse, dataclasses
>>> @dataclasses.dataclass(frozen=True)
... class Options:
...     '''Options.
...
...     Attributes:
...         batch_size: examples per step.
...         fresh: start from scratch.
...     '''
...     batch_size: int = 64
...     fresh: bool = False
>>> parser = argparse.ArgumentParser()
>>> add_dataclass_flags(parser, Options)
['batch_size', 'fresh']
>>> args = parser.parse_args(["--batch-size", "8", "--fresh"])
>>> Options(**dataclass_values(args, Options))
Options(batch_size=8, fresh=True)
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Collection, Mapping

#: Field metadata key with the allowed values of a field (its flag's `choices`). The
#: config dataclasses (in lower layers, which do not import this module) write the
#: plain strings.
CHOICES = "choices"
#: Field metadata key with the placeholder of the flag's value in `--help`.
METAVAR = "metavar"
#: Field metadata key: the flag must be given.
REQUIRED = "required"


def flag_name(field_name: str) -> str:
    """`batch_size` -> `--batch-size`."""
    return "--" + field_name.replace("_", "-")


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> its description in the ``Attributes:`` section of `cls`'s docstring."""
    docs: dict[str, str] = {}
    name = None
    in_section = False
    for line in (inspect.getdoc(cls) or "").splitlines():
        if line.strip() == "Attributes:":
            in_section = True
            continue
        if not in_section:
            continue
        entry = re.match(r"^ {4}(\w+): ?(.*)$", line)
        if entry:
            name = entry.group(1)
            docs[name] = entry.group(2).strip()
        elif line.startswith(" " * 8) and name is not None:
            docs[name] += " " + line.strip()
        elif line.strip():  # the next section
            break
    return docs


def add_dataclass_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    exclude: Collection[str] = (),
    deferred: Mapping[str, object] | None = None,
    defaults: Mapping[str, object] | None = None,
) -> list[str]:
    """Adds one flag per field of dataclass `cls` to `parser`.

    Args:
        parser: a parser or argument group.
        cls: a dataclass whose fields have defaults.
        exclude: fields that get no flag (set by the program itself).
        deferred: fields whose default is decided later (e.g. by the device):
            their flag defaults to None and their help ends with
            ``str(deferred[name])``, evaluated only when the help is shown.
        defaults: defaults that replace the fields' own (e.g. pretraining's epochs
            for `TrainerOptions.epochs`); the help shows them.

    Returns:
        The names of the fields that got a flag, in field order.

    Raises:
        TypeError: for a field type that has no flag form.
    """
    docs = field_docs(cls)
    deferred = dict(deferred or {})
    defaults = dict(defaults or {})
    hints = typing.get_type_hints(cls)
    added = []
    for field in dataclasses.fields(cls):
        if field.name in exclude or not field.init:
            continue
        default = None if field.name in deferred else defaults.get(field.name, _default(field))
        kwargs = _flag_kwargs(cls, field, hints[field.name], default)
        help_text = docs.get(field.name, "").replace("%", "%%")
        if field.name in deferred:
            help_text += " (%(device_default)s)"
        elif default not in (None, ()) and kwargs.get("action") is None:
            help_text += f" (default: {_show(default)})"
        action = parser.add_argument(flag_name(field.name), help=help_text, **kwargs)
        if field.name in deferred:
            # argparse formats help with the action's attributes: str() runs at --help time.
            action.device_default = deferred[field.name]
        added.append(field.name)
    return added


def _flag_kwargs(cls: type, field: dataclasses.Field, hint, default) -> dict:
    """`add_argument` keywords for one field: its type, action, choices and metavar."""
    kind, optional = _unwrap(hint)
    kwargs: dict = {"dest": field.name, "default": default}
    if kind is bool:
        if default is False and not optional:
            kwargs["action"] = "store_true"
        else:
            kwargs["action"] = argparse.BooleanOptionalAction
    elif kind in (int, float, str):
        kwargs["type"] = _converter(kind, optional)
        kwargs["metavar"] = {int: "N", float: "X", str: "VALUE"}[kind]
    elif typing.get_origin(kind) is tuple and typing.get_args(kind)[1:] == (Ellipsis,):
        item = typing.get_args(kind)[0]
        kwargs.update(nargs="+", type=_converter(item, False))
        kwargs["metavar"] = {int: "N", float: "X", str: "VALUE"}[item]
    elif typing.get_origin(kind) is typing.Literal:
        kwargs["choices"] = typing.get_args(kind)
    else:
        raise TypeError(f"{cls.__name__}.{field.name}: no flag for type {hint}")
    if CHOICES in field.metadata:
        kwargs["choices"] = tuple(field.metadata[CHOICES])
        kwargs.pop("metavar", None)
    if METAVAR in field.metadata:
        kwargs["metavar"] = field.metadata[METAVAR]
    if field.metadata.get(REQUIRED):
        kwargs["required"] = True
    return kwargs


def _show(value) -> str:
    return " ".join(map(str, value)) if isinstance(value, tuple) else str(value)


def dataclass_fields(cls: type) -> list[str]:
    """The names of `cls`'s fields that `__init__` takes, in order."""
    return [f.name for f in dataclasses.fields(cls) if f.init]


def dataclass_values(
    args: argparse.Namespace, cls: type, *, exclude: Collection[str] = ()
) -> dict[str, object]:
    """The values of `cls`'s flags in `args`, by field name."""
    return {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(cls)
        if f.init and f.name not in exclude and hasattr(args, f.name)
    }


def _default(field: dataclasses.Field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    raise TypeError(f"field {field.name!r} has no default: it cannot be an optional flag")


def _unwrap(hint) -> tuple[object, bool]:
    """(type, optional) of `X`, `X | None` or `Optional[X]`."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


def _converter(kind: type, optional: bool):
    article = "an" if kind is int else "a"

    def convert(text: str):
        if optional and text.lower() == "none":
            return None
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {article} {kind.__name__}, got {text!r}"
            ) from None

    convert.__name__ = kind.__name__
    return convert
