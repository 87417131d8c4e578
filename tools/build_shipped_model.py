"""Builds the shipped models (`sentiment_zh`, `emotion_zh`) and scores them for the model card.

Data: `tools.corpora` (the binary polarity corpora and the Weibo emotion corpora,
deduplicated and split once). Model: the library's default on a CPU, wide & deep
(`pretrained` preset fine-tuned, then TF-IDF + logistic regression over character
n-grams stacked on validation), through `SentimentClassifier.fit`.

- `sentiment_zh`: three classes, 消极 / 积极 / 中性, from the binary corpora and the
  emotion corpora mapped by `EMOTION_TO_POLARITY` (surprise dropped). `--pooling
  partial` (the default) trains the binary rows on the likelihood of their label among
  消极 and 积极; `naive` as if they could say 中性; `three` leaves them out.
  `--emotion-repeats N` repeats the emotion corpora's rows N times. Emoticon dropout
  0.7 (the weibo labels follow the emoticons), two mixings.
- `emotion_zh`: SMP2020-EWECT's six classes from its usual training file, and with
  `--emotion-corpora usual virus` from the virus one too (validated on usual alone).

Two steps, so that the test rows are scored once, after every choice is made on
validation:

    python -m tools.build_shipped_model build --model sentiment_zh --output /tmp/sentiment_zh
    python -m tools.build_shipped_model score --model sentiment_zh --dir /tmp/sentiment_zh
    # then copy the directory into weibo_lstm/assets/

`build` writes the model and its validation scores (per corpus, deep and wide part);
`score` the test scores, against TF-IDF + LR trained on the same rows (and, for the
binary splits, SnowNLP and the model a rebuild replaces, `--old`), with
paired-bootstrap 95 % intervals, and the share of the neutral statements
(tests/data/neutral_statements.txt) labelled 中性. Run from the repository root; the
results go to benchmarks/results/.
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
from weibo_lstm.data.emoticons import AUTO_EMOTICON_DROPOUT, drop_emoticons
from weibo_lstm.data.label_sets import (
    EMOTION_TO_POLARITY,
    POLARITY,
    concatenate,
    onto_classes,
    relabel,
)
from weibo_lstm.tasks.wide_part import part_accuracies

RESULTS = ROOT / "benchmarks" / "results"
BINARY_PARTS = tuple(corpora.BINARY)


def data(args, parts):
    """`(train, validation, tests)` of the model `args.model`."""
    if args.model == "sentiment_zh":
        return corpora.polarity(parts, args.pooling, args.emotion_repeats)
    return corpora.emotions(parts, args.emotion_corpora)


def scores(classifier, rows: wl.LabeledTexts, part: str = "model") -> dict:
    """Accuracy and macro-F1 of the classifier (or its deep part) on `rows`, the argmax
    over the classes `rows` can express."""
    rows = onto_classes(rows, classifier.class_names)
    examples = classifier.tokenize(rows)
    probabilities = classifier.evaluator(part).predict(examples)
    mask = examples.expressible_mask(len(classifier.class_names))
    predicted = np.where(mask, probabilities, -1).argmax(1)
    return {
        "rows": len(rows),
        "accuracy": float(np.mean(predicted == rows.labels)),
        "macro_f1": float(f1_score(rows.labels, predicted, average="macro")),
        "predicted": predicted,
    }


def validation_report(classifier, parts, args) -> dict:
    """Per corpus: the wide & deep model's and each part's scores on its validation rows."""
    report = {}
    for name, part in parts.items():
        if args.model == "emotion_zh" and name != "usual":
            continue
        val = part.val
        if args.model == "sentiment_zh":
            val = relabel(val, POLARITY, EMOTION_TO_POLARITY)
        result = {k: v for k, v in scores(classifier, val).items() if k != "predicted"}
        deep = scores(classifier, val, "deep")
        result.update(deep_accuracy=deep["accuracy"], deep_macro_f1=deep["macro_f1"])
        examples = classifier.tokenize(onto_classes(val, classifier.class_names))
        result.update({f"{k}_part": v for k, v in part_accuracies(classifier, examples).items()})
        report[name] = result
        print(name, {k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()})
    return report


def build(args) -> dict:
    parts = corpora.load_parts(args.shared, args.seed)
    train, val, _ = data(args, parts)
    print(f"train {len(train)} rows, validation {len(val)} rows, classes {train.class_names}")
    if args.init:
        classifier = wl.SentimentClassifier.load(args.init)
    else:
        classifier = wl.SentimentClassifier.from_preset(
            "pretrained", class_names=train.class_names, seed=args.seed
        )
    dropout = AUTO_EMOTICON_DROPOUT if args.model == "sentiment_zh" else None
    start = time.perf_counter()
    history = classifier.fit(
        train,
        val,
        emoticon_dropout=dropout,
        wide_options={"max_features": args.max_features},
        epochs=args.epochs,
        seed=args.seed,
    )
    seconds = time.perf_counter() - start
    wide_seconds = classifier.metadata.get("wide_fit_s", 0.0)
    classifier.save(
        args.output,
        metadata={
            "built_by": f"tools/build_shipped_model.py build --model {args.model}",
            "pooling": args.pooling if args.model == "sentiment_zh" else None,
            "emotion_repeats": args.emotion_repeats if args.model == "sentiment_zh" else None,
            "emotion_corpora": args.emotion_corpora if args.model == "emotion_zh" else None,
            "training_rows": len(train),
            "validation_rows": len(val),
            "best_epoch": history.best_epoch,
            "corpora": corpora.describe(parts),
        },
    )
    return {
        "model": args.model,
        "pooling": args.pooling,
        "init": args.init,
        "emotion_corpora": args.emotion_corpora,
        "emotion_repeats": args.emotion_repeats,
        "train_rows": len(train),
        "val_rows": len(val),
        "best_epoch": history.best_epoch,
        "epochs": [
            {k: e[k] for k in ("epoch", "val_accuracy", "val_macro_f1", "epoch_time") if k in e}
            for e in history.epochs
        ],
        "deep_train_s": round(seconds - wide_seconds, 1),
        "wide_fit_s": wide_seconds,
        "model_bytes": sum(p.stat().st_size for p in args.output.rglob("*") if p.is_file()),
        "mixing": list(classifier.wide_and_deep.mixing) if classifier.wide_and_deep else None,
        "validation": validation_report(classifier, parts, args),
    }


def tfidf_baselines(args, parts) -> dict:
    """TF-IDF + LR fitted on the model's training rows (as scikit-learn can: every row a
    class of its own), and for three-class polarity on the emotion corpora alone."""
    if args.model == "emotion_zh":
        usual, _, _ = corpora.emotions(parts)
        baselines = {"tfidf_usual": fit_tfidf(usual, C=2.0)}  # C chosen on validation
        if args.emotion_corpora != ["usual"]:  # and on the model's own training rows
            train, _, _ = corpora.emotions(parts, args.emotion_corpora)
            baselines["tfidf_same_rows"] = fit_tfidf(train, C=2.0)
        return baselines
    emotion_only, _, _ = corpora.polarity(parts, "three")
    naive, _, _ = corpora.polarity(parts, "naive")
    binary = concatenate([parts[n].train for n in BINARY_PARTS])
    binary = drop_emoticons(binary, AUTO_EMOTICON_DROPOUT, seed=args.seed)  # as fit does
    return {
        "tfidf_three_class_data": fit_tfidf(emotion_only),
        "tfidf_naive_pooling": fit_tfidf(naive),
        "tfidf_binary": fit_tfidf(binary),
    }


def baseline_predictions(model, rows: wl.LabeledTexts, class_names) -> np.ndarray:
    """A scikit-learn pipeline's argmax over the classes `rows` can express."""
    rows = onto_classes(rows, class_names)
    probabilities = np.zeros((len(rows), len(class_names)))
    probabilities[:, model.classes_] = model.predict_proba(list(rows.texts))
    mask = np.ones_like(probabilities, bool) if rows.expressible is None else rows.expressible
    return np.where(mask, probabilities, -1).argmax(1)


def score(args) -> dict:
    classifier = wl.SentimentClassifier.load(args.dir)
    names = classifier.class_names
    parts = corpora.load_parts(args.shared, args.seed)
    _, _, tests = data(args, parts)
    if args.model == "sentiment_zh":
        tests["weibo_stripped"] = drop_emoticons(tests["weibo"], 1.0)
    baselines = tfidf_baselines(args, parts)
    old = wl.SentimentClassifier.load(args.old) if args.old else None
    rows = {}
    for name, test in tests.items():
        ours = scores(classifier, test)
        row = {k: v for k, v in ours.items() if k != "predicted"}
        row["deep_part"] = scores(classifier, test, "deep")["accuracy"]
        truth = onto_classes(test, names).labels
        for baseline, model in baselines.items():
            if baseline == "tfidf_binary" and test.expressible is None:
                continue  # a binary model on three-class rows
            predicted = baseline_predictions(model, test, names)
            row[baseline] = float(np.mean(predicted == truth))
            row[f"{baseline}_macro_f1"] = float(f1_score(truth, predicted, average="macro"))
            row[f"vs_{baseline}"] = paired_bootstrap(truth, ours["predicted"], predicted)
        if old is not None and test.expressible is not None:
            previous = old.predict(list(test.texts)).argmax(1)
            row["old"] = float(np.mean(previous == truth))
            row["vs_old"] = paired_bootstrap(truth, ours["predicted"], previous)
        rows[name] = row
        print(name, {k: round(v, 4) for k, v in row.items() if isinstance(v, float)})
    results = {"model": args.model, "dir": str(args.dir), "tests": rows}
    if "中性" in names:
        neutral = corpora.neutral_statements(ROOT)
        said = [names[i] for i in classifier.predict(neutral).argmax(1)]
        results["neutral_statements"] = {
            "statements": len(neutral),
            "share_neutral": said.count("中性") / len(neutral),
            "labels": dict(zip(neutral, said, strict=True)),
        }
        print("neutral statements labelled 中性:", results["neutral_statements"]["share_neutral"])
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("build", "score"))
    parser.add_argument("--model", choices=("sentiment_zh", "emotion_zh"), required=True)
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--output", type=Path, help="build: the model directory to write")
    parser.add_argument("--dir", type=Path, help="score: the model directory to score")
    parser.add_argument("--old", help="score: the model a rebuild replaces (binary splits)")
    parser.add_argument("--pooling", choices=("partial", "naive", "three"), default="partial")
    parser.add_argument("--init", help="build: start from this trained model directory")
    parser.add_argument(
        "--emotion-repeats",
        type=int,
        default=1,
        help="sentiment_zh: the emotion corpora's training rows this many times",
    )
    parser.add_argument(
        "--emotion-corpora",
        nargs="+",
        choices=("usual", "virus"),
        default=["usual"],
        help="emotion_zh: the SMP2020 training files (validation: usual's)",
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-features", type=int, default=150_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--results", type=Path, help="the JSON to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    before = machine_info()
    if args.step == "build":
        if args.output is None:
            parser.error("build needs --output")
        results = build(args)
        default = f"{args.model}_build_{args.pooling if args.model == 'sentiment_zh' else 'usual'}"
    else:
        if args.dir is None:
            parser.error("score needs --dir")
        results = score(args)
        default = f"{args.model}_test"
    path = args.results or RESULTS / f"{default}.json"
    write_json(path, {"machine_before": before, "machine_after": machine_info(), **results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
