"""What the wide part costs at inference: SavedModel batch posts/s, wide & deep vs deep.

The shipped model (or `--model`, a wide & deep model directory) is exported twice:
whole, and its deep part alone (what `--no-wide` trains). Both SavedModels predict
the same posts with `Predictor` (length-bucketed batches, as `weibo-lstm predict`
does); the variants alternate within each repetition and medians are reported, with
the machine's load before and after.

    python benchmarks/wide_and_deep_cost.py --data ../shared/data/weibo_senti_100k_sample.csv
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from machine import machine_info, write_json  # benchmarks/machine.py

import weibo_lstm as wl
from weibo_lstm.models.presets import trained_model_path
from weibo_lstm.serving.export import export

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default=str(trained_model_path()))
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument(
        "--output", default=str(ROOT / "benchmarks" / "results" / "wide_and_deep_cost.json")
    )
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    classifier = wl.SentimentClassifier.load(args.model)
    if not isinstance(classifier.backbone, wl.HybridClassifier):
        parser.error(f"{args.model} is not a wide & deep model")
    data = wl.load_csv(args.data)
    rng = np.random.default_rng(0)
    texts = [data.texts[i] for i in rng.permutation(len(data))[: args.posts]]
    predictors = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in (("wide & deep", classifier.backbone), ("deep part", classifier.deep)):
            path = export(model, classifier.tokenizer, Path(tmp) / name.replace(" ", "_"))
            predictors[name] = wl.Predictor.from_saved_model(path)
            predictors[name].predict(texts[:512])  # trace every bucket shape once
        rates = {name: [] for name in predictors}
        for repetition in range(args.repetitions):
            order = list(predictors)[:: 1 if repetition % 2 == 0 else -1]
            for name in order:
                start = time.perf_counter()
                predictors[name].predict(texts)
                rates[name].append(len(texts) / (time.perf_counter() - start))
    medians = {name: statistics.median(r) for name, r in rates.items()}
    result = {
        "machine": machine_info(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "model": args.model,
        "posts": len(texts),
        "posts_per_s": rates,
        "median_posts_per_s": medians,
        "ratio_wide_and_deep_to_deep": medians["wide & deep"] / medians["deep part"],
    }
    write_json(args.output, result)
    for name, median in medians.items():
        print(
            f"| {name} | {median:,.0f} posts/s | {min(rates[name]):,.0f}–{max(rates[name]):,.0f} |"
        )
    print(
        f"ratio {result['ratio_wide_and_deep_to_deep']:.3f}; load {load_before[0]:.2f} before, "
        f"{result['load_after'][0]:.2f} after"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
