"""Start-up of the command line: wall time of `weibo-lstm --help`, `--version`, every
subcommand's `--help`, and `predict` of two texts with the shipped model (NumPy, the
default for texts on the command line, and TensorFlow) and, with ``--model``, another.

Each command runs as a fresh process, as a user's shell runs it; the median of
``--repeats`` runs is reported with the machine's load before and after.

    python -m benchmarks.startup
    python -m benchmarks.startup --model data/output        # also predict with that model
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

from benchmarks.machine import machine_info

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [
    ["--version"],
    ["--help"],
    *([c, "--help"] for c in ("train", "pretrain", "evaluate", "predict", "export")),
]


def wall_time(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "weibo_lstm", *argv],
        check=True,
        capture_output=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", help="also time `predict` with this model")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "startup.json"))
    args = parser.parse_args()
    commands = list(COMMANDS)
    texts = ["很差", "太好吃了"]
    commands += [["predict", *texts], ["predict", "--engine", "tensorflow", *texts]]
    if args.model:
        commands.append(["predict", "--model", args.model, "很差", "太好吃了"])
    load_before = os.getloadavg()
    rows = []
    for argv in commands:
        times = [wall_time(argv) for _ in range(args.repeats)]
        rows.append({"command": " ".join(argv), "median_s": round(statistics.median(times), 3)})
        print(f"| weibo-lstm {rows[-1]['command']} | {rows[-1]['median_s']:.2f} s |", flush=True)
    result = {"rows": rows, "repeats": args.repeats, "cpus": os.cpu_count()}
    result["load_before"], result["load_after"] = load_before, os.getloadavg()
    result["machine"] = machine_info()  # after the timings: it imports TensorFlow
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2), "utf-8")
    print(
        f"load {load_before[0]:.2f} before, {result['load_after'][0]:.2f} after; wrote {args.output}"
    )


if __name__ == "__main__":
    main()
