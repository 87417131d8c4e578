"""Model files written before the backbone split, read as today's models (no TensorFlow here).

Until 0.3 a classifier's `model.keras` held one `WeiboLSTM` (embeddings, LSTMs and the
classification head in one Keras model, 15 flat arguments), or a `HybridClassifier`
around one (its `classifier`, a `linear` n-gram model and the mixing). Today's models
are a `WeiboLSTMClassifier` (a `WeiboLSTMBackbone` and a `ClassificationHead`) and a
`WideAndDeep` (its `deep` and `wide` parts). The layers and their weights are the
same; only the nesting differs. This module rewrites an old file's config and weight
names into today's, so `model_directory.read` (Keras) and `numpy_predictor` (NumPy)
read old directories and the weights land unchanged.

Example:

>>> old = {"class_name": "WeiboLSTM", "config": {"name": "m", "vocabulary_size": 9,
...        "num_classes": 2, "dense_units": 4, "dropout": 0.1, "pooling": "mean"}}
>>> new = convert_config(old)
>>> new["class_name"], new["config"]["head"]["config"]["dense_units"]
('WeiboLSTMClassifier', 4)
>>> new["config"]["backbone"]["config"]["dropout"], convert_weight_key("hidden/vars/0", old)
(0.1, 'head/hidden/vars/0')
"""

from __future__ import annotations

#: The old `WeiboLSTM` arguments that went to the head, and those both parts share.
_HEAD_ONLY = ("num_classes", "dense_units")
_SHARED = ("dropout", "l2", "batch_norm", "synchronized_batch_norm")
#: `keras.Model` arguments every part keeps.
_KERAS = ("trainable", "dtype")
#: Layers of the old `WeiboLSTM` that belong to the head (the rest is the backbone's).
_HEAD_LAYERS = ("hidden", "hidden_norm", "classifier")


def is_legacy(config: dict) -> bool:
    """Whether a `model.keras` config (its `config.json`) is of the old format."""
    return config.get("class_name") in ("WeiboLSTM", "HybridClassifier")


def _serialized(module: str, class_name: str, config: dict) -> dict:
    return {
        "module": f"weibo_lstm.models.{module}",
        "class_name": class_name,
        "config": config,
        "registered_name": f"weibo_lstm>{class_name}",
    }


def _classifier(old: dict) -> dict:
    flat = dict(old["config"])
    keras_arguments = {k: flat.pop(k) for k in _KERAS if k in flat}
    name = flat.pop("name", "weibo_lstm")
    head = {k: flat.pop(k) for k in _HEAD_ONLY if k in flat}
    head.update({k: flat[k] for k in _SHARED if k in flat})
    backbone = _serialized(
        "backbone", "WeiboLSTMBackbone", {"name": "backbone", **keras_arguments, **flat}
    )
    head = _serialized(
        "classification_head", "ClassificationHead", {"name": "head", **keras_arguments, **head}
    )
    return _serialized(
        "classifier",
        "WeiboLSTMClassifier",
        {"name": name, **keras_arguments, "backbone": backbone, "head": head},
    )


def convert_config(config: dict) -> dict:
    """Today's serialized config of an old `WeiboLSTM` or `HybridClassifier` config."""
    if config["class_name"] == "WeiboLSTM":
        return _classifier(config)
    old = dict(config["config"])
    return _serialized(
        "wide_and_deep",
        "WideAndDeep",
        {
            **{k: old[k] for k in ("name", *_KERAS) if k in old},
            "deep": _classifier(old["classifier"]),
            "wide": old["linear"],
            "mixing": old["mixing"],
            "emoticon_mixing": old.get("emoticon_mixing"),
            "emoticon_ids": old.get("emoticon_ids", []),
        },
    )


def _classifier_key(key: str) -> str:
    layer = key.split("/", 1)[0]
    return ("head/" if layer in _HEAD_LAYERS else "backbone/") + key


def convert_weight_key(key: str, config: dict) -> str:
    """Today's name of the weight stored as `key` in an old file of `config`."""
    if config["class_name"] == "WeiboLSTM":
        return _classifier_key(key)
    if key.startswith("classifier/"):
        return "deep/" + _classifier_key(key.removeprefix("classifier/"))
    return key  # the n-gram model keeps its place
