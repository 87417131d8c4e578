"""`weibo-lstm export`: a SavedModel that takes raw text (the tokenizer inside)."""

from __future__ import annotations

import argparse

from weibo_lstm.cli import common
from weibo_lstm.errors import UserError


def add_command(commands) -> None:
    """Adds `export` to the subparsers `commands`."""
    export = commands.add_parser(
        "export", help="write a SavedModel that takes raw text (tokenizer inside)"
    )
    common.add_model_argument(export)
    export.add_argument("--output", required=True, help="SavedModel directory to write")
    export.add_argument(
        "--model-version",
        type=common.positive(int),
        help="write the SavedModel to OUTPUT/N/, the layout TensorFlow Serving reads "
        "(its --model_base_path is OUTPUT) (default: OUTPUT itself)",
    )
    export.add_argument(
        "--force", action="store_true", help="replace an existing SavedModel at --output"
    )
    common.add_memory_growth_argument(export)
    common.add_verbose_argument(export)
    export.set_defaults(run=export_command)


def export_command(args: argparse.Namespace) -> int:
    """Writes the SavedModel of `--model` to `--output` and says how to check it."""
    import shutil
    from pathlib import Path

    from weibo_lstm.serving import model_format

    # The model first: a wrong path is one line, before TensorFlow starts.
    model_dir = model_format.resolve(common.model_path(args))
    common.quiet_tensorflow(["--verbose"] if args.verbose else [])
    from weibo_lstm.tasks.sentiment_classifier import SentimentClassifier

    common.configure_memory_growth(args)
    output = Path(args.output)
    if args.model_version is not None:
        output = output / str(args.model_version)  # TensorFlow Serving's base_path/N/
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
