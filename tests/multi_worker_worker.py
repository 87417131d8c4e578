"""One process of the multi-worker tests: train a small WeiboLSTM, save what it ended with.

Run by `tests/test_multi_worker.py` in a subprocess, because MultiWorkerMirroredStrategy
must be created before TensorFlow initialises its devices. With `TF_CONFIG` naming a
cluster it is one worker of that cluster; without, it is the single-process reference
(the default one-device strategy with the whole global batch on one replica).

    python tests/multi_worker_worker.py --initial init.npz --output out/ [--epochs 3] [--batch-norm]

Writes `<output>/weights_<task>.npz` (final weights, validation predictions and
metrics) and, on the chief only, the run's training report.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from weibo_lstm import WeiboLSTM
from weibo_lstm.distribute.runtime import Runtime
from weibo_lstm.jobs import report as reporting
from weibo_lstm.preprocessing.tokenized_examples import TokenizedExamples
from weibo_lstm.training.trainer import ControllerOptions, DistributedTrainer, TrainerOptions

VOCAB = 30
MODEL = dict(
    embedding_dim=8, lstm_units=(8, 4), dense_units=4, batch_norm=False, dropout=0.0, l2=1e-3
)


def make_examples(n: int, seed: int) -> TokenizedExamples:
    """Label 1 iff token 3 occurs (the task of tests/test_trainer.py)."""
    rng = np.random.default_rng(seed)
    rows = [rng.integers(2, VOCAB, rng.integers(1, 12)).astype(np.int32) for _ in range(n)]
    labels = np.array([int(3 in r) for r in rows], np.int32)
    return TokenizedExamples(np.concatenate(rows), np.cumsum([0] + [len(r) for r in rows]), labels)


def build_model(strategy, initial: str | None = None, batch_norm: bool = False):
    """The small model; with `batch_norm`, synchronised BatchNorm after each LSTM."""
    extra = dict(batch_norm=True, synchronized_batch_norm=True) if batch_norm else {}
    with strategy.scope():
        model = WeiboLSTM(VOCAB, **{**MODEL, **extra})
        model.build()
        if initial:
            with np.load(initial) as saved:
                model.set_weights([saved[f"w{i}"] for i in range(len(saved.files))])
    return model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--initial", required=True, help="npz of initial weights w0, w1, ...")
    parser.add_argument("--output", required=True, help="directory for weights and the report")
    parser.add_argument("--global-batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-rows", type=int, default=200)
    parser.add_argument("--steps-per-loop", type=int, default=3)
    parser.add_argument("--startup-timeout", type=float, default=120.0)
    parser.add_argument(
        "--batch-norm",
        action="store_true",
        help="synchronised BatchNorm, length buckets and precise BatchNorm statistics",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    runtime = Runtime.create(startup_timeout=args.startup_timeout)
    strategy, replicas = runtime.strategy, runtime.num_replicas
    train, val = make_examples(args.train_rows, seed=0), make_examples(50, seed=1)
    trainer = DistributedTrainer(
        model=build_model(strategy, args.initial, batch_norm=args.batch_norm),
        strategy=strategy,
        options=TrainerOptions(
            batch_size=args.global_batch // replicas,
            learning_rate=2e-2,
            lr_scaling="none",
            warmup_epochs=1,
        ),
    )
    loop = ControllerOptions(
        epochs=args.epochs,
        steps_per_loop=args.steps_per_loop,
        monitor="val_loss",
        mode="min",
        quiet=True,
        precise_bn_batches=4,
    )
    history = trainer.fit(train, val, loop)
    metrics = trainer.evaluate(val)
    probabilities = trainer.predict(val)
    Path(args.output).mkdir(parents=True, exist_ok=True)
    np.savez(
        f"{args.output}/weights_{runtime.task}.npz",
        probabilities=probabilities,
        best_epoch=history.best_epoch,
        losses=history.series("loss"),
        **{f"metric_{k}": v for k, v in metrics.items()},
        **{f"w{i}": w for i, w in enumerate(trainer.model.get_weights())},
    )
    _, as_dict = reporting.classification_report(val.labels, probabilities.argmax(1))
    row = {
        "best_epoch": history.best_epoch,
        **{f"best_val_{k[4:]}": v for k, v in history.best_metrics.items() if k[:4] == "val_"},
        **{f"final_test_{k}": v for k, v in metrics.items()},
        **reporting.report_columns(as_dict),
        "replicas": replicas,
        "written_by": runtime.task,
    }
    with runtime.output_dir(args.output) as out:
        reporting.write_report(out, row)
    runtime.barrier()
    return 0


if __name__ == "__main__":
    sys.exit(main())
