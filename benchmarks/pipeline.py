"""How fast a user gets answers: `wl.pipeline` (first call, repeated calls) and the
command line's `evaluate --data missing.csv` and `predict "很差"`, each in a fresh process.

For each engine, a fresh Python process imports `weibo_lstm`, builds `wl.pipeline()`
(the shipped model unless ``--model``), labels a few texts once (the first call), then
``--calls`` more times; the median of the repeated calls is what a notebook user waits
for once the pipeline exists. The commands are timed as a user's shell runs them. Each
measurement is the median over ``--repeats`` fresh processes. Run it alone: the
targets (repeated call <= 10 ms, the missing file answered in < 1 s) are judged on an
idle machine; the load average before and after is recorded.

    python -m benchmarks.pipeline
    python -m benchmarks.pipeline --engines numpy --repeats 3      # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.machine import load_average, machine_info, write_json

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["很差", "太好吃了", "质量非常好，很满意", "垃圾，再也不买了"]
#: The targets (issue 38): a repeated call of a few texts, and a missing file's error.
REPEATED_CALL_TARGET_MS = 10.0
MISSING_FILE_TARGET_S = 1.0

# Runs in a fresh process: argv[1] is the JSON of (model, engine, texts, calls).
_PIPELINE_RUN = """
import json, statistics, sys, time
model, engine, texts, calls = json.loads(sys.argv[1])
start = time.perf_counter()
import weibo_lstm as wl
imported = time.perf_counter()
pipe = wl.pipeline(model, engine=engine)
built = time.perf_counter()
pipe(texts)
first = time.perf_counter()
times = []
for _ in range(calls):
    t = time.perf_counter()
    pipe(texts)
    times.append(time.perf_counter() - t)
print(json.dumps({
    "import_s": imported - start,
    "build_s": built - imported,
    "first_call_ms": 1000 * (first - built),
    "repeated_call_ms": 1000 * statistics.median(times),
    "tensorflow_imported": "tensorflow" in sys.modules,
}))
"""


def _environment() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")


def pipeline_run(model: str, engine: str, calls: int) -> dict:
    """One fresh process's timings of `wl.pipeline(model, engine=engine)`."""
    result = subprocess.run(
        [sys.executable, "-c", _PIPELINE_RUN, json.dumps([model, engine, TEXTS, calls])],
        capture_output=True,
        text=True,
        check=True,
        env=_environment(),
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def command_time(argv: list[str], cwd: str) -> tuple[float, int, str]:
    """`(wall seconds, exit status, last stderr line)` of `python -m weibo_lstm ARGV`."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "weibo_lstm", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_environment(),
    )
    seconds = time.perf_counter() - start
    return seconds, result.returncode, (result.stderr.strip().splitlines() or [""])[-1]


def _median_of(rows: list[dict]) -> dict:
    """The median of each number over `rows` (repeats), flags as in the first row."""
    return {
        key: round(statistics.median(r[key] for r in rows), 4)
        if isinstance(value, float)
        else value
        for key, value in rows[0].items()
    }


def measure(args: argparse.Namespace) -> dict:
    """Every timing of the run: one row per engine, one per command."""
    engines = {}
    for engine in args.engines:
        runs = [pipeline_run(args.model, engine, args.calls) for _ in range(args.repeats)]
        engines[engine] = _median_of(runs)
        row = engines[engine]
        print(
            f"| wl.pipeline, {engine} | first call {row['first_call_ms']:.1f} ms | repeated "
            f"{row['repeated_call_ms']:.2f} ms | build {row['build_s']:.2f} s |",
            flush=True,
        )
    commands = {}
    with tempfile.TemporaryDirectory() as empty:  # missing.csv is missing there
        for argv in (["evaluate", "--data", "missing.csv"], ["predict", "很差"]):
            runs = [command_time(argv, empty) for _ in range(args.repeats)]
            name = "weibo-lstm " + " ".join(argv)
            commands[name] = {
                "median_s": round(statistics.median(s for s, _, _ in runs), 3),
                "exit_status": runs[0][1],
                "stderr_last_line": runs[0][2],
            }
            print(f"| {name} | {commands[name]['median_s']:.2f} s |", flush=True)
    return {"pipeline": engines, "commands": commands}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="sentiment_zh", help="what wl.pipeline loads")
    parser.add_argument("--engines", nargs="+", default=["numpy", "tensorflow"])
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per timing")
    parser.add_argument("--calls", type=int, default=50, help="repeated calls per process")
    parser.add_argument("--output", default=str(ROOT / "benchmarks/results/pipeline.json"))
    args = parser.parse_args(argv)
    before = {"load_average": load_average(), "machine": machine_info()}
    result = measure(args)
    after = {"load_average": load_average(), "machine": machine_info()}
    evaluate = result["commands"]["weibo-lstm evaluate --data missing.csv"]
    targets = {
        "repeated_call_ms_at_most": REPEATED_CALL_TARGET_MS,
        "repeated_call_met": {
            engine: row["repeated_call_ms"] <= REPEATED_CALL_TARGET_MS
            for engine, row in result["pipeline"].items()
        },
        "missing_file_s_below": MISSING_FILE_TARGET_S,
        "missing_file_met": evaluate["median_s"] < MISSING_FILE_TARGET_S,
    }
    print(f"load {before['load_average']:.2f} before, {after['load_average']:.2f} after")
    write_json(
        args.output,
        {
            "texts": TEXTS,
            "model": args.model,
            "repeats": args.repeats,
            "calls": args.calls,
            **result,
            "targets": targets,
            "before": before,
            "after": after,
        },
    )


if __name__ == "__main__":
    main()
