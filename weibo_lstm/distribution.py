"""Choosing a `tf.distribute.Strategy`, and running as one worker of a cluster.

A multi-worker job is `MultiWorkerMirroredStrategy` configured from `TF_CONFIG`: every
worker runs the same program, the chief (worker 0 unless a `chief` task exists) is
the one whose files survive, and TensorFlow's coordination service notices a worker
that dies (heartbeats) and aborts the collectives of the others.
"""

from __future__ import annotations

import contextlib
import faulthandler
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf

logger = logging.getLogger("weibo_lstm")

#: Exit status of a worker whose cluster failed (a peer died, or never joined).
CLUSTER_FAILURE = 3

#: Seconds a worker waits for every task of `TF_CONFIG` to join.
DEFAULT_STARTUP_TIMEOUT = 600.0


class ClusterError(RuntimeError):
    """A multi-worker run cannot go on: a worker never joined, or one failed."""


_COLLECTIVES = {
    "auto": tf.distribute.experimental.CommunicationImplementation.AUTO,
    "ring": tf.distribute.experimental.CommunicationImplementation.RING,
    "nccl": tf.distribute.experimental.CommunicationImplementation.NCCL,
}


def configure_cpu_devices(num_devices: int) -> None:
    """Splits the host CPU into `num_devices` logical devices.

    Must run before TensorFlow initialises its devices (before the first op,
    strategy, or `tf.config.list_logical_devices` call).

    Raises:
        RuntimeError: if TensorFlow's devices are already initialised with a
            different number of logical CPUs.
    """
    if num_devices < 1:
        raise ValueError(
            f"Argument `num_devices` must be >= 1. Received: num_devices={num_devices}"
        )
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == num_devices:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices
        )
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have == num_devices:
            return
        raise RuntimeError(
            f"TensorFlow's devices are already initialised with {have} logical CPU device(s); "
            f"call configure_cpu_devices({num_devices}) before any TensorFlow op runs"
        ) from None


_MIRRORED: dict[tuple[str, ...], tf.distribute.MirroredStrategy] = {}


def mirrored_strategy(devices: list[str] | tuple[str, ...]) -> tf.distribute.MirroredStrategy:
    """The process-wide MirroredStrategy over `devices` (created on first use).

    TensorFlow numbers the collective operations of every new MirroredStrategy from
    the same starting keys, so a second strategy over the same devices in one
    process (a notebook re-running a cell, a test suite) collides with the first's
    cached collectives and aborts with "Shape mismatch in the collective instance
    100" (tensorflow/tensorflow#62790). Reusing one strategy per device set avoids it.
    """
    key = tuple(tf.DeviceSpec.from_string(d).to_string() for d in devices)
    if key not in _MIRRORED:
        _MIRRORED[key] = tf.distribute.MirroredStrategy(list(devices))
    return _MIRRORED[key]


def cpu_strategy(num_replicas: int) -> tf.distribute.Strategy:
    """A MirroredStrategy over `num_replicas` logical CPU devices.

    For tests and CPU experiments. Creates the logical devices if TensorFlow has not
    initialised yet (see `configure_cpu_devices`).

    Example:

    >>> strategy = cpu_strategy(1)
    >>> strategy.num_replicas_in_sync
    1
    """
    configure_cpu_devices(max(num_replicas, len(tf.config.list_logical_devices("CPU"))))
    return mirrored_strategy([f"/cpu:{i}" for i in range(num_replicas)])


def has_cluster(tf_config: str | None = None) -> bool:
    """True when `TF_CONFIG` describes a cluster with more than one task."""
    raw = os.environ.get("TF_CONFIG", "") if tf_config is None else tf_config
    if not raw.strip():
        return False
    try:
        cluster = json.loads(raw).get("cluster", {})
    except (json.JSONDecodeError, AttributeError):
        raise ValueError(f"TF_CONFIG is not valid JSON: {raw[:200]!r}") from None
    return sum(len(tasks) for tasks in cluster.values()) > 1


_MULTI_WORKER: dict[tuple, tf.distribute.MultiWorkerMirroredStrategy] = {}


def multi_worker_strategy(
    collective: str = "auto",
    *,
    startup_timeout: float | None = DEFAULT_STARTUP_TIMEOUT,
    collective_timeout: float | None = None,
) -> tf.distribute.MultiWorkerMirroredStrategy:
    """MultiWorkerMirroredStrategy configured from `TF_CONFIG`, once every worker is up.

    Returns after a barrier that every task of the cluster has reached. TensorFlow
    itself waits forever for a task that never starts (inside a C++ call that holds
    the GIL); here every task first waits until all others accept connections on
    their `TF_CONFIG` ports, and gives up with `ClusterError` after
    `startup_timeout`. Should a peer die between that check and TensorFlow's own
    wait, the process dumps its stack and exits with status 1 after another
    `max(startup_timeout, 300)` seconds (`faulthandler`: nothing else can interrupt
    that call).

    Once running, a worker that dies is detected by TensorFlow's coordination
    service (missed heartbeats, ~10 s) or by a refused connection, and the next
    collective of every other worker fails with `tf.errors.UnavailableError`; see
    `describe_cluster_failure`. A worker that is alive but stuck is not detected
    (see `collective_timeout`).

    The strategy is created once per process (TensorFlow cannot configure collective
    ops twice); later calls with the same arguments return it.

    Args:
        collective: all-reduce implementation, `"auto"`, `"ring"` or `"nccl"`.
        startup_timeout: seconds to wait for the whole cluster (None: forever).
        collective_timeout: seconds any single collective may wait before failing
            with `tf.errors.DeadlineExceededError` (None: no limit). For debugging a
            hang only: TensorFlow starts one sleeping thread per collective for this
            long (measured: ~100 threads a second on a small CPU model).

    Raises:
        ClusterError: if the cluster does not come up within `startup_timeout`.
        ValueError: for an unknown `collective` or a non-positive timeout, or when
            the process already holds a strategy made with other arguments.
    """
    if collective not in _COLLECTIVES:
        raise ValueError(
            f"Argument `collective` must be one of {sorted(_COLLECTIVES)}. "
            f"Received: collective={collective!r}"
        )
    for name, value in (
        ("startup_timeout", startup_timeout),
        ("collective_timeout", collective_timeout),
    ):
        if value is not None and not value > 0:
            raise ValueError(f"Argument `{name}` must be > 0 or None. Received: {name}={value}")
    key = (collective, collective_timeout)
    if key in _MULTI_WORKER:
        return _MULTI_WORKER[key]
    if _MULTI_WORKER:
        (have,) = _MULTI_WORKER
        raise ValueError(
            f"This process already has a MultiWorkerMirroredStrategy with collective={have[0]!r}, "
            f"collective_timeout={have[1]}; TensorFlow allows one per process"
        )
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=_COLLECTIVES[collective], timeout_seconds=collective_timeout
    )
    if has_cluster():
        _wait_for_peers(startup_timeout)
    # The peers are up, so TensorFlow's own wait for them (which holds the GIL and
    # has no deadline) should be short; should one die right now, give up anyway.
    # Not sooner than 5 minutes: initialising many GPUs alone can take a while.
    if startup_timeout is not None:
        faulthandler.dump_traceback_later(max(startup_timeout, 300.0), exit=True)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        barrier(strategy)
    finally:
        if startup_timeout is not None:
            faulthandler.cancel_dump_traceback_later()
    logger.info("%s: all %d workers are up", task_id(strategy), worker_count(strategy))
    _MULTI_WORKER[key] = strategy
    return strategy


def default_strategy(
    replicas: int | None = None,
    *,
    multi_worker: bool | None = None,
    collective: str = "auto",
    startup_timeout: float | None = DEFAULT_STARTUP_TIMEOUT,
) -> tf.distribute.Strategy:
    """The strategy the library uses when none is given.

    * `TF_CONFIG` names a cluster (or `multi_worker=True`): `MultiWorkerMirroredStrategy`
      over every GPU of each worker (see `multi_worker_strategy`; `replicas` is
      ignored: limit GPUs with `CUDA_VISIBLE_DEVICES`).
    * GPUs visible: `MirroredStrategy` over all of them (or the first `replicas`).
    * Otherwise, with `replicas` > 1: MirroredStrategy over that many logical CPUs.
    * Otherwise the default single-device strategy.
    """
    if replicas is not None and replicas < 1:
        raise ValueError(f"Argument `replicas` must be >= 1. Received: replicas={replicas}")
    if multi_worker or (multi_worker is None and has_cluster()):
        if replicas is not None:
            logger.warning(
                "replicas=%d is ignored by multi-worker training: every worker uses all its "
                "GPUs (set CUDA_VISIBLE_DEVICES to use fewer)",
                replicas,
            )
        return multi_worker_strategy(collective, startup_timeout=startup_timeout)
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        names = [d.name for d in gpus][: replicas or len(gpus)]
        if replicas and replicas > len(gpus):
            raise ValueError(f"--replicas {replicas}: only {len(gpus)} GPU(s) are visible")
        return mirrored_strategy(names)
    if replicas and replicas > 1:
        return cpu_strategy(replicas)
    return tf.distribute.get_strategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True for the one task that writes reports, checkpoints and summaries."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def task_id(strategy: tf.distribute.Strategy) -> str:
    """`worker_1`-style name of this task (`local` outside a cluster)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return "local"
    return f"{resolver.task_type}_{resolver.task_id}"


def worker_count(strategy: tf.distribute.Strategy) -> int:
    """Processes that run replicas: the cluster's chief and workers (1 outside a cluster)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return 1
    spec = resolver.cluster_spec().as_dict()
    return max(1, len(spec.get("chief", [])) + len(spec.get("worker", [])))


@contextlib.contextmanager
def chief_output_dir(strategy: tf.distribute.Strategy, path: str | os.PathLike) -> Iterator[Path]:
    """Where this task writes: `path` on the chief, a private temporary directory elsewhere.

    Every worker runs the same code, so every worker writes (reports, models, event
    files, checkpoints); only the chief's files may land in `path`. The others get a
    fresh temporary directory that is removed when the block ends, also on error.

    Example:

    >>> with chief_output_dir(tf.distribute.get_strategy(), tempfile.mkdtemp()) as out:
    ...     _ = (out / "report.csv").write_text("written by the chief")
    """
    if is_chief(strategy):
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    temporary = Path(tempfile.mkdtemp(prefix=f"weibo_lstm_{task_id(strategy)}_"))
    try:
        yield temporary
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def barrier(strategy: tf.distribute.Strategy) -> None:
    """Returns once every worker of the cluster has called it (at once in one process).

    An all-reduce of one number: every worker must call it the same number of times.
    """
    if worker_count(strategy) > 1:
        ones = strategy.run(lambda: tf.ones([]))
        strategy.reduce("SUM", ones, axis=None).numpy()


def disagreements(strategy: tf.distribute.Strategy, values: Mapping[str, object]) -> list[str]:
    """Names of the `values` that are not the same on every worker of the cluster.

    Each value is reduced to a 64-bit digest of its bytes (`bytes`, NumPy arrays) or
    its `repr`; the digests of all replicas are gathered, so every worker gets the same
    answer and can fail together. Always `[]` in one process.
    """
    if worker_count(strategy) == 1:
        return []
    names = list(values)
    digests = np.concatenate([_digest(values[name]) for name in names])

    @tf.function
    def gather():
        local = strategy.run(lambda: tf.constant(digests)[tf.newaxis])
        return strategy.gather(local, axis=0)

    everyone = gather().numpy().reshape(-1, len(names), 2)
    return [name for i, name in enumerate(names) if (everyone[:, i] != everyone[0, i]).any()]


def device_kind(strategy: tf.distribute.Strategy) -> str:
    """`GPU` or `CPU`: what the replicas run on."""
    try:
        devices = strategy.extended.worker_devices
    except RuntimeError:  # the default strategy: TensorFlow's default placement
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
    return "GPU" if any("GPU" in d.upper() for d in devices) else "CPU"


def describe_cluster_failure(error: BaseException) -> str | None:
    """One line for an error that means the cluster broke; None for any other error.

    TensorFlow reports a dead peer as `UnavailableError` (missed heartbeats, or a
    refused or closed connection) and an expired `collective_timeout` as
    `DeadlineExceededError`; their messages span many lines of gRPC detail.
    """
    if isinstance(error, ClusterError):
        return str(error)
    if not isinstance(
        error,
        tf.errors.UnavailableError | tf.errors.DeadlineExceededError | tf.errors.AbortedError,
    ):
        return None
    me, _ = _tf_config_task()
    if me is None:
        return None
    text = str(getattr(error, "message", error))
    # The lost tasks follow these phrases; other task names are the workers that
    # relayed the error.
    culprit = re.search(r"unhealthy|remote target", text)
    named = re.findall(
        r"/job:(\w+)(?:/replica:\d+)?/task:(\d+)", text[culprit.start() :] if culprit else text
    )
    peers = [t for t in dict.fromkeys(f"{job}_{index}" for job, index in named) if t != me]
    who = ", ".join(peers) or "a peer"
    if "heartbeat" in text:
        what = f"{who} stopped sending heartbeats (killed, crashed or unreachable)"
    elif any(sign in text.lower() for sign in _CONNECTION_LOST):
        what = f"{who} is unreachable (connection refused or closed: its process is gone)"
    elif isinstance(error, tf.errors.DeadlineExceededError):
        what = f"a collective timed out waiting for {who}"
    else:
        what = f"{who} failed ({type(error).__name__}: {_gist(text)})"
    return (
        f"{me}: {what}; the cluster cannot continue. Restart every worker "
        "(see docs/multi_worker.md)"
    )


# How gRPC says that a peer's process is gone.
_CONNECTION_LOST = (
    "refused",
    "failed to connect",
    "socket closed",
    "connection reset",
    "broken pipe",
)


def _gist(text: str) -> str:
    """The informative line of a TensorFlow runtime error (not its boilerplate)."""
    grpc = re.search(r'grpc_message:"([^"]+)"', text)
    if grpc:
        return grpc.group(1)
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(
            ("Graph execution error", "Detected at node", "File ", "[[")
        ):
            return line
    return "no details"


def _digest(value) -> np.ndarray:
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, np.ndarray):
        data = value.tobytes()
    else:
        data = repr(value).encode()
    return np.frombuffer(hashlib.blake2b(data, digest_size=8).digest(), np.int32)


def _tf_config_task() -> tuple[str | None, dict[str, str]]:
    """This task's `worker_1`-style name and the address of every chief and worker."""
    try:
        config = json.loads(os.environ.get("TF_CONFIG") or "{}")
        task = config.get("task", {})
        me = f"{task['type']}_{task['index']}" if task else None
        cluster = config.get("cluster", {})
        tasks = {
            f"{job}_{index}": address
            for job in ("chief", "worker")
            for index, address in enumerate(cluster.get(job, []))
        }
        return me, tasks
    except (json.JSONDecodeError, AttributeError, KeyError, TypeError):
        return None, {}


def _wait_for_peers(seconds: float | None) -> None:
    """Returns once every other chief and worker of `TF_CONFIG` accepts connections.

    TensorFlow waits for missing peers inside a C++ call that holds the GIL and has no
    deadline, so the wait happens here first: this task listens on its own port
    (peers see it is up) and connects to theirs (their listener, or their TensorFlow
    server once they are past this point) until all answer.

    Raises:
        ClusterError: if a peer does not answer within `seconds`, or this task's
            port is taken by another process.
    """
    me, tasks = _tf_config_task()
    if me not in tasks:
        raise ClusterError(
            f"TF_CONFIG must name this node's task, a chief or worker of its cluster "
            f'(e.g. "task": {{"type": "worker", "index": 1}}); it names {me} in {tasks}'
        )
    port = int(tasks[me].rsplit(":", 1)[1])
    try:
        listener = socket.create_server(
            ("", port),
            family=socket.AF_INET6 if socket.has_dualstack_ipv6() else socket.AF_INET,
            dualstack_ipv6=socket.has_dualstack_ipv6(),
        )
    except OSError as e:
        raise ClusterError(
            f"{me}: cannot listen on port {port} (TF_CONFIG: {tasks[me]}): {e.strerror or e}; "
            "is another process using it?"
        ) from None
    waiting = {name: address for name, address in tasks.items() if name != me}
    logger.info(
        "%s: waiting for %s (up to %s s)",
        me,
        ", ".join(f"{n} at {a}" for n, a in waiting.items()),
        "forever" if seconds is None else f"{seconds:g}",
    )
    start = time.monotonic()
    reported = start
    try:
        while waiting := {n: a for n, a in waiting.items() if not _accepts_connections(a)}:
            now = time.monotonic()
            if seconds is not None and now - start > seconds:
                raise ClusterError(
                    f"{me}: the cluster did not come up within {seconds:g} s: no answer from "
                    f"{', '.join(f'{n} at {a}' for n, a in waiting.items())}. Start the same "
                    "command on every node, each with its own task index, check that the "
                    "ports are reachable, or raise --startup-timeout"
                )
            if now - reported > 30:
                logger.info("%s: still waiting for %s", me, ", ".join(waiting))
                reported = now
            time.sleep(0.5)
    finally:
        listener.close()


def _accepts_connections(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=2):
            return True
    except OSError:
        return False
