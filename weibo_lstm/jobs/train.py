"""The training job behind `weibo-lstm train` and `examples/train_multi_gpu.py`.

data → task → trainer → report: find the data and split it honestly; build a
`SentimentClassifier` from a preset (tokenizer fit on the training part only); train it
with `DistributedTrainer` under the strategy (best validation weights kept); evaluate
every test row; write the report CSV, the training curves, TensorBoard scalars and the
saved classifier. In a cluster every worker runs the job, checks that the others have
the same settings and data, and only the chief's files survive.

Settings come in dataclasses with one name per knob: `RunConfig` (data, outputs,
preset, devices, emoticon dropout) and the training options (`TrainerOptions` and
`ControllerOptions` fields), given flat as the fields the user set; the preset's budget
for the device fills the rest.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path

import keras
import numpy as np

from weibo_lstm.data.emoticons import MIN_SHARE, drop_emoticons, emoticon_audit
from weibo_lstm.data.labeled_texts import LabeledTexts
from weibo_lstm.distribute.runtime import Runtime
from weibo_lstm.errors import ConfigError, DataError
from weibo_lstm.jobs import report as reporting
from weibo_lstm.jobs.config import JOB_SET_OPTIONS, RunConfig, training_settings, write_settings
from weibo_lstm.jobs.report import ReportRow, check_output_dir
from weibo_lstm.jobs.training_data import load_splits
from weibo_lstm.models.cudnn import warn_if_not_cudnn
from weibo_lstm.models.presets import BUDGET_KEYS, TRAINED_MODELS, encoder_path, get_preset
from weibo_lstm.tasks import wide_part
from weibo_lstm.tasks.sentiment_classifier import SentimentClassifier
from weibo_lstm.training.history import History
from weibo_lstm.training.option_groups import flat_options, make_options
from weibo_lstm.training.reproducibility import enable_determinism
from weibo_lstm.version import __version__

logger = logging.getLogger("weibo_lstm")


@dataclasses.dataclass
class TrainingResult:
    """What `run_training` produced (paths are None on workers other than the chief)."""

    classifier: SentimentClassifier
    history: History
    test_metrics: dict
    classification_report: str
    report_row: ReportRow
    report_path: Path | None
    model_dir: Path | None
    corpus: str
    wall_time: float


def run_training(config: RunConfig, options: Mapping[str, object] | None = None) -> TrainingResult:
    """Runs the whole job; see the module docstring.

    Args:
        config: the run's data, outputs, preset and devices.
        options: the training options the user set (fields of `TrainerOptions` or
            `ControllerOptions`); the preset's budget for this device fills epochs,
            batch_size, learning_rate and warmup_epochs, and the groups' defaults
            the rest.

    In a cluster every worker runs this; only the chief's files survive (the others
    write to a temporary directory that is removed), and all workers return together.

    Raises:
        ConfigError: for an unknown or invalid option, before TensorFlow picks its
            devices.
    """
    options = dict(options or {})
    unknown = set(options) & JOB_SET_OPTIONS
    if unknown:
        raise ConfigError(f"Arguments {sorted(unknown)} are set by the job, not by the user.")
    # Validates the user's values before devices start.
    base, base_loop = make_options(options)
    start = time.perf_counter()
    runtime = Runtime.create(
        config.replicas,
        multi_worker=config.multi_worker,
        collective=config.collective,
        startup_timeout=config.startup_timeout,
        memory_growth=config.memory_growth,
    )
    if runtime.is_chief:
        check_output_dir(config.output_dir)
        if base_loop.checkpoint_dir:
            check_output_dir(base_loop.checkpoint_dir, "checkpoint directory")
    with runtime.output_dir(config.output_dir) as output_dir:
        result = _train(config, options, base.seed, runtime, output_dir, start)
        # Workers leave together: a chief that fails while writing its files fails the
        # job on every worker, and no worker reports a peer that merely finished first.
        runtime.barrier()
    if not runtime.is_chief:
        result.report_path = result.model_dir = None
    return result


def _train(config: RunConfig, options: dict, seed: int, runtime: Runtime, output_dir: Path, start):
    kind = runtime.device_kind
    if config.deterministic:
        enable_determinism(seed)
    else:
        keras.utils.set_random_seed(seed)
    train, val, test, corpus = load_splits(config, seed)
    classifier = _classifier(config, runtime, train)
    preset = get_preset(classifier.preset, kind)
    _log_budget(config, options, preset, kind)
    warn_if_not_cudnn(kind, classifier.deep)
    _check_workers_agree(runtime, config, options, classifier, (train, val, test))

    stamp = datetime.datetime.now().strftime("%Y%m%d_%H%M%S")
    summary_dir = str(output_dir / "tensorboard" / stamp)
    trainer_options, loop = classifier.training_options(**options, summary_dir=summary_dir)
    history = classifier.fit(
        train,
        val,
        options=trainer_options,
        controller_options=loop,
        wide=config.wide,
        emoticon_dropout=config.emoticon_dropout,
    )
    config = dataclasses.replace(config, emoticon_dropout=classifier.emoticon_dropout)
    test_x = classifier.tokenize(test)
    test_metrics = classifier.evaluate(test_x, prefix="final_test_")
    probabilities = classifier.predict_examples(test_x)
    names = classifier.class_names
    predicted = np.where(test_x.expressible_mask(len(names)), probabilities, -1).argmax(1)
    report_text, report_dict = reporting.classification_report(test.labels, predicted, names)
    logger.info(
        "Test set (%d rows, best epoch %s):\n%s", len(test), history.best_epoch, report_text
    )
    for line in reporting.example_predictions(
        test.texts, test.labels, probabilities, class_names=names
    ):
        logger.info("  %s", line)

    model_dir = output_dir / f"model_{stamp}"
    run = _Run(config, preset, runtime, classifier, history, corpus, model_dir)
    row = _report_row(run, (train, val, test), test_x, test_metrics, report_dict)
    report_path = _write_outputs(run, loop, row, output_dir, stamp)
    wall = time.perf_counter() - start
    if runtime.is_chief:
        logger.info("Report: %s", report_path)
        logger.info("Model and tokenizer: %s", model_dir)
    logger.info(
        "Test accuracy %.4f after %d epochs; %.0f s in all",
        *(test_metrics["final_test_accuracy"], len(history.epochs), wall),
    )
    return TrainingResult(
        classifier, history, test_metrics, report_text, row, report_path, model_dir, corpus, wall
    )


@dataclasses.dataclass(frozen=True)
class _Run:
    """What a finished run's outputs are made from."""

    config: RunConfig
    preset: object
    runtime: Runtime
    classifier: SentimentClassifier
    history: History
    corpus: str
    model_dir: Path


def _accuracy_columns(classifier, test: LabeledTexts, test_x, accuracy: float) -> dict:
    """The report's late accuracy columns: without emoticons (see
    `_stripped_test_accuracy`), each wide & deep part's, and the wide part's fitting
    time (the deep part's accuracy is the model's without a wide part)."""
    stripped = _stripped_test_accuracy(classifier, test)
    parts = wide_part.part_accuracies(classifier, test_x)
    if parts:
        logger.info(
            "Test accuracy: deep part %.4f, wide part %.4f, wide & deep %.4f",
            *(parts["deep"], parts["wide"], accuracy),
        )
    return {
        "test_accuracy_emoticons_stripped": stripped,
        "wide": bool(parts),
        "test_accuracy_deep": parts.get("deep", accuracy),
        "test_accuracy_wide": parts.get("wide"),
        "test_accuracy_wide_and_deep": accuracy if parts else None,
        "wide_fit_s": classifier.metadata.get("wide_fit_s") if parts else None,
    }


def _mixed_precision_mode(model) -> str:
    """The `--mixed-precision` mode `model` was built with (`auto` resolved)."""
    name = model.dtype_policy.name
    return name.removeprefix("mixed_") if name.startswith("mixed_") else "off"


def _stripped_test_accuracy(classifier, test: LabeledTexts) -> float | None:
    """Test accuracy with the emoticons removed from the test posts, for a corpus whose
    posts carry them (the leakage audit: a model that only reads emoticons fails it);
    None for other corpora."""
    if emoticon_audit(test).share < MIN_SHARE:
        return None
    accuracy = classifier.evaluate(drop_emoticons(test, 1.0))["accuracy"]
    logger.info("Test accuracy with the emoticons removed from the test posts: %.4f", accuracy)
    return accuracy


def _classifier(config: RunConfig, runtime: Runtime, train: LabeledTexts):
    """The preset's classifier for this run, its vocabulary from the training texts, or
    the trained one it starts from (`init`)."""
    if config.init:
        if config.init in TRAINED_MODELS:
            classifier = SentimentClassifier.from_preset(config.init, strategy=runtime.strategy)
        else:
            classifier = SentimentClassifier.load(config.init, strategy=runtime.strategy)
        logger.info("Starting from the trained classifier %s", config.init)
        return classifier
    classifier = SentimentClassifier.from_preset(
        config.preset or ("pretrained" if config.encoder else None),
        vocabulary_texts=train.texts,
        class_names=train.class_names,
        max_length=config.max_length,
        strip_emoticons=config.strip_emoticons,
        strategy=runtime.strategy,
        encoder=config.encoder,
        synchronized_batch_norm=config.synchronized_batch_norm,
        mixed_precision=config.mixed_precision,
    )
    logger.info(
        "Vocabulary: %d ids %s",
        classifier.tokenizer.vocabulary_size,
        "of the pretrained encoder"
        if config.encoder or get_preset(classifier.preset).encoder
        else "from the training texts",
    )
    return classifier


def _report_row(run: _Run, splits, test_x, test_metrics: dict, report: dict) -> ReportRow:
    """The run's report row, every column (`reporting.REPORT_COLUMNS`)."""
    history, runtime, trainer = run.history, run.runtime, run.classifier.trainer
    best = history.best_metrics or {}
    names = run.classifier.class_names
    multiclass = {} if len(names) == 2 else {"macro_f1": test_metrics["final_test_macro_f1"]}
    train_time = sum(e["epoch_time"] for e in history.epochs)
    train, _, test = splits
    encoder = run.config.encoder or (
        encoder_path(run.preset.encoder) if run.preset.encoder else None
    )
    return ReportRow(
        {
            "best_epoch": history.best_epoch,
            **{f"best_val_{m}": best.get(f"val_{m}") for m in reporting.SEED_METRICS},
            **{f"final_test_{m}": test_metrics[f"final_test_{m}"] for m in reporting.SEED_METRICS},
            **reporting.report_columns(report, names),
            "replicas": runtime.num_replicas,
            "workers": runtime.num_workers,
            "device": runtime.device_kind,
            "global_batch_size": trainer.global_batch_size,
            "peak_learning_rate": trainer.options.peak_learning_rate(runtime.num_replicas),
            "epochs_run": len(history.epochs),
            "train_time_s": round(train_time, 2),
            "examples_per_second": round(len(train) * len(history.epochs) / train_time, 1),
            **reporting.data_columns(run.corpus, splits),
            "skipped_nonfinite_steps": sum(e.get("skipped_steps", 0) for e in history.epochs),
            "resumed_at_step": history.resumed_at_step,
            "deterministic": run.config.deterministic,
            "strip_emoticons": run.config.strip_emoticons,
            "max_length": run.config.max_length,
            "model": run.preset.name,
            "library_version": __version__,
            "model_dir": str(run.model_dir),
            "encoder": encoder,
            "mixed_precision": _mixed_precision_mode(run.classifier.deep),
            "emoticon_dropout": run.config.emoticon_dropout,
            **_accuracy_columns(run.classifier, test, test_x, test_metrics["final_test_accuracy"]),
            **multiclass,
        },
        class_names=names,
    )


def _write_outputs(run: _Run, loop, row: ReportRow, output_dir: Path, stamp: str) -> Path:
    """Saves the model (with its settings.toml), the report CSV and the curves; returns
    the report's path."""
    options = flat_options(run.classifier.trainer.options, loop)
    try:
        run.classifier.save(
            run.model_dir,
            metadata={
                "config": dataclasses.asdict(run.config),
                "options": options,
                "report": dict(row),
            },
        )
        write_settings(
            run.model_dir / "settings.toml",
            {"run (RunConfig)": dataclasses.asdict(run.config), **training_settings(options)},
        )
        report_path = row.write(output_dir)
        reporting.plot_history(run.history, output_dir / f"training_curves_{stamp}.png")
    except OSError as e:
        hint = (
            f"; the trained state is in {loop.checkpoint_dir}: free space and rerun "
            "the same command to write the results without training again"
            if loop.checkpoint_dir
            else ""
        )
        raise DataError(
            f"{output_dir}: could not write the results: {e.strerror or e}{hint}"
        ) from None
    return report_path


# Settings that may differ between the workers of a cluster: paths are per node (the
# data files are compared by content) and the output of non-chief workers is dropped.
_PER_NODE_SETTINGS = frozenset(
    {"data", "val_data", "test_data", "input_dir", "output_dir", "quiet", "multi_worker", "encoder"}
    | {"startup_timeout", "checkpoint_dir", "memory_growth"}
)


def _check_workers_agree(runtime, config, options, classifier, examples) -> None:
    """Fails on every worker at once if the workers of a cluster train on different things.

    Each worker reads its own data files; if they differ (or the settings do), the
    workers would run different step counts and the collectives would hang or mix
    unrelated gradients.
    """
    settings = {**dataclasses.asdict(config), **options}
    settings = {k: v for k, v in settings.items() if k not in _PER_NODE_SETTINGS}
    data = hashlib.blake2b("\n".join(classifier.tokenizer.vocabulary).encode())
    for part in examples:
        data.update("\n".join((*part.class_names, *part.texts)).encode("utf-8", "surrogatepass"))
        for array in (part.labels, part.expressible):
            if array is not None:
                data.update(np.ascontiguousarray(array).tobytes())
    differ = runtime.disagreements(
        {"settings": json.dumps(settings, sort_keys=True, default=str), "data": data.digest()},
    )
    if differ:
        raise DataError(
            f"the workers of the cluster disagree on their {' and '.join(differ)}: run the same "
            "command with the same data files on every node"
        )


def _log_budget(config: RunConfig, options: dict, preset, kind: str) -> None:
    budget = preset.budget(kind)
    shown = [k for k in BUDGET_KEYS if k in options or k in budget]
    logger.info(
        "Model preset %r%s; budget: %s",
        preset.name,
        " (the default on this device)" if config.preset is None else "",
        ", ".join(
            f"{k} {options[k]}" if k in options else f"{k} {budget[k]} (default)" for k in shown
        ),
    )
    # Not for a preset whose CPU budget is its GPU budget (seed-large-batch).
    quick = preset.budget("CPU") != preset.budget("GPU")
    chosen = [k for k in budget if k not in options]
    if kind == "CPU" and quick and (chosen or config.preset is None):
        logger.info(
            "CPU only: a budget that finishes in minutes. The seed's GPU recipe is "
            "--preset seed --epochs 15 --batch-size 64 --learning-rate 1e-4 --warmup-epochs 3"
        )
