"""Whether a model's LSTM layers and batches qualify for the fused cuDNN kernel.

Keras runs an LSTM on the fused cuDNN kernel only when its arguments allow it
(tanh activation, sigmoid recurrent activation, no recurrent dropout, not unrolled,
with a bias, `use_cudnn` not False) and the batch's mask is right-padded with no
fully masked row; otherwise it silently falls back to a kernel several times slower
on a GPU. These checks make the fallback visible: tests run them over every preset,
and the training job logs a warning on GPUs.
"""

from __future__ import annotations

import logging

import keras

logger = logging.getLogger("weibo_lstm")


def lstm_layers(model: keras.Layer) -> list[keras.layers.LSTM]:
    """Every `keras.layers.LSTM` in `model`, inside `Bidirectional` wrappers too."""
    found = []
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if isinstance(layer, keras.layers.LSTM):
            found.append(layer)
    return found


def cudnn_incompatibilities(model: keras.Layer) -> list[str]:
    """Why each LSTM of `model` could not use the cuDNN kernel; empty when all can.

    Example:

    >>> cudnn_incompatibilities(keras.Sequential([keras.layers.LSTM(4, recurrent_dropout=0.1)]))
    ['lstm: recurrent_dropout=0.1']
    """
    from keras import activations

    problems = []
    for layer in lstm_layers(model):
        cell = layer.cell
        checks = {
            "activation": cell.activation in (activations.tanh,),
            "recurrent_activation": cell.recurrent_activation in (activations.sigmoid,),
            "recurrent_dropout": not cell.recurrent_dropout,
            "unroll": not layer.unroll,
            "use_bias": cell.use_bias,
            "use_cudnn": layer.use_cudnn in ("auto", True),
        }
        values = {
            "activation": getattr(cell.activation, "__name__", cell.activation),
            "recurrent_activation": getattr(
                cell.recurrent_activation, "__name__", cell.recurrent_activation
            ),
            "recurrent_dropout": cell.recurrent_dropout,
            "unroll": layer.unroll,
            "use_bias": cell.use_bias,
            "use_cudnn": layer.use_cudnn,
        }
        problems += [
            f"{layer.name}: {k}={values[k]!r}".replace("'", "")
            for k, ok in checks.items()
            if not ok
        ]
    return problems


def warn_if_not_cudnn(device_kind: str, model: keras.Layer) -> list[str]:
    """On GPUs, logs one warning saying why `model`'s LSTMs cannot use the cuDNN kernel.

    Args:
        device_kind: `"GPU"` or `"CPU"` (`weibo_lstm.distribute.devices.device_kind`);
            nothing is checked on a CPU, where no fused kernel exists.
        model: the model to train.

    Returns:
        The reasons (`cudnn_incompatibilities`), empty when all LSTMs qualify or on a CPU.

    Example:

    >>> slow = keras.layers.LSTM(4, recurrent_dropout=0.1)
    >>> warn_if_not_cudnn("CPU", slow), len(warn_if_not_cudnn("GPU", slow))
    ([], 1)
    """
    if device_kind != "GPU":
        return []
    reasons = cudnn_incompatibilities(model)
    if reasons:
        logger.warning(
            "The LSTMs will not use the fused cuDNN kernel (several times slower on a GPU): %s",
            "; ".join(reasons),
        )
    return reasons
