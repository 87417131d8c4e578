"""The training outputs: classification report, example predictions, the report CSV
(`ReportRow`: the seed's columns, then ours), curves, and the check that an output
directory can take a write."""

from __future__ import annotations

import csv
import datetime
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from weibo_lstm.data.labeled_texts import CLASS_NAMES
from weibo_lstm.errors import DataError

logger = logging.getLogger("weibo_lstm")

_REPORT_KEYS = ("precision", "recall", "f1-score", "support")
_PROBE_BYTES = 1 << 20
#: The metrics of the seed's `best_val_*` and `final_test_*` columns (with two classes,
#: precision and recall of 积极; with more, their macro averages).
SEED_METRICS = ("loss", "accuracy", "precision", "recall")


def report_order(class_names: Sequence[str] = CLASS_NAMES) -> tuple[int, ...]:
    """The class ids in report order: the seed's for two classes (积极, label 1, first),
    else the classes' own order."""
    return (1, 0) if tuple(class_names) == CLASS_NAMES else tuple(range(len(class_names)))


def seed_columns(class_names: Sequence[str] = CLASS_NAMES) -> tuple[str, ...]:
    """The seed's report columns, with its per-class block repeated for every class.

    >>> len(seed_columns()), seed_columns(("a", "b", "c"))[10:12]
    (27, ('report_a_precision', 'report_a_recall'))
    """
    names = [class_names[i] for i in report_order(class_names)]
    return (
        "timestamp",
        "best_epoch",
        *(f"best_val_{m}" for m in SEED_METRICS),
        *(f"final_test_{m}" for m in SEED_METRICS),
        *(f"report_{name}_{key}" for name in names for key in _REPORT_KEYS),
        "report_accuracy",
        *(f"report_macro_avg_{key}" for key in _REPORT_KEYS),
        *(f"report_weighted_avg_{key}" for key in _REPORT_KEYS),
    )


#: The seed's report columns, in its order. Extra columns may follow them.
SEED_COLUMNS = seed_columns()

#: The training job's columns after the seed's, in the order they were added (a new
#: column is only ever appended, so reports of different versions line up).
EXTRA_COLUMNS = (
    # 0.1.0
    *("replicas", "workers", "device", "global_batch_size", "peak_learning_rate"),
    *("epochs_run", "train_time_s", "examples_per_second", "data", "train_rows"),
    *("val_rows", "test_rows", "input_rows", "dropped_empty_rows", "duplicate_rows"),
    *("dropped_duplicate_rows", "truncated_rows", "skipped_nonfinite_steps"),
    *("resumed_at_step", "deterministic", "strip_emoticons", "max_length", "model"),
    *("library_version", "model_dir"),
    # 0.2.0: the pretrained encoder the run started from; 0.3.0: the compute dtype
    *("encoder", "mixed_precision"),
    # emoticon dropout: the share of training posts whose emoticons were removed, and
    # the leakage audit's test accuracy without emoticons
    *("emoticon_dropout", "test_accuracy_emoticons_stripped"),
    # wide & deep: each part's test accuracy and the wide part's fitting time
    *("wide", "test_accuracy_deep", "test_accuracy_wide", "test_accuracy_wide_and_deep"),
    "wide_fit_s",
)
#: Every column of a binary training job's report, in its order.
REPORT_COLUMNS = (*SEED_COLUMNS, *EXTRA_COLUMNS)


def report_columns_of(class_names: Sequence[str] = CLASS_NAMES) -> tuple[str, ...]:
    """Every column of the report of a model with `class_names`: `REPORT_COLUMNS` for
    binary sentiment; for other classes the seed's columns per class, then the same
    extra columns and the test macro-F1."""
    if tuple(class_names) == CLASS_NAMES:
        return REPORT_COLUMNS
    return (*seed_columns(class_names), *EXTRA_COLUMNS, "macro_f1")


class ReportRow(Mapping):
    """The training job's report row: the columns of `report_columns_of(class_names)`
    (`REPORT_COLUMNS` for binary sentiment), in that order.

    The job fills it from its parts (`update`); a column it does not know is an
    error, and `write` refuses a row with a column unset, so every report of a label
    set has the same header. `timestamp` is the time of writing. Read it as a dict.

    Example:

    >>> row = ReportRow({"replicas": 2}).update(device="CPU")
    >>> dict(row), row.missing()[:2]
    ({'replicas': 2, 'device': 'CPU'}, ['best_epoch', 'best_val_loss'])
    """

    def __init__(
        self,
        values: Mapping[str, object] | None = None,
        *,
        class_names: Sequence[str] = CLASS_NAMES,
    ):
        self.columns = report_columns_of(class_names)
        self._values: dict[str, object] = {}
        self.update(values or {})

    def update(self, values: Mapping[str, object] | None = None, /, **more) -> ReportRow:
        """Sets columns; returns the row.

        Raises:
            KeyError: for a name that is not a column of `REPORT_COLUMNS` (or is
                `timestamp`).
        """
        values = {**(values or {}), **more}
        unknown = [k for k in values if k not in self.columns or k == "timestamp"]
        if unknown:
            raise KeyError(f"not columns of the training report: {unknown}")
        self._values.update(values)
        return self

    def missing(self) -> list[str]:
        """The columns not set yet (`timestamp` aside), in report order."""
        return [c for c in self.columns[1:] if c not in self._values]

    def __getitem__(self, column: str) -> object:
        return self._values[column]

    def __iter__(self) -> Iterator[str]:
        return (c for c in self.columns if c in self._values)

    def __len__(self) -> int:
        return len(self._values)

    def write(
        self, output_dir: str | os.PathLike, *, timestamp: datetime.datetime | None = None
    ) -> Path:
        """`write_report` of this row, whose header is then `REPORT_COLUMNS`.

        Raises:
            KeyError: naming the columns not set.
        """
        missing = self.missing()
        if missing:
            raise KeyError(f"report row lacks the columns {missing}")
        return write_report(output_dir, dict(self), timestamp=timestamp, columns=self.columns)


def classification_report(
    labels: np.ndarray, predicted: np.ndarray, class_names: Sequence[str] = CLASS_NAMES
) -> tuple[str, dict]:
    """scikit-learn's classification report (digits=4) as text and as a dict.

    Rows are in `report_order`: 积极 (class 1) then 消极 (class 0) as in the seed, or
    the classes in order.
    """
    from sklearn.metrics import classification_report as sk_report

    order = report_order(class_names)
    names = [class_names[i] for i in order]
    kwargs = dict(labels=list(order), target_names=names, zero_division=0)
    text = sk_report(labels, predicted, digits=4, **kwargs)
    as_dict = sk_report(labels, predicted, output_dict=True, **kwargs)
    return text, as_dict


def report_columns(report: Mapping, class_names: Sequence[str] = CLASS_NAMES) -> dict[str, float]:
    """Flattens a classification-report dict into the seed's `report_*` columns."""
    names = [class_names[i] for i in report_order(class_names)]
    columns = {}
    for name, label in [(n, n) for n in names] + [
        ("macro avg", "macro_avg"),
        ("weighted avg", "weighted_avg"),
    ]:
        for key in _REPORT_KEYS:
            value = report[name][key]
            columns[f"report_{label}_{key}"] = int(value) if key == "support" else value
        if name == names[-1]:
            # scikit-learn gives a micro average instead when a class is missing
            accuracy = report["accuracy"] if "accuracy" in report else report["micro avg"]
            columns["report_accuracy"] = accuracy if "accuracy" in report else accuracy["f1-score"]
    return columns


def data_columns(corpus: str, splits: Sequence) -> dict[str, object]:
    """The report's data columns of the `(train, validation, test)` `LabeledTexts`
    read from `corpus`: rows per split, and what loading them dropped or cut."""
    # One LoadStats per file read (the three splits of one file share theirs).
    files = list({id(d.stats): d.stats for d in splits}.values())
    train, val, test = splits
    return {
        "data": corpus,
        "train_rows": len(train),
        "val_rows": len(val),
        "test_rows": len(test),
        "input_rows": sum(s.rows for s in files),
        "dropped_empty_rows": sum(s.dropped_empty for s in files),
        "duplicate_rows": sum(s.duplicates for s in files),
        "dropped_duplicate_rows": sum(s.dropped_duplicates for s in files),
        "truncated_rows": sum(s.truncated for s in files),
    }


def example_predictions(
    texts: Sequence[str],
    labels: np.ndarray,
    probabilities: np.ndarray,
    k: int = 5,
    seed: int = 0,
    class_names: Sequence[str] = CLASS_NAMES,
) -> list[str]:
    """A few test predictions as log lines: right and wrong ones, with P(积极) (K > 2:
    the probability of the predicted class)."""
    predicted = probabilities.argmax(1)
    rng = np.random.default_rng(seed)
    wrong = np.flatnonzero(predicted != labels)
    right = np.flatnonzero(predicted == labels)
    chosen = [
        *rng.permutation(right)[: k - min(len(wrong), k // 2)],
        *rng.permutation(wrong)[: k // 2],
    ]
    lines = []
    for i in chosen:
        mark = "✓" if predicted[i] == labels[i] else "✗"
        text = texts[i] if len(texts[i]) <= 60 else texts[i][:57] + "..."
        shown = 1 if len(class_names) == 2 else predicted[i]
        lines.append(
            f"{mark} P({class_names[shown]})={probabilities[i, shown]:.3f} predicted "
            f"{class_names[predicted[i]]}, true {class_names[labels[i]]}: {text}"
        )
    return lines


def write_report(
    output_dir: str | os.PathLike,
    row: Mapping[str, object],
    *,
    timestamp: datetime.datetime | None = None,
    columns: Sequence[str] = SEED_COLUMNS,
) -> Path:
    """Writes `<output_dir>/training_report_YYYYMMDD_HHMMSS.csv` (UTF-8 with BOM).

    The training job writes a `ReportRow` (`ReportRow.write`); this writes any row
    with the seed's columns first.

    Args:
        output_dir: directory (created if missing).
        row: values for every column of `SEED_COLUMNS` except `timestamp`, plus any
            extra columns, which follow the seed's in the order given.
        timestamp: report time (default: now).
        columns: the columns that come first, in this order (default: the seed's).

    Returns:
        The path written.

    Raises:
        KeyError: if a seed column is missing from `row`.
    """
    timestamp = timestamp or datetime.datetime.now()
    stamp = timestamp.strftime("%Y%m%d_%H%M%S")
    values = {"timestamp": stamp, **row}
    missing = [c for c in columns if c not in values]
    if missing:
        raise KeyError(f"report row lacks the columns {missing}")
    header = [*columns, *(k for k in values if k not in columns)]
    path = Path(output_dir) / f"training_report_{stamp}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerow([_format(values[c]) for c in header])
    return path


def _format(value) -> str:
    if isinstance(value, float | np.floating):
        return repr(float(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return "" if value is None else str(value)


def plot_history(history, path: str | os.PathLike) -> Path | None:
    """Loss and accuracy per epoch, train vs validation, as a PNG.

    Returns None (and logs why) when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.info('Training curves skipped: pip install "weibo-lstm[plot]" for matplotlib')
        return None
    epochs = [e["epoch"] for e in history.epochs]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        ax.plot(epochs, history.series(metric), "o-", label="train")
        if any(f"val_{metric}" in e for e in history.epochs):
            ax.plot(epochs, history.series(f"val_{metric}"), "o-", label="validation")
        if history.best_epoch is not None:
            ax.axvline(history.best_epoch, color="gray", linestyle=":", label="best epoch")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


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
