"""NumpyPredictor: a saved classifier run in NumPy, for answers before TensorFlow starts.

Importing TensorFlow takes 4-5 s on a 2-core machine, longer than a user waits for
`weibo-lstm predict "很差"`. For the architectures it knows — a `WeiboLSTMClassifier`
without BatchNorm, unidirectional, mean / max / mean+max / last pooling, float32,
optionally the deep part of a `WideAndDeep` — this module reads a model directory
(`model.keras` through `h5py`, the tokenizer's files; the old format through
`legacy_format`) and computes the same probabilities as the Keras model with NumPy:
the `Tokenizer`'s normalisation (`weibo_lstm.preprocessing.normalization`), long texts
in windows (`weibo_lstm.preprocessing.windows`), the LSTM step by step, the wide part
with `tfidf_logits`. Nothing here imports TensorFlow;
tests/test_numpy_predictor.py checks it against the Keras model on edge-case texts.
`NumpyPredictor.supports(path)` says whether a directory can be run this way; other
models go through `Predictor`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from weibo_lstm.models.bigrams import bigram_ids
from weibo_lstm.models.calibration import temperature_scaled
from weibo_lstm.models.ngram_features import tfidf_logits
from weibo_lstm.models.stacking import rows_holding, stacked_logits, stacked_probabilities
from weibo_lstm.preprocessing import tokenizer_files
from weibo_lstm.preprocessing.normalization import OOV_ID, normalized_codepoints
from weibo_lstm.preprocessing.windows import WindowOptions, pool, window_starts
from weibo_lstm.serving import legacy_format, model_format, streaming

_POOLINGS = ("mean", "max", "mean_max", "last")
#: Windows per model pass (`window_probabilities`).
_MAX_ROWS = 4096


class UnsupportedModel(ValueError):
    """The model directory holds an architecture this module does not compute."""


class NumpyPredictor:
    """Class probabilities of raw texts from a model directory, without TensorFlow.

    Args:
        path: a model directory written by `SentimentClassifier.save`.

    Raises:
        UnsupportedModel: if the architecture is not one listed in the module
            docstring (use `weibo_lstm.serving.predictor.Predictor`).

    Example:

    >>> from weibo_lstm.models.presets import trained_model_path
    >>> predictor = NumpyPredictor(trained_model_path())
    >>> predictor.predict(["很差", "太好吃了"])["label_id"].tolist()
    [0, 1]
    """

    #: What `weibo_lstm.serving.engines` calls this engine.
    engine = "numpy"

    def __init__(self, path: str | os.PathLike):
        path = Path(path)
        config, weights = _read_model(path / model_format.MODEL_FILE)
        self.mixing = self.emoticon_mixing = None
        self.temperature = 1.0  # of the wide & deep stack
        prefix = ""
        if config["class_name"] == "WideAndDeep":
            wide_and_deep = config["config"]
            self.temperature = float(wide_and_deep.get("temperature", 1.0))
            self.mixing = tuple(wide_and_deep["mixing"])
            if wide_and_deep.get("emoticon_mixing") is not None:
                self.emoticon_mixing = tuple(wide_and_deep["emoticon_mixing"])
                self.emoticon_ids = np.array(wide_and_deep["emoticon_ids"], np.int64)
            self.max_order = int(wide_and_deep["wide"]["config"]["max_order"])
            wide = next(k.split("/vars/")[0] for k in weights if not k.startswith("deep/"))
            self.keys, self.idf, self.coef, intercept = (
                weights[f"{wide}/vars/{i}"] for i in range(4)
            )
            self.intercept = intercept.astype(np.float64) if intercept.ndim else float(intercept)
            config, prefix = wide_and_deep["deep"], "deep/"
        self.config, head = _check_classifier(config)
        self.deep_temperature = float(config["config"].get("temperature", 1.0))
        self.embedding = weights[f"{prefix}backbone/embedding/vars/0"]
        self.bigram_embedding = weights.get(f"{prefix}backbone/bigram_embedding/vars/0")
        lstm_names = sorted(
            {name.split("/cell/")[0] for name in weights if "/cell/vars/" in name},
            key=lambda name: int(name.rsplit("_", 1)[1]) if name[-1].isdigit() else 0,
        )
        self.lstms = [
            tuple(weights[f"{name}/cell/vars/{i}"] for i in range(3)) for name in lstm_names
        ]
        self.hidden = None
        if head["dense_units"]:
            self.hidden = tuple(weights[f"{prefix}head/hidden/vars/{i}"] for i in range(2))
        self.classifier = tuple(weights[f"{prefix}head/classifier/vars/{i}"] for i in range(2))
        self.tokenizer = _read_tokenizer(path / model_format.TOKENIZER_DIR)
        self.class_names = model_format.read_class_names(path, head["num_classes"])
        #: How texts longer than `max_length` are read (`classifier.json`, else the default).
        self.window_options = model_format.read_windows(path) or WindowOptions()
        if len(self.lstms) != len(self.config["lstm_units"]):
            raise UnsupportedModel(f"{path}: {len(self.lstms)} LSTM weight sets in model.keras")

    @staticmethod
    def supports(path: str | os.PathLike) -> bool:
        """Whether `path` is a model directory whose architecture this class computes
        (built: a model saved before it was built has no weights to compute with)."""
        try:
            config, _ = _read_model(Path(path) / model_format.MODEL_FILE, weights=False)
            if config["class_name"] == "WideAndDeep":
                config = config["config"]["deep"]
            _check_classifier(config)
        except (UnsupportedModel, OSError, KeyError, ValueError):
            return False
        return True

    # ------------------------------------------------------------------ tokenizer
    def ids(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids of each text, as `Tokenizer(texts, ragged=True)` gives them
        (truncated to `max_length`, as training reads them)."""
        max_length = self.tokenizer[0]["max_length"]
        return [self._ids(text)[:max_length] for text in texts]

    def windows(self, texts: Sequence[str]) -> tuple[list[np.ndarray], np.ndarray]:
        """`(windows, counts)`: the ids of every text in the model's windows, as
        `Tokenizer.windows(texts, ragged=True)` gives them, and how many windows each
        text has (`weibo_lstm.preprocessing.windows`)."""
        size = self.tokenizer[0]["max_length"]
        stride = self.window_options.stride_for(size)
        rows, counts = [], []
        for text in texts:
            ids = self._ids(text)
            starts = window_starts(len(ids), size, stride)
            rows.extend(ids[start : start + size] for start in starts)
            counts.append(len(starts))
        return rows, np.array(counts, np.int64)

    def codepoints(self, text: str) -> list[int]:
        """The code points of `text` normalised as the tokenizer does (not truncated)."""
        options, _ = self.tokenizer
        return normalized_codepoints(
            text,
            strip_emoticons=options["strip_emoticons"],
            collapse_whitespace=options["collapse_whitespace"],
            fold_width=options["fold_width"],
            lowercase=options["lowercase"],
        )

    def _ids(self, text: str) -> np.ndarray:
        """Every id of `text` (not truncated)."""
        _, vocabulary = self.tokenizer
        ids = [vocabulary.get(int(cp), OOV_ID) for cp in self.codepoints(text)]
        return np.array(ids or [OOV_ID], np.int64)  # never an empty row

    # ------------------------------------------------------------------ model
    def predict(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The outputs `Predictor.predict` returns for raw `texts`: `probabilities`
        `[N, K]` and `label_id` `[N]`, and `positive_probability` `[N]` (two classes) or
        `label` `[N]` (the class names, K > 2). Long texts are read in windows, pooled
        as the model's `window_options` say."""
        probabilities, counts = self.window_probabilities(list(texts))
        probabilities = pool(probabilities, counts, self.window_options.pooling)
        label_id = probabilities.argmax(1).astype(np.int32)
        if len(self.class_names) == 2:
            return {
                "probabilities": probabilities,
                "positive_probability": probabilities[:, 1],
                "label_id": label_id,
            }
        names = np.array(self.class_names)
        return {"probabilities": probabilities, "label_id": label_id, "label": names[label_id]}

    def window_probabilities(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """`(probabilities, counts)`: float32 `[sum(counts), K]` of every window of
        `texts` (`windows`), text by text, and each text's number of windows."""
        rows, counts = self.windows(texts)
        parts = [np.zeros((0, len(self.class_names)), np.float32)]
        # At most _MAX_ROWS windows per pass: long texts multiply the rows, and a pass
        # holds [rows, steps, features] activations.
        for start in range(0, len(rows), _MAX_ROWS):
            chunk = rows[start : start + _MAX_ROWS]
            probabilities = self._deep(chunk)
            if self.mixing is not None:
                probabilities = self._wide_and_deep(chunk, probabilities)
            parts.append(probabilities.astype(np.float32))
        return np.concatenate(parts), counts

    def stream(self, texts: Iterable[str], *, window: int = 4096):
        """Yields `(text, outputs)` per text, in input order, `window` texts at a time
        (`weibo_lstm.serving.streaming.stream`)."""
        return streaming.stream(self.predict, texts, window=window)

    def _deep(self, rows: list[np.ndarray]) -> np.ndarray:
        lengths = np.array([len(r) for r in rows])
        ids = np.zeros((len(rows), lengths.max()), np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
        mask = ids > 0
        x = self.embedding[ids]
        if self.bigram_embedding is not None:
            bigrams = bigram_ids(ids, self.config["bigram_buckets"], self.config["bigram_context"])
            x = np.concatenate([x, self.bigram_embedding[bigrams]], axis=-1)
        for kernel, recurrent, bias in self.lstms:
            x = _lstm(x, mask, kernel, recurrent, bias)
        x = _pool(x, mask, lengths, self.config["pooling"])
        if self.hidden is not None:
            x = np.maximum(x @ self.hidden[0] + self.hidden[1], 0)
        logits = x @ self.classifier[0] + self.classifier[1]
        logits = logits - logits.max(1, keepdims=True)
        exp = np.exp(logits)
        probabilities = exp / exp.sum(1, keepdims=True)
        if self.deep_temperature != 1.0:
            probabilities = temperature_scaled(probabilities, self.deep_temperature)
        return probabilities

    def _wide_and_deep(self, rows: list[np.ndarray], deep: np.ndarray) -> np.ndarray:
        values = np.concatenate(rows)
        row_splits = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
        linear = tfidf_logits(
            values,
            row_splits,
            keys=self.keys,
            idf=self.idf,
            coef=self.coef,
            intercept=self.intercept,
            max_order=self.max_order,
        )
        marked = None
        if self.emoticon_mixing is not None:
            marked = rows_holding(values, row_splits, self.emoticon_ids)
        if linear.ndim == 2:  # K classes
            probabilities = stacked_probabilities(deep, linear, self.mixing, self.temperature)
            if marked is not None:
                emoticon = stacked_probabilities(
                    deep, linear, self.emoticon_mixing, self.temperature
                )
                probabilities = np.where(marked[:, None], emoticon, probabilities)
            return probabilities
        logits = stacked_logits(deep, linear, self.mixing)
        if marked is not None:
            logits = np.where(marked, stacked_logits(deep, linear, self.emoticon_mixing), logits)
        positive = _sigmoid(logits / self.temperature)
        return np.stack([1 - positive, positive], axis=-1)


def _lstm(x, mask, kernel, recurrent, bias):
    """Keras' LSTM (gates i, f, c, o; sigmoid and tanh) over right-padded rows, all
    steps returned; a padded step keeps the state (its output is never pooled)."""
    batch, steps, _ = x.shape
    units = recurrent.shape[0]
    h = np.zeros((batch, units), x.dtype)
    c = np.zeros((batch, units), x.dtype)
    # One 2-D product (a 3-D matmul does not reach BLAS's fast path).
    inputs = (x.reshape(batch * steps, -1) @ kernel + bias).reshape(batch, steps, -1)
    outputs = np.zeros((batch, steps, units), x.dtype)
    for t in range(steps):
        z = inputs[:, t] + h @ recurrent
        i, f, g, o = np.split(z, 4, axis=-1)
        c_new = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h_new = _sigmoid(o) * np.tanh(c_new)
        keep = mask[:, t, None]
        c, h = np.where(keep, c_new, c), np.where(keep, h_new, h)
        outputs[:, t] = h
    return outputs


def _pool(x, mask, lengths, mode: str):
    """`MaskedPooling` over right-padded rows (mean and/or max of the real steps), or
    the last real step for `"last"`."""
    if mode == "last":
        return x[np.arange(len(x)), lengths - 1]
    parts = []
    if mode in ("mean", "mean_max"):
        weights = mask[..., None].astype(x.dtype)
        parts.append((x * weights).sum(1) / np.maximum(weights.sum(1), 1.0))
    if mode in ("max", "mean_max"):
        parts.append(np.where(mask[..., None], x, np.finfo(x.dtype).min).max(1))
    return np.concatenate(parts, -1)


def _sigmoid(x):
    with np.errstate(over="ignore"):  # exp(-x) overflows to inf for very negative x: 0
        return 1 / (1 + np.exp(-x))


def _check_classifier(config: dict) -> tuple[dict, dict]:
    """The backbone's and the head's configs of a `WeiboLSTMClassifier` this module
    computes, else `UnsupportedModel`."""
    if config.get("class_name") != "WeiboLSTMClassifier":
        raise UnsupportedModel(f"a {config.get('class_name')}, not a WeiboLSTMClassifier")
    backbone = config["config"]["backbone"]["config"]
    head = config["config"]["head"]["config"]
    dtype = backbone.get("dtype", "float32")
    if isinstance(dtype, dict):
        dtype = dtype.get("config", {}).get("name")
    problems = {
        "BatchNorm": backbone.get("batch_norm") or head.get("batch_norm"),
        "bidirectional LSTMs": backbone.get("bidirectional"),
        f"{backbone.get('pooling')} pooling": backbone.get("pooling") not in _POOLINGS,
        f"dtype {dtype}": dtype != "float32",
    }
    unsupported = [name for name, present in problems.items() if present]
    if unsupported:
        raise UnsupportedModel(", ".join(unsupported))
    return backbone, head


def _read_model(path: Path, weights: bool = True) -> tuple[dict, dict[str, np.ndarray]]:
    """`(config, {weight name: array})` of a `.keras` file, in today's format (an old
    file's config and names are converted by `legacy_format`); `UnsupportedModel` for a
    model saved before it was built (its file has no weights)."""
    config, arrays = model_format.read_model_file(path, weights=weights)
    if config.get("build_config") is None:  # legacy conversion drops it: check first
        raise UnsupportedModel(f"{path}: saved before the model was built: no weights")
    if legacy_format.is_legacy(config):
        arrays = {legacy_format.convert_weight_key(k, config): v for k, v in arrays.items()}
        config = legacy_format.convert_config(config)
    return config, arrays


def _read_tokenizer(path: Path) -> tuple[dict, dict[int, int]]:
    """`(options, {code point: id})` of a tokenizer directory (`Tokenizer.save`)."""
    options, vocabulary = tokenizer_files.read(path)
    return options, {ord(char): i for i, char in enumerate(vocabulary, start=2)}
