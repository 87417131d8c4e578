"""Which engine runs a saved classifier: NumPy (no TensorFlow) or TensorFlow's `Predictor`.

`locate` turns what a user names (a shipped model, a model directory, a training
output directory, an exported SavedModel) into a path, and says in one line what is
wrong with it, all before TensorFlow is imported; `choose` picks the engine (the
NumPy one whenever the model allows it, unless told otherwise) and `load` builds it.
TensorFlow is imported only when the TensorFlow engine is chosen.
"""

from __future__ import annotations

import os
from pathlib import Path

from weibo_lstm.errors import DataError, check_argument
from weibo_lstm.models.presets import TRAINED_MODELS, trained_model_path
from weibo_lstm.serving import model_format
from weibo_lstm.serving.numpy_predictor import NumpyPredictor

#: The values of `engine`: "auto" is the NumPy engine when the model allows it.
ENGINES = ("auto", "numpy", "tensorflow")
_SAVED_MODEL_FILE = "saved_model.pb"


def locate(model: str | os.PathLike) -> Path:
    """The model directory or SavedModel that `model` names.

    Args:
        model: a shipped model's name (`weibo_lstm.models.presets.TRAINED_MODELS`,
            unless a path of that name exists), a model directory written by
            training, a training output directory (its newest run, see
            `model_format.resolve`), or a SavedModel written by export.

    Returns:
        The model directory (the newest run of an output directory) or the
        SavedModel's directory.

    Raises:
        DataError: if `model` names none of these (one line saying what to pass).

    Example:

    >>> locate("sentiment_zh").name
    'sentiment_zh'
    """
    path = Path(model)
    if not path.exists() and str(model) in TRAINED_MODELS:
        return trained_model_path(str(model))
    if not path.exists():
        raise DataError(
            f"{model}: no such model directory or SavedModel, nor a shipped model "
            f"({', '.join(sorted(TRAINED_MODELS))})"
        )
    if (path / _SAVED_MODEL_FILE).is_file():
        return path
    try:
        return model_format.resolve(path)
    except DataError:
        raise DataError(f"{path}: {model_format.NOT_A_MODEL}") from None


def choose(path: str | os.PathLike, *, engine: str = "auto", device: str | None = None) -> str:
    """The engine, `"numpy"` or `"tensorflow"`, that runs the model at `path` (a path
    `locate` returned) for `engine` and `device`; TensorFlow is not imported.

    `"auto"` is the NumPy engine when `NumpyPredictor.supports` the model and no
    `device` is asked for, else TensorFlow.

    Raises:
        ConfigError: for an unknown engine, `engine="numpy"` with a `device` or with
            a model the NumPy engine does not compute.

    Example:

    >>> choose(locate("sentiment_zh")), choose(locate("sentiment_zh"), device="/cpu:0")
    ('numpy', 'tensorflow')
    """
    check_argument("engine", engine, engine in ENGINES, f"one of {ENGINES}")
    if engine == "numpy":
        check_argument("device", device, device is None, "None with engine='numpy' (CPU only)")
    if engine == "tensorflow" or device is not None:
        return "tensorflow"
    if NumpyPredictor.supports(path):
        return "numpy"
    check_argument(
        "engine",
        engine,
        engine == "auto",
        f"'auto' or 'tensorflow' for {path}: the NumPy engine runs model directories of "
        "WeiboLSTM without BatchNorm (wide & deep or not), not this model",
    )
    return "tensorflow"


def load(
    path: str | os.PathLike,
    *,
    engine: str = "auto",
    device: str | None = None,
    batch_size: int = 256,
    memory_growth: bool = True,
):
    """The predictor of the model at `path` (a path `locate` returned): a
    `NumpyPredictor`, or a `Predictor` (TensorFlow) placed on `device`.

    Args:
        path: the model directory or SavedModel.
        engine: `"auto"`, `"numpy"` or `"tensorflow"` (see `choose`).
        device: a TensorFlow device, e.g. `"/cpu:0"`, `"/gpu:0"` (TensorFlow only).
        batch_size: texts per model call (TensorFlow).
        memory_growth: see `Predictor.load`.

    Raises:
        ConfigError: see `choose`, and for a device this machine does not have.
        DataError: if the model cannot be read.
    """
    check_argument("batch_size", batch_size, batch_size >= 1, ">= 1")
    if choose(path, engine=engine, device=device) == "numpy":
        return NumpyPredictor(path)
    import tensorflow as tf

    from weibo_lstm.serving.predictor import Predictor

    if device is None:
        return Predictor.load(path, batch_size=batch_size, memory_growth=memory_growth)
    check_device(device)
    with tf.device(device):  # the variables too
        predictor = Predictor.load(path, batch_size=batch_size, memory_growth=memory_growth)
    return _serving_on(predictor, device)


def check_device(device: str) -> None:
    """Raises `ConfigError` unless `device` names a device of this machine."""
    import tensorflow as tf

    try:
        spec = tf.DeviceSpec.from_string(device)
    except (ValueError, TypeError):
        spec = None
    found = [tf.DeviceSpec.from_string(d.name) for d in tf.config.list_logical_devices()]
    ok = spec is not None and any(
        d.device_type == (spec.device_type or "").upper()
        and spec.device_index in (None, d.device_index)
        for d in found
    )
    names = ", ".join(f"/{d.device_type.lower()}:{d.device_index}" for d in found)
    check_argument("device", device, ok, f"a device of this machine ({names})")


def on_device(predictor, device: str | None):
    """A `Predictor` running `predictor`'s model on `device` (None: `predictor`)."""
    if device is None:
        return predictor
    check_device(device)
    return _serving_on(predictor, device)


def _serving_on(predictor, device: str):
    """`on_device` for a `device` already checked."""
    import tensorflow as tf

    serve = predictor.serve

    def serve_on_device(texts):
        with tf.device(device):
            return serve(texts)

    return type(predictor)(
        serve_on_device,
        batch_size=predictor.batch_size,
        bucket_by_length=predictor.bucket_by_length,
        source=predictor.source,
        class_names=predictor.class_names,
    )
