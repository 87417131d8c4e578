"""Devices before TensorFlow starts them: logical CPUs, GPU memory growth, and the
kind of device (GPU or CPU) a strategy or this machine trains on."""

from __future__ import annotations

import logging

import tensorflow as tf

logger = logging.getLogger("weibo_lstm")


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


def configure_gpu_memory_growth(enabled: bool = True) -> int:
    """Lets TensorFlow take GPU memory as it needs it instead of all of it at start-up.

    By default each TensorFlow process reserves nearly all the memory of every GPU it
    sees, so a second job on the same server fails to allocate. The seed recipe sets
    memory growth on every GPU so that several jobs can share a server; this does the
    same. It must run before TensorFlow initialises its GPUs (the first op, strategy,
    or `tf.config.list_logical_devices` call): `default_strategy` calls it first.
    Listing the physical devices, as here, does not initialise them.

    If TensorFlow has already initialised the GPUs, growth can no longer be changed:
    this logs a warning and returns instead of failing (GPUs that already grow, for
    instance from an earlier call, are counted).

    Args:
        enabled: True: set memory growth on every visible GPU. False: change
            nothing (TensorFlow's default: reserve the memory up front, the fastest
            allocation when one job owns the GPUs).

    Returns:
        The number of GPUs that grow their memory (0 without GPUs or when disabled).

    Example:

    >>> configure_gpu_memory_growth() == len(tf.config.list_physical_devices("GPU"))
    True
    """
    if not enabled:
        return 0
    gpus = tf.config.list_physical_devices("GPU")
    growing, failed = 0, []
    for gpu in gpus:
        try:
            # Returns quietly, even after initialisation, when growth is already as asked.
            tf.config.experimental.set_memory_growth(gpu, True)
            growing += 1
        except RuntimeError:  # "Physical devices cannot be modified after being initialized"
            failed.append(gpu.name)
        except ValueError as e:  # e.g. the GPU is split into virtual devices
            logger.warning("GPU memory growth not set on %s: %s", gpu.name, e)
    if failed:
        logger.warning(
            "GPU memory growth could not be set on %s: TensorFlow had already initialised "
            "the GPUs, so this process keeps most of their memory. Configure devices before "
            "the first TensorFlow op (or set TF_FORCE_GPU_ALLOW_GROWTH=true).",
            ", ".join(failed),
        )
    return growing


def device_kind(strategy: tf.distribute.Strategy) -> str:
    """`GPU` or `CPU`: what the replicas run on."""
    try:
        devices = strategy.extended.worker_devices
    except RuntimeError:  # the default strategy: TensorFlow's default placement
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
    return "GPU" if any("GPU" in d.upper() for d in devices) else "CPU"


def local_device_kind() -> str:
    """`"GPU"` if TensorFlow sees a GPU on this machine, else `"CPU"`.

    Lists *physical* devices only, which does not initialise TensorFlow's logical
    devices: `configure_cpu_devices` (`--replicas N` on a CPU) still works afterwards.

    Example:

    >>> local_device_kind() in ("CPU", "GPU")
    True
    """
    return "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
