"""Export a trained classifier as a self-contained SavedModel that takes raw text.

The SavedModel's `serve` signature (also `serving_default`, for TF Serving) takes a
1-D `tf.string` batch of raw posts and runs the tokenizer (with the normalisation
and emoticon options it was trained with) and the model in one graph. The graph
uses only core TensorFlow ops, so it loads with plain `tf.saved_model.load` in a
process that imports neither `weibo_lstm` nor `tensorflow_text`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf

from weibo_lstm.data.labeled_texts import CLASS_NAMES
from weibo_lstm.preprocessing.tokenizer import Tokenizer
from weibo_lstm.version import __version__

#: Name of the serving signature (`serving_default` is an alias of it).
SIGNATURE = "serve"
#: The signature's input name.
INPUT_NAME = "texts"
#: Outputs of a binary model's signature, with their dtypes and shapes for `N` texts.
OUTPUTS = {
    "positive_probability": "float32 [N]: probability of class 1 (积极)",
    "probabilities": "float32 [N, 2]: probabilities of 消极 and 积极",
    "label_id": "int32 [N]: argmax of `probabilities` (0 = 消极, 1 = 积极)",
}
#: Outputs of a K-class model's signature (K > 2).
MULTICLASS_OUTPUTS = {
    "probabilities": "float32 [N, K]: probabilities of the classes, in `class_names` order",
    "label_id": "int32 [N]: argmax of `probabilities`",
    "label": "string [N]: the class name of `label_id`",
}
# Beside the graph, for people and `weibo-lstm predict`; TensorFlow ignores
# `assets.extra/` (TF Serving keeps e.g. warm-up requests there).
_METADATA_FILE = os.path.join("assets.extra", "weibo_lstm.json")
_FORMAT = "weibo_lstm.export/1"


def serving_function(
    model: keras.Model, tokenizer: Tokenizer, class_names: Sequence[str] = CLASS_NAMES
) -> tf.types.experimental.Function:
    """The raw-text → probabilities `tf.function` that `export` saves.

    Texts are padded to the longest row of the batch rather than to
    `tokenizer.max_length`: the model masks padding, so the probabilities are the
    same and short batches cost less.

    Args:
        model: a classifier taking `[batch, time]` int ids to `[batch, K]`
            probabilities (e.g. a `WeiboLSTMClassifier`).
        tokenizer: the tokenizer the model was trained with.
        class_names: the names of the model's K classes.

    Returns:
        A `tf.function` with input signature `[tf.TensorSpec([None], tf.string)]`
        returning the dict described by `OUTPUTS` (two classes) or
        `MULTICLASS_OUTPUTS`.
    """
    names = tf.constant(list(class_names))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_NAME)])
    def serve(texts):
        probabilities = model(tokenizer(texts, pad_to_max_length=False), training=False)
        label_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        if len(class_names) == 2:
            return {
                "positive_probability": probabilities[:, 1],
                "probabilities": probabilities,
                "label_id": label_id,
            }
        return {
            "probabilities": probabilities,
            "label_id": label_id,
            "label": tf.gather(names, label_id),
        }

    return serve


def export(
    model: keras.Model,
    tokenizer: Tokenizer,
    path: str | os.PathLike,
    *,
    class_names: Sequence[str] = CLASS_NAMES,
    metadata: dict | None = None,
) -> Path:
    """Writes `model` and `tokenizer` as one SavedModel that takes raw text.

    The `serve` signature takes `texts`, a 1-D `tf.string` tensor of raw posts
    (UTF-8; invalid bytes become U+FFFD, empty texts are allowed), and returns the
    dict described by `OUTPUTS` (two classes) or `MULTICLASS_OUTPUTS`. Model
    variables created under a `tf.distribute.Strategy` (mirrored variables) are saved
    as plain variables. The class names are also stored beside the graph
    (`read_metadata`).

    Args:
        model: a classifier (see `serving_function`).
        tokenizer: the tokenizer the model was trained with.
        class_names: the names of its classes (default: 消极, 积极).
        path: the SavedModel directory to write (created if needed; files of an
            earlier export there are overwritten).
        metadata: extra JSON-serialisable information stored in
            `assets.extra/weibo_lstm.json` (e.g. the training run's report).

    Returns:
        `path`, as a `Path`.

    Raises:
        ValueError: if the model does not output one probability per class name.

    Example:

    >>> import tempfile
    >>> from weibo_lstm import Tokenizer, WeiboLSTM
    >>> tokenizer = Tokenizer(["好", "差"], max_length=8)
    >>> model = WeiboLSTM(tokenizer.vocabulary_size, lstm_units=(4,), dense_units=0)
    >>> path = export(model, tokenizer, tempfile.mkdtemp() + "/serving")
    >>> serve = tf.saved_model.load(str(path)).signatures["serve"]
    >>> outputs = serve(texts=tf.constant(["好[哈哈]", ""]))
    >>> sorted(outputs), outputs["probabilities"].shape
    (['label_id', 'positive_probability', 'probabilities'], TensorShape([2, 2]))
    """
    path = Path(path)
    # One eager call builds the model and tells its number of classes.
    num_classes = model(tokenizer([""], pad_to_max_length=False), training=False).shape[-1]
    if num_classes != len(class_names):
        raise ValueError(
            f"Argument `model` must output {len(class_names)} class probabilities (one per "
            f"class name). Received: a model with {num_classes} outputs"
        )
    archive = keras.export.ExportArchive()
    archive.track(model)
    # The tokenizer is a tf.Module: tracking it saves its lookup table's resource.
    archive.track(tokenizer)
    archive.add_endpoint(SIGNATURE, serving_function(model, tokenizer, class_names))
    archive.write_out(str(path), verbose=False)
    _write_metadata(path, tokenizer, tuple(class_names), metadata)
    return path


def read_metadata(path: str | os.PathLike) -> dict:
    """The metadata `export` stored beside the graph (tokenizer options, version, …)."""
    with open(Path(path) / _METADATA_FILE, encoding="utf-8") as f:
        return json.load(f)


def _write_metadata(
    path: Path, tokenizer: Tokenizer, class_names: tuple[str, ...], extra: dict | None
) -> None:
    config = tokenizer.get_config()
    config["vocabulary_size"] = tokenizer.vocabulary_size
    del config["vocabulary"]
    metadata = {
        "format": _FORMAT,
        "library_version": __version__,
        "tensorflow_version": tf.__version__,
        "signature": SIGNATURE,
        "input": INPUT_NAME,
        "outputs": OUTPUTS if len(class_names) == 2 else MULTICLASS_OUTPUTS,
        "class_names": list(class_names),
        "tokenizer": config,
        **(extra or {}),
    }
    (path / _METADATA_FILE).parent.mkdir(parents=True, exist_ok=True)
    with open(path / _METADATA_FILE, "w", encoding="utf-8") as f:
        json.dump(metadata, f, ensure_ascii=False, indent=2, default=str)
