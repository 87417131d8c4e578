"""benchmarks/throughput.py and accuracy.py run end to end on tiny data.

Speed and accuracy are not asserted (that is what the benchmarks are for); the tests
check that every comparison runs and reports what benchmarks/README.md relies on.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.synthetic import write_csv

ROOT = Path(__file__).resolve().parents[1]


def run(script: str, args: list[str], cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=cwd,
        env=dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_throughput_benchmark_runs_every_comparison(tmp_path):
    data = write_csv(tmp_path / "posts.csv", 400, seed=5)
    out = tmp_path / "throughput.json"
    args = ["--data", str(data), "--output", str(out), "--steps", "3", "--scaling-steps", "3"]
    args += ["--repeats", "1", "--pipeline-epochs", "1", "--max-replicas", "2"]
    table = run("throughput.py", args, tmp_path)
    report = json.loads(out.read_text("utf-8"))
    assert set(report["scaling"]["replicas"]) == {"1", "2"}
    assert report["steps"]["trainer"]["median"] > 0 and report["steps"]["keras_fit"]["median"] > 0
    pipeline = report["pipeline"]
    assert 0 <= pipeline["library"]["test_accuracy"] <= 1 and pipeline["seed"]["epoch_s"]
    assert report["machine"]["tensorflow"] and report["data"]["train_rows"] == 320
    for row in ("scaling", "trainer vs fit", "steps_per_loop", "pipeline"):
        assert f"| {row}" in table


@pytest.mark.slow
def test_accuracy_benchmark_compares_the_three_models_with_an_audit(tmp_path):
    data = write_csv(tmp_path / "posts.csv", 300, seed=6)
    out = tmp_path / "accuracy.json"
    table = run("accuracy.py", ["--data", str(data), "--output", str(out)], tmp_path)
    rows = json.loads(out.read_text("utf-8"))["rows"]
    assert {(r["condition"], r["model"]) for r in rows} >= {
        ("raw", m) for m in ("tfidf", "seed", "best")
    }
    assert all(r["test_rows"] == 30 and 0 <= r["accuracy"] <= 1 for r in rows)
    assert "| posts.csv | raw | best |" in table


def test_paired_bootstrap_matches_the_normal_approximation():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from accuracy import paired_bootstrap

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 3000)
    a = np.where(rng.random(3000) < 0.85, labels, 1 - labels)  # ~85 % right
    b = np.where(rng.random(3000) < 0.80, labels, 1 - labels)  # ~80 % right
    result = paired_bootstrap(labels, a, b, samples=4000, seed=1)
    d = (a == labels).astype(float) - (b == labels).astype(float)
    half_width = 1.96 * d.std() / np.sqrt(len(d))  # independent: normal approximation
    assert result["difference"] == pytest.approx(d.mean())
    assert result["ci95_low"] == pytest.approx(d.mean() - half_width, abs=0.1 * half_width)
    assert result["ci95_high"] == pytest.approx(d.mean() + half_width, abs=0.1 * half_width)
