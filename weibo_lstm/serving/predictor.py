"""Fast batch prediction from raw texts: length bucketing, original order restored."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from weibo_lstm.data.labeled_texts import CLASS_NAMES
from weibo_lstm.distribute import devices
from weibo_lstm.errors import DataError
from weibo_lstm.preprocessing.tokenizer import Tokenizer
from weibo_lstm.preprocessing.windows import WindowOptions
from weibo_lstm.serving import model_directory, model_format, streaming
from weibo_lstm.serving.export import SIGNATURE, read_metadata, serving_function


class Predictor:
    """Class probabilities for raw texts, from a SavedModel or a Keras model.

    Texts are sorted by length, cut into batches of `batch_size`, run, and put
    back in their original order: each batch is padded only to its own longest
    text, which on Weibo posts (median 53 characters, a long tail to the
    180-character limit) saves most of the padding work. A text longer than the
    limit is read to its end in windows (`weibo_lstm.serving.export.serving_function`).

    Args:
        serve: a function from a 1-D `tf.string` tensor to the dict of
            `weibo_lstm.serving.export.OUTPUTS` (tensors or arrays), e.g.
            `weibo_lstm.serving.export.serving_function`.
        batch_size: texts per model call.
        bucket_by_length: sort by length before batching (False: batches in input
            order, each padded to its longest text; for comparison).
        source: where the model came from, for messages.
        class_names: the names of the model's classes (the columns of `probabilities`).

    Example:

    >>> from weibo_lstm import Tokenizer, WeiboLSTM
    >>> tokenizer = Tokenizer(["好", "差"], max_length=8)
    >>> model = WeiboLSTM(tokenizer.vocabulary_size, lstm_units=(4,), dense_units=0)
    >>> predictor = Predictor.from_keras(model, tokenizer, batch_size=2)
    >>> outputs = predictor.predict(["好好好", "", "差"])
    >>> outputs["probabilities"].shape, outputs["label_id"].dtype
    ((3, 2), dtype('int32'))
    """

    #: What `weibo_lstm.serving.engines` calls this engine.
    engine = "tensorflow"

    def __init__(
        self,
        serve: Callable[[tf.Tensor], dict],
        *,
        batch_size: int = 256,
        bucket_by_length: bool = True,
        source: str = "<memory>",
        class_names: Sequence[str] = CLASS_NAMES,
    ):
        if batch_size < 1:
            raise ValueError(
                f"Argument `batch_size` must be >= 1. Received: batch_size={batch_size}"
            )
        self.serve = serve
        self.batch_size = int(batch_size)
        self.bucket_by_length = bool(bucket_by_length)
        self.source = source
        self.class_names = tuple(class_names)

    @classmethod
    def from_keras(
        cls,
        model: keras.Model,
        tokenizer: Tokenizer,
        class_names: Sequence[str] | None = None,
        *,
        windows: WindowOptions | None = None,
        **kwargs,
    ) -> Predictor:
        """Runs `model` in this process (the graph `weibo_lstm.serving.export` would save;
        `class_names` default: 消极, 积极; `windows`: how long texts are read, None: the
        library default)."""
        names = {} if class_names is None else {"class_names": tuple(class_names)}
        serve = serving_function(model, tokenizer, **names, windows=windows)
        return cls(serve, **names, **kwargs)

    @classmethod
    def from_saved_model(cls, path: str | os.PathLike, **kwargs) -> Predictor:
        """Runs the `serve` signature of a SavedModel written by `weibo_lstm.serving.export`."""
        signatures = tf.saved_model.load(str(path)).signatures
        if SIGNATURE not in signatures:
            raise DataError(
                f"{path}: the SavedModel has no {SIGNATURE!r} signature "
                f"(has {sorted(signatures)}); write it with `weibo-lstm export`"
            )
        signature = signatures[SIGNATURE]
        kwargs.setdefault("source", str(path))
        # A SavedModel exported without our metadata: binary sentiment.
        with contextlib.suppress(OSError, KeyError, ValueError):
            kwargs.setdefault("class_names", read_metadata(path)["class_names"])
        return cls(lambda texts: signature(texts=texts), **kwargs)

    @classmethod
    def load(cls, path: str | os.PathLike, *, memory_growth: bool = True, **kwargs) -> Predictor:
        """From an exported SavedModel, a model directory written by training, or the
        training output directory that holds it (the newest run; see
        `model_directory.resolve`).

        Args:
            path: the SavedModel or model directory.
            memory_growth: set GPU memory growth before the model loads (see
                `devices.configure_gpu_memory_growth`); False: TensorFlow's
                default of reserving all GPU memory.
            **kwargs: `Predictor` arguments (`batch_size`, `bucket_by_length`, ...).

        Raises:
            DataError: if `path` is none of these.
        """
        devices.configure_gpu_memory_growth(memory_growth)  # loading initialises the GPUs
        path = Path(path)
        kwargs.setdefault("source", str(path))
        if (path / "saved_model.pb").is_file():
            return cls.from_saved_model(path, **kwargs)
        if not path.exists():
            raise DataError(f"{path}: no such model directory or SavedModel")
        try:
            model, tokenizer, about = model_directory.read(path)
        except DataError:
            raise DataError(f"{path}: {model_format.NOT_A_MODEL}") from None
        windows = WindowOptions.from_json(about.get("windows"))
        return cls.from_keras(model, tokenizer, about.get("class_names"), windows=windows, **kwargs)

    def predict(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The outputs for `texts`, in their order (`weibo_lstm.serving.export.OUTPUTS`
        or `MULTICLASS_OUTPUTS`: `label_id` int32, `label` strings, the rest float32)."""
        texts = list(texts)
        if self.bucket_by_length:
            order = np.argsort([len(t) for t in texts], kind="stable")
        else:
            order = np.arange(len(texts))
        parts = {}
        for start in range(0, max(len(texts), 1), self.batch_size):
            batch = [texts[i] for i in order[start : start + self.batch_size]] or [""]
            for key, value in self.serve(tf.constant(batch, tf.string)).items():
                value = np.asarray(value)
                if value.dtype == object:
                    value = np.array([v.decode("utf-8") for v in value])
                parts.setdefault(key, []).append(value[: len(texts)])  # no texts: no rows
        result = {}
        for key, values in parts.items():
            sorted_values = np.concatenate(values)
            result[key] = np.empty_like(sorted_values)
            result[key][order] = sorted_values
        return result

    def stream(
        self, texts: Iterable[str], *, window: int = 4096
    ) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
        """Yields `(text, outputs)` per text, in input order, reading `window` at a time
        (`weibo_lstm.serving.streaming.stream`); bucketing happens within each window."""
        return streaming.stream(self.predict, texts, window=window)
