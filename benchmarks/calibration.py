"""Calibration of a model's scores on the test parts: expected calibration error before and
after its temperature, and reliability diagrams.

For each test part of `tools.corpora` the model can score (the binary review and Weibo
corpora, scored over 消极/积极; SMP2020 usual and virus for a three- or six-class
model), the probabilities with the model's fitted temperature ("after") and with
temperature 1 ("before", the scores it would give uncalibrated): expected calibration
error over 15 confidence bins, accuracy, and a reliability diagram per part (one PNG).

    python -m benchmarks.calibration --model weibo_lstm/assets/sentiment_zh \\
        --png docs/images/calibration_sentiment_zh.png

Results in benchmarks/results/calibration_<model>.json.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

import weibo_lstm as wl
from benchmarks.common import ROOT, SHARED
from benchmarks.machine import machine_info, write_json
from tools import corpora
from weibo_lstm.data.label_sets import EMOTION_TO_POLARITY, POLARITY, onto_classes, relabel
from weibo_lstm.models.calibration import expected_calibration_error

BINS = 15


def test_parts(classifier, shared: Path) -> dict[str, wl.LabeledTexts]:
    """The test parts this model's classes can score, in its classes."""
    parts = corpora.load_parts(shared)
    names = classifier.class_names
    tests = {}
    for name, part in parts.items():
        if part.test is None:
            continue
        test = part.test
        if names == POLARITY and test.class_names != wl.CLASS_NAMES:
            test = relabel(test, POLARITY, EMOTION_TO_POLARITY)
        if set(test.class_names) <= set(names):
            tests[name] = onto_classes(test, names)
    return tests


def scored(classifier, test: wl.LabeledTexts, temperature: float) -> np.ndarray:
    """`[n, K]` probabilities at `temperature`, renormalised over the classes each row
    can express."""
    classifier.model.temperature = temperature
    probabilities = classifier.predict(list(test.texts)).astype(np.float64)
    if test.expressible is not None:
        probabilities = np.where(test.expressible, probabilities, 0.0)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
    return probabilities


def reliability(probabilities, labels) -> list[dict]:
    """Per confidence bin: rows, mean confidence, accuracy."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0, 1, BINS + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, BINS - 1)
    return [
        {
            "rows": int((which == b).sum()),
            "confidence": float(confidence[which == b].mean()) if (which == b).any() else None,
            "accuracy": float(correct[which == b].mean()) if (which == b).any() else None,
        }
        for b in range(BINS)
    ]


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = list(results)
    fig, axes = plt.subplots(1, len(parts), figsize=(3.2 * len(parts), 3.4), squeeze=False)
    for ax, name in zip(axes[0], parts, strict=True):
        for when, style in (("before", "o--"), ("after", "o-")):
            bins = [b for b in results[name][when]["bins"] if b["rows"]]
            ax.plot(
                [b["confidence"] for b in bins], [b["accuracy"] for b in bins], style, label=when
            )
        ax.plot([0, 1], [0, 1], color="gray", linewidth=0.8)
        ece = (results[name]["before"]["ece"], results[name]["after"]["ece"])
        ax.set_title(f"{name}\nECE {ece[0]:.3f} → {ece[1]:.3f}", fontsize=9)
        ax.set_xlabel("confidence")
        ax.set_xlim(0.3, 1.0)
        ax.set_ylim(0.0, 1.0)
    axes[0][0].set_ylabel("accuracy")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "weibo_lstm" / "assets" / "sentiment_zh"))
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--png", type=Path, help="the reliability diagrams to write")
    parser.add_argument("--results", type=Path)
    args = parser.parse_args(argv)
    before_run = machine_info()
    classifier = wl.SentimentClassifier.load(args.model)
    temperature = classifier.model.temperature
    results = {}
    for name, test in test_parts(classifier, args.shared).items():
        results[name] = {"rows": len(test)}
        for when, t in (("before", 1.0), ("after", temperature)):
            probabilities = scored(classifier, test, t)
            results[name][when] = {
                "ece": expected_calibration_error(probabilities, test.labels, BINS),
                "accuracy": float(np.mean(probabilities.argmax(1) == test.labels)),
                "bins": reliability(probabilities, test.labels),
            }
        print(name, results[name]["before"]["ece"], "->", results[name]["after"]["ece"])
    if args.png:
        plot(results, args.png)
    path = (
        args.results
        or ROOT / "benchmarks" / "results" / f"calibration_{Path(args.model).name}.json"
    )
    write_json(
        path,
        {
            "machine_before": before_run,
            "machine_after": machine_info(),
            "model": args.model,
            "temperature": temperature,
            "tests": results,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
