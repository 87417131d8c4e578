"""Choosing a `tf.distribute.Strategy`, and who in a cluster is the chief."""

from __future__ import annotations

import json
import logging
import os

import tensorflow as tf

logger = logging.getLogger("weibo_lstm")

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
    # Not tf.config.list_logical_devices: it would initialise TensorFlow with one CPU.
    configured = tf.config.get_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0]
    )
    configure_cpu_devices(max(num_replicas, len(configured or [None])))
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


def multi_worker_strategy(collective: str = "auto") -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy configured from `TF_CONFIG`.

    Args:
        collective: all-reduce implementation, `"auto"`, `"ring"` or `"nccl"`.
    """
    if collective not in _COLLECTIVES:
        raise ValueError(
            f"Argument `collective` must be one of {sorted(_COLLECTIVES)}. "
            f"Received: collective={collective!r}"
        )
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=_COLLECTIVES[collective]
    )
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def default_strategy(
    replicas: int | None = None, *, multi_worker: bool | None = None, collective: str = "auto"
) -> tf.distribute.Strategy:
    """The strategy the library uses when none is given.

    * `TF_CONFIG` names a cluster (or `multi_worker=True`): `MultiWorkerMirroredStrategy`.
    * GPUs visible: `MirroredStrategy` over all of them (or the first `replicas`).
    * Otherwise, with `replicas` > 1: MirroredStrategy over that many logical CPUs.
    * Otherwise the default single-device strategy.
    """
    if replicas is not None and replicas < 1:
        raise ValueError(f"Argument `replicas` must be >= 1. Received: replicas={replicas}")
    if multi_worker or (multi_worker is None and has_cluster()):
        return multi_worker_strategy(collective)
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


def device_kind(strategy: tf.distribute.Strategy) -> str:
    """`GPU` or `CPU`: what the replicas run on."""
    try:
        devices = strategy.extended.worker_devices
    except RuntimeError:  # the default strategy: TensorFlow's default placement
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
    return "GPU" if any("GPU" in d.upper() for d in devices) else "CPU"
