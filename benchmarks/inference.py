"""Inference speed: batch posts/s and single-post latency, SavedModel vs in-process Keras.

Batch mode predicts every post of `--data` (length-bucketed batches, the way
`weibo-lstm predict` does it); single-post mode sends `--latency-posts` posts one
at a time. Variants are interleaved (each repetition runs every variant once) and
medians reported, so a neighbour's burst on a shared machine hits all of them.
Prints a markdown table and writes JSON with the machine and versions.

Without `--model`, trains the default WeiboLSTM (the seed architecture) for one
epoch on a subset, just so the weights are not random; speed does not depend on
accuracy. `--model weibo_lstm/assets/sentiment_zh` measures the shipped model.

Example (from the repository root):

    python -m benchmarks.inference --data ../shared/data/weibo_senti_100k_sample.csv
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from benchmarks.machine import machine_info
from weibo_lstm import LabeledTexts, Predictor, SentimentClassifier, Tokenizer, WeiboLSTM, load_csv
from weibo_lstm.models.layers.batch_norm import has_batch_norm
from weibo_lstm.preprocessing.tokenized_examples import TokenizedExamples
from weibo_lstm.serving.export import export
from weibo_lstm.training.trainer import ControllerOptions, DistributedTrainer, TrainerOptions

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="labelled CSV, e.g. the weibo sample")
    parser.add_argument("--model", help="a training output model directory (default: train one)")
    parser.add_argument("--limit", type=int, help="use the first N posts for batch mode")
    parser.add_argument(
        "--compare-posts",
        type=int,
        default=10000,
        help="the slow reference variants (predict_on_batch, no bucketing) run on a "
        "random subset of this many posts",
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repetitions", type=int, default=3, help="batch-mode passes per variant")
    parser.add_argument("--latency-posts", type=int, default=500)
    parser.add_argument("--train-posts", type=int, default=4000, help="when training a model")
    parser.add_argument("--max-tokens", type=int, default=5000, help="when training a model")
    parser.add_argument(
        "--json", default=str(ROOT / "benchmarks" / "results" / "inference.json"), help="output"
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def train_default_model(data: LabeledTexts, args) -> tuple[keras.Model, Tokenizer]:
    """The seed architecture, one short epoch; the vocabulary is `--max-tokens` ids."""
    tokenizer = Tokenizer(max_tokens=args.max_tokens)
    tokenizer.adapt(data.texts)
    rng = np.random.default_rng(args.seed)
    subset = data.subset(rng.permutation(len(data))[: args.train_posts])
    model = WeiboLSTM(tokenizer.vocabulary_size)
    options = TrainerOptions(
        batch_size=64,
        learning_rate=2e-3,
        warmup_epochs=0.2,
        bucket_by_length=not has_batch_norm(model),
    )
    trainer = DistributedTrainer(model=model, options=options)
    loop = ControllerOptions(epochs=1, quiet=True)
    trainer.fit(TokenizedExamples.from_texts(tokenizer, subset), None, loop)
    return model, tokenizer


def predict_on_batch_serve(model: keras.Model, tokenizer: Tokenizer):
    """The plain Keras route: tokenizer eagerly, then `model.predict_on_batch`."""

    def serve(texts):
        probabilities = model.predict_on_batch(tokenizer(texts, pad_to_max_length=False))
        return {
            "positive_probability": probabilities[:, 1],
            "probabilities": probabilities,
            "label_id": probabilities.argmax(-1).astype(np.int32),
        }

    return serve


def time_batch(predictor: Predictor, texts: list[str]) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    outputs = predictor.predict(texts)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall_s": wall, "cpu_s": cpu, "outputs": outputs}


def time_single(serves: dict, posts: list[str]) -> dict[str, list[float]]:
    """Milliseconds per single-post request (string in → numpy probabilities out)."""
    latencies = {name: [] for name in serves}
    names = list(serves)
    for i, post in enumerate(posts):
        for name in names[i % len(names) :] + names[: i % len(names)]:  # rotate the order
            start = time.perf_counter()
            np.asarray(serves[name](tf.constant([post]))["probabilities"])
            latencies[name].append((time.perf_counter() - start) * 1e3)
    return latencies


def markdown_table(result: dict) -> str:
    lines = [
        "| variant | posts | batch posts/s (median) | range | posts per CPU-s "
        "| single post p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in result["variants"].items():
        batch = row.get("batch")
        single = row.get("single")
        lines.append(
            f"| {name} | "
            + (
                f"{batch['posts']:,} | {batch['posts_per_s']:,.0f} | "
                f"{batch['min']:,.0f}–{batch['max']:,.0f} | "
                f"{batch['posts_per_cpu_s']:,.0f} | "
                if batch
                else "– | – | – | – | "
            )
            + (f"{single['p50_ms']:.1f} | {single['p99_ms']:.1f} |" if single else "– | – |")
        )
    return "\n".join(lines)


def main(argv=None) -> dict:
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    load_before = os.getloadavg()
    data = load_csv(args.data)
    with tempfile.TemporaryDirectory(prefix="weibo_lstm_bench_") as work:
        if args.model:
            model_dir = Path(args.model)
        else:
            model, tokenizer = train_default_model(data, args)
            model_dir = Path(work) / "model"
            SentimentClassifier(tokenizer=tokenizer, model=model).save(
                model_dir, metadata={"benchmark": "inference"}
            )
        # Both sides from disk, as `weibo-lstm predict` would load them.
        loaded = SentimentClassifier.load(model_dir)
        model, tokenizer = loaded.model, loaded.tokenizer
        saved_model = export(model, tokenizer, Path(work) / "serving")

        common = dict(batch_size=args.batch_size)
        exported = Predictor.from_saved_model(saved_model, **common)
        in_process = Predictor.from_keras(model, tokenizer, **common)
        texts = list(data.texts[: args.limit])
        rng = np.random.default_rng(args.seed)
        subset = np.sort(rng.permutation(len(texts))[: args.compare_posts])
        everything = np.arange(len(texts))
        # name -> (predictor, indices of the posts it predicts)
        batch_variants = {
            "SavedModel `serve`": (exported, everything),
            "Keras in-process, tf.function": (in_process, everything),
            "Keras in-process, predict_on_batch": (
                Predictor(predict_on_batch_serve(model, tokenizer), **common),
                subset,
            ),
            "SavedModel `serve`, no bucketing": (
                Predictor.from_saved_model(saved_model, bucket_by_length=False, **common),
                subset,
            ),
        }
        for predictor, _ in batch_variants.values():  # trace and warm up
            predictor.predict(texts[: 2 * args.batch_size])

        runs = {name: [] for name in batch_variants}
        outputs = {}
        for rep in range(args.repetitions):
            for name, (predictor, indices) in batch_variants.items():
                run = time_batch(predictor, [texts[i] for i in indices])
                outputs[name] = run.pop("outputs")["probabilities"]
                run["posts"] = len(indices)
                runs[name].append(run)
                print(
                    f"rep {rep + 1}/{args.repetitions} {name}: "
                    f"{len(indices) / run['wall_s']:,.0f} posts/s",
                    file=sys.stderr,
                    flush=True,
                )

        rng = np.random.default_rng(args.seed)
        posts = [data.texts[i] for i in rng.choice(len(data), args.latency_posts, replace=False)]
        single_serves = {
            "SavedModel `serve`": exported.serve,
            "Keras in-process, tf.function": in_process.serve,
            "Keras in-process, predict_on_batch": batch_variants[
                "Keras in-process, predict_on_batch"
            ][0].serve,
        }
        for serve in single_serves.values():
            for post in posts[:10]:  # warm up
                serve(tf.constant([post]))
        latencies = time_single(single_serves, posts)

    reference = outputs["Keras in-process, tf.function"]
    lengths = np.array([len(t) for t in texts])
    result = {
        "benchmark": "inference",
        "command": " ".join(
            [
                "python",
                "-m",
                "benchmarks.inference",
                *map(shlex.quote, sys.argv[1:] if argv is None else argv),
            ]
        ),
        "machine": machine_info(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "data": {
            "path": str(args.data),
            "posts": len(texts),
            "mean_chars": float(lengths.mean()),
            "median_chars": float(np.median(lengths)),
        },
        "model": {
            "dir": str(args.model) if args.model else "trained by the benchmark (1 epoch)",
            "config": {
                k: v
                for k, v in model.get_config().items()
                if k not in ("name", "trainable", "dtype")
            },
            "vocabulary_size": tokenizer.vocabulary_size,
            "max_length": tokenizer.max_length,
            "parameters": int(model.count_params()),
        },
        "batch_size": args.batch_size,
        "repetitions": args.repetitions,
        "latency_posts": args.latency_posts,
        "variants": {},
    }
    for name, (_, indices) in batch_variants.items():
        rates = [len(indices) / r["wall_s"] for r in runs[name]]
        per_cpu = [len(indices) / r["cpu_s"] for r in runs[name]]
        result["variants"][name] = {
            "batch": {
                "posts": len(indices),
                "posts_per_s": float(np.median(rates)),
                "min": float(min(rates)),
                "max": float(max(rates)),
                "posts_per_cpu_s": float(np.median(per_cpu)),
                "runs": runs[name],
                "max_abs_diff_vs_keras": float(np.abs(outputs[name] - reference[indices]).max()),
            }
        }
        if name in latencies:
            ms = np.array(latencies[name])
            result["variants"][name]["single"] = {
                "p50_ms": float(np.percentile(ms, 50)),
                "p90_ms": float(np.percentile(ms, 90)),
                "p99_ms": float(np.percentile(ms, 99)),
                "mean_ms": float(ms.mean()),
            }

    print(markdown_table(result))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=2, default=str)
    print(f"wrote {args.json}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
