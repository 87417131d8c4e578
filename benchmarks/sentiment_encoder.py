"""Builds the shipped sentiment encoder: the `pretrained` preset fine-tuned on pooled labels.

The language-model encoder (`pretrained_char_lm`) knows Chinese characters but not
sentiment. This script fine-tunes it as a classifier on the pooled labelled training
splits of every corpus the project evaluates on and keeps its encoder (embeddings
and LSTMs; the head is dropped), so that a classifier on a user's corpus starts
from an encoder that has already learned what praise and complaint look like.

Data hygiene is `benchmarks/pretrain_preset.py`'s: the corpora are split exactly as
the benchmarks and the example split them (`split_dataset(seed=42)`), and every
training text whose normalised form (raw or emoticon-stripped) equals that of any
validation or test text of any corpus is removed; repeated texts are kept once. The
pooled validation splits choose the epoch. Test splits are used for nothing. As in
the shipped model, emoticons are removed from a seeded half of the training posts.

    python benchmarks/sentiment_encoder.py --output /tmp/sentiment_char_encoder
    # then copy it into weibo_lstm/assets/sentiment_char_encoder
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
from machine import machine_info  # benchmarks/machine.py
from pretrain_preset import (
    SHARED,
    SPLIT_SEED,
    corpus_digest,
    evaluation_keys,
    normalized_keys,
    splits,
)

import weibo_lstm as wl
from weibo_lstm.data.emoticons import drop_emoticons
from weibo_lstm.models.encoder import save_encoder


def labelled_pool(parts: dict, banned: set[str], index: int) -> tuple[wl.LabeledTexts, dict]:
    """Part `index` (0 train, 1 validation) of every corpus, pooled: texts in `banned`
    removed, repeated texts kept once (the first label), with counts per corpus."""
    texts, labels, seen, stats = [], [], set(), {}
    for name, split in parts.items():
        part = split[index]
        raw = normalized_keys(part.texts, False)
        stripped = normalized_keys(part.texts, True)
        removed = duplicates = 0
        for text, label, key, key_stripped in zip(
            part.texts, part.labels, raw, stripped, strict=True
        ):
            if key in banned or key_stripped in banned:
                removed += 1
            elif key in seen:
                duplicates += 1
            else:
                seen.add(key)
                texts.append(text)
                labels.append(int(label))
        stats[name] = {"texts": len(part), "removed_as_held_out": removed, "duplicates": duplicates}
    return wl.LabeledTexts(tuple(texts), np.asarray(labels, np.int32), "pooled"), stats


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--output", type=Path, required=True, help="encoder directory to write")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--emoticon-dropout", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--limit", type=int, help="smoke test: this many training rows")
    args = parser.parse_args(argv)
    before = machine_info()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("absl").setLevel(logging.WARNING)

    parts = splits(args.shared)
    test_keys = evaluation_keys({n: (None, p[2], p[2]) for n, p in parts.items()})
    train, train_stats = labelled_pool(parts, evaluation_keys(parts), 0)
    val, val_stats = labelled_pool(parts, test_keys, 1)
    if args.limit:
        keep = np.sort(np.random.default_rng(0).permutation(len(train))[: args.limit])
        train = train.subset(keep)
    print(f"train {len(train)} rows, validation {len(val)} rows", flush=True)

    classifier = wl.SentimentClassifier.from_preset("pretrained")
    options = classifier.training_options(
        epochs=args.epochs, emoticon_dropout=args.emoticon_dropout, seed=args.seed
    )
    train = drop_emoticons(train, options.emoticon_dropout, seed=options.seed)
    start = time.perf_counter()
    history = classifier.fit(
        classifier.tokenize(train), classifier.tokenize(val), options=options, wide=False
    )
    train_time = time.perf_counter() - start
    manifest = {
        "built_by": "benchmarks/sentiment_encoder.py",
        "started_from": "pretrained_char_lm",
        "split_seed": SPLIT_SEED,
        "train": train_stats,
        "validation": val_stats,
        "train_rows": len(train),
        "validation_rows": len(val),
        "train_sha256": corpus_digest(train.texts),
        "emoticon_dropout": options.emoticon_dropout,
        "epochs": [
            {k: e[k] for k in ("epoch", "val_accuracy", "epoch_time") if k in e}
            for e in history.epochs
        ],
        "best_epoch": history.best_epoch,
        "train_s": round(train_time, 1),
        "machine_before": before,
        "machine_after": machine_info(),
    }
    save_encoder(args.output, classifier.backbone, classifier.tokenizer, metadata=manifest)
    (args.output / "corpus_manifest.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False, default=str), "utf-8"
    )
    print(json.dumps(manifest, indent=2, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
