"""`weibo-lstm evaluate`: metrics and the classification report of a model on a CSV."""

from __future__ import annotations

import argparse
import json

from weibo_lstm.cli import common
from weibo_lstm.data.labeled_texts import CLASS_NAMES


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
    """Evaluates `--model` on `--data` and prints the metrics (or JSON)."""
    import numpy as np

    from weibo_lstm.data.csv_files import load_csv
    from weibo_lstm.jobs import report as reporting
    from weibo_lstm.preprocessing.tokenizer import Tokenizer
    from weibo_lstm.tasks.sentiment_classifier import SentimentClassifier

    common.configure_memory_growth(args)
    classifier = SentimentClassifier.load(common.model_path(args))
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
