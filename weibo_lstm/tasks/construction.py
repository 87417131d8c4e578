"""Building a classifier's parts (from a preset, or a new head on a trained backbone) and
its training options (the preset's budget).

`SentimentClassifier.from_preset` and `fit` build through here: the tokenizer (its
vocabulary learned from the training texts, or the pretrained encoder's), the deep
model (`WeiboLSTM(...)`: the preset's architecture, the encoder's weights), and, when
a trained classifier meets data with other classes, a new `ClassificationHead` on its
trained backbone.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import tensorflow as tf

from weibo_lstm.distribute.devices import device_kind
from weibo_lstm.distribute.strategies import default_strategy
from weibo_lstm.errors import ConfigError, check_argument
from weibo_lstm.models.classification_head import ClassificationHead
from weibo_lstm.models.classifier import WeiboLSTM, WeiboLSTMClassifier
from weibo_lstm.models.encoder import classifier_from_encoder
from weibo_lstm.models.presets import encoder_path, get_preset
from weibo_lstm.preprocessing.tokenizer import Tokenizer
from weibo_lstm.training.controller_options import ControllerOptions
from weibo_lstm.training.mixed_precision import MODES, dtype_policy, resolve_mode
from weibo_lstm.training.option_groups import make_options
from weibo_lstm.training.options import TrainerOptions
from weibo_lstm.training.reproducibility import seeded_construction


def build_parts(
    preset: str | None,
    *,
    vocabulary_texts: Iterable[str] | None,
    vocabulary: Sequence[str] | None,
    num_classes: int,
    max_length: int,
    strip_emoticons: bool,
    strategy: tf.distribute.Strategy | None,
    encoder: str | os.PathLike | None,
    mixed_precision: str | None,
    seed: int | None,
    overrides: dict,
) -> tuple[Tokenizer, WeiboLSTMClassifier, str, tf.distribute.Strategy]:
    """`(tokenizer, model, preset name, strategy)` of a new classifier (see
    `SentimentClassifier.from_preset` for the arguments).

    Raises:
        ConfigError: for an unknown preset or mixed-precision mode, or a vocabulary
            given both ways or neither (without an encoder).
    """
    check_argument(
        "mixed_precision",
        mixed_precision,
        mixed_precision in (None, "auto", *MODES),
        f"one of {('auto', *MODES)} or None",
    )
    strategy = strategy or default_strategy()
    kind = device_kind(strategy)
    spec = get_preset(preset, kind)
    mode = resolve_mode(mixed_precision or spec.mixed_precision, kind)
    arguments = {**spec.backbone, **overrides, **_dtype_argument(mode)}
    if num_classes != 2:  # the head's default: binary models keep their arguments
        arguments["num_classes"] = num_classes
    encoder = encoder or (encoder_path(spec.encoder) if spec.encoder else None)
    if encoder is not None:
        with strategy.scope(), seeded_construction(seed):
            model, tokenizer = classifier_from_encoder(
                encoder, max_length=max_length, strip_emoticons=strip_emoticons, **arguments
            )
        return tokenizer, model, spec.name, strategy
    tokenizer = _new_tokenizer(
        vocabulary_texts, vocabulary, max_length=max_length, strip_emoticons=strip_emoticons
    )
    with strategy.scope(), seeded_construction(seed):
        model = WeiboLSTM(tokenizer.vocabulary_size, **arguments)
    return tokenizer, model, spec.name, strategy


def with_new_head(
    model: WeiboLSTMClassifier,
    num_classes: int,
    *,
    strategy: tf.distribute.Strategy,
    seed: int | None = None,
) -> WeiboLSTMClassifier:
    """`model`'s trained backbone under a new head of `num_classes` classes (the same
    hidden block, dropout and regularisation as `model`'s head, fresh weights).

    Example:

    >>> model = WeiboLSTM(20, lstm_units=(4,), dense_units=3)
    >>> model.build()
    >>> new = with_new_head(model, 5, strategy=tf.distribute.get_strategy(), seed=0)
    >>> new.backbone is model.backbone, new.num_classes, new.head.dense_units
    (True, 5, 3)
    """
    config = model.head.get_config()
    config.update(num_classes=num_classes, name="head")
    with strategy.scope(), seeded_construction(seed):
        head = ClassificationHead.from_config(config)
        new = WeiboLSTMClassifier(model.backbone, head, dtype=model.dtype_policy)
        new.build()
    return new


def training_options(
    preset: str | None,
    strategy: tf.distribute.Strategy,
    options: TrainerOptions | None,
    controller_options: ControllerOptions | None,
    overrides: dict,
) -> tuple[TrainerOptions, ControllerOptions]:
    """The options `SentimentClassifier.fit` trains with (see its `training_options`).

    Without `options` and `controller_options`, the preset's budget for the strategy's
    device fills what `overrides` does not set (a batch given either way replaces the
    budget's), and the groups' defaults the rest; with either, those (the other group
    at its defaults), with `overrides` replacing fields.

    Raises:
        ConfigError: for an unknown option or an invalid value.
    """
    if options is not None or controller_options is not None:
        base = (options or TrainerOptions(), controller_options or ControllerOptions())
        return make_options(overrides, base=base)
    budget = {}
    if preset is not None:
        budget = dict(get_preset(preset).budget(device_kind(strategy)))
    if {"batch_size", "global_batch_size"} & set(overrides):
        budget.pop("batch_size", None)
        budget.pop("global_batch_size", None)
    return make_options({**budget, **overrides})


def refuse_building_arguments(trained_model: str, **arguments) -> None:
    """Raises unless every argument that builds a new model is None: a shipped
    trained model comes as it was trained."""
    given = sorted(name for name, value in arguments.items() if value is not None)
    if given:
        raise ConfigError(
            f"{trained_model!r} is a trained model: `from_preset` loads it as it is and "
            f"takes only `strategy`. Received: {', '.join(given)}. To train a new "
            "classifier, call `from_preset` with a `PRESETS` name (or none)."
        )


def _new_tokenizer(
    vocabulary_texts: Iterable[str] | None,
    vocabulary: Sequence[str] | None,
    *,
    max_length: int,
    strip_emoticons: bool,
) -> Tokenizer:
    """A tokenizer with `vocabulary`, or with one learned from `vocabulary_texts`.

    Raises:
        ConfigError: unless exactly one of the two is given.
    """
    if (vocabulary_texts is None) == (vocabulary is None):
        raise ConfigError("Give exactly one of `vocabulary_texts` and `vocabulary`.")
    tokenizer = Tokenizer(vocabulary, max_length=max_length, strip_emoticons=strip_emoticons)
    if vocabulary is None:
        tokenizer.adapt(vocabulary_texts)
    return tokenizer


def _dtype_argument(mixed_precision: str) -> dict:
    """The model's `dtype` for a `--mixed-precision` mode (nothing for `"off"`)."""
    check_argument("mixed_precision", mixed_precision, mixed_precision in MODES, f"one of {MODES}")
    return {} if mixed_precision == "off" else {"dtype": dtype_policy(mixed_precision)}
