"""`weibo-lstm predict`: label texts (arguments, stdin lines, or a file to a file)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from weibo_lstm.cli import common
from weibo_lstm.errors import ConfigError, UserError

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
    predict.add_argument(
        "--input",
        metavar="FILE",
        help="score a file: CSV, TSV, JSON lines or text (one per line), by its extension; "
        "needs --output",
    )
    predict.add_argument(
        "--output",
        metavar="FILE",
        help="write every input row and column, in order, with label, score and one "
        "probability column per class (format by its extension)",
    )
    predict.add_argument(
        "--text-column",
        metavar="NAME",
        help="the input's text column (default: review, evaluation, text, content, "
        "comment or sentence, or the only column)",
    )
    predict.add_argument(
        "--explain",
        action="store_true",
        help="add why each text got its label: the n-grams of the wide part (exact "
        "contributions to the label's logit) and the characters of the deep part "
        "(leave-one-out occlusion), the 5 strongest of each; needs the NumPy engine",
    )
    predict.add_argument("text", nargs="*", help="texts to label (default: read stdin)")
    common.add_memory_growth_argument(predict)
    common.add_verbose_argument(predict)
    predict.set_defaults(run=predict_command)


def predict_command(args: argparse.Namespace) -> int:
    """Prints one JSON line per text (its label, score and class probabilities; a
    blank text gets an empty label), or scores `--input` into `--output`."""
    if args.input or args.output:
        return _predict_file(args)
    if args.explain:
        args.engine = "numpy"  # explanations read the model's arrays
    pipe = _pipeline(args)
    if args.text:
        rows = enumerate(args.text, start=1)
        window = len(args.text)
    else:
        from weibo_lstm.data.prediction_files import read_lines

        # The bytes, so that text that is not UTF-8 is one clear error (a text stream
        # without them, e.g. a notebook's, is already decoded).
        stdin = getattr(sys.stdin, "buffer", None)
        rows = read_lines(stdin) if stdin is not None else _numbered(sys.stdin)
        # Typing at a terminal wants each answer at once; a pipe wants throughput.
        window = 1 if sys.stdin.isatty() else args.window
    from weibo_lstm.serving.streaming import stream

    # A blank text is answered too, unlabelled, so every input has its line.
    batch = lambda rows: {"probabilities": pipe.probabilities([t for _, t in rows])}  # noqa: E731
    for (number, text), outputs in stream(batch, rows, window=window):
        line = {"text": text, **answer(outputs["probabilities"], pipe.class_names)}
        if args.explain and line["label"]:  # a blank text has nothing to explain
            (line["explanation"],) = pipe.explanations([text])
        if not args.text:
            line = {"line": number, **line}  # joins an answer back to its input line
        print(json.dumps(line, ensure_ascii=False), flush=True)
    return 0


def _predict_file(args: argparse.Namespace) -> int:
    """Scores every row of `--input` and writes them all to `--output`."""
    from weibo_lstm.data.prediction_files import read_table, write_table

    if not (args.input and args.output):
        raise UserError("predict: --input and --output go together (see --help)")
    if args.text:
        raise UserError("predict: give texts or --input, not both (see --help)")
    table = read_table(args.input, text_column=args.text_column)
    pipe = _pipeline(args, files=True)
    names = pipe.class_names
    columns = {"label": [], "score": [], **{f"p_{name}": [] for name in names}}
    total = len(table.texts)
    for start in _progress(range(0, total, args.window), total, args.window):
        for row in pipe.probabilities(table.texts[start : start + args.window]):
            result = answer(row, names)  # a blank text: label "", scores None
            columns["label"].append(result["label"])
            columns["score"].append(result["score"])
            for name, p in result["probabilities"].items():
                columns[f"p_{name}"].append(p)
    written = write_table(args.output, table, columns)
    blank = columns["label"].count("")
    logger.info(
        "%s: %d rows scored (%d blank, left unlabelled) -> %s (columns %s)",
        *(args.input, total - blank, blank, args.output, ", ".join(written)),
    )
    return 0


def _progress(chunks, total: int, window: int):
    """`chunks`, with a progress bar on a terminal when there are several."""
    if total <= window or not sys.stderr.isatty():
        return chunks
    from tqdm import tqdm

    return tqdm(chunks, unit="batch", desc="predict", leave=False)


def _pipeline(args: argparse.Namespace, files: bool = False):
    """A `SentimentPipeline` on the engine `--engine` names; `auto` is the NumPy engine
    for texts given as arguments when the model allows it, else TensorFlow (faster for
    many texts). The model is found, and the engine chosen, before TensorFlow starts.

    Raises:
        UserError: for a `--model` that is not a model, or `--engine numpy` with a
            model it cannot run.
    """
    from weibo_lstm.serving import engines
    from weibo_lstm.tasks.pipeline import SentimentPipeline

    path = common.model_path(args)
    engine = "tensorflow" if args.engine == "auto" and (files or not args.text) else args.engine
    try:
        engine = engines.choose(path, engine=engine)
    except ConfigError:
        raise UserError(
            f"{path}: --engine numpy runs model directories of WeiboLSTM without BatchNorm "
            "(wide & deep or not); use --engine tensorflow"
        ) from None
    if engine == "tensorflow":
        common.quiet_tensorflow(["--verbose"] if args.verbose else [])
    predictor = engines.load(
        path, engine=engine, batch_size=args.batch_size, memory_growth=args.memory_growth
    )
    return SentimentPipeline(predictor, batch_size=args.batch_size)


def answer(probabilities, class_names) -> dict:
    """What `predict` prints for one text's class probabilities: `label`, `score` (the
    probability of `label`, as a Hugging Face pipeline gives it), `probabilities`
    ({class: p}), and for binary sentiment `positive_probability` (P(积极)). A blank
    text (a row of NaN: nothing to label) gets label `""` and None for every number."""
    import numpy as np

    if np.isnan(probabilities).any():
        values, label, name = [None] * len(class_names), None, ""
    else:
        values = [round(float(p), 6) for p in probabilities]
        label = int(np.argmax(probabilities))
        name = class_names[label]
    result = {
        "label": name,
        "score": None if label is None else values[label],
        "probabilities": dict(zip(class_names, values, strict=True)),
    }
    if len(class_names) == 2:
        result["positive_probability"] = values[1]
    return result


def _numbered(lines):
    """`(line number, text)` of decoded lines, line endings stripped."""
    return ((i, line.rstrip("\r\n")) for i, line in enumerate(lines, start=1))
