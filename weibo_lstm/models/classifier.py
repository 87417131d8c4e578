"""WeiboLSTMClassifier: a `WeiboLSTMBackbone` and a `ClassificationHead`, ids to probabilities.

`WeiboLSTM(vocabulary_size, ...)` builds one from the flat keyword arguments that
presets and older code use: the backbone's, the head's, and the regularisation both
share (`dropout`, `l2`, `batch_norm`, `synchronized_batch_norm`).
"""

from __future__ import annotations

import inspect

import keras
import tensorflow as tf

from weibo_lstm.errors import ConfigError
from weibo_lstm.models.backbone import WeiboLSTMBackbone
from weibo_lstm.models.calibration import EPSILON
from weibo_lstm.models.classification_head import ClassificationHead


@keras.saving.register_keras_serializable(package="weibo_lstm")
class WeiboLSTMClassifier(keras.Model):
    """Class probabilities `[batch, num_classes]` of int ids `[batch, time]`.

    Args:
        backbone: maps ids to `pooled_output` features.
        head: maps those features to class probabilities.
        temperature: the probabilities are `softmax(log p / temperature)`
            (`weibo_lstm.models.calibration`; 1: the head's as they are).
        **kwargs: passed to `keras.Model` (`name`, `dtype`).

    Example:

    >>> backbone = WeiboLSTMBackbone(50, lstm_units=(8,), pooling="mean")
    >>> model = WeiboLSTMClassifier(backbone, ClassificationHead(3, dense_units=0))
    >>> model(np.array([[5, 6, 7, 0]])).shape
    TensorShape([1, 3])
    """

    def __init__(
        self,
        backbone: WeiboLSTMBackbone,
        head: ClassificationHead,
        temperature: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.head = head
        self.temperature = float(temperature)

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    def build(self, input_shape=(None, None)):
        # A part may be built already (loaded from its own config, or called alone).
        if not self.backbone.built:
            self.backbone.build(input_shape)
        if not self.head.built:
            self.head.build((input_shape[0], self.backbone.features))
        self.built = True

    def call(self, inputs, training=None):
        features = self.backbone(inputs, training=training)
        probabilities = self.head(features["pooled_output"], training=training)
        if self.temperature == 1.0:
            return probabilities
        return scaled(probabilities, self.temperature)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "head": keras.saving.serialize_keras_object(self.head),
            }
        )
        if self.temperature != 1.0:  # uncalibrated configs stay what they were
            config["temperature"] = self.temperature
        return config

    @classmethod
    def from_config(cls, config: dict) -> WeiboLSTMClassifier:
        config = dict(config)
        for key in ("backbone", "head"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def scaled(probabilities, temperature: float):
    """`softmax(log p / temperature)` in the graph (`calibration.temperature_scaled`)."""
    logits = tf.math.log(tf.clip_by_value(probabilities, EPSILON, 1.0)) / temperature
    return tf.nn.softmax(logits)


#: The keyword arguments both parts take: one value regularises the whole model.
SHARED_ARGUMENTS = ("dropout", "l2", "batch_norm", "synchronized_batch_norm")


def _keywords(cls) -> set[str]:
    parameters = inspect.signature(cls.__init__).parameters.values()
    return {p.name for p in parameters if p.kind is p.KEYWORD_ONLY or p.default is not p.empty}


def split_arguments(arguments: dict) -> tuple[dict, dict]:
    """`(backbone_arguments, head_arguments)` of flat `WeiboLSTM` keyword arguments.

    Raises:
        ConfigError: for an argument neither part takes.

    Example:

    >>> split_arguments({"lstm_units": (8,), "dense_units": 4, "dropout": 0.1})
    ({'lstm_units': (8,), 'dropout': 0.1}, {'dense_units': 4, 'dropout': 0.1})
    """
    backbone_keys, head_keys = _keywords(WeiboLSTMBackbone), _keywords(ClassificationHead)
    unknown = sorted(set(arguments) - backbone_keys - head_keys)
    if unknown:
        raise ConfigError(
            f"Unknown model arguments {unknown}: the backbone takes {sorted(backbone_keys)}, "
            f"the head {sorted(head_keys)}"
        )
    backbone = {k: v for k, v in arguments.items() if k in backbone_keys}
    head = {k: v for k, v in arguments.items() if k in head_keys}
    return backbone, head


def WeiboLSTM(vocabulary_size: int, *, name: str | None = None, dtype=None, **arguments):
    """The seed recipe's classifier (or any variant) from flat keyword arguments.

    With no arguments it is the seed architecture: the `WeiboLSTMBackbone` defaults
    (embedding 100, LSTM 128 → 64, BatchNorm and dropout 0.3 after each, last state)
    and the `ClassificationHead` defaults (Dense 32 relu, BatchNorm, dropout 0.3,
    softmax over 2 classes), L2 1e-5 throughout.

    Args:
        vocabulary_size: number of token ids, padding and OOV included.
        name: the model's name.
        dtype: a dtype policy for every layer (e.g. `"mixed_bfloat16"`).
        **arguments: `WeiboLSTMBackbone` and `ClassificationHead` keyword arguments
            (see `split_arguments`); `dropout`, `l2`, `batch_norm` and
            `synchronized_batch_norm` go to both.

    Returns:
        A `WeiboLSTMClassifier`.

    Example:

    >>> model = WeiboLSTM(50, lstm_units=(8, 4), dense_units=4, num_classes=3)
    >>> model(np.array([[5, 6, 7, 0]]), training=False).shape
    TensorShape([1, 3])
    """
    backbone_arguments, head_arguments = split_arguments(arguments)
    parts = {} if dtype is None else {"dtype": dtype}
    # The backbone first: its layers draw their seeds before the head's.
    backbone = WeiboLSTMBackbone(vocabulary_size, **backbone_arguments, **parts, name="backbone")
    head = ClassificationHead(**head_arguments, **parts, name="head")
    return WeiboLSTMClassifier(backbone, head, name=name, **parts)
