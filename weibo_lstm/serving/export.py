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
from weibo_lstm.errors import check_argument
from weibo_lstm.preprocessing.tokenizer import Tokenizer
from weibo_lstm.preprocessing.windows import POOLINGS, WindowOptions
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
    model: keras.Model,
    tokenizer: Tokenizer,
    class_names: Sequence[str] = CLASS_NAMES,
    *,
    windows: WindowOptions | None = None,
) -> tf.types.experimental.Function:
    """The raw-text → probabilities `tf.function` that `export` saves.

    A text longer than `tokenizer.max_length` ids is read to its end: in overlapping
    windows (`Tokenizer.windows`), the model run on each, their probabilities pooled
    (`pool_windows`; `weibo_lstm.preprocessing.windows` defines both). A text that fits
    is one window: its probabilities are the model's on its ids. Windows are padded to
    the longest of the batch rather than to `tokenizer.max_length`: the model masks
    padding, so the probabilities are the same and short batches cost less.

    Args:
        model: a classifier taking `[batch, time]` int ids to `[batch, K]`
            probabilities (e.g. a `WeiboLSTMClassifier`).
        tokenizer: the tokenizer the model was trained with.
        class_names: the names of the model's K classes.
        windows: how long texts are read (None: `WindowOptions()`, the library default).

    Returns:
        A `tf.function` with input signature `[tf.TensorSpec([None], tf.string)]`
        returning the dict described by `OUTPUTS` (two classes) or
        `MULTICLASS_OUTPUTS`.

    Raises:
        ConfigError: if the stride of `windows` is larger than `tokenizer.max_length`.
    """
    names = tf.constant(list(class_names))
    windows = windows or WindowOptions()
    stride = windows.stride_for(tokenizer.max_length)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_NAME)])
    def serve(texts):
        ids, text_index = tokenizer.windows(texts, stride=stride, pad_to_max_length=False)
        probabilities = pool_windows(
            model(ids, training=False), text_index, tf.size(texts), windows.pooling
        )
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


def pool_windows(
    probabilities: tf.Tensor, text_index: tf.Tensor, num_texts: tf.Tensor, pooling: str
) -> tf.Tensor:
    """The texts' probabilities `[num_texts, K]` from their windows' `[W, K]`, in
    TensorFlow core ops: the twin of `weibo_lstm.preprocessing.windows.pool` (`mean`,
    `max`: the most confident window, the earliest on ties, `last`).

    Args:
        probabilities: the windows' probabilities, those of text 0 first (as
            `Tokenizer.windows` orders them).
        text_index: int32 `[W]`, the text of each window; every text has one.
        num_texts: the number of texts.
        pooling: one of `weibo_lstm.preprocessing.windows.POOLINGS`.

    Example:

    >>> p = tf.constant([[0.75, 0.25], [0.125, 0.875], [0.5, 0.5], [0.25, 0.75]])
    >>> pool_windows(p, tf.constant([0, 0, 0, 1]), 2, "max").numpy().tolist()
    [[0.125, 0.875], [0.25, 0.75]]
    """
    check_argument("pooling", pooling, pooling in POOLINGS, f"one of {POOLINGS}")
    if pooling == "mean":
        sums = tf.math.unsorted_segment_sum(probabilities, text_index, num_texts)
        ones = tf.ones_like(text_index, probabilities.dtype)
        return sums / tf.math.unsorted_segment_sum(ones, text_index, num_texts)[:, None]
    window = tf.range(tf.size(text_index))
    if pooling == "max":
        confidence = tf.reduce_max(probabilities, axis=1)
        best = tf.math.unsorted_segment_max(confidence, text_index, num_texts)
        # Not a best window: past the end, so the earliest best one is the minimum.
        candidate = tf.where(confidence == tf.gather(best, text_index), window, tf.size(window))
        chosen = tf.math.unsorted_segment_min(candidate, text_index, num_texts)
    else:  # "last"
        chosen = tf.math.unsorted_segment_max(window, text_index, num_texts)
    return tf.gather(probabilities, chosen)


def export(
    model: keras.Model,
    tokenizer: Tokenizer,
    path: str | os.PathLike,
    *,
    class_names: Sequence[str] = CLASS_NAMES,
    metadata: dict | None = None,
    windows: WindowOptions | None = None,
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
        windows: how texts longer than `tokenizer.max_length` are read (see
            `serving_function`; None: the library default); the graph holds it, and
            the metadata states it (`windows`: pooling, stride, size).

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
    windows = windows or WindowOptions()
    serve = serving_function(model, tokenizer, class_names, windows=windows)
    archive.add_endpoint(SIGNATURE, serve)
    archive.write_out(str(path), verbose=False)
    stated = {
        "pooling": windows.pooling,
        "stride": windows.stride_for(tokenizer.max_length),
        "size": tokenizer.max_length,
    }
    _write_metadata(path, tokenizer, tuple(class_names), {**(metadata or {}), "windows": stated})
    return path


def read_metadata(path: str | os.PathLike) -> dict:
    """The metadata `export` stored beside the graph (tokenizer options, windows,
    version, …)."""
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
