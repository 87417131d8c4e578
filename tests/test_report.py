import csv
import datetime

import numpy as np
import pytest
from sklearn.metrics import precision_recall_fscore_support

from weibo_lstm.jobs import report

SEED_HEADER = [
    "timestamp",
    "best_epoch",
    "best_val_loss",
    "best_val_accuracy",
    "best_val_precision",
    "best_val_recall",
    "final_test_loss",
    "final_test_accuracy",
    "final_test_precision",
    "final_test_recall",
    "report_积极_precision",
    "report_积极_recall",
    "report_积极_f1-score",
    "report_积极_support",
    "report_消极_precision",
    "report_消极_recall",
    "report_消极_f1-score",
    "report_消极_support",
    "report_accuracy",
    "report_macro_avg_precision",
    "report_macro_avg_recall",
    "report_macro_avg_f1-score",
    "report_macro_avg_support",
    "report_weighted_avg_precision",
    "report_weighted_avg_recall",
    "report_weighted_avg_f1-score",
    "report_weighted_avg_support",
]


def test_seed_columns_are_the_seeds():
    assert list(report.SEED_COLUMNS) == SEED_HEADER and len(SEED_HEADER) == 27


def test_classification_report_names_classes_correctly():
    labels = np.array([1, 1, 1, 0, 0])
    predicted = np.array([1, 1, 0, 0, 1])
    text, as_dict = report.classification_report(labels, predicted)
    p, r, _f, _s = precision_recall_fscore_support(labels, predicted, labels=[1, 0])
    assert as_dict["积极"]["precision"] == pytest.approx(p[0])  # 积极 is class 1
    assert as_dict["消极"]["recall"] == pytest.approx(r[1])
    assert as_dict["积极"]["support"] == 3 and as_dict["消极"]["support"] == 2
    assert text.index("积极") < text.index("消极") and "0.6667" in text


def test_write_report_header_bom_and_extras(tmp_path):
    labels = np.array([1, 0, 1, 0])
    _, as_dict = report.classification_report(labels, labels)
    row = {c: 0.5 for c in report.SEED_COLUMNS[1:10]} | report.report_columns(as_dict)
    row |= {"replicas": 2, "data": "x.csv"}
    path = report.write_report(tmp_path, row, timestamp=datetime.datetime(2026, 1, 2, 3, 4, 5))
    assert path.name == "training_report_20260102_030405.csv"
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with open(path, encoding="utf-8-sig", newline="") as f:
        header, values = list(csv.reader(f))
    assert header == [*SEED_HEADER, "replicas", "data"]
    assert values[0] == "20260102_030405" and values[-2:] == ["2", "x.csv"]
    assert float(values[header.index("report_accuracy")]) == 1.0


def test_write_report_requires_seed_columns(tmp_path):
    with pytest.raises(KeyError, match="best_epoch"):
        report.write_report(tmp_path, {"replicas": 1})


def test_example_predictions_show_right_and_wrong():
    probabilities = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    lines = report.example_predictions(
        ["a", "b", "c", "d" * 100], np.array([1, 0, 0, 1]), probabilities, k=4
    )
    assert len(lines) == 4
    assert sum(line.startswith("✗") for line in lines) == 2
    assert any(line.endswith("...") for line in lines)


#: The training job's report header after the seed's columns, in the order the
#: releases added them (typed out here, not read from the code).
JOB_EXTRA_HEADER = [
    *("replicas", "workers", "device", "global_batch_size", "peak_learning_rate"),
    *("epochs_run", "train_time_s", "examples_per_second", "data", "train_rows"),
    *("val_rows", "test_rows", "input_rows", "dropped_empty_rows", "duplicate_rows"),
    *("dropped_duplicate_rows", "truncated_rows", "skipped_nonfinite_steps"),
    *("resumed_at_step", "deterministic", "strip_emoticons", "max_length", "model"),
    *("library_version", "model_dir", "encoder", "mixed_precision"),
    *("emoticon_dropout", "test_accuracy_emoticons_stripped"),
    *("wide", "test_accuracy_deep", "test_accuracy_wide", "test_accuracy_wide_and_deep"),
    "wide_fit_s",
]


def test_a_report_row_writes_the_seed_columns_first_then_the_jobs_in_one_order(tmp_path):
    assert list(report.REPORT_COLUMNS) == [*SEED_HEADER, *JOB_EXTRA_HEADER]
    # Filled in any order, in parts: the header is always the same.
    columns = SEED_HEADER[1:] + JOB_EXTRA_HEADER
    row = report.ReportRow({c: i for i, c in enumerate(reversed(columns))})
    path = row.write(tmp_path, timestamp=datetime.datetime(2026, 1, 2, 3, 4, 5))
    with open(path, encoding="utf-8-sig", newline="") as f:
        header, values = list(csv.reader(f))
    assert header == [*SEED_HEADER, *JOB_EXTRA_HEADER]
    assert values[0] == "20260102_030405"
    assert dict(zip(header[1:], values[1:], strict=True)) == {c: str(row[c]) for c in columns}
    assert list(row) == columns and len(row) == len(columns)


def test_a_report_row_refuses_unknown_and_missing_columns(tmp_path):
    row = report.ReportRow({"replicas": 2})
    with pytest.raises(KeyError, match="largest_epoch_boundary_s"):
        row.update(largest_epoch_boundary_s=1.0)  # removed: not a column any more
    with pytest.raises(KeyError, match="timestamp"):
        row.update(timestamp="now")  # the time of writing
    with pytest.raises(KeyError, match=r"lacks the columns .*'best_epoch'"):
        row.write(tmp_path)
    assert not list(tmp_path.iterdir())
