"""`weibo-lstm pretrain`: a character language model on unlabelled text → an encoder.

Texts (lines of text files, or the text column of labelled CSVs) → a tokenizer
adapted on them (most frequent characters) → `CharLanguageModel` trained by the
same `DistributedTrainer` as the classifiers (replicas, checkpoints and resume,
progress bar, TensorBoard) with `LanguageModelObjective` → the best epoch (by
validation perplexity) saved as an encoder directory (`weibo_lstm.models.encoder`) with a
report, ready for `weibo-lstm train --encoder DIR`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import keras
import numpy as np

from weibo_lstm.data.csv_files import load_csv
from weibo_lstm.data.labeled_texts import LabeledTexts
from weibo_lstm.data.text_files import check_file
from weibo_lstm.distribute.strategies import default_strategy
from weibo_lstm.errors import DataError
from weibo_lstm.jobs.config import PretrainConfig, pretrain_options
from weibo_lstm.jobs.report import check_output_dir
from weibo_lstm.models.encoder import save_encoder
from weibo_lstm.models.language_model import CharLanguageModel
from weibo_lstm.preprocessing.tokenized_examples import TokenizedExamples
from weibo_lstm.preprocessing.tokenizer import Tokenizer
from weibo_lstm.training.language_model_objective import LanguageModelObjective
from weibo_lstm.training.mixed_precision import dtype_policy
from weibo_lstm.training.option_groups import flat_options
from weibo_lstm.training.trainer import DistributedTrainer
from weibo_lstm.version import __version__

logger = logging.getLogger("weibo_lstm")

_REPORT_FILE = "pretrain_report.json"
_HISTORY_FILE = "pretrain_history.csv"


@dataclasses.dataclass
class PretrainResult:
    """What `run_pretraining` produced."""

    history: object
    val_metrics: dict
    encoder_dir: Path
    report: dict


def read_texts(paths: Sequence[str]) -> list[str]:
    """Texts of `paths`: a `.csv` is read with `load_csv` (its text column), any
    other file as UTF-8 lines. Empty lines are skipped.

    Raises:
        DataError: a file is missing or unreadable.
    """
    texts: list[str] = []
    for path in paths:
        path = Path(path)
        if path.suffix.lower() == ".csv":
            texts.extend(load_csv(path).texts)
            continue
        check_file(path, kind="text")
        try:
            with open(path, encoding="utf-8-sig", errors="replace") as f:
                texts.extend(s for s in (line.strip() for line in f) if s)
        except OSError as e:
            raise DataError(f"{path}: cannot read the file: {e.strerror or e}") from None
    return texts


def texts_to_examples(tokenizer, texts: Sequence[str]) -> TokenizedExamples:
    """`TokenizedExamples` (labels 0) of the texts with at least 2 characters.

    A 1-character row has nothing to predict; it is dropped rather than padded.
    """
    examples = TokenizedExamples.from_texts(
        tokenizer, LabeledTexts(tuple(texts), np.zeros(len(texts), np.int32))
    )
    return examples.subset(np.flatnonzero(examples.lengths >= 2))


def run_pretraining(
    config: PretrainConfig,
    texts: Sequence[str] | None = None,
    *,
    options: Mapping[str, object] | None = None,
) -> PretrainResult:
    """Pretrains the language model and writes the encoder to `config.output`.

    Args:
        config: what to read, build and write.
        texts: the corpus (None: read `config.text`).
        options: training options (`PRETRAIN_OPTION_FIELDS`, of `TrainerOptions` and
            `ControllerOptions`) over `PRETRAIN_OPTIONS`; `seed` also seeds the subset,
            the split and the model.

    Returns:
        The training history, validation metrics of the kept epoch, the encoder
        directory and the report written beside it.

    Raises:
        ConfigError: for an invalid option. DataError: for unreadable text or too
        small a corpus.
    """
    start = time.perf_counter()
    output = Path(config.output)
    trainer_options, loop = pretrain_options(options, str(output / "tensorboard"))
    train_texts, val_texts, n_texts = _split_texts(config, texts, trainer_options.seed)
    output = check_output_dir(config.output, "encoder directory")
    if loop.checkpoint_dir:
        check_output_dir(loop.checkpoint_dir, "checkpoint directory")

    keras.utils.set_random_seed(trainer_options.seed)
    strategy = default_strategy(config.replicas, memory_growth=config.memory_growth)
    tokenizer = Tokenizer(
        max_length=config.max_length,
        min_count=config.min_count,
        max_tokens=config.vocabulary_size,
        strip_emoticons=config.strip_emoticons,
    )
    tokenizer.adapt(train_texts)
    train, val = texts_to_examples(tokenizer, train_texts), texts_to_examples(tokenizer, val_texts)
    logger.info(
        "Pretraining corpus: %d train texts (%d predicted characters), %d validation texts; "
        "vocabulary %d ids",
        *(len(train), int((train.lengths - 1).sum()), len(val), tokenizer.vocabulary_size),
    )
    model = _language_model(config, tokenizer, strategy, trainer_options.seed)
    trainer = DistributedTrainer(
        model=model,
        objective=LanguageModelObjective(config.num_sampled),
        strategy=strategy,
        options=trainer_options,
    )
    history = trainer.fit(train, val, loop)
    val_metrics = trainer.evaluate(val, prefix="val_")
    options = flat_options(trainer.options, loop)
    report = _report(config, options, n_texts, train, val, tokenizer, strategy, history)
    report.update(val_metrics, wall_time_s=round(time.perf_counter() - start, 1))
    _write_encoder(output, model, tokenizer, config.weights_dtype, report, history)
    logger.info(
        "Encoder: %s (best epoch %s, validation perplexity %.2f, %.0f tokens/s)",
        *(output, history.best_epoch, val_metrics["val_perplexity"], report["tokens_per_second"]),
    )
    return PretrainResult(history, val_metrics, output, report)


def _split_texts(
    config: PretrainConfig, texts: Sequence[str] | None, seed: int
) -> tuple[list[str], list[str], int]:
    """`(train texts, validation texts, texts used)`: the seeded subset and split."""
    if texts is None:
        if not config.text:
            raise DataError("no text given: pass --text FILE [FILE ...]")
        texts = read_texts(config.text)
    texts = list(texts)
    rng = np.random.default_rng(seed)
    if config.max_texts is not None and config.max_texts < len(texts):
        texts = [texts[i] for i in np.sort(rng.choice(len(texts), config.max_texts, replace=False))]
    order = rng.permutation(len(texts))
    n_val = max(1, round(config.val_fraction * len(texts)))
    val_texts = [texts[i] for i in np.sort(order[:n_val])]
    train_texts = [texts[i] for i in np.sort(order[n_val:])]
    if not train_texts:
        raise DataError("the corpus is too small: no texts left for training")
    return train_texts, val_texts, len(texts)


def _language_model(config: PretrainConfig, tokenizer, strategy, seed: int) -> CharLanguageModel:
    with strategy.scope():
        model = CharLanguageModel(
            tokenizer.vocabulary_size,
            embedding_dim=config.embedding_dim,
            lstm_units=config.lstm_units,
            bigram_buckets=config.bigram_buckets,
            dropout=config.dropout,
            embedding_dropout=config.embedding_dropout,
            seed=seed,
            dtype=dtype_policy(config.mixed_precision),
        )
        model.build()
    return model


def _report(config, options, n_texts, train, val, tokenizer, strategy, history) -> dict:
    """The run's report (without the validation metrics and the wall time)."""
    train_tokens = int((train.lengths - 1).sum())
    train_time = sum(e["epoch_time"] for e in history.epochs)
    return {
        "config": dataclasses.asdict(config),
        "options": options,
        "corpus": {
            "texts": n_texts,
            "train_texts": len(train),
            "val_texts": len(val),
            "train_tokens": train_tokens,
            "val_tokens": int((val.lengths - 1).sum()),
        },
        "vocabulary_size": tokenizer.vocabulary_size,
        "replicas": strategy.num_replicas_in_sync,
        "best_epoch": history.best_epoch,
        "train_time_s": round(train_time, 1),
        "tokens_per_second": round(train_tokens * len(history.epochs) / train_time, 1),
        "resumed_at_step": history.resumed_at_step,
        "library_version": __version__,
    }


def _write_encoder(output: Path, model, tokenizer, weights_dtype: str, report: dict, history):
    """The encoder directory, its `pretrain_report.json` and `pretrain_history.csv`."""
    save_encoder(
        output, model.backbone, tokenizer, dtype=weights_dtype, metadata={"report": report}
    )
    with open(output / _REPORT_FILE, "w", encoding="utf-8") as f:
        json.dump(
            {**report, "epochs": history.epochs}, f, ensure_ascii=False, indent=2, default=str
        )
    with open(output / _HISTORY_FILE, "w", encoding="utf-8", newline="") as f:
        keys = sorted({k for e in history.epochs for k in e})
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history.epochs)
