"""Choosing a `tf.distribute.Strategy`: one device, the GPUs or CPUs of this machine,
or (with `TF_CONFIG`) the workers of a cluster. `runtime.Runtime.create` wraps the
choice with this process's place in the cluster; `cluster` waits for the peers;
`devices` sets the devices up before TensorFlow starts them."""

from __future__ import annotations

import faulthandler
import logging

import tensorflow as tf

from weibo_lstm.distribute.cluster import (
    DEFAULT_STARTUP_TIMEOUT,
    has_cluster,
    place_in_cluster,
    wait_for_peers,
)
from weibo_lstm.distribute.devices import configure_cpu_devices, configure_gpu_memory_growth

__all__ = [
    "barrier",
    "cpu_strategy",
    "default_strategy",
    "mirrored_strategy",
    "multi_worker_strategy",
]

logger = logging.getLogger("weibo_lstm")

_COLLECTIVES = {
    "auto": tf.distribute.experimental.CommunicationImplementation.AUTO,
    "ring": tf.distribute.experimental.CommunicationImplementation.RING,
    "nccl": tf.distribute.experimental.CommunicationImplementation.NCCL,
}


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
    # Not tf.config.list_logical_devices: it would initialise TensorFlow with one CPU.
    configured = tf.config.get_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0]
    )
    configure_cpu_devices(max(num_replicas, len(configured or [None])))
    return mirrored_strategy([f"/cpu:{i}" for i in range(num_replicas)])


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
        wait_for_peers(startup_timeout)
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
    _, task, num_workers = place_in_cluster(strategy)
    logger.info("%s: all %d workers are up", task, num_workers)
    _MULTI_WORKER[key] = strategy
    return strategy


def default_strategy(
    replicas: int | None = None,
    *,
    multi_worker: bool | None = None,
    collective: str = "auto",
    startup_timeout: float | None = DEFAULT_STARTUP_TIMEOUT,
    memory_growth: bool = True,
) -> tf.distribute.Strategy:
    """The strategy the library uses when none is given.

    First, before anything initialises the GPUs, it sets memory growth on every GPU
    (see `configure_gpu_memory_growth`; `memory_growth=False` leaves TensorFlow's
    default of reserving all their memory). Then:

    * `TF_CONFIG` names a cluster (or `multi_worker=True`): `MultiWorkerMirroredStrategy`
      over every GPU of each worker (see `multi_worker_strategy`; `replicas` is
      ignored: limit GPUs with `CUDA_VISIBLE_DEVICES`).
    * GPUs visible: `MirroredStrategy` over all of them (or the first `replicas`).
    * Otherwise, with `replicas` > 1: MirroredStrategy over that many logical CPUs.
    * Otherwise the default single-device strategy.
    """
    if replicas is not None and replicas < 1:
        raise ValueError(f"Argument `replicas` must be >= 1. Received: replicas={replicas}")
    configure_gpu_memory_growth(memory_growth)
    if multi_worker or (multi_worker is None and has_cluster()):
        if replicas is not None:
            logger.warning(
                "replicas=%d is ignored by multi-worker training: every worker uses all its "
                "GPUs (set CUDA_VISIBLE_DEVICES to use fewer)",
                replicas,
            )
        return multi_worker_strategy(collective, startup_timeout=startup_timeout)
    # Visible physical devices, not tf.config.list_logical_devices: listing logical
    # devices initialises TensorFlow with one CPU device, after which cpu_strategy
    # can no longer split the CPU into `replicas` devices.
    if tf.config.get_visible_devices("GPU"):
        gpus = tf.config.list_logical_devices("GPU")
        names = [d.name for d in gpus][: replicas or len(gpus)]
        if replicas and replicas > len(gpus):
            raise ValueError(f"--replicas {replicas}: only {len(gpus)} GPU(s) are visible")
        return mirrored_strategy(names)
    if replicas and replicas > 1:
        return cpu_strategy(replicas)
    return tf.distribute.get_strategy()


def barrier(strategy: tf.distribute.Strategy) -> None:
    """Returns once every worker of `strategy` has called it (an all-reduce of one number).

    Every worker must call it the same number of times; in one process it returns at once.
    """
    ones = strategy.run(lambda: tf.ones([]))
    strategy.reduce("SUM", ones, axis=None).numpy()
