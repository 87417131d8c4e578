"""File prediction throughput: `weibo-lstm predict --input FILE --output FILE`, end to end.

A CSV of real posts and reviews (the texts of `--data` files, in their order, repeated
when fewer than the rows asked for) is scored file to file by the command a user runs,
in a fresh process, once per engine and size: the time covers starting Python, loading
the model, reading, predicting, writing. Posts/s = rows / wall-clock seconds; each
measurement is the median of `--repeats` runs, engines interleaved. Run it alone (the
1-minute load average is recorded before and after); the target (issue 38) is the
shipped model scoring 100,000 rows at >= 4,000 posts/s on 2 cores with the faster engine.

    python -m benchmarks.prediction_files --data ../shared/data/weibo_senti_100k_sample.csv

Results: benchmarks/results/prediction_files.json.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.machine import load_average, machine_info, write_json

ROOT = Path(__file__).resolve().parents[1]
TARGET_POSTS_PER_S = 4000.0


def write_input(path: Path, texts: list[str], rows: int) -> None:
    """`rows` rows of `id,review` (texts repeated in order when there are fewer)."""
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "review"])
        for i in range(rows):
            writer.writerow([i, texts[i % len(texts)]])


def run(model: str, engine: str, source: Path, output: Path) -> float:
    """Seconds of one `weibo-lstm predict --input --output` in a fresh process."""
    command = [sys.executable, "-m", "weibo_lstm", "predict", "--model", model]
    command += ["--engine", engine, "--input", str(source), "--output", str(output)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env, cwd=ROOT)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", required=True, help="CSVs whose texts to score")
    parser.add_argument("--model", default="sentiment_zh")
    parser.add_argument("--engines", nargs="+", default=["numpy", "tensorflow"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks/results/prediction_files.json"
    )
    args = parser.parse_args(argv)
    import weibo_lstm as wl  # reading the texts only

    texts = [t for path in args.data for t in wl.load_csv(path).texts]
    before, load_before = machine_info(), load_average()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            source = Path(tmp) / f"posts_{size}.csv"
            write_input(source, texts, size)
            seconds = {engine: [] for engine in args.engines}
            for _ in range(args.repeats):
                for engine in args.engines:  # interleaved
                    output = Path(tmp) / f"scored_{engine}.csv"
                    seconds[engine].append(run(args.model, engine, source, output))
                    with output.open(encoding="utf-8", newline="") as f:
                        scored = sum(1 for _ in csv.reader(f)) - 1  # the header
                    if scored != size:
                        raise SystemExit(f"{output}: {scored} rows scored, {size} expected")
            for engine, times in seconds.items():
                median = statistics.median(times)
                results[f"{engine}_{size}"] = {
                    "rows": size,
                    "seconds": [round(t, 2) for t in times],
                    "median_s": round(median, 3),
                    "posts_per_s": round(size / median, 1),
                }
                print(engine, size, results[f"{engine}_{size}"], flush=True)
    largest = max(args.sizes)
    best = max(results[f"{e}_{largest}"]["posts_per_s"] for e in args.engines)
    write_json(
        args.output,
        {
            "machine_before": before,
            "machine_after": machine_info(),
            "load_before": load_before,
            "load_after": load_average(),
            "model": args.model,
            "distinct_texts": len(set(texts)),
            "results": results,
            "target_posts_per_s": TARGET_POSTS_PER_S,
            "target_met": best >= TARGET_POSTS_PER_S,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
