"""`weibo-lstm pretrain`: a character language model on unlabelled text → an encoder.

Texts (lines of text files, or the text column of labelled CSVs) → a tokenizer
adapted on them (most frequent characters) → `CharLanguageModel` trained by the
same `DistributedTrainer` as the classifiers (replicas, checkpoints and resume,
progress bar, TensorBoard) with `LanguageModelObjective` → the best epoch (by
validation perplexity) saved as an encoder directory (`weibo_lstm.models.encoder`) with a
report, ready for `weibo-lstm train --encoder DIR`.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from weibo_lstm.data.csv_files import load_csv
from weibo_lstm.data.labeled_texts import LabeledTexts
from weibo_lstm.errors import DataError
from weibo_lstm.training.mixed_precision import MODES, dtype_policy

logger = logging.getLogger("weibo_lstm")

_REPORT_FILE = "pretrain_report.json"
_HISTORY_FILE = "pretrain_history.csv"


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Settings of `run_pretraining` (each is a `weibo-lstm pretrain` flag).

    Attributes:
        text: text files (one text per line) or labelled CSVs (their text column).
        output: the encoder directory to write (weights, config, tokenizer, report,
            TensorBoard scalars under `tensorboard/`).
        max_length: characters per text (longer texts are truncated).
        vocabulary_size: ids kept, padding and OOV included (most frequent characters).
        min_count: characters seen fewer times are OOV.
        strip_emoticons: remove bracketed emoticons before tokenizing.
        embedding_dim, lstm_units, bigram_buckets: the encoder architecture.
        dropout, embedding_dropout: regularisation of the language model.
        num_sampled: sampled-softmax negatives per step (None: full softmax).
        epochs, batch_size (per replica), learning_rate (base, scaled by
            √replicas), warmup_epochs, min_lr_fraction: the schedule.
        val_fraction: share of the texts held out to pick the best epoch
            (validation perplexity, full softmax).
        max_texts: use a seeded random subset of this many texts (None: all).
        seed: subset, split, shuffle, initialisation and sampler seed.
        replicas: devices (None: all GPUs, else one CPU).
        memory_growth: let TensorFlow take GPU memory as needed (False: reserve
            all of it at start-up).
        mixed_precision: `"off"`, `"float16"` or `"bfloat16"`: the encoder computes
            in half precision with float32 weights; the output layer and its softmax
            stay float32; float16 trains with dynamic loss scaling
            (`weibo_lstm.training.mixed_precision`). The saved weights do not depend on it.
        steps_per_loop: training steps per tf.function call.
        checkpoint_dir: resumable checkpoints (rerun the same command to resume).
        checkpoint_every_steps: save every N steps and at each epoch end.
        keep_checkpoints: recent checkpoints kept.
        fresh: delete the checkpoints and start from scratch.
        weights_dtype: storage dtype of the saved encoder weights.
        quiet: no progress bar.
    """

    text: tuple[str, ...] = ()
    output: str = "data/output/encoder"
    max_length: int = 180
    vocabulary_size: int = 6000
    min_count: int = 2
    strip_emoticons: bool = False
    embedding_dim: int = 64
    lstm_units: tuple[int, ...] = (128, 128)
    bigram_buckets: int = 20_000
    dropout: float = 0.0
    embedding_dropout: float = 0.0
    num_sampled: int | None = 512
    epochs: int = 3
    batch_size: int = 128
    learning_rate: float = 2e-3
    warmup_epochs: float = 0.1
    min_lr_fraction: float = 0.05
    val_fraction: float = 0.02
    max_texts: int | None = None
    seed: int = 42
    replicas: int | None = None
    memory_growth: bool = True
    mixed_precision: str = "off"
    steps_per_loop: int | None = None
    checkpoint_dir: str | None = None
    checkpoint_every_steps: int = 200
    keep_checkpoints: int = 3
    fresh: bool = False
    weights_dtype: str = "float16"
    quiet: bool = False

    def __post_init__(self):
        object.__setattr__(self, "text", tuple(str(t) for t in self.text))
        object.__setattr__(self, "lstm_units", tuple(int(u) for u in self.lstm_units))
        for name in ("max_length", "epochs", "batch_size", "min_count", "checkpoint_every_steps"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"Argument `{name}` must be >= 1. Received: {name}={getattr(self, name)}"
                )
        if self.vocabulary_size < 3:
            raise ValueError(
                f"Argument `vocabulary_size` must be >= 3. Received: vocabulary_size={self.vocabulary_size}"
            )
        if not 0 < self.val_fraction < 1:
            raise ValueError(
                f"Argument `val_fraction` must be in (0, 1). Received: val_fraction={self.val_fraction}"
            )
        if self.mixed_precision not in MODES:
            raise ValueError(
                f"Argument `mixed_precision` must be one of {MODES}. "
                f"Received: mixed_precision={self.mixed_precision!r}"
            )
        if self.weights_dtype not in ("float16", "float32"):
            raise ValueError(
                "Argument `weights_dtype` must be 'float16' or 'float32'. "
                f"Received: weights_dtype={self.weights_dtype!r}"
            )


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
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        try:
            with open(path, encoding="utf-8-sig", errors="replace") as f:
                texts.extend(s for s in (line.strip() for line in f) if s)
        except OSError as e:
            raise DataError(f"{path}: cannot read the file: {e.strerror or e}") from None
    return texts


def texts_to_examples(tokenizer, texts: Sequence[str]):
    """`TokenizedExamples` (labels 0) of the texts with at least 2 characters.

    A 1-character row has nothing to predict; it is dropped rather than padded.
    """
    from weibo_lstm.training.input_pipeline import TokenizedExamples

    examples = TokenizedExamples.from_texts(
        tokenizer, LabeledTexts(tuple(texts), np.zeros(len(texts), np.int32))
    )
    keep = np.flatnonzero(examples.lengths >= 2)
    lengths = examples.lengths[keep]
    starts = examples.row_splits[:-1][keep]
    flat = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(lengths.sum())
    return TokenizedExamples(
        values=examples.values[flat],
        row_splits=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        labels=np.zeros(len(keep), np.int32),
    )


def run_pretraining(config: PretrainConfig, texts: Sequence[str] | None = None) -> PretrainResult:
    """Pretrains the language model and writes the encoder to `config.output`.

    Args:
        config: the settings.
        texts: the corpus (None: read `config.text`).

    Returns:
        The training history, validation metrics of the kept epoch, the encoder
        directory and the report written beside it.
    """
    import keras

    from weibo_lstm.distribute.strategies import default_strategy
    from weibo_lstm.jobs.report import check_output_dir
    from weibo_lstm.models.encoder import save_encoder
    from weibo_lstm.models.language_model import CharLanguageModel
    from weibo_lstm.preprocessing.tokenizer import Tokenizer
    from weibo_lstm.training.language_model_objective import LanguageModelObjective
    from weibo_lstm.training.trainer import DistributedTrainer, TrainerOptions
    from weibo_lstm.version import __version__

    start = time.perf_counter()
    if texts is None:
        if not config.text:
            raise DataError("no text given: pass --text FILE [FILE ...]")
        texts = read_texts(config.text)
    texts = list(texts)
    rng = np.random.default_rng(config.seed)
    if config.max_texts is not None and config.max_texts < len(texts):
        texts = [texts[i] for i in np.sort(rng.choice(len(texts), config.max_texts, replace=False))]
    order = rng.permutation(len(texts))
    n_val = max(1, round(config.val_fraction * len(texts)))
    val_texts = [texts[i] for i in np.sort(order[:n_val])]
    train_texts = [texts[i] for i in np.sort(order[n_val:])]
    if not train_texts:
        raise DataError("the corpus is too small: no texts left for training")
    output = check_output_dir(config.output, "encoder directory")
    if config.checkpoint_dir:
        check_output_dir(config.checkpoint_dir, "checkpoint directory")

    keras.utils.set_random_seed(config.seed)
    strategy = default_strategy(config.replicas, memory_growth=config.memory_growth)
    tokenizer = Tokenizer(
        max_length=config.max_length,
        min_count=config.min_count,
        max_tokens=config.vocabulary_size,
        strip_emoticons=config.strip_emoticons,
    )
    tokenizer.adapt(train_texts)
    train, val = texts_to_examples(tokenizer, train_texts), texts_to_examples(tokenizer, val_texts)
    train_tokens = int((train.lengths - 1).sum())
    logger.info(
        "Pretraining corpus: %d train texts (%d predicted characters), %d validation texts; "
        "vocabulary %d ids",
        len(train),
        train_tokens,
        len(val),
        tokenizer.vocabulary_size,
    )
    with strategy.scope():
        model = CharLanguageModel(
            tokenizer.vocabulary_size,
            embedding_dim=config.embedding_dim,
            lstm_units=config.lstm_units,
            bigram_buckets=config.bigram_buckets,
            dropout=config.dropout,
            embedding_dropout=config.embedding_dropout,
            seed=config.seed,
            dtype=dtype_policy(config.mixed_precision),
        )
        model.build()
    options = TrainerOptions(
        epochs=config.epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_epochs=config.warmup_epochs,
        min_lr_fraction=config.min_lr_fraction,
        steps_per_loop=config.steps_per_loop,
        monitor="val_loss",
        mode="min",
        seed=config.seed,
        quiet=config.quiet,
        summary_dir=str(output / "tensorboard"),
        on_nonfinite="skip",
        checkpoint_dir=config.checkpoint_dir,
        checkpoint_every_steps=config.checkpoint_every_steps,
        keep_checkpoints=config.keep_checkpoints,
        fresh=config.fresh,
    )
    trainer = DistributedTrainer(
        model=model,
        objective=LanguageModelObjective(config.num_sampled),
        strategy=strategy,
        options=options,
    )
    history = trainer.fit(train, val)
    val_metrics = trainer.evaluate(val, prefix="val_")
    train_time = sum(e["epoch_time"] for e in history.epochs)
    report = {
        "config": dataclasses.asdict(config),
        "corpus": {
            "texts": len(texts),
            "train_texts": len(train),
            "val_texts": len(val),
            "train_tokens": train_tokens,
            "val_tokens": int((val.lengths - 1).sum()),
        },
        "vocabulary_size": tokenizer.vocabulary_size,
        "replicas": strategy.num_replicas_in_sync,
        "best_epoch": history.best_epoch,
        **val_metrics,
        "train_time_s": round(train_time, 1),
        "tokens_per_second": round(train_tokens * len(history.epochs) / train_time, 1),
        "wall_time_s": round(time.perf_counter() - start, 1),
        "resumed_at_step": history.resumed_at_step,
        "library_version": __version__,
    }
    save_encoder(
        output, model.backbone, tokenizer, dtype=config.weights_dtype, metadata={"report": report}
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
    logger.info(
        "Encoder: %s (best epoch %s, validation perplexity %.2f, %.0f tokens/s)",
        output,
        history.best_epoch,
        val_metrics["val_perplexity"],
        report["tokens_per_second"],
    )
    return PretrainResult(history, val_metrics, output, report)


# ---------------------------------------------------------------------- command line
def add_pretrain_parser(commands) -> argparse.ArgumentParser:
    """Adds the `pretrain` subcommand to `weibo-lstm`'s subparsers."""
    from weibo_lstm.cli.main import _positive, add_memory_growth_argument, add_verbose_argument

    defaults = PretrainConfig()
    parser = commands.add_parser(
        "pretrain", help="pretrain the encoder as a character language model on unlabelled text"
    )
    parser.add_argument(
        "--text", nargs="+", required=True, metavar="PATH", help="text files (lines) or CSVs"
    )
    parser.add_argument("--output", default=defaults.output, help="encoder directory to write")
    parser.add_argument("--epochs", type=_positive(int), default=defaults.epochs)
    parser.add_argument(
        "--batch-size", type=_positive(int), default=defaults.batch_size, help="per replica"
    )
    parser.add_argument("--learning-rate", type=_positive(float), default=defaults.learning_rate)
    parser.add_argument("--warmup-epochs", type=float, default=defaults.warmup_epochs)
    parser.add_argument("--max-length", type=_positive(int), default=defaults.max_length)
    parser.add_argument("--vocabulary-size", type=_positive(int), default=defaults.vocabulary_size)
    parser.add_argument("--embedding-dim", type=_positive(int), default=defaults.embedding_dim)
    parser.add_argument(
        "--lstm-units", type=_positive(int), nargs="+", default=list(defaults.lstm_units)
    )
    parser.add_argument("--bigram-buckets", type=int, default=defaults.bigram_buckets)
    parser.add_argument("--dropout", type=float, default=defaults.dropout)
    parser.add_argument(
        "--num-sampled",
        type=int,
        default=defaults.num_sampled,
        help="sampled-softmax negatives per step (0: full softmax)",
    )
    parser.add_argument("--val-fraction", type=float, default=defaults.val_fraction)
    parser.add_argument("--max-texts", type=_positive(int), help="random subset of the texts")
    parser.add_argument("--strip-emoticons", action="store_true")
    parser.add_argument("--replicas", type=_positive(int))
    add_memory_growth_argument(parser)
    parser.add_argument(
        "--mixed-precision",
        choices=MODES,
        default=defaults.mixed_precision,
        help="compute the encoder in float16 (with loss scaling) or bfloat16",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--steps-per-loop", type=_positive(int))
    parser.add_argument("--checkpoint-dir", help="resumable checkpoints; rerun to resume")
    parser.add_argument(
        "--checkpoint-every-steps", type=_positive(int), default=defaults.checkpoint_every_steps
    )
    parser.add_argument("--fresh", action="store_true", help="delete checkpoints, start over")
    parser.add_argument(
        "--weights-dtype", choices=("float16", "float32"), default=defaults.weights_dtype
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_verbose_argument(parser)
    parser.set_defaults(run=pretrain_command)
    return parser


def pretrain_command(args: argparse.Namespace) -> int:
    """Runs `weibo-lstm pretrain` from parsed arguments."""
    config = PretrainConfig(
        text=tuple(args.text),
        output=args.output,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        warmup_epochs=args.warmup_epochs,
        max_length=args.max_length,
        vocabulary_size=args.vocabulary_size,
        embedding_dim=args.embedding_dim,
        lstm_units=tuple(args.lstm_units),
        bigram_buckets=args.bigram_buckets,
        dropout=args.dropout,
        num_sampled=args.num_sampled or None,
        val_fraction=args.val_fraction,
        max_texts=args.max_texts,
        strip_emoticons=args.strip_emoticons,
        replicas=args.replicas,
        memory_growth=args.memory_growth,
        mixed_precision=args.mixed_precision,
        seed=args.seed,
        steps_per_loop=args.steps_per_loop,
        checkpoint_dir=args.checkpoint_dir,
        checkpoint_every_steps=args.checkpoint_every_steps,
        fresh=args.fresh,
        weights_dtype=args.weights_dtype,
        quiet=args.quiet,
    )
    result = run_pretraining(config)
    print(json.dumps({k: v for k, v in result.report.items() if k != "config"}, default=str))
    return 0
