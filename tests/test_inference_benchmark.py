"""benchmarks.inference runs end to end on tiny data (speed is not asserted here)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_inference_benchmark_runs_on_tiny_data(tmp_path, write_csv):
    data = write_csv(tmp_path / "posts.csv", 120, seed=4)
    out = tmp_path / "inference.json"
    args = ["--data", str(data), "--train-posts", "64", "--max-tokens", "60", "--json", str(out)]
    args += ["--repetitions", "1", "--latency-posts", "5", "--batch-size", "32"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.inference", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| SavedModel `serve` |" in result.stdout
    report = json.loads(out.read_text("utf-8"))
    assert report["data"]["posts"] == 120 and report["model"]["vocabulary_size"] == 60
    assert report["machine"]["tensorflow"] and report["command"].startswith(
        "python -m benchmarks.inference "
    )
    saved = report["variants"]["SavedModel `serve`"]
    assert saved["batch"]["posts_per_s"] > 0 and saved["single"]["p50_ms"] > 0
    # Every variant predicted the same probabilities as the in-process Keras model.
    assert all(v["batch"]["max_abs_diff_vs_keras"] <= 1e-5 for v in report["variants"].values())
