"""`weibo-lstm`: train, evaluate, predict and export from the command line.

The `train` flags are generated from `RunConfig` and `TrainerOptions` (`flags.py`): one
name, default and help per knob. Errors are mapped to exit statuses by class
(`weibo_lstm.errors`): a `UserError` (bad flag value, missing or bad file, unwritable
directory, a checkpoint of another run) exits with status 2, a `TrainingError`
(non-finite loss, a worker that died or never joined) with status 3, each with one line
on stderr; a TensorFlow error that means the cluster broke is also status 3. A run
stopped by SIGTERM exits with status 75 (`errors.PREEMPTED`) after saving its
checkpoint. Anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence

from weibo_lstm.cli import flags
from weibo_lstm.data.labeled_texts import CLASS_NAMES
from weibo_lstm.errors import (
    RUN_FAILED,
    USER_ERROR,
    ConfigError,
    DataError,
    Preempted,
    UserError,
    WeiboLSTMError,
)

logger = logging.getLogger("weibo_lstm")


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        raise UserError(f"{self.prog}: {message} (see --help)")


def _model(args) -> str:
    """`--model`, or the shipped trained model's directory when it is not given."""
    if args.model is not None:
        return args.model
    from weibo_lstm.models.presets import trained_model_path

    return str(trained_model_path())


def _positive(kind):
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


class _DeviceDefault:
    """The default of a budget option on this machine, computed when `--help` shows it.

    The device kind comes from `device_probe.probable_device_kind`, which does not start
    TensorFlow: `--help` stays instant and `--replicas N` can still split the CPU after.
    """

    def __init__(self, option: str):
        self.option = option

    def __str__(self) -> str:
        from weibo_lstm.models.presets import describe_default

        return describe_default(self.option)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The training flags, shared by `weibo-lstm train` and the example script.

    One flag per field of `RunConfig` and of `TrainerOptions` (minus the fields the
    job sets), named after the field, with its default and its docstring as help;
    the budget options default to the preset's budget for this machine's device.
    """
    from weibo_lstm.jobs.config import JOB_SET_OPTIONS, RunConfig
    from weibo_lstm.models.presets import BUDGET_KEYS
    from weibo_lstm.training.options import TrainerOptions

    parser.add_argument(
        "--config",
        metavar="FILE.toml",
        help="read settings from a TOML file of `name = value` lines, the flags' names "
        "(with _ or -); flags on the command line override it. Every run writes its "
        "resolved settings as settings.toml beside the model: --config on that file "
        "reruns it",
    )
    flags.add_dataclass_flags(parser.add_argument_group("data, model and devices"), RunConfig)
    flags.add_dataclass_flags(
        parser.add_argument_group("training (TrainerOptions)"),
        TrainerOptions,
        exclude=JOB_SET_OPTIONS,
        deferred={name: _DeviceDefault(name) for name in BUDGET_KEYS},
    )
    add_verbose_argument(parser)


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
    from weibo_lstm.training.options import TrainerOptions

    names = set(flags.dataclass_fields(RunConfig))
    names |= set(flags.dataclass_fields(TrainerOptions)) - JOB_SET_OPTIONS
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


def _configure_memory_growth(args: argparse.Namespace) -> None:
    # Before the model loads: loading initialises the GPUs.
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


def train_settings(args: argparse.Namespace):
    """`(RunConfig, options)` from parsed train flags: the options are the
    `TrainerOptions` fields given, without the budget ones left to the preset.

    Raises:
        ConfigError: for an invalid value (checked by the dataclasses, before
            TensorFlow starts its devices).
    """
    from weibo_lstm.jobs.config import JOB_SET_OPTIONS, RunConfig
    from weibo_lstm.models.presets import BUDGET_KEYS
    from weibo_lstm.training.options import TrainerOptions

    config = RunConfig(**flags.dataclass_values(args, RunConfig))
    options = {
        name: value
        for name, value in flags.dataclass_values(
            args, TrainerOptions, exclude=JOB_SET_OPTIONS
        ).items()
        if not (name in BUDGET_KEYS and value is None)
    }
    try:
        TrainerOptions(**options)  # validates the values now, before devices start
    except ConfigError:
        raise
    except ValueError as e:  # a validator that predates ConfigError: same meaning here
        raise ConfigError(str(e)) from None
    return config, options


def train_command(args) -> int:
    from weibo_lstm.jobs import train as job

    job.run_training(*train_settings(args))
    return 0


def _evaluate(args) -> int:
    import numpy as np

    from weibo_lstm.data.csv_files import load_csv
    from weibo_lstm.jobs import report as reporting
    from weibo_lstm.preprocessing.tokenizer import Tokenizer
    from weibo_lstm.tasks.sentiment_classifier import SentimentClassifier

    _configure_memory_growth(args)
    classifier = SentimentClassifier.load(_model(args))
    tokenizer = classifier.tokenizer
    if args.strip_emoticons and not tokenizer.strip_emoticons:
        tokenizer = Tokenizer.from_config(tokenizer.get_config() | {"strip_emoticons": True})
        classifier.tokenizer = tokenizer
    data = load_csv(args.data)
    examples = classifier.tokenize(data)
    metrics = classifier.evaluate(examples)
    probabilities = classifier.predict_examples(examples)
    text, as_dict = reporting.classification_report(data.labels, np.argmax(probabilities, 1))
    if args.json:
        print(
            json.dumps(
                {
                    "data": str(args.data),
                    "rows": len(data),
                    "strip_emoticons": tokenizer.strip_emoticons,
                    "metrics": metrics,
                    "precision_recall_class": CLASS_NAMES[1],
                    "classification_report": as_dict,
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        print(
            f"{args.data}: {len(data)} rows, emoticons "
            f"{'stripped' if tokenizer.strip_emoticons else 'kept'}"
        )
        # precision and recall are those of the positive class (积极); the report below
        # has both classes.
        named = {
            f"{k}({CLASS_NAMES[1]})" if k in ("precision", "recall") else k: v
            for k, v in metrics.items()
        }
        print(" ".join(f"{k} {v:.4f}" for k, v in named.items()))
        print(text)
    return 0


def _predict(args) -> int:
    predictor = _numpy_predictor(args)
    if predictor is None:
        quiet_tensorflow(["--verbose"] if args.verbose else [])
        from weibo_lstm.serving.predictor import Predictor

        predictor = Predictor.load(
            _model(args), batch_size=args.batch_size, memory_growth=args.memory_growth
        )
    if args.text:
        texts, window = args.text, len(args.text)
    else:
        texts = (line.rstrip("\r\n") for line in sys.stdin)
        # Typing at a terminal wants each answer at once; a pipe wants throughput.
        window = 1 if sys.stdin.isatty() else args.window
    blank = []
    for text, outputs in predictor.stream(_skip_blank(texts, blank), window=window):
        label = int(outputs["label_id"])
        positive = float(outputs["positive_probability"])
        print(
            json.dumps(
                {
                    "text": text,
                    "label": CLASS_NAMES[label],
                    # A Hugging Face pipeline's `score`: the probability of `label`.
                    "score": round(positive if label else 1.0 - positive, 6),
                    "positive_probability": round(positive, 6),
                },
                ensure_ascii=False,
            ),
            flush=True,
        )
    if blank:
        logger.warning(
            "%d blank text%s skipped (nothing to label)", len(blank), "" if len(blank) == 1 else "s"
        )
    return 0


def _numpy_predictor(args):
    """A `NumpyPredictor` when `--engine` asks for one (or `auto` allows it), else None.

    Raises:
        UserError: for `--engine numpy` with a model it cannot run.
    """
    if args.engine == "tensorflow" or (args.engine == "auto" and not args.text):
        return None
    from weibo_lstm.serving import model_format
    from weibo_lstm.serving.numpy_predictor import NumpyPredictor

    try:
        directory = model_format.resolve(_model(args))
    except DataError:
        directory = None  # a SavedModel, or nothing: the TensorFlow path says which
    if directory is not None and NumpyPredictor.supports(directory):
        return NumpyPredictor(directory)
    if args.engine == "numpy":
        raise UserError(
            f"{_model(args)}: --engine numpy runs model directories of WeiboLSTM without "
            "BatchNorm (wide & deep or not); use --engine tensorflow"
        )
    return None


def _skip_blank(texts, skipped: list):
    """`texts` without the empty or whitespace-only ones, which are appended to `skipped`."""
    for text in texts:
        if text.strip():
            yield text
        else:
            skipped.append(text)


def _export(args) -> int:
    import shutil
    from pathlib import Path

    from weibo_lstm.tasks.sentiment_classifier import SentimentClassifier

    _configure_memory_growth(args)
    output = Path(args.output)
    if args.model_version is not None:
        output = output / str(args.model_version)  # TensorFlow Serving's base_path/N/
    model_dir = SentimentClassifier.resolve(_model(args))
    classifier = SentimentClassifier.load(model_dir)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        # Only ever delete what is recognisably a SavedModel.
        if not (args.force and (output / "saved_model.pb").is_file()):
            raise UserError(
                f"{output}: already exists"
                + (" and is not a SavedModel" if args.force else " (use --force to replace it)")
            )
        shutil.rmtree(output)
    classifier.export(output, metadata={"source_model_dir": str(model_dir.resolve())})
    print(f"{output}: SavedModel with signature 'serve' (texts: 1-D tf.string)")
    print(
        f"check it: saved_model_cli run --dir {output} --tag_set serve --signature_def serve "
        """--input_exprs 'texts=["很差", "太好吃了"]'"""
    )
    return 0


def _add_train(commands) -> None:
    train = commands.add_parser(
        "train", help="train, evaluate on a held-out test set, write a report"
    )
    add_train_arguments(train)
    train.set_defaults(run=train_command)


def _add_evaluate(commands) -> None:
    evaluate = commands.add_parser("evaluate", help="metrics and classification report on a CSV")
    evaluate.add_argument(
        "--model",
        default=None,
        help="a model directory written by train, or its output directory (the newest model); "
        "default: the shipped sentiment_zh model (docs/model_card.md)",
    )
    evaluate.add_argument("--data", required=True, help="labelled CSV")
    evaluate.add_argument(
        "--strip-emoticons",
        action="store_true",
        help="remove emoticons before predicting (leakage audit)",
    )
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    add_memory_growth_argument(evaluate)
    add_verbose_argument(evaluate)
    evaluate.set_defaults(run=_evaluate)


def _add_predict(commands) -> None:
    predict = commands.add_parser(
        "predict", help="label texts (arguments, or stdin lines) as JSON lines"
    )
    predict.add_argument(
        "--model",
        default=None,
        help="a model directory written by train, its output directory (the newest model), "
        "or a SavedModel written by export; default: the shipped sentiment_zh model "
        "(docs/model_card.md)",
    )
    predict.add_argument("--batch-size", type=_positive(int), default=256, help="texts per call")
    predict.add_argument(
        "--window",
        type=_positive(int),
        default=4096,
        help="stdin lines sorted by length together (bucketing); output keeps input order",
    )
    predict.add_argument(
        "--engine",
        choices=("auto", "numpy", "tensorflow"),
        default="auto",
        help="numpy: run the model without starting TensorFlow (answers in well under a "
        "second; model directories of WeiboLSTM without BatchNorm, wide & deep or not, "
        "e.g. the shipped model); tensorflow: the same probabilities through TensorFlow "
        "(any model, faster for many texts); auto (default): numpy for texts given as "
        "arguments when the model allows it, else tensorflow",
    )
    predict.add_argument("text", nargs="*", help="texts to label (default: read stdin)")
    add_memory_growth_argument(predict)
    add_verbose_argument(predict)
    predict.set_defaults(run=_predict)


def _add_export(commands) -> None:
    export = commands.add_parser(
        "export", help="write a SavedModel that takes raw text (tokenizer inside)"
    )
    export.add_argument(
        "--model",
        default=None,
        help="a model directory written by train, or its output directory (the newest model); "
        "default: the shipped sentiment_zh model (docs/model_card.md)",
    )
    export.add_argument("--output", required=True, help="SavedModel directory to write")
    export.add_argument(
        "--model-version",
        type=_positive(int),
        help="write the SavedModel to OUTPUT/N/, the layout TensorFlow Serving reads "
        "(its --model_base_path is OUTPUT) (default: OUTPUT itself)",
    )
    export.add_argument(
        "--force", action="store_true", help="replace an existing SavedModel at --output"
    )
    add_memory_growth_argument(export)
    add_verbose_argument(export)
    export.set_defaults(run=_export)


def _pretrain_excluded_options() -> set[str]:
    """The `TrainerOptions` fields `pretrain` has no flag for (the job's, or inapplicable)."""
    from weibo_lstm.jobs.config import PRETRAIN_OPTION_FIELDS
    from weibo_lstm.training.options import TrainerOptions

    return set(flags.dataclass_fields(TrainerOptions)) - set(PRETRAIN_OPTION_FIELDS)


def _add_pretrain(commands) -> None:
    from weibo_lstm.jobs.config import PRETRAIN_OPTIONS, PretrainConfig
    from weibo_lstm.training.options import TrainerOptions

    pretrain = commands.add_parser(
        "pretrain", help="pretrain the encoder as a character language model on unlabelled text"
    )
    flags.add_dataclass_flags(
        pretrain.add_argument_group("data, model and devices"), PretrainConfig
    )
    flags.add_dataclass_flags(
        pretrain.add_argument_group("training (TrainerOptions)"),
        TrainerOptions,
        exclude=_pretrain_excluded_options(),
        defaults=PRETRAIN_OPTIONS,
    )
    add_verbose_argument(pretrain)
    pretrain.set_defaults(run=pretrain_command)


def pretrain_settings(args: argparse.Namespace):
    """`(PretrainConfig, options)` from parsed pretrain flags.

    Raises:
        ConfigError: for an invalid value, before TensorFlow starts its devices.
    """
    from weibo_lstm.jobs.config import PretrainConfig, pretrain_options
    from weibo_lstm.training.options import TrainerOptions

    config = PretrainConfig(**flags.dataclass_values(args, PretrainConfig))
    options = flags.dataclass_values(args, TrainerOptions, exclude=_pretrain_excluded_options())
    pretrain_options(options, summary_dir="")  # validates the values now
    return config, options


def pretrain_command(args: argparse.Namespace) -> int:
    """Runs `weibo-lstm pretrain` and prints its report as one JSON line."""
    from weibo_lstm.jobs.pretrain import run_pretraining

    config, options = pretrain_settings(args)
    result = run_pretraining(config, options=options)
    print(json.dumps({k: v for k, v in result.report.items() if k != "config"}, default=str))
    return 0


#: The subcommands, in `--help` order: each function adds its parser to the
#: subparsers and sets `run` (a function of the parsed arguments returning the exit
#: status). A new subcommand is one function and one entry here.
COMMANDS = (_add_train, _add_pretrain, _add_evaluate, _add_predict, _add_export)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="weibo-lstm", description="Chinese sentiment classifiers (LSTM, tf.distribute)."
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", parser_class=ArgumentParser)
    for add_command in COMMANDS:
        add_command(commands)
    return parser


def setup_logging(quiet: bool = False, verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("tensorflow").setLevel(logging.WARNING if verbose else logging.ERROR)
    # TF's checkpoint saver logs every save at INFO through absl.
    logging.getLogger("absl").setLevel(logging.WARNING)


def run(argv: Sequence[str] | None, parser: argparse.ArgumentParser) -> int:
    """Parses `argv`, runs the command, and turns user errors into one line + status 2."""
    try:
        apply_config_file(parser, sys.argv[1:] if argv is None else argv)
        args = parser.parse_args(argv)
        if getattr(args, "version", False):
            from weibo_lstm.version import __version__

            print(__version__)
            return 0
        if getattr(args, "run", None) is None:
            parser.print_help()
            return USER_ERROR
        setup_logging(
            getattr(args, "quiet", False) and args.command != "train",
            getattr(args, "verbose", False),
        )
        if getattr(args, "command", None) != "predict":  # predict may not need TensorFlow
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
