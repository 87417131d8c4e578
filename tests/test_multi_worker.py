"""MultiWorkerMirroredStrategy on a real cluster: worker processes on 127.0.0.1.

Every process here is a subprocess (the strategy must exist before TensorFlow
initialises its devices, and this test process already has two logical CPUs), with a
timeout, and is killed at teardown whatever happens.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.multi_worker_worker import build_model
from tests.synthetic import write_csv
from weibo_lstm.jobs import report

pytestmark = pytest.mark.multiworker

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "multi_worker_worker.py"
CLI = [sys.executable, "-m", "weibo_lstm.cli.main", "train"]
FAST = ["--batch-size", "16", "--max-length", "24", "--learning-rate", "1e-2", "--quiet"]
FAST += ["--warmup-epochs", "0.5", "--preset", "best", "--startup-timeout", "120"]


def free_ports(n: int) -> list[int]:
    """Ports the kernel has just handed out, so nothing else was listening on them."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def tf_config(ports: list[int], index: int) -> str:
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})


class Processes:
    """Subprocesses with their output in files; `kill_all` ends the leftovers."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str], *, cluster: tuple | None = None, **env):
        environment = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
        environment.update(PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", **env)
        if cluster is not None:
            environment["TF_CONFIG"] = tf_config(*cluster)
        with (
            open(self.directory / f"{name}.out", "w") as out,
            open(self.directory / f"{name}.err", "w") as err,
        ):
            self.running[name] = subprocess.Popen(
                args, cwd=self.directory, env=environment, stdout=out, stderr=err
            )
        return self.running[name]

    def stderr(self, name: str) -> str:
        return (self.directory / f"{name}.err").read_text(errors="replace")

    def wait(self, name: str, timeout: float) -> int:
        try:
            return self.running[name].wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill_all()
            pytest.fail(f"{name} still running after {timeout} s:\n{self.stderr(name)[-3000:]}")

    def wait_for_log(self, name: str, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr(name):
            if self.running[name].poll() is not None or time.monotonic() > deadline:
                self.kill_all()
                pytest.fail(f"{name} never logged {text!r}:\n{self.stderr(name)[-3000:]}")
            time.sleep(0.2)

    def kill_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.kill()  # SIGKILL: TensorFlow's preemption notifier takes SIGTERM
                process.wait(30)


@pytest.fixture
def processes(tmp_path):
    started = Processes(tmp_path)
    yield started
    started.kill_all()


def read_report(directory: Path) -> tuple[dict, list[str]]:
    (path,) = sorted(directory.glob("training_report_*.csv"))
    with open(path, encoding="utf-8-sig", newline="") as f:
        header, values = list(csv.reader(f))
    return dict(zip(header, values, strict=True)), header


def train(data: Path, output_dir: Path, *extra: str) -> list[str]:
    return [*CLI, "--data", str(data), "--output-dir", str(output_dir), *FAST, *extra]


def max_difference(a, b) -> float:
    weights = sorted(k for k in a.files if k.startswith("w"))
    return max(float(np.abs(a[k] - b[k]).max()) for k in weights)


@pytest.mark.parametrize(
    "batch_norm",
    [pytest.param(False, id="plain"), pytest.param(True, id="batch_norm", marks=pytest.mark.slow)],
)
@pytest.mark.slow
def test_two_workers_train_like_one_process_with_the_same_global_batch(
    processes, tmp_path, batch_norm
):
    """2 workers × 1 replica × 16 == 1 replica × 32: weights, metrics, predictions.

    With `batch_norm`: synchronised BatchNorm trained on length buckets, its moving
    statistics recomputed (precise BatchNorm) before each validation.
    """
    initial = tmp_path / "initial.npz"
    model = build_model(tf.distribute.get_strategy(), batch_norm=batch_norm)
    np.savez(initial, **{f"w{i}": w for i, w in enumerate(model.get_weights())})
    cluster, single = tmp_path / "cluster", tmp_path / "single"
    ports = free_ports(2)
    command = [sys.executable, str(WORKER), "--initial", str(initial)]
    command += ["--batch-norm"] if batch_norm else []
    for index in (0, 1):
        processes.start(
            f"worker_{index}", [*command, "--output", str(cluster)], cluster=(ports, index)
        )
    processes.start("single", [*command, "--output", str(single)])
    for name in ("worker_0", "worker_1", "single"):
        assert processes.wait(name, timeout=300) == 0, processes.stderr(name)[-3000:]

    chief, other = (
        np.load(cluster / "weights_worker_0.npz"),
        np.load(cluster / "weights_worker_1.npz"),
    )
    reference = np.load(single / "weights_local.npz")
    assert max_difference(chief, other) == 0.0
    # Measured: 2.4e-7 after 21 steps (float32 sums of two half-batches in another order).
    assert max_difference(chief, reference) <= 1e-5
    assert max_difference(chief, np.load(initial)) > 1e-3  # training moved the weights
    assert int(chief["best_epoch"]) == int(other["best_epoch"]) == int(reference["best_epoch"])
    np.testing.assert_allclose(chief["losses"], reference["losses"], rtol=1e-5)
    for key in ("metric_loss", "metric_accuracy", "probabilities"):
        np.testing.assert_array_equal(chief[key], other[key])
        np.testing.assert_allclose(chief[key], reference[key], atol=1e-5)

    row, _ = read_report(cluster)  # exactly one report, by the chief
    assert row["written_by"] == "worker_0" and row["replicas"] == "2"


@pytest.mark.slow
def test_cli_train_on_two_workers_writes_one_complete_report(processes, tmp_path):
    data = write_csv(tmp_path / "train.csv", 400, seed=1)
    out = tmp_path / "out"
    ports = free_ports(2)
    for index in (0, 1):
        scratch = tmp_path / f"tmp_{index}"
        scratch.mkdir()
        processes.start(
            f"worker_{index}",
            train(data, out, "--epochs", "2"),
            cluster=(ports, index),
            TMPDIR=str(scratch),
        )
    for index in (0, 1):
        assert processes.wait(f"worker_{index}", timeout=300) == 0, processes.stderr(
            f"worker_{index}"
        )[-3000:]

    row, header = read_report(out)  # exactly one report
    assert header[:27] == list(report.SEED_COLUMNS)
    assert all(row[column] != "" for column in report.SEED_COLUMNS)
    assert (row["replicas"], row["workers"], row["global_batch_size"]) == ("2", "2", "32")
    assert int(row["report_积极_support"]) + int(row["report_消极_support"]) == 40
    assert float(row["final_test_accuracy"]) == pytest.approx(float(row["report_accuracy"]))
    assert (
        Path(row["model_dir"]).parent == out and (Path(row["model_dir"]) / "model.keras").is_file()
    )
    assert len(list(out.glob("training_curves_*.png"))) == 1
    assert len(list(out.rglob("events.out.tfevents.*"))) == 1  # TensorBoard: chief only
    assert "Report:" in processes.stderr("worker_0") and "Report:" not in processes.stderr(
        "worker_1"
    )
    # The non-chief wrote its copies to a temporary directory and removed it.
    assert not any((tmp_path / "tmp_1").iterdir())


@pytest.mark.parametrize("victim", [1, 0], ids=["worker_killed", "chief_killed"])
@pytest.mark.slow
def test_a_killed_worker_stops_the_other_with_a_clear_error(processes, tmp_path, victim):
    data = write_csv(tmp_path / "train.csv", 400, seed=1)
    ports = free_ports(2)
    for index in (0, 1):
        processes.start(
            f"worker_{index}",
            train(data, tmp_path / "out", "--epochs", "500"),
            cluster=(ports, index),
        )
    survivor = f"worker_{1 - victim}"
    processes.wait_for_log(survivor, "epoch 1/500", timeout=180)
    processes.running[f"worker_{victim}"].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    code = processes.wait(survivor, timeout=120)
    elapsed = time.monotonic() - killed

    last = processes.stderr(survivor).strip().splitlines()[-1]
    assert code == 3, processes.stderr(survivor)[-3000:]
    lost = "stopped sending heartbeats|is unreachable"
    assert re.match(rf"error: {survivor}: worker_{victim} ({lost}) .* Restart every worker", last)
    # Measured on 2 busy cores: 1-17 s (10 s heartbeat timeout, or a closed connection).
    assert elapsed < 60, f"{survivor} needed {elapsed:.0f} s to notice"
    print(f"{survivor} exited {elapsed:.1f} s after worker_{victim} was killed: {last}")


@pytest.mark.slow
def test_after_a_worker_is_killed_restarting_both_resumes_from_the_checkpoint(processes, tmp_path):
    """Kill worker 1 after the chief's first checkpoint; the same two commands resume."""
    data = write_csv(tmp_path / "train.csv", 400, seed=1)  # 320 train rows: 10 steps/epoch
    checkpoints = tmp_path / "ckpt"  # one machine: the chief's directory is shared
    command = train(
        data,
        tmp_path / "out",
        "--epochs",
        "3",
        "--checkpoint-dir",
        str(checkpoints),
        "--checkpoint-every-steps",
        "4",
    )
    ports = free_ports(2)
    for index in (0, 1):
        processes.start(f"worker_{index}", command, cluster=(ports, index))
    deadline = time.monotonic() + 240
    while tf.train.latest_checkpoint(checkpoints) is None:
        if time.monotonic() > deadline or processes.running["worker_0"].poll() is not None:
            processes.kill_all()
            pytest.fail(f"no checkpoint:\n{processes.stderr('worker_0')[-3000:]}")
        time.sleep(0.05)
    processes.running["worker_1"].send_signal(signal.SIGKILL)
    assert processes.wait("worker_0", timeout=120) == 3, processes.stderr("worker_0")[-3000:]
    assert not list((tmp_path / "out").glob("training_report_*.csv"))

    # Worker 1 cannot see the chief's checkpoints: both refuse instead of diverging.
    elsewhere = [str(tmp_path / "elsewhere") if a == str(checkpoints) else a for a in command]
    ports = free_ports(2)  # the old ports may linger in TIME_WAIT
    for index, args in enumerate((command, elsewhere)):
        processes.start(f"worker_{index}_unshared", args, cluster=(ports, index))
    for index in (0, 1):
        name = f"worker_{index}_unshared"
        assert processes.wait(name, timeout=300) == 2, processes.stderr(name)[-3000:]
        last = processes.stderr(name).strip().splitlines()[-1]
        assert "restored different checkpoints" in last, last

    ports = free_ports(2)
    for index in (0, 1):
        processes.start(f"worker_{index}_again", command, cluster=(ports, index))
    steps = []
    for index in (0, 1):
        name = f"worker_{index}_again"
        assert processes.wait(name, timeout=300) == 0, processes.stderr(name)[-3000:]
        match = re.search(r"Resuming from checkpoint \S+ckpt-(\d+)", processes.stderr(name))
        assert match, processes.stderr(name)[-3000:]
        steps.append(int(match.group(1)))
    assert steps[0] == steps[1] >= 4  # both restored the chief's checkpoint
    row, _ = read_report(tmp_path / "out")
    assert row["resumed_at_step"] == str(steps[0]) and row["epochs_run"] == "3"
    assert row["workers"] == "2"


@pytest.mark.slow
def test_a_worker_that_never_joins_ends_the_wait_after_the_startup_timeout(processes, tmp_path):
    """Alone in a 2-worker cluster: worker 0 waits in a collective, worker 1 to register."""
    data = write_csv(tmp_path / "train.csv", 50, seed=1)
    for index in (0, 1):
        processes.start(
            f"worker_{index}",
            train(data, tmp_path / "out", "--startup-timeout", "5"),
            cluster=(free_ports(2), index),  # a cluster of its own; the peer never starts
        )
    for index in (0, 1):
        name = f"worker_{index}"
        assert processes.wait(name, timeout=120) == 3
        last = processes.stderr(name).strip().splitlines()[-1]
        assert last.startswith(f"error: {name}: the cluster did not come up within 5 s"), last


def test_workers_with_different_data_refuse_to_train(processes, tmp_path):
    ports = free_ports(2)
    for index in (0, 1):
        data = write_csv(tmp_path / f"train_{index}.csv", 100, seed=index)
        processes.start(
            f"worker_{index}",
            train(data, tmp_path / "out"),
            cluster=(ports, index),
        )
    for index in (0, 1):
        name = f"worker_{index}"
        assert processes.wait(name, timeout=180) == 2, processes.stderr(name)[-3000:]
        last = processes.stderr(name).strip().splitlines()[-1]
        assert last == (
            "error: the workers of the cluster disagree on their data: run the same command "
            "with the same data files on every node"
        )


@pytest.mark.slow
def test_sigterm_to_one_worker_stops_both_at_the_same_step_and_both_resume(processes, tmp_path):
    """SIGTERM reaches worker 1 only: both save at the same step and exit 75; rerun resumes."""
    data = write_csv(tmp_path / "train.csv", 400, seed=1)  # 320 train rows: 10 steps/epoch
    checkpoints = tmp_path / "ckpt"
    command = train(
        data,
        tmp_path / "out",
        "--epochs",
        "2",
        "--checkpoint-dir",
        str(checkpoints),
        "--checkpoint-every-steps",
        "1000",  # no periodic checkpoint: the one found is SIGTERM's
        "--steps-per-loop",
        "2",
    )
    ports = free_ports(2)
    for index in (0, 1):
        processes.start(f"worker_{index}", command, cluster=(ports, index))
    processes.wait_for_log("worker_1", "Training 320 examples", timeout=180)
    processes.running["worker_1"].send_signal(signal.SIGTERM)
    steps = []
    for index, who in ((0, "SIGTERM on another worker"), (1, "SIGTERM")):
        name = f"worker_{index}"
        assert processes.wait(name, timeout=180) == 75, processes.stderr(name)[-3000:]
        last = processes.stderr(name).strip().splitlines()[-1]
        match = re.fullmatch(
            rf"preempted: {who}: stopped at epoch (\d+), step (\d+) of 10 and saved checkpoint "
            rf"{re.escape(str(checkpoints))}/ckpt-(\d+); run the same command again to resume",
            last,
        )
        assert match, last
        steps.append(int(match.group(3)))
    assert steps[0] == steps[1] and tf.train.latest_checkpoint(checkpoints).endswith(
        f"ckpt-{steps[0]}"
    )
    assert not list((tmp_path / "out").glob("training_report_*.csv"))

    ports = free_ports(2)
    for index in (0, 1):
        processes.start(f"worker_{index}_again", command, cluster=(ports, index))
    for index in (0, 1):
        name = f"worker_{index}_again"
        assert processes.wait(name, timeout=300) == 0, processes.stderr(name)[-3000:]
        assert f"Resuming from checkpoint {checkpoints}/ckpt-{steps[0]}" in processes.stderr(name)
    row, _ = read_report(tmp_path / "out")
    assert row["resumed_at_step"] == str(steps[0]) and row["epochs_run"] == "2"
