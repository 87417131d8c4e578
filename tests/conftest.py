"""Test configuration: two logical CPU devices, so every test can build a 2-replica
MirroredStrategy. This must run before TensorFlow initialises its devices."""

import csv
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import pytest
import tensorflow as tf

from tests import helpers, synthetic

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    keras.backend.clear_session()
    keras.utils.set_random_seed(1234)
    yield


# ------------------------------------------------------------ shared builders
# Test modules take these as fixtures instead of importing each other.
ROOT = Path(__file__).resolve().parents[1]

#: `weibo-lstm train` flags for a run of seconds on the generated corpus.
FAST_TRAIN_FLAGS = (
    *("--epochs", "4", "--batch-size", "16", "--max-length", "24"),
    *("--learning-rate", "1e-2", "--warmup-epochs", "0.5", "--quiet", "--preset", "best"),
)
#: WeiboLSTM arguments of a small but real model.
SMALL_BACKBONE = dict(embedding_dim=16, lstm_units=(16, 8), dense_units=8, bigram_buckets=0)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def write_csv():
    """`write_csv(path, n, seed=0, fmt="weibo", encoding="utf-8")`: a generated corpus."""
    return synthetic.write_csv


@pytest.fixture(scope="session")
def texts_and_labels():
    """`texts_and_labels(n, seed=0, noise=0.05)`: generated texts and 0/1 labels."""
    return synthetic.texts_and_labels


@pytest.fixture(scope="session")
def fast_train_flags() -> list[str]:
    return list(FAST_TRAIN_FLAGS)


@pytest.fixture(scope="session")
def read_report():
    """`read_report(output_dir) -> (row, header)` of the one training report there."""

    def read(output_dir):
        (path,) = sorted(Path(output_dir).glob("training_report_*.csv"))
        with open(path, encoding="utf-8-sig", newline="") as f:
            header, values = list(csv.reader(f))
        return dict(zip(header, values, strict=True)), header

    return read


@pytest.fixture(scope="session")
def make_classifier():
    """`make_classifier(texts, preset="best", strategy=None, **backbone)`: a small,
    untrained SentimentClassifier whose vocabulary comes from `texts`."""
    from weibo_lstm import SentimentClassifier

    def make(texts, preset="best", strategy=None, max_length=24, **backbone):
        return SentimentClassifier.from_preset(
            preset,
            vocabulary_texts=texts,
            max_length=max_length,
            strategy=strategy or tf.distribute.get_strategy(),
            **{**SMALL_BACKBONE, **backbone},
        )

    return make


@pytest.fixture(scope="session")
def serialization_round_trip():
    """`serialization_round_trip(obj, call, atol=0.0)`: `get_config` → `from_config`
    gives an object whose `call(obj)` output matches."""
    return helpers.assert_serialization_round_trip


@pytest.fixture(scope="session")
def edge_case_strings() -> list[str]:
    """Emoticons, empty and blank texts, emoji, full-width letters, a huge post."""
    return list(synthetic.EDGE_CASE_TEXTS)


@pytest.fixture(scope="session")
def edge_case_texts() -> list[bytes]:
    """The edge cases plus ordinary posts, as bytes, and one invalid UTF-8 text."""
    return synthetic.edge_case_texts()


@pytest.fixture(scope="session")
def load_in_fresh_process():
    """`load_in_fresh_process(path, texts, tmp_path) -> dict`: serves `texts` from a
    SavedModel in a process that must not import weibo_lstm or tensorflow_text."""
    return helpers.load_in_fresh_process


@pytest.fixture(scope="session")
def trainer_options():
    """`trainer_options(global_batch, replicas, **kwargs)`: small, fast
    `(TrainerOptions, ControllerOptions)`."""
    return helpers.trainer_options
