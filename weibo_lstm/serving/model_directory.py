"""The on-disk format of a trained classifier: one directory, read by serving and tasks.

    model.keras        the backbone (Keras format, weights included)
    tokenizer/         tokenizer.json (options) and vocabulary.tsv
    classifier.json    format, preset, class names, library version, the training run's
                       metadata, and `windows` (how long texts are read) when set

`SentimentClassifier.save` / `load` write and read it through this module, and
`Predictor.load` reads it without the task or the training job. A training output
directory holds one `model_YYYYMMDD_HHMMSS` directory per run; `resolve` picks the
newest.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

# `keras.models.load_model` finds the package's Keras classes by their registered
# names: every module that registers one must be imported before loading.
import weibo_lstm.models.classifier
import weibo_lstm.models.language_model
import weibo_lstm.models.wide_and_deep  # noqa: F401
from weibo_lstm.preprocessing.tokenizer import Tokenizer
from weibo_lstm.preprocessing.windows import WindowOptions
from weibo_lstm.serving import legacy_format
from weibo_lstm.serving.model_format import (
    CLASSIFIER_FILE,
    FORMAT,
    MODEL_FILE,
    TOKENIZER_DIR,
    is_model_directory,
    read_model_file,
    resolve,
)
from weibo_lstm.version import __version__

__all__ = [
    "FORMAT",
    "MODEL_FILE",
    "TOKENIZER_DIR",
    "is_model_directory",
    "read",
    "resolve",
    "write",
]

_LEGACY_RUN_FILE = "run.json"  # what 0.1.0 development snapshots wrote instead

logger = logging.getLogger("weibo_lstm")


def write(
    path: str | os.PathLike,
    *,
    backbone: keras.Model,
    tokenizer: Tokenizer,
    preset: str | None,
    class_names: tuple[str, ...],
    metadata: Mapping,
    windows: WindowOptions | None = None,
) -> Path:
    """Writes a model directory (created if needed) and returns its path; `windows`
    (how long texts are read) is stored only when set: None leaves the library default.

    Raises:
        OSError: if a file cannot be written.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    backbone.save(path / MODEL_FILE)
    tokenizer.save(path / TOKENIZER_DIR)
    about = {
        "format": FORMAT,
        "library_version": __version__,
        "preset": preset,
        "class_names": list(class_names),
        "metadata": dict(metadata),
    }
    if windows is not None:
        about["windows"] = windows.to_json()
    with open(path / CLASSIFIER_FILE, "w", encoding="utf-8") as f:
        json.dump(about, f, ensure_ascii=False, indent=2, default=_json_default)
    return path


def read(
    path: str | os.PathLike, *, strategy: tf.distribute.Strategy | None = None
) -> tuple[keras.Model, Tokenizer, dict]:
    """`(backbone, tokenizer, about)` of a model directory (or the newest in `path`).

    Args:
        path: a model directory or a training output directory (see `resolve`).
        strategy: create the backbone's variables under this strategy (None:
            TensorFlow's default strategy, right for prediction).

    Returns:
        The backbone, the tokenizer and the contents of `classifier.json` (`preset`,
        `metadata`, `windows` when set (`WindowOptions.from_json`), ...; `{}` when the
        directory predates it).

    Raises:
        DataError: if `path` is neither a model directory nor holds one.
    """
    path = resolve(path)
    about = {}
    if (path / CLASSIFIER_FILE).is_file():
        about = json.loads((path / CLASSIFIER_FILE).read_text("utf-8"))
    elif (path / _LEGACY_RUN_FILE).is_file():
        about = {"metadata": json.loads((path / _LEGACY_RUN_FILE).read_text("utf-8"))}
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = load_model(path / MODEL_FILE)
    return model, Tokenizer.load(path / TOKENIZER_DIR), about


def load_model(path: str | os.PathLike) -> keras.Model:
    """The Keras model of a `model.keras` file, files of the old format included
    (`legacy_format`: rebuilt as today's classes, the same weights assigned)."""
    config, _ = read_model_file(path, weights=False)
    if not legacy_format.is_legacy(config):
        return keras.models.load_model(path)
    config, arrays = read_model_file(path)
    model = keras.saving.deserialize_keras_object(legacy_format.convert_config(config))
    model(tf.ones([1, 1], tf.int32))  # builds every part
    renamed = {legacy_format.convert_weight_key(k, config): v for k, v in arrays.items()}
    _load_weights(model, renamed)
    return model


def _load_weights(model: keras.Model, arrays: Mapping[str, np.ndarray]) -> None:
    """Assigns `arrays`, keyed as `model.save_weights` keys them, through Keras' loader
    (which checks that every weight is there with its shape)."""
    import h5py

    with tempfile.TemporaryDirectory() as directory:
        file = Path(directory) / "converted.weights.h5"
        model.save_weights(file)
        with h5py.File(file, "r+") as f:
            expected = set()
            f.visititems(
                lambda name, item: expected.add(name) if isinstance(item, h5py.Dataset) else None
            )
            if expected != set(arrays):
                raise ValueError(
                    f"the old model file's weights do not match: missing {sorted(expected - set(arrays))}, "
                    f"unexpected {sorted(set(arrays) - expected)}"
                )
            for name, value in arrays.items():
                f[name][...] = value
        model.load_weights(file)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
