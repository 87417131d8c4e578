"""Learning curve on a domain the starting model never saw: fine-tuning a shipped model
against training from scratch and TF-IDF + LR, on the same few labelled rows.

Domain: SMP2020-EWECT "virus" (COVID-19 posts of early 2020, six emotions). The
starting model (`--init`, default the shipped `emotion_zh`) was trained on the
"usual" posts only. For each size (250, 1,000, 4,000 rows, a stratified seeded sample
of the virus training rows of `tools.corpora`), three classifiers train on the same
rows, choose their epoch and mixing on the virus evaluation file, and are scored once
on the virus test file:

- `fine_tuned`: `SentimentClassifier.load(init).fit(...)` (the same classes: its head
  and backbone continue training; the wide part is fitted anew on the rows);
- `from_scratch`: the library's default classifier (`from_preset()`), the same `fit`;
- `tfidf_lr`: character 1-3-gram TF-IDF + logistic regression.

    python -m benchmarks.learning_curve --sizes 250 1000 4000

Accuracy and macro-F1 per size, and paired-bootstrap 95 % intervals of fine-tuned minus
each other on the same test rows; results in benchmarks/results/learning_curve.json.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from sklearn.metrics import f1_score

import weibo_lstm as wl
from benchmarks.common import ROOT, SHARED, fit_tfidf, paired_bootstrap
from benchmarks.machine import machine_info, write_json
from tools import corpora
from weibo_lstm.models.presets import TRAINED_MODELS


def sample(data: wl.LabeledTexts, size: int, seed: int) -> wl.LabeledTexts:
    """`size` rows of `data`, stratified by class, seeded."""
    if size >= len(data):
        return data
    from sklearn.model_selection import train_test_split

    rows, _ = train_test_split(
        np.arange(len(data)), train_size=size, stratify=data.labels, random_state=seed
    )
    return data.subset(np.sort(rows))


def train_deep(make, train, val, test, seed: int) -> tuple[np.ndarray, float]:
    """Test predictions of the classifier `make()` fitted on `train`, and its seconds."""
    classifier = make()
    start = time.perf_counter()
    classifier.fit(train, val, seed=seed, quiet=True)
    seconds = time.perf_counter() - start
    return classifier.predict(list(test.texts)).argmax(1), seconds


def row(labels, predicted) -> dict:
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "macro_f1": float(f1_score(labels, predicted, average="macro")),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--init", default="emotion_zh", help="a shipped model or a directory")
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 1000, 4000])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--results", type=Path, default=ROOT / "benchmarks" / "results" / "learning_curve.json"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    before = machine_info()
    virus = corpora.load_parts(args.shared, args.seed)["virus"]

    def fine_tuned():
        if args.init in TRAINED_MODELS:
            return wl.SentimentClassifier.from_preset(args.init)
        return wl.SentimentClassifier.load(args.init)

    results = {"init": args.init, "val_rows": len(virus.val), "test_rows": len(virus.test)}
    labels = virus.test.labels
    for size in args.sizes:
        train = sample(virus.train, size, args.seed)

        def scratch(train=train):
            return wl.SentimentClassifier.from_preset(
                class_names=train.class_names, vocabulary_texts=train.texts, seed=args.seed
            )

        predicted, seconds = {}, {}
        for name, make in (("fine_tuned", fine_tuned), ("from_scratch", scratch)):
            predicted[name], seconds[name] = train_deep(
                make, train, virus.val, virus.test, args.seed
            )
        start = time.perf_counter()
        predicted["tfidf_lr"] = fit_tfidf(train).predict(list(virus.test.texts))
        seconds["tfidf_lr"] = time.perf_counter() - start
        result = {
            name: {**row(labels, p), "train_s": round(seconds[name], 1)}
            for name, p in predicted.items()
        }
        for other in ("from_scratch", "tfidf_lr"):
            result[f"fine_tuned_minus_{other}"] = paired_bootstrap(
                labels, predicted["fine_tuned"], predicted[other]
            )
        results[str(size)] = result
        print(size, {k: v for k, v in result.items() if not k.startswith("fine_tuned_minus")})
    write_json(args.results, {"machine_before": before, "machine_after": machine_info(), **results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
