"""Deterministic mode: two seeded runs in separate processes give identical weights."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

# `--replicas 2` on a CPU needs two logical devices before TensorFlow initialises.
LAUNCHER = """
import sys
from weibo_lstm.distribute.devices import configure_cpu_devices
configure_cpu_devices(2)
from weibo_lstm.cli import main as cli
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_two_deterministic_runs_give_identical_weights(
    tmp_path, write_csv, read_report, fast_train_flags, repo_root
):
    """Measured on CPU, 2 replicas, dropout on: identical to the last bit."""
    data = write_csv(tmp_path / "train.csv", 160, seed=6)
    env = dict(os.environ, PYTHONPATH=str(repo_root), TF_CPP_MIN_LOG_LEVEL="2")
    runs = {
        name: subprocess.Popen(
            [
                sys.executable,
                "-c",
                LAUNCHER,
                "train",
                "--data",
                str(data),
                "--output-dir",
                str(tmp_path / name),
                "--replicas",
                "2",
                "--deterministic",
                "--seed",
                "7",
                *(a if a != "4" else "2" for a in fast_train_flags),  # 2 epochs
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    }
    weights, rows = {}, {}
    for name, process in runs.items():
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
        rows[name], _ = read_report(tmp_path / name)
        model_dir = rows[name]["model_dir"]
        weights[name] = keras.models.load_model(f"{model_dir}/model.keras").get_weights()
    assert rows["a"]["deterministic"] == "True" and rows["a"]["replicas"] == "2"
    for key in ("best_epoch", "best_val_loss", "final_test_loss", "final_test_accuracy"):
        assert rows["a"][key] == rows["b"][key], key
    for a, b in zip(weights["a"], weights["b"], strict=True):
        np.testing.assert_array_equal(a, b)
