"""Pretrained encoders: save them, load them into a backbone or a whole classifier.

An encoder directory holds everything a classifier needs to start from pretrained
weights:

    encoder.json      the backbone's encoder arguments (`ENCODER_ARGUMENTS`), format, metadata
    weights.npz       the encoder weights by layer and index (float16 by default)
    tokenizer/        the pretraining vocabulary (`Tokenizer.save`): ids must match

`backbone_from_encoder` builds a `WeiboLSTMBackbone` with the encoder's architecture
and loads the weights; `classifier_from_encoder` does the same inside a
`WeiboLSTMClassifier` with any head.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import numpy as np

from weibo_lstm.errors import DataError
from weibo_lstm.models.backbone import WeiboLSTMBackbone
from weibo_lstm.models.classifier import WeiboLSTM, WeiboLSTMClassifier
from weibo_lstm.models.language_model import ENCODER_ARGUMENTS
from weibo_lstm.preprocessing.tokenizer import Tokenizer

_CONFIG_FILE = "encoder.json"
_WEIGHTS_FILE = "weights.npz"
_TOKENIZER_DIR = "tokenizer"
_FORMAT = "weibo_lstm.encoder/1"


def _backbone(model: WeiboLSTMBackbone | WeiboLSTMClassifier) -> WeiboLSTMBackbone:
    return model.backbone if isinstance(model, WeiboLSTMClassifier) else model


def _encoder_variables(model: WeiboLSTMBackbone | WeiboLSTMClassifier) -> dict:
    """The variables of the backbone's `encoder_layers()`, keyed `"<layer name>/<index>"`."""
    return {
        f"{layer.name}/{i}": w
        for layer in _backbone(model).encoder_layers()
        for i, w in enumerate(layer.weights)
    }


def encoder_weights(model: WeiboLSTMBackbone | WeiboLSTMClassifier) -> dict[str, np.ndarray]:
    """The weights of the backbone's `encoder_layers()`, keyed `"<layer name>/<index>"`."""
    return {
        key: np.asarray(keras.ops.convert_to_numpy(w))
        for key, w in _encoder_variables(model).items()
    }


def save_encoder(
    path: str | os.PathLike,
    model: WeiboLSTMBackbone | WeiboLSTMClassifier,
    tokenizer: Tokenizer,
    *,
    dtype: str = "float16",
    metadata: dict | None = None,
) -> Path:
    """Writes the encoder of a built backbone (or classifier) and its tokenizer to `path`.

    Args:
        path: directory to write (created).
        model: the backbone whose `encoder_layers()` are saved, e.g.
            `CharLanguageModel.backbone`, or a classifier (its backbone's).
        tokenizer: the tokenizer the encoder was trained with.
        dtype: storage dtype of the weights (`"float16"` halves the size; loading
            casts back to the model's float32).
        metadata: JSON-serialisable extras (corpus, training report, …).

    Returns:
        `path` as a `Path`.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = _backbone(model).get_config()
    arguments = {key: config[key] for key in ENCODER_ARGUMENTS}
    weights = {k: v.astype(dtype) for k, v in encoder_weights(model).items()}
    np.savez_compressed(path / _WEIGHTS_FILE, **weights)
    tokenizer.save(path / _TOKENIZER_DIR)
    with open(path / _CONFIG_FILE, "w", encoding="utf-8") as f:
        json.dump(
            {"format": _FORMAT, "encoder": arguments, "metadata": metadata or {}},
            f,
            ensure_ascii=False,
            indent=2,
            default=str,
        )
    return path


def load_encoder(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray], Tokenizer]:
    """`(encoder arguments, weights, tokenizer)` of an encoder directory.

    Raises:
        DataError: if `path` is not an encoder directory.
    """
    path = Path(path)
    if not (path / _CONFIG_FILE).is_file() or not (path / _WEIGHTS_FILE).is_file():
        raise DataError(f"{path}: not a pretrained encoder (no {_CONFIG_FILE} and {_WEIGHTS_FILE})")
    with open(path / _CONFIG_FILE, encoding="utf-8") as f:
        config = json.load(f)
    if config.get("format") != _FORMAT:
        raise DataError(f"{path}/{_CONFIG_FILE}: unknown format {config.get('format')!r}")
    with np.load(path / _WEIGHTS_FILE) as archive:
        weights = {key: archive[key] for key in archive.files}
    arguments = dict(config["encoder"])
    arguments["lstm_units"] = tuple(arguments["lstm_units"])
    return arguments, weights, Tokenizer.load(path / _TOKENIZER_DIR)


def set_encoder_weights(
    model: WeiboLSTMBackbone | WeiboLSTMClassifier, weights: dict[str, np.ndarray]
) -> None:
    """Assigns `weights` (as from `encoder_weights`) to a built backbone's encoder.

    Raises:
        ValueError: if a layer, weight or shape does not match.
    """
    expected = _encoder_variables(model)
    if set(expected) != set(weights):
        raise ValueError(
            "The encoder weights do not match the model: "
            f"missing {sorted(set(expected) - set(weights))}, "
            f"unexpected {sorted(set(weights) - set(expected))}"
        )
    for key, variable in expected.items():
        if tuple(variable.shape) != weights[key].shape:
            raise ValueError(
                f"Encoder weight {key} has shape {weights[key].shape}; the model's is "
                f"{tuple(variable.shape)}"
            )
        variable.assign(weights[key].astype(variable.dtype))


def _read_for_model(path, max_length, strip_emoticons, arguments):
    """The encoder's arguments, weights and tokenizer, with the tokenizer's overrides."""
    encoder, weights, tokenizer = load_encoder(path)
    clash = sorted(set(arguments) & set(ENCODER_ARGUMENTS))
    if clash:
        raise ValueError(f"The encoder fixes {clash}; do not pass them")
    overrides = {}
    if max_length is not None:
        overrides["max_length"] = max_length
    if strip_emoticons is not None:
        overrides["strip_emoticons"] = bool(strip_emoticons)
    if overrides:
        tokenizer = Tokenizer.from_config(tokenizer.get_config() | overrides)
    return encoder, weights, tokenizer


def backbone_from_encoder(
    path: str | os.PathLike,
    *,
    max_length: int | None = None,
    strip_emoticons: bool | None = None,
    **arguments,
) -> tuple[WeiboLSTMBackbone, Tokenizer]:
    """A `WeiboLSTMBackbone` with a pretrained encoder, and the encoder's tokenizer.

    Build it under the trainer's `strategy.scope()`: the model is built here.

    Args:
        path: an encoder directory (`save_encoder`).
        max_length: override the tokenizer's `max_length`.
        strip_emoticons: override the tokenizer's emoticon stripping (None: keep).
        **arguments: other `WeiboLSTMBackbone` arguments (pooling, dropout, …); the
            encoder's own arguments (`ENCODER_ARGUMENTS`) may not be given.

    Raises:
        ValueError: for an argument the encoder fixes.
    """
    encoder, weights, tokenizer = _read_for_model(path, max_length, strip_emoticons, arguments)
    backbone = WeiboLSTMBackbone(**encoder, **arguments)
    backbone.build()
    set_encoder_weights(backbone, weights)
    return backbone, tokenizer


def classifier_from_encoder(
    path: str | os.PathLike,
    *,
    max_length: int | None = None,
    strip_emoticons: bool | None = None,
    **arguments,
) -> tuple[WeiboLSTMClassifier, Tokenizer]:
    """A `WeiboLSTMClassifier` whose backbone starts from a pretrained encoder (the
    head is new), and the encoder's tokenizer.

    Build it under the trainer's `strategy.scope()`: the model is built here.

    Args:
        path: an encoder directory (`save_encoder`).
        max_length: override the tokenizer's `max_length`.
        strip_emoticons: override the tokenizer's emoticon stripping (None: keep).
        **arguments: other `WeiboLSTM` arguments (pooling, dense_units, dropout,
            num_classes, …); the encoder's own (`ENCODER_ARGUMENTS`) may not be given.

    Raises:
        ValueError: for an argument the encoder fixes.

    Example:

    >>> import tempfile
    >>> from weibo_lstm.models.language_model import CharLanguageModel
    >>> tokenizer = Tokenizer(["好", "差"], max_length=8)
    >>> lm = CharLanguageModel(tokenizer.vocabulary_size, embedding_dim=4, lstm_units=(4,))
    >>> lm.build()
    >>> path = save_encoder(tempfile.mkdtemp(), lm.backbone, tokenizer)
    >>> model, tok = classifier_from_encoder(path, pooling="mean_max", dense_units=0)
    >>> model(tok(["好"]), training=False).shape
    TensorShape([1, 2])
    """
    encoder, weights, tokenizer = _read_for_model(path, max_length, strip_emoticons, arguments)
    model = WeiboLSTM(**encoder, **arguments)
    model.build()
    set_encoder_weights(model, weights)
    return model, tokenizer
