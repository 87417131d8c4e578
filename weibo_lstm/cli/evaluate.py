"""`weibo-lstm evaluate`: metrics and the classification report of a model on a CSV."""

from __future__ import annotations

import argparse
import json

from weibo_lstm.cli import common


def add_command(commands) -> None:
    """Adds `evaluate` to the subparsers `commands`."""
    evaluate = commands.add_parser("evaluate", help="metrics and classification report on a CSV")
    common.add_model_argument(evaluate)
    evaluate.add_argument("--data", required=True, help="labelled CSV")
    evaluate.add_argument(
        "--strip-emoticons",
        action="store_true",
        help="remove emoticons before predicting (leakage audit)",
    )
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    common.add_memory_growth_argument(evaluate)
    common.add_verbose_argument(evaluate)
    evaluate.set_defaults(run=evaluate_command)


def evaluate_command(args: argparse.Namespace) -> int:
    """Evaluates `--model` on `--data` and prints the metrics, the per-class report and
    the confusion matrix (or JSON)."""
    classifier, data = _classifier_and_data(args)
    import numpy as np

    from weibo_lstm.jobs import report as reporting

    names, tokenizer = classifier.class_names, classifier.tokenizer
    examples = classifier.tokenize(data)
    metrics = classifier.evaluate(examples)
    probabilities = classifier.predict_examples(examples)
    predicted = np.where(examples.expressible_mask(len(names)), probabilities, -1).argmax(1)
    text, as_dict = reporting.classification_report(data.labels, predicted, names)
    present = sorted({*data.labels.tolist(), *predicted.tolist()})
    matrix = _confusion(data.labels, predicted, len(names))
    if args.json:
        print(
            json.dumps(
                {
                    "data": str(args.data),
                    "rows": len(data),
                    "strip_emoticons": tokenizer.strip_emoticons,
                    "class_names": list(names),
                    "metrics": metrics,
                    "precision_recall_class": names[1] if len(names) == 2 else "macro average",
                    "classification_report": as_dict,
                    "confusion_matrix": matrix.tolist(),
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    print(
        f"{args.data}: {len(data)} rows, emoticons "
        f"{'stripped' if tokenizer.strip_emoticons else 'kept'}"
    )
    # With two classes precision and recall are those of 积极, else macro averages; the
    # report below has every class.
    which = names[1] if len(names) == 2 else "macro"
    named = {f"{k}({which})" if k in ("precision", "recall") else k: v for k, v in metrics.items()}
    print(" ".join(f"{k} {v:.4f}" for k, v in named.items()))
    print(text)
    print(_format_confusion(matrix, names, present))
    return 0


def _classifier_and_data(args: argparse.Namespace):
    """`(classifier, data)`: `--model` (its tokenizer stripping emoticons with
    `--strip-emoticons`) and `--data` on its classes. Both paths are checked before
    TensorFlow starts, so a wrong one is answered at once."""
    from weibo_lstm.data.csv_files import load_csv
    from weibo_lstm.serving import model_format

    model_dir = model_format.resolve(common.model_path(args))
    data = load_csv(args.data)
    common.quiet_tensorflow(["--verbose"] if args.verbose else [])
    from weibo_lstm.data.label_sets import onto_classes
    from weibo_lstm.preprocessing.tokenizer import Tokenizer
    from weibo_lstm.tasks.sentiment_classifier import SentimentClassifier

    common.configure_memory_growth(args)
    classifier = SentimentClassifier.load(model_dir)
    names, tokenizer = classifier.class_names, classifier.tokenizer
    if args.strip_emoticons and not tokenizer.strip_emoticons:
        config = tokenizer.get_config() | {"strip_emoticons": True}
        classifier.tokenizer = Tokenizer.from_config(config)
    if not set(data.class_names) <= set(names):  # ids, or spellings, of the model's classes
        data = load_csv(args.data, class_names=names)
    return classifier, onto_classes(data, names)


def _confusion(labels, predicted, num_classes: int):
    """`[true, predicted]` counts."""
    import numpy as np

    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def _format_confusion(matrix, names, present) -> str:
    """The confusion matrix of the classes that occur, rows true, columns predicted."""
    width = max(8, *(len(names[i]) * 2 + 2 for i in present))
    lines = ["confusion matrix (rows: true class, columns: predicted)"]
    lines.append(" " * width + "".join(f"{names[i]:>{width}}" for i in present))
    for i in present:
        lines.append(f"{names[i]:>{width}}" + "".join(f"{matrix[i, j]:>{width}}" for j in present))
    return "\n".join(lines)
