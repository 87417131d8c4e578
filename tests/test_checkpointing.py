"""Checkpoints and resuming: in process, and a SIGKILLed CLI run restarted."""

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import trainer_options
from tests.synthetic import write_csv
from tests.test_trainer import SMALL, STRATEGIES, VOCAB, make_examples
from weibo_lstm import CheckpointError, WeiboLSTM
from weibo_lstm.distribute.runtime import Runtime
from weibo_lstm.errors import PREEMPTED, Preempted
from weibo_lstm.training.checkpointing import FitState, TrainingCheckpoint, restore_fit_state
from weibo_lstm.training.trainer import DistributedTrainer


class Crash(Exception):
    pass


class CrashingTrainer(DistributedTrainer):
    """Dies (like a killed process) before its `crash_at`-th `train` call."""

    def __init__(self, crash_at, **kwargs):
        super().__init__(**kwargs)
        self.crash_at, self.calls = crash_at, 0

    def train(self, iterator, num_steps):
        self.calls += 1
        if self.calls == self.crash_at:
            raise Crash
        return super().train(iterator, num_steps)


def new_model(strategy, seed, **kwargs):
    """WeiboLSTM with BatchNorm and dropout (default rates); `seed` picks its init."""
    keras.utils.set_random_seed(seed)
    with strategy.scope():
        model = WeiboLSTM(VOCAB, **(SMALL | kwargs))
        model.build()
    return model


def options(strategy, **kwargs):
    """`(TrainerOptions, ControllerOptions)` at global batch 32."""
    return trainer_options(32, strategy.num_replicas_in_sync, **kwargs)


def fit(trainer_class=DistributedTrainer, *, data, model, strategy, **kwargs):
    """`(trainer, history)` of a `trainer_class` run on `data` with `options(**kwargs)`
    (trainer arguments such as `crash_at` go to the trainer)."""
    extra = {k: kwargs.pop(k) for k in ("crash_at",) if k in kwargs}
    opts, loop = options(strategy, **kwargs)
    trainer = trainer_class(model=model, strategy=strategy, options=opts, **extra)
    train, *validation = data
    return trainer, trainer.fit(train, validation[0] if validation else None, loop)


def values(variables):
    return [np.array(v.numpy()) for v in variables]


@pytest.fixture(scope="module")
def data():
    # 200 = 6 × 32 + 8: 7 steps per epoch, the last one partial.
    return make_examples(200), make_examples(64, seed=3)


@pytest.mark.parametrize(
    "strategy_name", [pytest.param("mirrored_1", marks=pytest.mark.slow), "mirrored_2"]
)
@pytest.mark.slow
def test_resume_mid_epoch_is_bit_exact(data, tmp_path, strategy_name, caplog):
    """Crash in epoch 2, resume into a differently initialised model: same result.

    Measured on CPU with 1 and with 2 replicas: every variable (weights, BatchNorm
    statistics, dropout seed states, Adam moments, iterations) is bit-identical.
    """
    caplog.set_level(logging.INFO, logger="weibo_lstm")
    strategy = STRATEGIES[strategy_name]()
    reference = new_model(strategy, seed=0)
    reference_trainer, expected = fit(data=data, model=reference, strategy=strategy)

    ckpt = dict(checkpoint_dir=str(tmp_path), checkpoint_every_steps=2)
    with pytest.raises(Crash):
        # Loops are cut at the saves: steps 2, 2, 2, 1 (epoch end, ckpt-7), then 1
        # (ckpt-8: epoch 2, step 1); the 6th call dies.
        fit(
            CrashingTrainer,
            crash_at=6,
            data=data,
            model=new_model(strategy, seed=0),
            strategy=strategy,
            **ckpt,
        )
    assert Path(tf.train.latest_checkpoint(tmp_path)).name == "ckpt-8"  # epoch 2, step 1

    resumed = new_model(strategy, seed=99)
    trainer, history = fit(data=data, model=resumed, strategy=strategy, **ckpt)
    assert "Resuming from checkpoint" in caplog.text and "epoch 2, step 1 of 7" in caplog.text
    assert history.resumed_at_step == 8 and history.best_epoch == expected.best_epoch
    for got, want in zip(values(resumed.variables), values(reference.variables), strict=True):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(
        values(trainer.optimizer.variables),
        values(reference_trainer.optimizer.variables),
        strict=True,
    ):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(history.epochs, expected.epochs, strict=True):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
            assert got[key] == pytest.approx(want[key], rel=1e-12), key


#: What every checkpoint's host state has held, in this order (older releases read it).
HOST_STATE_KEYS = [
    *("epoch", "step", "train_stats", "skipped_steps", "epoch_time", "history"),
    *("best_value", "waited", "signature", "has_best", "epochs"),
]


def host_state(prefix):
    reader = tf.train.load_checkpoint(str(prefix))
    (key,) = [k for k in reader.get_variable_to_shape_map() if k.startswith("host_state")]
    return json.loads(reader.get_tensor(key))


@pytest.mark.slow  # two runs of 4 epochs; resume itself is tested fast
def test_a_resumed_run_keeps_counting_its_patience(data, tmp_path):
    """Restarted after the first epoch without a new best, the run ends one epoch later.

    A run that lost its count would wait `patience` more epochs. The checkpoint holds
    the host state it always has (`waited` included), so older releases resume it too.
    """
    strategy = STRATEGIES["mirrored_2"]()
    run = dict(
        **dict(epochs=6, patience=2, learning_rate=5e-2, keep_checkpoints=6),
        **dict(checkpoint_dir=str(tmp_path), checkpoint_every_steps=None),
    )
    reference = new_model(strategy, seed=0)
    _, expected = fit(data=data, model=reference, strategy=strategy, **run)
    # Independent expectation: the first maximum of val_accuracy, then 2 epochs.
    best = int(np.argmax(expected.series("val_accuracy"))) + 1
    stop = len(expected.epochs)
    assert expected.stopped_early and stop == best + 2 < 6 and expected.best_epoch == best

    restart = tmp_path / f"ckpt-{7 * (stop - 1)}"  # the end of the epoch before the stop
    saved = host_state(restart)
    assert list(saved) == HOST_STATE_KEYS
    assert (saved["epoch"], saved["step"], saved["waited"]) == (stop, 0, stop - 1 - best)
    (tmp_path / "checkpoint").write_text(
        f'model_checkpoint_path: "{restart.name}"\nall_model_checkpoint_paths: "{restart.name}"\n'
    )
    resumed = new_model(strategy, seed=99)
    _, history = fit(data=data, model=resumed, strategy=strategy, **run)
    assert history.resumed_at_step == 7 * (stop - 1)
    assert (len(history.epochs), history.best_epoch, history.stopped_early) == (stop, best, True)
    for got, want in zip(values(resumed.variables), values(reference.variables), strict=True):
        np.testing.assert_array_equal(got, want)


def test_the_host_state_round_trips_with_or_without_waited():
    state = FitState(epoch=4, step=2, best_value=0.75, signature={"seed": 1})
    state.history.epochs = [
        {"epoch": e, "val_accuracy": a} for e, a in [(1, 0.5), (2, 0.75), (3, 0.7)]
    ]
    state.history.best_epoch = 2
    saved = {**state.to_json(), "epochs": 6}
    assert list(saved) == HOST_STATE_KEYS and saved["waited"] == 1
    del saved["waited"]  # as written by the releases whose EarlyStopping read the history
    restored = FitState.from_json(json.loads(json.dumps(saved)), best_weights=[])
    assert (restored.epoch, restored.step, restored.waited) == (4, 2, 1)
    assert restored.history == state.history and restored.best_weights is None


@pytest.fixture(scope="module")
def one_epoch_run(data, tmp_path_factory):
    """A finished 1-epoch run with checkpoints: its directory, model and optimizer."""
    strategy = STRATEGIES["mirrored_2"]()
    directory = tmp_path_factory.mktemp("ckpt")
    model = new_model(strategy, seed=0)
    trainer, history = fit(
        data=data, model=model, strategy=strategy, epochs=1, checkpoint_dir=str(directory)
    )
    return directory, trainer, history


def test_restore_fills_every_model_and_optimizer_variable(one_epoch_run, data):
    directory, trained, _ = one_epoch_run
    strategy = trained.strategy
    model = new_model(strategy, seed=7)
    fresh = DistributedTrainer(model=model, strategy=strategy, options=options(strategy)[0])
    fresh.build(data[0], steps_per_epoch=7, epochs=1)
    assert int(fresh.optimizer.iterations.numpy()) == 0
    checkpoint = TrainingCheckpoint(directory, model=model, optimizer=fresh.optimizer)
    state = checkpoint.restore()
    assert (state["epoch"], state["step"], Path(state["path"]).name) == (2, 0, "ckpt-7")
    assert int(fresh.optimizer.iterations.numpy()) == 7
    # Dropout seed states are not in `model.weights`, but they are restored too.
    seeds = [v for v in model.variables if "seed_generator" in v.path]
    assert seeds and len(model.variables) > len(model.weights)
    for got, want in zip(values(model.variables), values(trained.model.variables), strict=True):
        np.testing.assert_array_equal(got, want)
    slots = values(fresh.optimizer.variables)
    assert any(np.abs(s).sum() > 0 for s in slots[1:])  # Adam moments are not zero
    for got, want in zip(slots, values(trained.optimizer.variables), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.slow
def test_finished_run_trains_nothing_and_fresh_starts_over(one_epoch_run, data, caplog):
    caplog.set_level(logging.INFO, logger="weibo_lstm")
    directory, trained, history = one_epoch_run
    strategy = trained.strategy
    again, rerun = fit(
        data=data,
        model=new_model(strategy, seed=5),
        strategy=strategy,
        epochs=1,
        checkpoint_dir=str(directory),
    )
    assert "holds a finished run (1 epochs)" in caplog.text
    assert rerun.epochs == history.epochs and rerun.best_epoch == 1
    assert int(again.optimizer.iterations.numpy()) == 7  # restored, not trained further
    for got, want in zip(values(again.model.weights), values(trained.model.weights), strict=True):
        np.testing.assert_array_equal(got, want)

    _, fresh = fit(
        data=data,
        model=new_model(strategy, seed=5),
        strategy=strategy,
        **dict(epochs=1, checkpoint_dir=str(directory), fresh=True),
    )
    assert fresh.resumed_at_step is None
    assert "Starting fresh: deleted 1 checkpoint(s)" in caplog.text
    assert tf.train.get_checkpoint_state(directory).all_model_checkpoint_paths == [
        str(directory / "ckpt-7")
    ]


def test_checkpoint_of_another_run_is_refused(one_epoch_run, data):
    directory, trained, _ = one_epoch_run
    strategy = trained.strategy
    with pytest.raises(CheckpointError, match=r"global_batch_size 32 \(now 16\)"):
        fit(
            data=data,
            model=new_model(strategy, seed=0),
            strategy=strategy,
            **dict(batch_size=8, checkpoint_dir=str(directory)),
        )
    with pytest.raises(CheckpointError, match="does not match this model and optimizer") as info:
        fit(
            data=data,
            model=new_model(strategy, seed=0, lstm_units=(6,)),
            strategy=strategy,
            checkpoint_dir=str(directory),
        )
    assert "\n" not in str(info.value)


def test_unwritable_checkpoint_dir_is_a_checkpoint_error(data, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    strategy = STRATEGIES["default"]()
    with pytest.raises(CheckpointError, match="could not write a checkpoint") as info:
        fit(
            data=data[:1],
            model=new_model(strategy, seed=0),
            strategy=strategy,
            **dict(epochs=1, checkpoint_dir=str(blocker / "ckpt"), checkpoint_every_steps=1),
        )
    assert "\n" not in str(info.value)


def dense_and_adam():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.Adam()
    optimizer.build(model.trainable_variables)
    return model, optimizer


def test_an_unreadable_newest_checkpoint_falls_back_to_the_one_before(tmp_path, caplog):
    model, optimizer = dense_and_adam()
    checkpoint = TrainingCheckpoint(tmp_path, model=model, optimizer=optimizer)
    checkpoint.save(1, {"epoch": 1, "step": 1})
    checkpoint.save(2, {"epoch": 1, "step": 2})
    (damaged,) = tmp_path.glob("ckpt-2.data-*")
    damaged.write_bytes(damaged.read_bytes()[:10])
    assert checkpoint.restore()["step"] == 1
    assert f"Cannot read checkpoint {tmp_path / 'ckpt-2'}" in caplog.text
    for file in tmp_path.glob("ckpt-1.*"):
        file.unlink()
    with pytest.raises(CheckpointError, match="none of its 2 checkpoint"):
        checkpoint.restore()


def test_the_signature_refuses_a_model_that_would_restore_silently(tmp_path):
    """Variables are restored by position; their shapes are part of the signature."""
    model, optimizer = dense_and_adam()
    checkpoint = TrainingCheckpoint(tmp_path, model=model, optimizer=optimizer)
    signature = {"seed": 1, "variables": ["float32[3, 2]", "float32[2]", "float32[2, 2]"]}
    checkpoint.save(4, FitState(step=4, signature=signature).to_json())
    now = {"seed": 1, "variables": ["float32[3, 2]", "float32[2]"]}
    with pytest.raises(CheckpointError, match=r"the model's variables differ \(3 saved, 2 now\)"):
        restore_fit_state(checkpoint, signature=now, epochs=1, steps_per_epoch=4)
    state = restore_fit_state(checkpoint, signature=signature, epochs=1, steps_per_epoch=4)
    assert state.history.resumed_at_step == 4


def test_non_chief_writes_a_temporary_directory_and_reads_the_chiefs(tmp_path):
    model, optimizer = dense_and_adam()
    chief = TrainingCheckpoint(tmp_path, model=model, optimizer=optimizer)
    chief.save(5, {"epoch": 1, "step": 5})
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec({"worker": ["a:1", "b:2"]}), task_type="worker", task_id=1
    )
    runtime = Runtime(types.SimpleNamespace(cluster_resolver=resolver))
    worker = TrainingCheckpoint(tmp_path, model=model, optimizer=optimizer, runtime=runtime)
    assert worker.restore()["step"] == 5
    worker.save(9, {"epoch": 2, "step": 0})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint",
        "ckpt-5.data-00000-of-00001",
        "ckpt-5.index",
    ]
    assert worker.clear() == 1 and Path(chief.latest).name == "ckpt-5"  # only the chief deletes


# ------------------------------------------------------------------ a real SIGKILL
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cli_command(fast_train_flags):
    kill_args = [
        *(a if a != "4" else "2" for a in fast_train_flags),  # 2 epochs
        *("--steps-per-loop", "2", "--checkpoint-every-steps", "3"),
    ]

    def command(data, out, ckpt, args=kill_args):
        return [
            sys.executable,
            "-m",
            "weibo_lstm.cli.main",
            "train",
            "--data",
            str(data),
            "--output-dir",
            str(out),
            "--checkpoint-dir",
            str(ckpt),
            *args,
        ]

    command.kill_args = kill_args
    return command


def start(command, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def saved_weights(output_dir, read_report):
    row, _ = read_report(output_dir)
    model = keras.models.load_model(Path(row["model_dir"]) / "model.keras")
    return row, model.get_weights()


@pytest.mark.slow
def test_sigkill_then_same_command_resumes_and_matches_an_uninterrupted_run(
    tmp_path, cli_command, read_report
):
    """The must-show test: kill -9 after the first checkpoint, rerun, same weights.

    Measured tolerance on CPU (1 replica, dropout on): 0, the saved models are
    bit-identical, and so are the test metrics in the two reports.
    """
    data = write_csv(tmp_path / "train.csv", 200, seed=4)  # 160 train rows: 10 steps/epoch
    # The uninterrupted reference runs alongside the run that gets killed.
    reference = start(cli_command(data, tmp_path / "ref", tmp_path / "ref_ckpt"), tmp_path)
    victim = start(cli_command(data, tmp_path / "out", tmp_path / "ckpt"), tmp_path)
    index = tmp_path / "ckpt" / "checkpoint"
    deadline = time.monotonic() + 300
    while not index.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    _, killed_err = victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL, killed_err[-3000:]
    assert not list((tmp_path / "out").glob("training_report_*.csv"))  # it did not finish
    assert tf.train.latest_checkpoint(tmp_path / "ckpt") is not None

    resumed = start(cli_command(data, tmp_path / "out", tmp_path / "ckpt"), tmp_path)
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    match = re.search(r"Resuming from checkpoint \S+ckpt-(\d+): epoch (\d+), step (\d+)", err)
    assert match, err[-3000:]
    step = int(match.group(1))
    assert step >= 3 and "training from scratch" not in err
    _, ref_err = reference.communicate(timeout=600)
    assert reference.returncode == 0, ref_err[-3000:]

    row, weights = saved_weights(tmp_path / "out", read_report)
    ref_row, ref_weights = saved_weights(tmp_path / "ref", read_report)
    assert row["resumed_at_step"] == str(step) and ref_row["resumed_at_step"] == ""
    assert row["epochs_run"] == ref_row["epochs_run"] == "2"
    assert row["best_epoch"] == ref_row["best_epoch"]
    for key in ("final_test_loss", "final_test_accuracy", "best_val_loss"):
        assert row[key] == ref_row[key], key
    for got, want in zip(weights, ref_weights, strict=True):
        np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------------ a real SIGTERM
@pytest.mark.slow
def test_sigterm_checkpoints_exits_75_and_the_same_command_matches_an_uninterrupted_run(
    tmp_path, cli_command, read_report
):
    """SIGTERM mid-epoch: a checkpoint at the next loop boundary and exit status 75.

    Periodic checkpoints are off (every 1000 steps; an epoch has 10), so the
    checkpoint found afterwards is the one SIGTERM caused. The rerun ends with the
    same weights as an uninterrupted run, bit for bit.
    """
    data = write_csv(tmp_path / "train.csv", 200, seed=4)  # 160 train rows: 10 steps/epoch
    no_periodic = [*cli_command.kill_args[:-1], "1000"]  # --checkpoint-every-steps 1000

    def command(name):
        return cli_command(data, tmp_path / name, tmp_path / f"{name}_ckpt", no_periodic)

    reference = start(command("ref"), tmp_path)
    log = tmp_path / "victim.err"
    with open(log, "w") as err:
        env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
        victim = subprocess.Popen(
            command("out"), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=err
        )
    deadline = (
        time.monotonic() + 900
    )  # TensorFlow alone took minutes to start on the shared 2-core machine
    while "Training 160 examples" not in log.read_text() and victim.poll() is None:
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.02)
    victim.send_signal(signal.SIGTERM)  # while its first loop of 2 steps runs
    assert victim.wait(timeout=300) == PREEMPTED == 75, log.read_text()[-3000:]
    last = log.read_text().strip().splitlines()[-1]
    match = re.fullmatch(
        r"preempted: SIGTERM: stopped at epoch 1, step (\d+) of 10 and saved checkpoint "
        r"(\S+); run the same command again to resume",
        last,
    )
    assert match, last
    step = int(match.group(1))
    assert 0 < step < 10  # mid-epoch
    assert match.group(2) == tf.train.latest_checkpoint(tmp_path / "out_ckpt")
    assert match.group(2).endswith(f"ckpt-{step}")
    assert not list((tmp_path / "out").glob("training_report_*.csv"))

    resumed = start(command("out"), tmp_path)
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    assert f"Resuming from checkpoint {match.group(2)}: epoch 1, step {step} of 10" in err
    _, ref_err = reference.communicate(timeout=600)
    assert reference.returncode == 0, ref_err[-3000:]

    row, weights = saved_weights(tmp_path / "out", read_report)
    ref_row, ref_weights = saved_weights(tmp_path / "ref", read_report)
    assert row["resumed_at_step"] == str(step) and row["epochs_run"] == ref_row["epochs_run"]
    for key in ("best_epoch", "final_test_loss", "final_test_accuracy", "best_val_loss"):
        assert row[key] == ref_row[key], key
    for got, want in zip(weights, ref_weights, strict=True):
        np.testing.assert_array_equal(got, want)


class SigtermTrainer(DistributedTrainer):
    """Sends itself SIGTERM during its `sigterm_at`-th `train` call (as a scheduler would)."""

    def __init__(self, sigterm_at, **kwargs):
        super().__init__(**kwargs)
        self.sigterm_at, self.calls = sigterm_at, 0

    def train(self, iterator, num_steps):
        self.calls += 1
        if self.calls == self.sigterm_at:
            os.kill(os.getpid(), signal.SIGTERM)
        return super().train(iterator, num_steps)


@pytest.mark.parametrize("checkpointed", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_sigterm_in_process_saves_at_the_loop_boundary_and_restores_the_handler(
    data, tmp_path, checkpointed
):
    strategy = STRATEGIES["mirrored_2"]()
    ckpt = dict(checkpoint_dir=str(tmp_path), checkpoint_every_steps=None) if checkpointed else {}
    opts, loop = options(strategy, **ckpt)
    trainer = SigtermTrainer(
        sigterm_at=2, model=new_model(strategy, seed=0), strategy=strategy, options=opts
    )
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Preempted) as info:
        trainer.fit(*data, loop)
    # steps_per_loop 3: the signal arrives in the second loop, which ends at step 6.
    assert int(trainer.optimizer.iterations.numpy()) == 6
    assert signal.getsignal(signal.SIGTERM) is before
    assert info.value.exit_status == PREEMPTED and "\n" not in str(info.value)
    assert "stopped at epoch 1, step 6 of 7" in str(info.value)
    if checkpointed:
        assert (
            info.value.checkpoint
            == str(tmp_path / "ckpt-6")
            == tf.train.latest_checkpoint(tmp_path)
        )
    else:
        assert info.value.checkpoint is None and "nothing saved" in str(info.value)
