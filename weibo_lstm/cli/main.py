"""`weibo-lstm`: train, pretrain, evaluate, predict and export from the command line.

This module builds the parser from the commands (one module each: `train`,
`pretrain`, `evaluate`, `predict`, `export`), runs the chosen one, and maps errors to
exit statuses by class (`weibo_lstm.errors`): a `UserError` (bad flag value, missing or
bad file, unwritable directory, a checkpoint of another run) exits with status 2, a
`TrainingError` (non-finite loss, a worker that died or never joined) with status 3,
each with one line on stderr; a TensorFlow error that means the cluster broke is also
status 3. A run stopped by SIGTERM exits with status 75 (`errors.PREEMPTED`) after
saving its checkpoint. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from weibo_lstm.cli import evaluate, export, predict, pretrain, train
from weibo_lstm.cli.common import ArgumentParser, quiet_tensorflow
from weibo_lstm.errors import RUN_FAILED, USER_ERROR, Preempted, WeiboLSTMError

logger = logging.getLogger("weibo_lstm")

#: The subcommands, in `--help` order: each module's `add_command` adds its parser to
#: the subparsers and sets `run` (a function of the parsed arguments returning the exit
#: status). A new subcommand is one module and one entry here.
COMMANDS = (train, pretrain, evaluate, predict, export)
#: The commands that check their model and files first and start TensorFlow only
#: then, if at all (`common.quiet_tensorflow`), so that a wrong path is answered at once.
CHECK_FIRST = ("train", "evaluate", "predict", "export")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="weibo-lstm", description="Chinese sentiment classifiers (LSTM, tf.distribute)."
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", parser_class=ArgumentParser)
    for command in COMMANDS:
        command.add_command(commands)
    return parser


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("tensorflow").setLevel(logging.WARNING if verbose else logging.ERROR)
    # TF's checkpoint saver logs every save at INFO through absl.
    logging.getLogger("absl").setLevel(logging.WARNING)


def run(argv: Sequence[str] | None, parser: argparse.ArgumentParser) -> int:
    """Parses `argv`, runs the command, and turns user errors into one line + status 2."""
    try:
        train.apply_config_file(parser, sys.argv[1:] if argv is None else argv)
        args = parser.parse_args(argv)
        if getattr(args, "version", False):
            from weibo_lstm.version import __version__

            print(__version__)
            return 0
        if getattr(args, "run", None) is None:
            parser.print_help()
            return USER_ERROR
        setup_logging(getattr(args, "verbose", False))
        if getattr(args, "command", None) not in CHECK_FIRST:
            quiet_tensorflow(argv)  # before the command imports TensorFlow
        return args.run(args)
    except Preempted as e:
        print(f"preempted: {e}", file=sys.stderr)
        return e.exit_status
    except WeiboLSTMError as e:
        # Every error meant for the user carries its exit status (weibo_lstm.errors).
        print(f"error: {e}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        message = _cluster_failure(e)
        if message is None:
            raise
        logger.debug("Cluster failure", exc_info=True)
        print(f"error: {message}", file=sys.stderr)
        return RUN_FAILED


def _cluster_failure(error: Exception) -> str | None:
    if "tensorflow" not in sys.modules:  # not a TensorFlow error; don't load it now
        return None
    from weibo_lstm.distribute.cluster import describe_cluster_failure

    return describe_cluster_failure(error)


def main(argv: Sequence[str] | None = None) -> int:
    # Building the parser and --help / --version do not import TensorFlow; `run`
    # quiets it just before a command starts it.
    status = run(argv, build_parser())
    if argv is None and status == RUN_FAILED:
        # A failed run (a lost worker, a non-finite loss) leaves TensorFlow's runtime
        # mid-collective; its teardown at exit can print tracebacks after our one-line
        # error (seen: multiprocessing Pool.__del__ on a closed pipe). The process is
        # done: leave without the teardown. (Only as a command: tests call main(argv).)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


if __name__ == "__main__":
    sys.exit(main())
