"""The machine a benchmark ran on: CPU, versions, threads, git commit (for the JSON)."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def machine_info() -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "git_commit": commit,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    }


def write_json(path: str | os.PathLike, payload: dict, *, file=None) -> Path:
    """Writes a benchmark's `payload` as indented UTF-8 JSON at `path` (its folder
    made if missing; values JSON cannot hold are written as `str`), then prints
    `JSON: path` (to `file`, default stdout)."""
    import json

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str), "utf-8")
    print(f"\nJSON: {out}", file=file or sys.stdout)
    return out


def load_average() -> float:
    """The 1-minute load average (`uptime`'s first number)."""
    return os.getloadavg()[0]


def wait_for_quiet(max_load: float, timeout_s: float, poll_s: float = 60.0) -> dict:
    """Sleeps until the 1-minute load is below `max_load`, for at most `timeout_s`.

    Returns `{"quiet": bool, "load": the last load read, "waited_s": seconds slept}`;
    a timing taken when `quiet` is False is not comparable with the others.
    """
    start = time.monotonic()
    while True:
        load = load_average()
        waited = time.monotonic() - start
        if load < max_load or waited + poll_s > timeout_s:
            return {"quiet": load < max_load, "load": load, "waited_s": round(waited)}
        print(f"load {load:.2f} >= {max_load}: waiting {poll_s:.0f} s", file=sys.stderr, flush=True)
        time.sleep(poll_s)
