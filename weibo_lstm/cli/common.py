"""What the `weibo-lstm` commands share: TensorFlow's start-up logging, the flags every
command has (`--verbose`, `--memory-growth`), the default `--model`, and the one-line
argument errors. Nothing here imports TensorFlow."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence

from weibo_lstm.errors import UserError


class ArgumentParser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` whose errors are one-line `UserError`s (status 2)."""

    def error(self, message):  # one line instead of usage + message
        raise UserError(f"{self.prog}: {message} (see --help)")


#: What `--model` names, unless a command reads more.
MODEL_SOURCES = "a model directory written by train, or its output directory (the newest model)"


def option_group_title(group: type) -> str:
    """The `--help` section of an option group's flags, e.g. `loop (ControllerOptions)`."""
    role = {"TrainerOptions": "training", "ControllerOptions": "loop"}[group.__name__]
    return f"{role} ({group.__name__})"


def add_model_argument(parser: argparse.ArgumentParser, sources: str = MODEL_SOURCES) -> None:
    """`--model`: a trained model (default: the shipped one; see `model_path`)."""
    parser.add_argument(
        "--model",
        default=None,
        help=f"{sources}, or a shipped model's name; default: the shipped sentiment_zh "
        "model (docs/model_card.md)",
    )


def model_path(args: argparse.Namespace) -> str:
    """The model `--model` names (a shipped model's name, a model directory, the newest
    run of an output directory, or a SavedModel), the shipped model when it is not
    given; checked without starting TensorFlow (`weibo_lstm.serving.engines.locate`).

    Raises:
        DataError: if `--model` names none of these (one line saying what to pass).
    """
    from weibo_lstm.models.presets import DEFAULT_MODEL
    from weibo_lstm.serving.engines import locate

    return str(locate(DEFAULT_MODEL if args.model is None else args.model))


def positive(kind):
    """An argparse `type` that takes a `kind` (int or float) > 0."""

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def add_verbose_argument(parser: argparse.ArgumentParser) -> None:
    """`--verbose`: keep TensorFlow's own logging (see `quiet_tensorflow`)."""
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="keep TensorFlow's C++ start-up and runtime logging (hidden by default "
        "unless TF_CPP_MIN_LOG_LEVEL is set)",
    )


def add_memory_growth_argument(parser: argparse.ArgumentParser) -> None:
    """`--memory-growth/--no-memory-growth`, for the commands outside `train` (whose
    flag comes from `RunConfig.memory_growth`)."""
    parser.add_argument(
        "--memory-growth",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="let TensorFlow take GPU memory as it needs it, so several jobs can share a "
        "GPU server; off: reserve all of every GPU's memory at start-up",
    )


def configure_memory_growth(args: argparse.Namespace) -> None:
    """Applies `--memory-growth`; before the model loads (loading initialises the GPUs)."""
    from weibo_lstm.distribute.devices import configure_gpu_memory_growth

    configure_gpu_memory_growth(args.memory_growth)


def quiet_tensorflow(argv: Sequence[str] | None = None) -> None:
    """Hides TensorFlow's C++ logging unless `--verbose` is in `argv` (default: sys.argv).

    Must run before TensorFlow is imported (`import weibo_lstm` does not import it);
    does nothing once it is. Sets TF_CPP_MIN_LOG_LEVEL=3 unless the user set it
    (3, not 2: without a GPU every run logs "failed call to cuInit" as an error).
    TensorFlow writes some INFO lines while it is imported, before that level
    applies ("Could not find cuda drivers", "All log messages before
    absl::InitializeLog() ..."), so the import runs with stderr captured; the capture
    is dropped when the level hides INFO and replayed if the import fails.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" in args:
        args = args[: args.index("--")]
    if "--verbose" in args or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if os.environ["TF_CPP_MIN_LOG_LEVEL"].strip() in ("", "0"):
        return  # the user asked for INFO lines
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.buffer.write(captured.read())  # what went wrong may be in there
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
