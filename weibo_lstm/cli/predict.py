"""`weibo-lstm predict`: label texts (arguments, or stdin lines) as JSON lines."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from weibo_lstm.cli import common
from weibo_lstm.errors import DataError, UserError

logger = logging.getLogger("weibo_lstm")


def add_command(commands) -> None:
    """Adds `predict` to the subparsers `commands`."""
    predict = commands.add_parser(
        "predict", help="label texts (arguments, or stdin lines) as JSON lines"
    )
    common.add_model_argument(
        predict,
        "a model directory written by train, its output directory (the newest model), "
        "or a SavedModel written by export",
    )
    predict.add_argument(
        "--batch-size", type=common.positive(int), default=256, help="texts per call"
    )
    predict.add_argument(
        "--window",
        type=common.positive(int),
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
    common.add_memory_growth_argument(predict)
    common.add_verbose_argument(predict)
    predict.set_defaults(run=predict_command)


def predict_command(args: argparse.Namespace) -> int:
    """Prints one JSON line per text: its label, score and class probabilities."""
    predictor = _numpy_predictor(args)
    if predictor is None:
        common.quiet_tensorflow(["--verbose"] if args.verbose else [])
        from weibo_lstm.serving.predictor import Predictor

        predictor = Predictor.load(
            common.model_path(args), batch_size=args.batch_size, memory_growth=args.memory_growth
        )
    if args.text:
        texts, window = args.text, len(args.text)
    else:
        texts = (line.rstrip("\r\n") for line in sys.stdin)
        # Typing at a terminal wants each answer at once; a pipe wants throughput.
        window = 1 if sys.stdin.isatty() else args.window
    blank = []
    names = predictor.class_names
    for text, outputs in predictor.stream(_skip_blank(texts, blank), window=window):
        print(json.dumps({"text": text, **answer(outputs, names)}, ensure_ascii=False), flush=True)
    if blank:
        logger.warning(
            "%d blank text%s skipped (nothing to label)", len(blank), "" if len(blank) == 1 else "s"
        )
    return 0


def answer(outputs: dict, class_names) -> dict:
    """What `predict` prints for one text's outputs: `label`, `score` (the probability of
    `label`, as a Hugging Face pipeline gives it), `probabilities` ({class: p}), and for
    binary sentiment `positive_probability` (P(积极))."""
    label = int(outputs["label_id"])
    probabilities = [round(float(p), 6) for p in outputs["probabilities"]]
    result = {
        "label": class_names[label],
        "score": probabilities[label],
        "probabilities": dict(zip(class_names, probabilities, strict=True)),
    }
    if "positive_probability" in outputs:
        result["positive_probability"] = round(float(outputs["positive_probability"]), 6)
    return result


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
        directory = model_format.resolve(common.model_path(args))
    except DataError:
        directory = None  # a SavedModel, or nothing: the TensorFlow path says which
    if directory is not None and NumpyPredictor.supports(directory):
        return NumpyPredictor(directory)
    if args.engine == "numpy":
        raise UserError(
            f"{common.model_path(args)}: --engine numpy runs model directories of WeiboLSTM "
            "without BatchNorm (wide & deep or not); use --engine tensorflow"
        )
    return None


def _skip_blank(texts, skipped: list):
    """`texts` without the empty or whitespace-only ones, which are appended to `skipped`."""
    for text in texts:
        if text.strip():
            yield text
        else:
            skipped.append(text)
