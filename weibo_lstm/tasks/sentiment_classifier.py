"""SentimentClassifier: the task object that owns a tokenizer, a backbone and their files.

A classifier is a `Tokenizer` (its preprocessor: raw text to ids) and a `WeiboLSTM`
(its backbone: ids to class probabilities) that travel together. It trains itself with
`DistributedTrainer` from `LabeledTexts`, evaluates and predicts raw texts, and is the
one owner of the on-disk format of a trained model:

    model.keras        the backbone (Keras format, weights included)
    tokenizer/         tokenizer.json (options) and vocabulary.tsv
    classifier.json    format, preset, library version and the training run's metadata

`export` writes the serving SavedModel instead (`weibo_lstm.serving.export`), which needs no
`weibo_lstm` to load. Serving code loads a classifier with `SentimentClassifier.load`
and never imports the training job.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from weibo_lstm.data.emoticons import drop_emoticons, emoticon_audit, emoticons
from weibo_lstm.data.labeled_texts import CLASS_NAMES, LabeledTexts
from weibo_lstm.distribute.devices import device_kind
from weibo_lstm.distribute.strategies import default_strategy
from weibo_lstm.errors import ConfigError, check_argument
from weibo_lstm.models.classifier import WeiboLSTM
from weibo_lstm.models.encoder import classifier_from_encoder
from weibo_lstm.models.presets import (
    TRAINED_MODELS,
    encoder_path,
    get_preset,
    trained_model_path,
)
from weibo_lstm.models.wide_and_deep import WideAndDeep
from weibo_lstm.preprocessing.tokenized_examples import TokenizedExamples
from weibo_lstm.preprocessing.tokenizer import DEFAULT_MAX_LENGTH, OOV_ID, Tokenizer
from weibo_lstm.serving import model_directory
from weibo_lstm.serving.export import export as export_saved_model
from weibo_lstm.serving.predictor import Predictor
from weibo_lstm.training.history import History
from weibo_lstm.training.mixed_precision import MODES, dtype_policy, resolve_mode
from weibo_lstm.training.option_groups import make_options
from weibo_lstm.training.reproducibility import seeded_construction
from weibo_lstm.training.trainer import ControllerOptions, DistributedTrainer, TrainerOptions

logger = logging.getLogger("weibo_lstm")

#: The share of training posts `emoticon_dropout=None` strips when the labels follow
#: the emoticons (chosen on the weibo sample's validation split among 0.5, 0.7 and 0.9
#: with the wide & deep default; benchmarks/README.md).
AUTO_EMOTICON_DROPOUT = 0.7


class SentimentClassifier:
    """A tokenizer and a backbone that classify raw texts as 消极 (0) or 积极 (1).

    Args:
        tokenizer: the preprocessor, with its vocabulary.
        backbone: a Keras model from `[batch, time]` int32 ids to `[batch, 2]`
            probabilities (e.g. `WeiboLSTM`), created under `strategy.scope()`.
        preset: the `weibo_lstm.models.presets` name the backbone came from, if any; its
            budget fills the training options `fit` is not given.
        strategy: the `tf.distribute.Strategy` the backbone's variables belong to
            (None: TensorFlow's default strategy).
        metadata: JSON-serialisable facts about the model (e.g. the training run's
            settings and report), saved with it.

    Example:

    >>> data = LabeledTexts(["好开心", "太差了", "很好", "难过"] * 8, [1, 0, 1, 0] * 8)
    >>> classifier = SentimentClassifier.from_preset(
    ...     "best", vocabulary_texts=data.texts, max_length=16, embedding_dim=8,
    ...     lstm_units=(8,), bigram_buckets=0)
    >>> history = classifier.fit(data, data, epochs=2, batch_size=8, quiet=True)
    >>> classifier.predict(["好开心", "难过"]).shape
    (2, 2)
    """

    def __init__(
        self,
        *,
        tokenizer: Tokenizer,
        backbone: keras.Model,
        preset: str | None = None,
        strategy: tf.distribute.Strategy | None = None,
        metadata: Mapping | None = None,
    ):
        if tokenizer.vocabulary is None:
            raise ConfigError(
                "Argument `tokenizer` must have a vocabulary (call `tokenizer.adapt(texts)`). "
                "Received: a tokenizer without one"
            )
        self.tokenizer = tokenizer
        self.backbone = backbone
        self.preset = preset
        self.strategy = strategy or tf.distribute.get_strategy()
        self.metadata = dict(metadata or {})
        #: The `DistributedTrainer` of the last `fit` (None before): `evaluate` and
        #: `predict_examples` reuse its compiled functions and strategy.
        self.trainer: DistributedTrainer | None = None
        self._evaluators: dict[int, DistributedTrainer] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_preset(
        cls,
        preset: str | None = None,
        *,
        vocabulary_texts: Iterable[str] | None = None,
        vocabulary: Sequence[str] | None = None,
        max_length: int = DEFAULT_MAX_LENGTH,
        strip_emoticons: bool = False,
        strategy: tf.distribute.Strategy | None = None,
        encoder: str | os.PathLike | None = None,
        mixed_precision: str | None = None,
        seed: int | None = None,
        **backbone_overrides,
    ) -> SentimentClassifier:
        """A new classifier with the architecture of a preset (untrained head), or a
        shipped trained one.

        Args:
            preset: a `weibo_lstm.models.presets.PRESETS` name; None picks the default for
                the strategy's device (`seed` on GPUs, `pretrained` on a CPU). Or a
                `TRAINED_MODELS` name (`"sentiment_zh"`): the shipped classifier,
                trained and ready to predict (docs/model_card.md); it takes no other
                argument but `strategy`.
            vocabulary_texts: texts the tokenizer learns its vocabulary from (the
                training texts only, so validation and test stay unseen). Not used
                with a pretrained encoder, whose vocabulary comes with it.
            vocabulary: or the vocabulary itself.
            max_length: characters per text after normalisation.
            strip_emoticons: remove bracketed emoticons such as `[哈哈]` first.
            strategy: the strategy to create the backbone under (None: all GPUs of
                this machine, else the CPU; see `default_strategy`).
            encoder: start from this pretrained encoder directory (`weibo-lstm
                pretrain`) instead of the preset's (`pretrained` ships one): its
                tokenizer and encoder weights are loaded, the head is the preset's.
            mixed_precision: `"off"`, `"float16"` or `"bfloat16"`: the backbone's
                dtype policy (`weibo_lstm.training.mixed_precision.dtype_policy`); `fit`
                then trains float16 with loss scaling. Probabilities stay float32.
                `"auto"`: bfloat16 if the strategy's devices are GPUs that all support
                it (`mixed_precision.choose_mode`), else off. None: the preset's
                (`"auto"` for `seed-large-batch`, `"off"` for the others).
            seed: the seed of the new weights and dropout masks, the process's random
                state left as it was (`seeded_construction`); None: Keras' global
                random state. `fit(..., seed=s)` orders the data, so both seeds repeat
                a run (on GPUs, with `weibo_lstm.enable_determinism`).
            **backbone_overrides: `WeiboLSTM` arguments that replace the preset's.

        Raises:
            ConfigError: for an unknown preset or mixed-precision mode, or an argument
                other than `strategy` with a trained model.
        """
        if preset in TRAINED_MODELS:
            _refuse_building_arguments(
                preset,
                vocabulary_texts=vocabulary_texts,
                vocabulary=vocabulary,
                max_length=None if max_length == DEFAULT_MAX_LENGTH else max_length,
                strip_emoticons=strip_emoticons or None,
                encoder=encoder,
                mixed_precision=mixed_precision,
                seed=seed,
                **backbone_overrides,
            )
            return cls.load(trained_model_path(preset), strategy=strategy)
        _check_mixed_precision(mixed_precision)
        strategy = strategy or default_strategy()
        kind = device_kind(strategy)
        spec = get_preset(preset, kind)
        mode = resolve_mode(mixed_precision or spec.mixed_precision, kind)
        arguments = {**spec.backbone, **backbone_overrides, **_dtype_argument(mode)}
        encoder = encoder or (encoder_path(spec.encoder) if spec.encoder else None)
        if encoder is not None:
            with strategy.scope(), seeded_construction(seed):
                backbone, tokenizer = classifier_from_encoder(
                    encoder, max_length=max_length, strip_emoticons=strip_emoticons, **arguments
                )
        else:
            tokenizer = _new_tokenizer(
                vocabulary_texts, vocabulary, max_length=max_length, strip_emoticons=strip_emoticons
            )
            with strategy.scope(), seeded_construction(seed):
                backbone = WeiboLSTM(tokenizer.vocabulary_size, **arguments)
        return cls(tokenizer=tokenizer, backbone=backbone, preset=spec.name, strategy=strategy)

    # ------------------------------------------------------------------ training
    def tokenize(self, data: LabeledTexts | TokenizedExamples) -> TokenizedExamples:
        """`data` tokenized for `DistributedTrainer` (ids in host memory); tokenized
        examples are returned as they are."""
        if isinstance(data, TokenizedExamples):
            return data
        return TokenizedExamples.from_texts(self.tokenizer, data)

    def training_options(
        self,
        options: TrainerOptions | None = None,
        controller_options: ControllerOptions | None = None,
        **overrides,
    ) -> tuple[TrainerOptions, ControllerOptions]:
        """The `(TrainerOptions, ControllerOptions)` that `fit` trains with.

        Without `options` and `controller_options`, the preset's budget for this
        device (epochs, batch_size or global_batch_size, learning_rate,
        warmup_epochs, ...) fills what `overrides` does not set (a batch given either
        way replaces the budget's batch), and the groups' defaults the rest (length
        buckets, with precise BatchNorm statistics for a backbone with
        BatchNormalization). With either of them, those are used as given (the
        other group at its defaults), with `overrides` replacing fields.

        Args:
            options: the runner's options.
            controller_options: the outer loop's options.
            **overrides: fields of either group, by name (`option_groups.make_options`).

        Raises:
            ConfigError: for an unknown option or an invalid value.
        """
        if options is not None or controller_options is not None:
            base = (options or TrainerOptions(), controller_options or ControllerOptions())
            return make_options(overrides, base=base)
        budget = {}
        if self.preset is not None:
            budget = dict(get_preset(self.preset).budget(device_kind(self.strategy)))
        if {"batch_size", "global_batch_size"} & set(overrides):
            budget.pop("batch_size", None)
            budget.pop("global_batch_size", None)
        return make_options({**budget, **overrides})

    def fit(
        self,
        train: LabeledTexts | TokenizedExamples,
        validation: LabeledTexts | TokenizedExamples,
        *,
        options: TrainerOptions | None = None,
        controller_options: ControllerOptions | None = None,
        wide: bool = True,
        wide_options: Mapping | None = None,
        emoticon_dropout: float | None = None,
        **overrides,
    ) -> History:
        """Trains the classifier on `train`; `validation` chooses the best epoch and
        the wide & deep mixing.

        The deep part (the backbone) is trained with `DistributedTrainer`, its best
        validation epoch kept. With `wide`, a TF-IDF + logistic regression over
        character 1–3-grams (`NgramLogisticRegression`) is then fitted on the same
        training rows and stacked with it on `validation` (`HybridClassifier`), so
        the classifier is never the weaker of the two; `self.backbone` becomes that
        hybrid and `self.deep` stays the trained backbone. With emoticon dropout and
        `validation` as texts, the hybrid mixes the parts one way for posts with an
        emoticon and another for posts without (see `add_wide_part`).

        Args:
            train: labelled training texts (or already `tokenize`d examples).
            validation: labelled texts that choose the best epoch (or their examples).
            options: the runner's options (default: see `training_options`).
            controller_options: the outer loop's options (default: see
                `training_options`).
            wide: add the wide part (see above); False trains the deep part alone.
            wide_options: keyword arguments of `NgramLogisticRegression.fit` for the
                wide part (e.g. `{"max_features": 300_000}`; see `add_wide_part`).
            emoticon_dropout: share of the training posts whose emoticons are removed
                (`tokenize_for_training`); None: decided from `train`
                (`with_emoticon_dropout`). With `train` already tokenized, the share it
                was tokenized with (it decides the wide part's two mixings).
            **overrides: fields of `TrainerOptions` or `ControllerOptions`, e.g.
                `epochs=15`, `batch_size=64`.

        Returns:
            The `History` of the deep part's run.

        Raises:
            ValueError: `wide_options` with `wide=False`; or an invalid option value.
        """
        if wide_options and not wide:
            raise ValueError(
                "Argument `wide_options` needs `wide=True`. "
                f"Received: wide=False, wide_options={dict(wide_options)}"
            )
        options, controller_options = self.training_options(
            options, controller_options, **overrides
        )
        if isinstance(train, LabeledTexts):
            emoticon_dropout = self.with_emoticon_dropout(train, emoticon_dropout)
            train = self.tokenize_for_training(train, emoticon_dropout, seed=options.seed)
        texts = validation if isinstance(validation, LabeledTexts) else None
        validation = self.tokenize(validation)
        self.backbone = self.deep
        self.metadata.pop("wide_fit_s", None)
        self.trainer = DistributedTrainer(
            model=self.backbone, strategy=self.strategy, options=options
        )
        history = self.trainer.fit(train, validation, controller_options)
        if wide:
            emoticon_texts = texts if emoticon_dropout else None
            self.add_wide_part(
                train, validation, emoticon_texts=emoticon_texts, **(wide_options or {})
            )
        return history

    @property
    def deep(self) -> keras.Model:
        """The neural backbone: `self.backbone` itself, or its deep part when `fit`
        made it wide & deep."""
        if isinstance(self.backbone, WideAndDeep):
            return self.backbone.deep
        return self.backbone

    def add_wide_part(
        self,
        train: TokenizedExamples,
        validation: TokenizedExamples,
        *,
        emoticon_texts: LabeledTexts | None = None,
        **linear_kwargs,
    ) -> None:
        """Makes `self.backbone` the wide & deep classifier of the trained deep part
        (`weibo_lstm.models.hybrid.wide_and_deep`): the wide part fitted on `train`,
        the mixing on `validation`. Logs the time it took and the mixing weights.
        `linear_kwargs` go to `NgramLogisticRegression.fit` (e.g. `max_features`).

        With `emoticon_texts`, the texts of `validation` (`fit` passes them under
        emoticon dropout), two mixings: one for posts with an emoticon, fitted on the
        validation posts that have one, and one for posts without, fitted on the
        others and on the emoticon posts with their emoticons removed. Fitted on the
        raw posts alone, where the emoticons give the label away, one mixing would
        weigh the parts for emoticon lookup; fitted on emoticon-free posts alone, it
        would give up raw accuracy (on the weibo sample's validation: 0.9944 to
        0.9904).

        When the wide part cannot be fitted (e.g. validation rows of one class only),
        a warning says why and the classifier stays the deep part alone.
        """
        start = time.perf_counter()
        emoticon_ids = ()
        if emoticon_texts is not None:
            emoticon_ids = self._emoticon_ids()
            with_emoticons = [i for i, t in enumerate(emoticon_texts.texts) if emoticons(t)]
            stripped = drop_emoticons(emoticon_texts.subset(with_emoticons), 1.0)
            validation = validation.concatenate(self.tokenize(stripped))
        deep_validation = self._evaluator(self.deep).predict(validation)
        try:
            self.backbone = WideAndDeep.fit(
                self.deep,
                train,
                validation,
                deep_validation,
                strategy=self.strategy,
                emoticon_ids=emoticon_ids,
                **linear_kwargs,
            )
        except ValueError as e:
            logger.warning("No wide part (%s): the classifier is the deep part alone", e)
            return
        self.metadata["wide_fit_s"] = round(time.perf_counter() - start, 2)
        logger.info(
            "Wide & deep: TF-IDF + logistic regression over %d character n-grams fitted on "
            "the training rows; mixing (deep %.2f, wide %.2f, bias %.2f) fitted on validation "
            "(%.1f s)",
            self.backbone.wide.vocabulary_size,
            *self.backbone.mixing,
            self.metadata["wide_fit_s"],
        )
        if self.backbone.emoticon_mixing is not None:
            logger.info(
                "Wide & deep: posts with an emoticon mix (deep %.2f, wide %.2f, bias %.2f); "
                "the mixing above is for posts without one",
                *self.backbone.emoticon_mixing,
            )

    def _emoticon_ids(self) -> tuple[int, ...]:
        """The token ids of the opening brackets an emoticon starts with (`[`, `［`)."""
        ids = self.tokenizer(["[", "［"], ragged=True).flat_values.numpy()
        return tuple(sorted({int(i) for i in ids if i > OOV_ID}))

    def part_accuracies(self, examples: LabeledTexts | TokenizedExamples) -> dict[str, float]:
        """Accuracy of the deep and the wide part alone on `examples` (`{}` for a
        classifier without a wide part)."""
        if not isinstance(self.backbone, WideAndDeep):
            return {}
        examples = self.tokenize(examples)
        deep = self._evaluator(self.deep).predict(examples).argmax(1)
        wide = self.backbone.wide.decision_function(examples.values, examples.row_splits) > 0
        return {
            "deep": float(np.mean(deep == examples.labels)),
            "wide": float(np.mean(wide == examples.labels)),
        }

    def with_emoticon_dropout(self, train: LabeledTexts, share: float | None) -> float:
        """The emoticon-dropout share for `train`: `share`, or decided when it is None.

        The labels are audited (`emoticon_audit`): when they follow the emoticons,
        the emoticons of `AUTO_EMOTICON_DROPOUT` of the posts will be removed, and a
        log line says so; else none. Always 0 when the tokenizer strips emoticons.

        Raises:
            ConfigError: `share` is not None nor in [0, 1].
        """
        check_argument(
            "emoticon_dropout", share, share is None or 0 <= share <= 1, "in [0, 1] or None"
        )
        if self.tokenizer.strip_emoticons:
            share = 0.0
        elif share is None:
            audit = emoticon_audit(train)
            share = AUTO_EMOTICON_DROPOUT if audit.labels_from_emoticons else 0.0
            if share:
                logger.info(
                    "The training labels follow the emoticons (%.0f %% of the posts have one; "
                    "they give the label of %.0f %% of those): emoticons removed from %.0f %% "
                    "of the training posts (emoticon_dropout; 0 turns it off)",
                    *(100 * audit.share, 100 * audit.agreement, 100 * share),
                )
        return share

    def tokenize_for_training(
        self, train: LabeledTexts, emoticon_dropout: float | None, *, seed: int
    ) -> TokenizedExamples:
        """The training texts tokenized after removing the emoticons of a seeded
        `emoticon_dropout` share of them (None: see `with_emoticon_dropout`)."""
        if emoticon_dropout is None:
            emoticon_dropout = self.with_emoticon_dropout(train, None)
        if emoticon_dropout:
            train = drop_emoticons(train, emoticon_dropout, seed=seed)
        return self.tokenize(train)

    def _trainer(self) -> DistributedTrainer:
        """A trainer whose compiled evaluation runs `self.backbone`."""
        return self._evaluator(self.backbone)

    def _evaluator(self, model: keras.Model) -> DistributedTrainer:
        """The last `fit`'s trainer if it trains `model`, else one that evaluates it
        (kept for the next call on the same model)."""
        if self.trainer is not None and self.trainer.model is model:
            return self.trainer
        cached = self._evaluators.get(id(model))
        if cached is None or cached.model is not model:
            options = self.trainer.options if self.trainer else TrainerOptions()
            cached = DistributedTrainer(model=model, strategy=self.strategy, options=options)
            self._evaluators[id(model)] = cached
        return cached

    def evaluate(
        self, data: LabeledTexts | TokenizedExamples, *, prefix: str = ""
    ) -> dict[str, float]:
        """Exact loss, accuracy, precision and recall over every row of `data`.

        `prefix` is put before each metric name (e.g. `"test_"`).
        """
        return self._trainer().evaluate(self.tokenize(data), prefix=prefix)

    def predict_examples(self, examples: TokenizedExamples) -> np.ndarray:
        """Class probabilities `[N, 2]` of already tokenized examples, in their order."""
        return self._trainer().predict(examples)

    # ------------------------------------------------------------------ inference
    def predictor(self, **kwargs):
        """A `Predictor` (length-bucketed batches) running this classifier in process."""
        return Predictor.from_keras(self.backbone, self.tokenizer, **kwargs)

    def predict(self, texts: Sequence[str], *, batch_size: int = 256) -> np.ndarray:
        """Class probabilities `[len(texts), 2]` (消极, 积极) of raw texts, in their order."""
        return self.predictor(batch_size=batch_size).predict(texts)["probabilities"]

    # ------------------------------------------------------------------ persistence
    def get_config(self) -> dict:
        """The tokenizer (with its vocabulary), the backbone's architecture and the preset."""
        return {
            "tokenizer": self.tokenizer.get_config(),
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "preset": self.preset,
        }

    @classmethod
    def from_config(
        cls, config: Mapping, *, strategy: tf.distribute.Strategy | None = None
    ) -> SentimentClassifier:
        """A classifier with `config`'s architecture and fresh (untrained) weights."""
        strategy = strategy or tf.distribute.get_strategy()
        with strategy.scope():
            backbone = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(
            tokenizer=Tokenizer.from_config(config["tokenizer"]),
            backbone=backbone,
            preset=config.get("preset"),
            strategy=strategy,
        )

    def save(self, path: str | os.PathLike, *, metadata: Mapping | None = None) -> Path:
        """Writes the classifier to directory `path` (see the module docstring).

        Args:
            path: the directory (created if needed).
            metadata: added to `self.metadata` and saved with it.

        Returns:
            `path`, as a `Path`.

        Raises:
            OSError: if a file cannot be written.
        """
        self.metadata.update(metadata or {})
        return model_directory.write(
            path,
            backbone=self.backbone,
            tokenizer=self.tokenizer,
            preset=self.preset,
            class_names=CLASS_NAMES,
            metadata=self.metadata,
        )

    @staticmethod
    def is_saved(path: str | os.PathLike) -> bool:
        """Whether `path` is a directory written by `save`."""
        return model_directory.is_model_directory(path)

    @classmethod
    def resolve(cls, path: str | os.PathLike) -> Path:
        """`path` if `save` wrote it, else the newest classifier saved inside it.

        A training output directory (`RunConfig.output_dir`) holds one
        `model_YYYYMMDD_HHMMSS` directory per run; given one, this returns the newest
        complete run (by the time in its name) and logs which.

        Raises:
            DataError: if `path` is neither a saved classifier nor holds one.
        """
        return model_directory.resolve(path)

    @classmethod
    def load(
        cls, path: str | os.PathLike, *, strategy: tf.distribute.Strategy | None = None
    ) -> SentimentClassifier:
        """Reads a classifier written by `save` (or the newest one in a training output
        directory, see `resolve`).

        Args:
            path: the directory.
            strategy: create the backbone's variables under this strategy (None:
                TensorFlow's default strategy, right for prediction).

        Raises:
            DataError: if `path` is neither a saved classifier nor holds one.
        """
        strategy = strategy or tf.distribute.get_strategy()
        backbone, tokenizer, about = model_directory.read(path, strategy=strategy)
        return cls(
            tokenizer=tokenizer,
            backbone=backbone,
            preset=about.get("preset"),
            strategy=strategy,
            metadata=about.get("metadata"),
        )

    def export(self, path: str | os.PathLike, *, metadata: Mapping | None = None) -> Path:
        """Writes a SavedModel that takes raw text (see `weibo_lstm.serving.export.export`).

        `self.metadata` is stored beside the graph as `training_run`.
        """
        extra = {"training_run": self.metadata} if self.metadata else {}
        return export_saved_model(
            self.backbone, self.tokenizer, path, metadata={**extra, **(metadata or {})}
        )


def _check_mixed_precision(mixed_precision: str | None) -> None:
    if mixed_precision not in (None, "auto", *MODES):
        raise ConfigError(
            f"Argument `mixed_precision` must be one of {('auto', *MODES)} or None. "
            f"Received: mixed_precision={mixed_precision!r}"
        )


def _refuse_building_arguments(trained_model: str, **arguments) -> None:
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
    """The backbone's `dtype` for a `--mixed-precision` mode (nothing for `"off"`)."""
    if mixed_precision not in MODES:
        raise ConfigError(
            f"Argument `mixed_precision` must be one of {MODES}. "
            f"Received: mixed_precision={mixed_precision!r}"
        )
    return {} if mixed_precision == "off" else {"dtype": dtype_policy(mixed_precision)}
