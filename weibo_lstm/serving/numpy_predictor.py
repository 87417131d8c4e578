"""NumpyPredictor: a saved classifier run in NumPy, for answers before TensorFlow starts.

Importing TensorFlow takes 4-5 s on a 2-core machine, longer than a user waits for
`weibo-lstm predict "很差"`. For the architectures it knows — `WeiboLSTM` without
BatchNorm, unidirectional, mean / max / mean+max / last pooling, float32, optionally
inside a wide & deep `HybridClassifier` — this module reads a model directory
(`model.keras` through `h5py`, the tokenizer's files) and computes the same
probabilities as the Keras model with NumPy: the `Tokenizer`'s normalisation in
Python `re`, the LSTM step by step, the wide part with `tfidf_logits`. Nothing here
imports TensorFlow; `tests/test_numpy_predictor.py` checks it against the Keras model
on edge-case texts. `NumpyPredictor.supports(path)` says whether a directory can be
run this way; other models go through `Predictor`.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from weibo_lstm.models.ngram_features import tfidf_logits
from weibo_lstm.models.stacking import rows_holding, stacked_logits
from weibo_lstm.preprocessing import tokenizer_files
from weibo_lstm.serving import model_format, streaming

# The Tokenizer's RE2 patterns, spelled for Python's `re`: RE2's `\s` is [\t\n\f\r ].
_RE2_SPACE = "\t\n\f\r "
_EMOTICON = re.compile(f"[\\[［][^\\[\\]［］{_RE2_SPACE}]{{1,10}}[\\]］]")
_WHITESPACE = re.compile(f"[{_RE2_SPACE}\u00a0\u3000]+")
_STRIP = " \t\n\v\f\r"  # tf.strings.strip: ASCII whitespace
_POOLINGS = ("mean", "max", "mean_max", "last")


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

    def __init__(self, path: str | os.PathLike):
        path = Path(path)
        config, weights = _read_model(path / model_format.MODEL_FILE)
        self.mixing = self.emoticon_mixing = None
        prefix = ""
        if config["class_name"] == "HybridClassifier":
            self.mixing = tuple(config["config"]["mixing"])
            if config["config"].get("emoticon_mixing") is not None:
                self.emoticon_mixing = tuple(config["config"]["emoticon_mixing"])
                self.emoticon_ids = np.array(config["config"]["emoticon_ids"], np.int64)
            linear = config["config"]["linear"]["config"]
            self.max_order = int(linear["max_order"])
            self.keys, self.idf, self.coef, intercept = (
                weights[f"layers/ngram_logistic_regression/vars/{i}"] for i in range(4)
            )
            self.intercept = float(intercept)
            config, prefix = config["config"]["classifier"], "classifier/"
        self.config = _check_backbone(config)
        self.embedding = weights[f"{prefix}embedding/vars/0"]
        self.bigram_embedding = weights.get(f"{prefix}bigram_embedding/vars/0")
        lstm_names = sorted(
            {name.split("/cell/")[0] for name in weights if "/cell/vars/" in name},
            key=lambda name: int(name.rsplit("_", 1)[1]) if name[-1].isdigit() else 0,
        )
        self.lstms = [
            tuple(weights[f"{name}/cell/vars/{i}"] for i in range(3)) for name in lstm_names
        ]
        self.hidden = None
        if self.config["dense_units"]:
            self.hidden = (weights[f"{prefix}hidden/vars/0"], weights[f"{prefix}hidden/vars/1"])
        self.classifier = (
            weights[f"{prefix}classifier/vars/0"],
            weights[f"{prefix}classifier/vars/1"],
        )
        self.tokenizer = _read_tokenizer(path / model_format.TOKENIZER_DIR)
        if len(self.lstms) != len(self.config["lstm_units"]):
            raise UnsupportedModel(f"{path}: {len(self.lstms)} LSTM weight sets in model.keras")

    @staticmethod
    def supports(path: str | os.PathLike) -> bool:
        """Whether `path` is a model directory whose architecture this class computes."""
        try:
            config, _ = _read_model(Path(path) / model_format.MODEL_FILE, weights=False)
            if config["class_name"] == "HybridClassifier":
                config = config["config"]["classifier"]
            _check_backbone(config)
        except (UnsupportedModel, OSError, KeyError, ValueError):
            return False
        return True

    # ------------------------------------------------------------------ tokenizer
    def ids(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids of each text, as `Tokenizer(texts, ragged=True)` gives them."""
        return [self._ids(text) for text in texts]

    def _ids(self, text: str) -> np.ndarray:
        options, vocabulary = self.tokenizer
        # As TensorFlow reads a Python string: UTF-8, invalid bytes as U+FFFD.
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        if options["strip_emoticons"]:
            text = _EMOTICON.sub("", text)
        if options["collapse_whitespace"]:
            text = _WHITESPACE.sub(" ", text).strip(_STRIP)
        codepoints = np.fromiter(map(ord, text), np.int64, len(text))
        if options["fold_width"]:
            wide = (codepoints >= 0xFF01) & (codepoints <= 0xFF5E)
            codepoints = np.where(wide, codepoints - 0xFEE0, codepoints)
        if options["lowercase"]:
            upper = (codepoints >= 0x41) & (codepoints <= 0x5A)
            codepoints = np.where(upper, codepoints + 0x20, codepoints)
        ids = [vocabulary.get(int(cp), 1) for cp in codepoints[: options["max_length"]]]
        return np.array(ids or [1], np.int64)  # never an empty row: one OOV id

    # ------------------------------------------------------------------ model
    def predict(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """`probabilities` `[N, 2]`, `positive_probability` `[N]` and `label_id` `[N]`
        of raw `texts`, as `Predictor.predict` returns them."""
        rows = self.ids(list(texts))
        if not rows:
            probabilities = np.zeros((0, 2), np.float32)
        else:
            probabilities = self._deep(rows)
            if self.mixing is not None:
                probabilities = self._wide_and_deep(rows, probabilities)
        probabilities = probabilities.astype(np.float32)
        return {
            "probabilities": probabilities,
            "positive_probability": probabilities[:, 1],
            "label_id": probabilities.argmax(1).astype(np.int32),
        }

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
            x = np.concatenate([x, self.bigram_embedding[self._bigram_ids(ids)]], axis=-1)
        for kernel, recurrent, bias in self.lstms:
            x = _lstm(x, mask, kernel, recurrent, bias)
        x = _pool(x, mask, lengths, self.config["pooling"])
        if self.hidden is not None:
            x = np.maximum(x @ self.hidden[0] + self.hidden[1], 0)
        logits = x @ self.classifier[0] + self.classifier[1]
        logits = logits - logits.max(1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(1, keepdims=True)

    def _bigram_ids(self, ids: np.ndarray) -> np.ndarray:
        if self.config["bigram_context"] == "next":
            other = np.pad(ids[:, 1:], [[0, 0], [0, 1]])
        else:
            other = np.pad(ids[:, :-1], [[0, 0], [1, 0]])
        hashed = (ids * 1_000_003 + other * 7_919) % self.config["bigram_buckets"] + 1
        return np.where(ids > 0, hashed, 0)

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
        logits = stacked_logits(deep, linear, self.mixing)
        if self.emoticon_mixing is not None:
            marked = rows_holding(values, row_splits, self.emoticon_ids)
            logits = np.where(marked, stacked_logits(deep, linear, self.emoticon_mixing), logits)
        positive = _sigmoid(logits)
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
    return 1 / (1 + np.exp(-x))


def _check_backbone(config: dict) -> dict:
    """The `WeiboLSTM` config if this module computes it, else `UnsupportedModel`."""
    if config.get("class_name") != "WeiboLSTM":
        raise UnsupportedModel(f"a {config.get('class_name')}, not a WeiboLSTM")
    options = config["config"]
    dtype = options.get("dtype", "float32")
    if isinstance(dtype, dict):
        dtype = dtype.get("config", {}).get("name")
    problems = {
        "BatchNorm": options.get("batch_norm"),
        "bidirectional LSTMs": options.get("bidirectional"),
        f"{options.get('pooling')} pooling": options.get("pooling") not in _POOLINGS,
        f"dtype {dtype}": dtype != "float32",
        "several classes": options.get("num_classes") != 2,
    }
    unsupported = [name for name, present in problems.items() if present]
    if unsupported:
        raise UnsupportedModel(", ".join(unsupported))
    return options


def _read_model(path: Path, weights: bool = True) -> tuple[dict, dict[str, np.ndarray]]:
    """`(config, {weight path: array})` of a `.keras` file (a zip of JSON and HDF5)."""
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        if not weights:
            return config, {}
        import io

        import h5py

        arrays = {}
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as f:
            f.visititems(
                lambda name, item: (
                    arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None
                )
            )
    return config, arrays


def _read_tokenizer(path: Path) -> tuple[dict, dict[int, int]]:
    """`(options, {code point: id})` of a tokenizer directory (`Tokenizer.save`)."""
    options, vocabulary = tokenizer_files.read(path)
    return options, {ord(char): i for i, char in enumerate(vocabulary, start=2)}
