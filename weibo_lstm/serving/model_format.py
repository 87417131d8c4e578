"""The file names of a trained classifier's directory (no TensorFlow here).

    model.keras        the backbone (Keras format, weights included)
    tokenizer/         tokenizer.json (options) and vocabulary.tsv
    classifier.json    format, preset, class names, library version, the training run's
                       metadata, and `windows` (how long texts are read) when set

`model_directory` writes and reads it with Keras; `numpy_predictor` reads it without.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import zipfile
from pathlib import Path

from weibo_lstm.data.labeled_texts import CLASS_NAMES
from weibo_lstm.errors import DataError
from weibo_lstm.preprocessing.windows import WindowOptions

FORMAT = "weibo_lstm.SentimentClassifier/1"
MODEL_FILE = "model.keras"
TOKENIZER_DIR = "tokenizer"
CLASSIFIER_FILE = "classifier.json"
#: What a path that is not a model is told (`engines.locate`, `Predictor.load`).
NOT_A_MODEL = (
    "neither a trained model directory (model.keras + tokenizer/), a training output "
    "directory with model_YYYYMMDD_HHMMSS runs, nor an exported SavedModel "
    "(saved_model.pb): pass the --output-dir of `weibo-lstm train`, one of its model_* "
    "directories, or the --output of `weibo-lstm export`"
)

#: The directories the training job saves classifiers in, inside its output directory.
_RUN_DIR = re.compile(r"model_\d{8}_\d{6}")

logger = logging.getLogger("weibo_lstm")


def is_model_directory(path: str | os.PathLike) -> bool:
    """Whether `path` is a directory written by `write`."""
    path = Path(path)
    return (path / MODEL_FILE).is_file() and (path / TOKENIZER_DIR).is_dir()


def resolve(path: str | os.PathLike) -> Path:
    """`path` if it is a model directory, else the newest one saved inside it.

    Given a training output directory (`RunConfig.output_dir`), this returns its
    newest complete run (by the time in its name) and logs which.

    Raises:
        DataError: if `path` does not exist, or is neither a model directory nor
            holds one.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such model directory")
    if is_model_directory(path):
        return path
    runs = sorted(
        run
        for run in path.glob("model_*")
        if _RUN_DIR.fullmatch(run.name) and is_model_directory(run)
    )
    if not runs:
        raise DataError(
            f"{path}: not a trained model directory (no {MODEL_FILE} and {TOKENIZER_DIR}/) "
            "and no model_YYYYMMDD_HHMMSS runs in it: pass the --output-dir of "
            "`weibo-lstm train` or one of its model_* directories"
        )
    logger.info("Using the newest model in %s: %s", path, runs[-1])
    return runs[-1]


def read_model_file(path: str | os.PathLike, weights: bool = True) -> tuple[dict, dict]:
    """`(config, {weight name: array})` of a `.keras` file (a zip of JSON and HDF5),
    without Keras; `weights=False` reads the config only."""
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        if not weights:
            return config, {}
        import h5py

        arrays = {}
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as f:
            f.visititems(
                lambda name, item: (
                    arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None
                )
            )
    return config, arrays


def read_class_names(path: str | os.PathLike, num_classes: int) -> tuple[str, ...]:
    """The class names saved in a model directory's `classifier.json` (a directory
    without them is binary: 消极, 积极)."""
    file = Path(path) / CLASSIFIER_FILE
    names = None
    if file.is_file():
        names = json.loads(file.read_text("utf-8")).get("class_names")
    if names is None:
        names = CLASS_NAMES
    if len(names) != num_classes:
        raise DataError(f"{file}: {len(names)} class names for a model of {num_classes} classes")
    return tuple(names)


def read_windows(path: str | os.PathLike) -> WindowOptions | None:
    """How the model in directory `path` reads long texts (`classifier.json`'s
    `windows`), or None: not set, the library default."""
    file = Path(path) / CLASSIFIER_FILE
    if not file.is_file():
        return None
    return WindowOptions.from_json(json.loads(file.read_text("utf-8")).get("windows"))
