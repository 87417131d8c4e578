"""SentimentClassifier: the task that owns a tokenizer, a classifier network and their files.

A classifier is a `Tokenizer` (its preprocessor: raw text to ids), a deep network (a
`WeiboLSTMClassifier`: backbone and head) and, once `fit` has added it, a wide part
stacked with it (`WideAndDeep`), with its class names. It trains with
`DistributedTrainer` from `LabeledTexts`, evaluates and predicts raw texts (for labels,
see `weibo_lstm.pipeline`), and saves and loads itself as a model directory
(`serving.model_directory`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from weibo_lstm.data.emoticons import choose_emoticon_dropout, drop_emoticons
from weibo_lstm.data.label_sets import onto_classes
from weibo_lstm.data.labeled_texts import CLASS_NAMES, LabeledTexts
from weibo_lstm.errors import ConfigError, check_argument
from weibo_lstm.models import calibration
from weibo_lstm.models.presets import TRAINED_MODELS, trained_model_path
from weibo_lstm.models.wide_and_deep import WideAndDeep
from weibo_lstm.preprocessing.tokenized_examples import TokenizedExamples
from weibo_lstm.preprocessing.tokenizer import DEFAULT_MAX_LENGTH, Tokenizer
from weibo_lstm.preprocessing.windows import WindowOptions
from weibo_lstm.serving import answers, model_directory
from weibo_lstm.serving.export import export as export_saved_model
from weibo_lstm.serving.predictor import Predictor
from weibo_lstm.tasks import construction, wide_part
from weibo_lstm.training.evaluator import DistributedEvaluator
from weibo_lstm.training.history import History
from weibo_lstm.training.objectives import ClassificationObjective
from weibo_lstm.training.trainer import ControllerOptions, DistributedTrainer, TrainerOptions

logger = logging.getLogger("weibo_lstm")


class SentimentClassifier:
    """A tokenizer and a classifier network that classify raw texts.

    Args:
        tokenizer: the preprocessor, with its vocabulary.
        model: a `WeiboLSTMClassifier` (ids to `[batch, K]` probabilities) or a
            `WideAndDeep` around one, created under `strategy.scope()`.
        class_names: the name of each of the K classes (default: 消极, 积极).
        preset: the `weibo_lstm.models.presets` name the model came from, if any; its
            budget fills the training options `fit` is not given.
        strategy: the `tf.distribute.Strategy` the model's variables belong to (None:
            TensorFlow's default strategy).
        metadata: JSON-serialisable facts about the model, saved with it.
        windows: how `predict` reads texts past `max_length` (None: `WindowOptions()`).

    Attributes:
        deep: the deep network (the `model` itself, or its deep part).
        wide_and_deep: the `WideAndDeep` `fit` made (None before, or with `wide=False`).
        trainer: the `DistributedTrainer` of the last `fit` (None before).
        emoticon_dropout: the share of training posts whose emoticons the last `fit`
            removed (None before).

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
        model: keras.Model,
        class_names: Sequence[str] = CLASS_NAMES,
        preset: str | None = None,
        strategy: tf.distribute.Strategy | None = None,
        metadata: Mapping | None = None,
        windows: WindowOptions | None = None,
    ):
        if tokenizer.vocabulary is None:
            raise ConfigError(
                "Argument `tokenizer` must have a vocabulary (call `tokenizer.adapt(texts)`). "
                "Received: a tokenizer without one"
            )
        self.tokenizer = tokenizer
        self.wide_and_deep = model if isinstance(model, WideAndDeep) else None
        self.deep = model.deep if isinstance(model, WideAndDeep) else model
        self.class_names = tuple(class_names)
        self.preset = preset
        self.strategy = strategy or tf.distribute.get_strategy()
        self.metadata = dict(metadata or {})
        self.windows = windows
        self.trainer: DistributedTrainer | None = None
        self.emoticon_dropout: float | None = None
        self._seed: int | None = None  # `from_preset`'s, for a head `fit` replaces
        # "model" or "deep" -> ((network, temperature) it was compiled for, evaluator).
        self._evaluators: dict[str, tuple[tuple, DistributedEvaluator]] = {}
        self._predictor: tuple | None = None  # (what it was built from, Predictor)

    @property
    def model(self) -> keras.Model:
        """The network that predicts: the wide & deep one if `fit` made it, else the deep."""
        return self.wide_and_deep or self.deep

    @property
    def backbone(self) -> keras.Model:
        """The deep network's `WeiboLSTMBackbone` (ids to features)."""
        return self.deep.backbone

    @classmethod
    def from_preset(
        cls,
        preset: str | None = None,
        *,
        vocabulary_texts: Iterable[str] | None = None,
        vocabulary: Sequence[str] | None = None,
        class_names: Sequence[str] = CLASS_NAMES,
        max_length: int = DEFAULT_MAX_LENGTH,
        strip_emoticons: bool = False,
        strategy: tf.distribute.Strategy | None = None,
        encoder: str | os.PathLike | None = None,
        mixed_precision: str | None = None,
        seed: int | None = None,
        **model_overrides,
    ) -> SentimentClassifier:
        """A new classifier with the architecture of a preset (untrained head), or a
        shipped trained one.

        Args:
            preset: a `PRESETS` name (None: `seed` on GPUs, `pretrained` on a CPU), or a
                `TRAINED_MODELS` name (`"sentiment_zh"`, `"emotion_zh"`): the shipped
                classifier, ready to predict or to `fit` on your data; then no other
                argument but `strategy`.
            vocabulary_texts: the (training) texts the tokenizer's vocabulary comes
                from, unless the preset has a pretrained encoder; or `vocabulary`.
            vocabulary: the vocabulary itself.
            class_names: the classes (`LabeledTexts.class_names` of the data to fit).
            max_length: characters per text after normalisation.
            strip_emoticons: remove bracketed emoticons such as `[哈哈]` first.
            strategy: create the model under it (None: all GPUs, else the CPU).
            encoder: a pretrained encoder directory (`weibo-lstm pretrain`) instead of
                the preset's: its tokenizer and encoder weights, the preset's head.
            mixed_precision: `"off"`, `"float16"`, `"bfloat16"` (the model's dtype
                policy; probabilities stay float32), `"auto"` (bfloat16 on GPUs that
                all support it) or None (the preset's).
            seed: the seed of the new weights and dropout masks, the process's random
                state left as it was; None: Keras' global random state. With
                `fit(..., seed=s)`, which orders the data, a run repeats.
            **model_overrides: `WeiboLSTM` arguments that replace the preset's.

        Raises:
            ConfigError: for an unknown preset or mixed-precision mode, or an argument
                other than `strategy` with a trained model.
        """
        if preset in TRAINED_MODELS:  # shipped and trained: as it is
            construction.refuse_building_arguments(
                preset,
                vocabulary_texts=vocabulary_texts,
                vocabulary=vocabulary,
                class_names=None if tuple(class_names) == CLASS_NAMES else class_names,
                max_length=None if max_length == DEFAULT_MAX_LENGTH else max_length,
                strip_emoticons=strip_emoticons or None,
                encoder=encoder,
                mixed_precision=mixed_precision,
                seed=seed,
                **model_overrides,
            )
            return cls.load(trained_model_path(preset), strategy=strategy)
        tokenizer, model, name, strategy = construction.build_parts(
            preset,
            vocabulary_texts=vocabulary_texts,
            vocabulary=vocabulary,
            num_classes=len(class_names),
            max_length=max_length,
            strip_emoticons=strip_emoticons,
            strategy=strategy,
            encoder=encoder,
            mixed_precision=mixed_precision,
            seed=seed,
            overrides=model_overrides,
        )
        classifier = cls(
            tokenizer=tokenizer,
            model=model,
            class_names=class_names,
            preset=name,
            strategy=strategy,
        )
        classifier._seed = seed
        return classifier

    def tokenize(self, data: LabeledTexts | TokenizedExamples) -> TokenizedExamples:
        """`data` tokenized (ids in host memory); examples are returned as they are."""
        if isinstance(data, TokenizedExamples):
            return data
        return TokenizedExamples.from_texts(self.tokenizer, data)

    def training_options(
        self,
        options: TrainerOptions | None = None,
        controller_options: ControllerOptions | None = None,
        **overrides,
    ) -> tuple[TrainerOptions, ControllerOptions]:
        """The `(TrainerOptions, ControllerOptions)` that `fit` trains with: the preset's
        budget for this device under `overrides` (`construction.training_options`)."""
        return construction.training_options(
            self.preset, self.strategy, options, controller_options, overrides
        )

    def fit(
        self,
        train: LabeledTexts,
        validation: LabeledTexts,
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

        The deep network trains with `DistributedTrainer` (best validation epoch kept),
        from the trained weights, or with a new head on the trained backbone when
        `train`'s classes are not the classifier's; with `wide`, a TF-IDF + logistic
        regression over character 1–3-grams is stacked with it (`tasks.wide_part`); the
        result is calibrated on `validation` (`calibrate`).

        Args:
            train: labelled training texts.
            validation: labelled texts (the same classes) that choose the best epoch.
            options, controller_options: the option groups (default: the preset's
                budget, `training_options`).
            wide: add the wide part (see above); False trains the deep part alone.
            wide_options: keyword arguments of `NgramLogisticRegression.fit` for the
                wide part (e.g. `{"max_features": 300_000}`).
            emoticon_dropout: the share of training posts whose emoticons are
                removed; None: decided from `train` (0.7 when its labels follow its
                emoticons, else 0; always 0 when the tokenizer strips them).
            **overrides: fields of `TrainerOptions` or `ControllerOptions`, e.g.
                `epochs=15`, `batch_size=64`.

        Returns:
            The `History` of the deep network's run.

        Raises:
            ConfigError: `wide_options` with `wide=False`, validation rows of other
                classes than the training rows, or an invalid option value.
        """
        check_argument(
            "wide_options", wide_options, wide or not wide_options, "None with wide=False"
        )
        same = validation.class_names == train.class_names
        check_argument("validation", validation.source, same, "of the training rows' classes")
        options, controller_options = self.training_options(
            options, controller_options, **overrides
        )
        self._adopt_classes(train.class_names)
        share = choose_emoticon_dropout(train, emoticon_dropout)
        self.emoticon_dropout = 0.0 if self.tokenizer.strip_emoticons else share
        if self.emoticon_dropout:
            train = drop_emoticons(train, self.emoticon_dropout, seed=options.seed)
        train_x, validation_x = self.tokenize(train), self.tokenize(validation)
        self.wide_and_deep, self._evaluators = None, {}
        self.deep.temperature = 1.0  # trained and stacked as the head gives them
        self.metadata.pop("wide_fit_s", None)
        objective = ClassificationObjective(num_classes=len(self.class_names))
        self.trainer = DistributedTrainer(
            model=self.deep, objective=objective, strategy=self.strategy, options=options
        )
        history = self.trainer.fit(train_x, validation_x, controller_options)
        if wide:
            emoticons = validation if self.emoticon_dropout else None  # the emoticon mixing
            fitted = wide_part.fit(self, train_x, validation_x, emoticons, **(wide_options or {}))
            if fitted is not None:
                self.wide_and_deep, self.metadata["wide_fit_s"] = fitted
        self.calibrate(validation)
        return history

    def calibrate(self, validation: LabeledTexts) -> float:
        """Fits (and returns) the temperature `T` of the served network on `validation`:
        its probabilities become `softmax(log p / T)`, `T` minimising their negative
        log-likelihood there (`weibo_lstm.models.calibration`). `fit` calls it."""
        self.model.temperature = 1.0
        rows = self.tokenize(onto_classes(validation, self.class_names))
        probabilities = self.evaluator().predict(rows)
        report = calibration.calibrate(probabilities, rows.labels, rows.expressible)
        self.model.temperature, self.metadata["calibration"] = report["temperature"], report
        logger.info("Calibrated on validation: %s", report)
        return self.model.temperature

    def _adopt_classes(self, class_names: tuple[str, ...]) -> None:
        """A new head on the trained backbone when the data's classes differ."""
        if class_names == self.class_names:
            return
        logger.info("The data's classes %s are new: a new head on the backbone", class_names)
        self.deep = construction.with_new_head(
            self.deep, len(class_names), strategy=self.strategy, seed=self._seed
        )
        self.class_names, self.wide_and_deep = tuple(class_names), None

    def evaluator(self, part: str = "model") -> DistributedEvaluator:
        """The compiled evaluator of `self.model` (`part="model"`) or `self.deep`."""
        network = self.model if part == "model" else self.deep
        key = (network, network.temperature)  # a trace holds the temperature
        if part not in self._evaluators or self._evaluators[part][0] != key:
            options = self.trainer.options if self.trainer else TrainerOptions()
            objective = ClassificationObjective(num_classes=len(self.class_names))
            evaluator = DistributedTrainer(  # a trainer evaluates with its own batches
                model=network, objective=objective, strategy=self.strategy, options=options
            )
            self._evaluators[part] = key, evaluator
        return self._evaluators[part][1]

    def evaluate(
        self, data: LabeledTexts | TokenizedExamples, *, prefix: str = ""
    ) -> dict[str, float]:
        """Exact loss, accuracy, precision, recall (of 积极; K > 2: macro averages) and
        macro-F1 over every row of `data`, each name after `prefix` (e.g. `"test_"`)."""
        if isinstance(data, LabeledTexts):
            data = onto_classes(data, self.class_names)
        return self.evaluator().evaluate(self.tokenize(data), prefix=prefix)

    def predict_examples(self, examples: TokenizedExamples) -> np.ndarray:
        """Class probabilities `[N, K]` of already tokenized examples, in their order."""
        return self.evaluator().predict(examples)

    def predictor(self, **kwargs) -> Predictor:
        """A `Predictor` (length-bucketed batches) of this classifier in process, traced
        once while its network, temperature, tokenizer, classes, windows and `kwargs` stay."""
        net = self.model
        key = (net, self.tokenizer, self.class_names, self.windows, kwargs, net.temperature)
        if self._predictor is None or self._predictor[0] != key:  # objects: by identity
            self._predictor = key, Predictor.from_keras(*key[:3], windows=self.windows, **kwargs)
        return self._predictor[1]

    def predict(self, texts: str | Sequence[str], *, batch_size: int = 256) -> np.ndarray:
        """Class probabilities `[len(texts), K]` of raw texts (columns: `class_names`),
        or `[K]` of one text given as a `str`. A text past `max_length` is read to its end
        in windows (`self.windows`; `evaluate` and `predict_examples` read its first
        `max_length` ids, as training does). A blank text (empty or whitespace only) has
        nothing to label: its row is NaN (`weibo_lstm.serving.answers`)."""
        one = isinstance(texts, str)
        predict = self.predictor(batch_size=batch_size).predict
        rows = answers.probabilities(predict, [texts] if one else texts, len(self.class_names))
        return rows[0] if one else rows

    def save(self, path: str | os.PathLike, *, metadata: Mapping | None = None) -> Path:
        """Writes the classifier to directory `path` (created if needed; the format of
        `serving.model_directory`), with `metadata` added to `self.metadata`; returns `path`."""
        self.metadata.update(metadata or {})
        return model_directory.write(
            path,
            backbone=self.model,
            tokenizer=self.tokenizer,
            preset=self.preset,
            class_names=self.class_names,
            metadata=self.metadata,
            windows=self.windows,
        )

    @classmethod
    def load(
        cls, path: str | os.PathLike, *, strategy: tf.distribute.Strategy | None = None
    ) -> SentimentClassifier:
        """Reads a classifier written by `save` (or by 0.2), or the newest one in a
        training output directory (`model_directory.resolve`), its variables created
        under `strategy` (None: TensorFlow's default strategy, right for prediction).

        Raises:
            DataError: if `path` is neither a saved classifier nor holds one.
        """
        model, tokenizer, about = model_directory.read(path, strategy=strategy)
        return cls(
            tokenizer=tokenizer,
            model=model,
            class_names=about.get("class_names") or CLASS_NAMES,
            preset=about.get("preset"),
            strategy=strategy,
            metadata=about.get("metadata"),
            windows=WindowOptions.from_json(about.get("windows")),
        )

    def export(self, path: str | os.PathLike, *, metadata: Mapping | None = None) -> Path:
        """Writes a SavedModel that takes raw text (`weibo_lstm.serving.export.export`),
        `self.metadata` beside the graph as `training_run`."""
        extra = {"training_run": self.metadata} if self.metadata else {}
        metadata = {**extra, **(metadata or {})}
        about = {"class_names": self.class_names, "windows": self.windows}
        return export_saved_model(self.model, self.tokenizer, path, metadata=metadata, **about)
