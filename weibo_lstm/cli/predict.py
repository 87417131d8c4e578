"""`weibo-lstm predict`: label texts (arguments, stdin lines, or a file to a file)."""

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
    """Prints one JSON line per text (its label, score and class probabilities), or
    scores `--input` into `--output`."""
    if args.input or args.output:
        return _predict_file(args)
    if args.explain:
        args.engine = "numpy"  # explanations read the model's arrays
    predictor = _predictor(args)
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
    blank = []
    names = predictor.class_names
    texts = _skip_blank(rows, blank)
    from weibo_lstm.serving.streaming import stream

    batch = lambda rows: predictor.predict([text for _, text in rows])  # noqa: E731
    for (number, text), outputs in stream(batch, texts, window=window):
        line = {"text": text, **answer(outputs, names)}
        if args.explain:
            from weibo_lstm.serving.explanations import explain

            (why,) = explain(predictor, [text])
            line["explanation"] = {k: v for k, v in why.items() if k != "label"}
        if not args.text:
            line = {"line": number, **line}  # joins an answer back to its input line
        print(json.dumps(line, ensure_ascii=False), flush=True)
    if blank:
        logger.warning(
            "%d blank text%s skipped (nothing to label)", len(blank), "" if len(blank) == 1 else "s"
        )
    return 0


def _predict_file(args: argparse.Namespace) -> int:
    """Scores every row of `--input` and writes them all to `--output`."""
    from weibo_lstm.data.prediction_files import read_table, write_table

    if not (args.input and args.output):
        raise UserError("predict: --input and --output go together (see --help)")
    if args.text:
        raise UserError("predict: give texts or --input, not both (see --help)")
    table = read_table(args.input, text_column=args.text_column)
    predictor = _predictor(args, files=True)
    names = predictor.class_names
    rows = [i for i, text in enumerate(table.texts) if text and text.strip()]
    columns = {"label": [""] * len(table.texts), "score": [None] * len(table.texts)}
    columns.update({f"p_{name}": [None] * len(table.texts) for name in names})
    for start in _progress(range(0, len(rows), args.window), len(rows), args.window):
        chunk = rows[start : start + args.window]
        outputs = predictor.predict([table.texts[i] for i in chunk])
        for i, index in enumerate(chunk):
            result = answer({k: v[i] for k, v in outputs.items()}, names)
            columns["label"][index], columns["score"][index] = result["label"], result["score"]
            for name, p in result["probabilities"].items():
                columns[f"p_{name}"][index] = p
    written = write_table(args.output, table, columns)
    logger.info(
        "%s: %d rows scored (%d blank, left unlabelled) -> %s (columns %s)",
        *(args.input, len(rows), len(table.texts) - len(rows), args.output, ", ".join(written)),
    )
    return 0


def _progress(chunks, total: int, window: int):
    """`chunks`, with a progress bar on a terminal when there are several."""
    if total <= window or not sys.stderr.isatty():
        return chunks
    from tqdm import tqdm

    return tqdm(chunks, unit="batch", desc="predict", leave=False)


def _predictor(args: argparse.Namespace, files: bool = False):
    """The NumPy predictor when `--engine` asks for one (or `auto` allows it: texts
    given as arguments), else TensorFlow's."""
    predictor = None if files and args.engine == "auto" else _numpy_predictor(args)
    if predictor is None:
        common.quiet_tensorflow(["--verbose"] if args.verbose else [])
        from weibo_lstm.serving.predictor import Predictor

        predictor = Predictor.load(
            common.model_path(args), batch_size=args.batch_size, memory_growth=args.memory_growth
        )
    return predictor


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


def _numbered(lines):
    """`(line number, text)` of decoded lines, line endings stripped."""
    return ((i, line.rstrip("\r\n")) for i, line in enumerate(lines, start=1))


def _skip_blank(rows, skipped: list):
    """`(number, text)` rows without the empty or whitespace-only texts, which are
    appended to `skipped`."""
    for row in rows:
        if row[1].strip():
            yield row
        else:
            skipped.append(row)
