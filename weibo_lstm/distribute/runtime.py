"""Runtime: the facts about where this process trains, in one object.

Every worker of a multi-worker job runs the same program; what differs is this
process's place in the cluster. `Runtime` holds it (in the spirit of Hugging Face
Accelerate's `PartialState`): the strategy, whether this task is the chief (the one
whose files survive), its name, how many workers there are, where it may write, a
barrier, and a check that all workers hold the same values. Create it with
`Runtime.create(...)` (which chooses the strategy) or `Runtime(strategy)`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf

from weibo_lstm.distribute.cluster import DEFAULT_STARTUP_TIMEOUT, place_in_cluster
from weibo_lstm.distribute.devices import device_kind
from weibo_lstm.distribute.strategies import barrier, default_strategy


class Runtime:
    """This process's strategy and its place in the cluster.

    Args:
        strategy: a `tf.distribute.Strategy` (None: the current one, by default
            TensorFlow's single-device strategy). Only its `cluster_resolver` is
            read to place this task, so a multi-worker strategy's resolver decides.

    Attributes:
        strategy: the strategy.
        is_chief: whether this task writes reports, models, checkpoints and
            summaries (the `chief` task, else worker 0; always True in one process).
        task: `worker_1`-style name of this task (`local` outside a cluster).
        num_workers: processes that run replicas (the chief and the workers).
        num_replicas: replicas in sync over all workers.

    Example:

    >>> runtime = Runtime(tf.distribute.get_strategy())
    >>> runtime.is_chief, runtime.task, runtime.num_workers, runtime.disagreements({"a": 1})
    (True, 'local', 1, [])
    """

    def __init__(self, strategy: tf.distribute.Strategy | None = None):
        self.strategy = strategy if strategy is not None else tf.distribute.get_strategy()
        self.is_chief, self.task, self.num_workers = place_in_cluster(self.strategy)

    @classmethod
    def create(
        cls,
        replicas: int | None = None,
        *,
        multi_worker: bool | None = None,
        collective: str = "auto",
        startup_timeout: float | None = DEFAULT_STARTUP_TIMEOUT,
        memory_growth: bool = True,
    ) -> Runtime:
        """Chooses the strategy (see `strategies.default_strategy`) and places this task.

        Sets GPU memory growth first, unless `memory_growth` is False (see
        `devices.configure_gpu_memory_growth`). With `TF_CONFIG` naming a
        cluster it returns once every worker is up, or raises `ClusterError` after
        `startup_timeout` seconds.
        """
        return cls(
            default_strategy(
                replicas,
                multi_worker=multi_worker,
                collective=collective,
                startup_timeout=startup_timeout,
                memory_growth=memory_growth,
            )
        )

    @property
    def num_replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    @property
    def device_kind(self) -> str:
        """`GPU` or `CPU`: what the replicas run on."""
        return device_kind(self.strategy)

    def __repr__(self) -> str:
        return (
            f"Runtime(task={self.task!r}, is_chief={self.is_chief}, "
            f"num_workers={self.num_workers}, num_replicas={self.num_replicas})"
        )

    @contextlib.contextmanager
    def output_dir(self, path: str | os.PathLike) -> Iterator[Path]:
        """Where this task writes: `path` on the chief, a private temporary directory elsewhere.

        Every worker runs the same code, so every worker writes (reports, models,
        event files); only the chief's files may land in `path`. The others get a
        fresh temporary directory that is removed when the block ends, also on error.

        Example:

        >>> with Runtime().output_dir(tempfile.mkdtemp()) as out:
        ...     _ = (out / "report.csv").write_text("written by the chief")
        """
        if self.is_chief:
            path = Path(path)
            path.mkdir(parents=True, exist_ok=True)
            yield path
            return
        temporary = Path(tempfile.mkdtemp(prefix=f"weibo_lstm_{self.task}_"))
        try:
            yield temporary
        finally:
            shutil.rmtree(temporary, ignore_errors=True)

    def write_dir(self, directory: str | os.PathLike) -> str:
        """`directory` on the chief; elsewhere a private directory inside it to delete after use.

        For writers that must run on every worker (a checkpoint save may need
        collectives) but whose files only the chief keeps; the directory is on the
        same storage as `directory`.
        """
        if self.is_chief:
            return str(directory)
        return os.path.join(str(directory), f".tmp_{self.task}_{os.getpid()}")

    def barrier(self) -> None:
        """Returns once every worker of the cluster has called it (at once in one process).

        An all-reduce of one number: every worker must call it the same number of times.
        """
        if self.num_workers > 1:
            barrier(self.strategy)

    def any_worker(self, flag: bool) -> bool:
        """True on every worker if `flag` is True on any (an all-reduce; local in one process).

        Every worker must call it at the same point of the program, as `barrier`.
        """
        if self.num_workers == 1:
            return bool(flag)
        value = self.strategy.run(lambda: tf.constant(float(flag)))
        # ReduceOp has only SUM and MEAN.
        return bool(self.strategy.reduce("SUM", value, axis=None).numpy() > 0)

    def disagreements(self, values: Mapping[str, object]) -> list[str]:
        """Names of the `values` that are not the same on every worker of the cluster.

        Each value is reduced to a 64-bit digest of its bytes (`bytes`, NumPy arrays)
        or its `repr`; the digests of all replicas are gathered, so every worker gets
        the same answer and can fail together. Always `[]` in one process.
        """
        if self.num_workers == 1:
            return []
        names = list(values)
        digests = np.concatenate([_digest(values[name]) for name in names])
        strategy = self.strategy

        @tf.function
        def gather():
            local = strategy.run(lambda: tf.constant(digests)[tf.newaxis])
            return strategy.gather(local, axis=0)

        everyone = gather().numpy().reshape(-1, len(names), 2)
        return [name for i, name in enumerate(names) if (everyone[:, i] != everyone[0, i]).any()]


def _digest(value) -> np.ndarray:
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, np.ndarray):
        data = value.tobytes()
    else:
        data = repr(value).encode()
    return np.frombuffer(hashlib.blake2b(data, digest_size=8).digest(), np.int32)
