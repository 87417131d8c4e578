"""Choosing strategies: GPU memory growth before TensorFlow initialises the GPUs.

No GPU is needed: TensorFlow's device calls are patched with fake GPUs, and every call
is recorded in order, so the tests see whether growth was set before the first query
that would initialise the devices.
"""

import logging

import pytest
import tensorflow as tf

from weibo_lstm.distribute import devices, strategies
from weibo_lstm.distribute.runtime import Runtime

FAKE_GPUS = [tf.config.PhysicalDevice(f"/physical_device:GPU:{i}", "GPU") for i in range(3)]


@pytest.fixture
def fake_gpus(monkeypatch):
    """Three fake GPUs; returns the list of recorded device calls, in order."""
    calls = []
    real_physical = tf.config.list_physical_devices

    def list_physical_devices(device_type=None):
        if device_type == "GPU":
            return list(FAKE_GPUS)
        return real_physical(device_type)

    def set_memory_growth(device, enable):
        calls.append(("set_memory_growth", device.name, enable))

    def list_logical_devices(device_type=None):
        # The first call that initialises TensorFlow's devices.
        calls.append(("list_logical_devices", device_type))
        return [tf.config.LogicalDevice(f"/device:GPU:{i}", "GPU") for i in range(len(FAKE_GPUS))]

    def mirrored_strategy(devices):
        calls.append(("mirrored_strategy", tuple(devices)))
        return tf.distribute.get_strategy()

    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.setattr(tf.config, "list_physical_devices", list_physical_devices)
    monkeypatch.setattr(tf.config, "get_visible_devices", list_physical_devices)
    monkeypatch.setattr(tf.config, "list_logical_devices", list_logical_devices)
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", set_memory_growth)
    monkeypatch.setattr(strategies, "mirrored_strategy", mirrored_strategy)
    return calls


def test_memory_growth_is_set_on_every_gpu_before_the_devices_start(fake_gpus):
    Runtime.create()
    growth = [("set_memory_growth", gpu.name, True) for gpu in FAKE_GPUS]
    assert fake_gpus[: len(FAKE_GPUS)] == growth  # before any logical-device query
    assert fake_gpus[len(FAKE_GPUS)] == ("list_logical_devices", "GPU")
    assert fake_gpus[-1] == (
        "mirrored_strategy",
        ("/device:GPU:0", "/device:GPU:1", "/device:GPU:2"),
    )


def test_memory_growth_off_leaves_the_gpus_alone(fake_gpus):
    Runtime.create(memory_growth=False)
    assert not [c for c in fake_gpus if c[0] == "set_memory_growth"]
    assert ("list_logical_devices", "GPU") in fake_gpus  # the strategy still uses every GPU
    assert devices.configure_gpu_memory_growth(False) == 0


def test_memory_growth_after_the_gpus_started_warns_instead_of_failing(
    fake_gpus, monkeypatch, caplog
):
    def already_initialised(device, enable):
        raise RuntimeError("Physical devices cannot be modified after being initialized")

    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", already_initialised)
    with caplog.at_level(logging.WARNING, logger="weibo_lstm"):
        assert devices.configure_gpu_memory_growth() == 0
        runtime = Runtime.create(2)  # goes on with the GPUs as TensorFlow set them up
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "already initialised the GPUs" in warnings[0]
    assert all(gpu.name in warnings[0] for gpu in FAKE_GPUS)
    assert runtime.num_replicas == 1  # the patched strategy
    assert fake_gpus[-1] == ("mirrored_strategy", ("/device:GPU:0", "/device:GPU:1"))


def test_memory_growth_counts_the_gpus_set_and_skips_a_virtual_split(
    fake_gpus, monkeypatch, caplog
):
    def split_gpu_1(device, enable):
        if device.name.endswith(":1"):
            raise ValueError("Cannot set memory growth on device when virtual devices configured")
        fake_gpus.append(("set_memory_growth", device.name, enable))

    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", split_gpu_1)
    with caplog.at_level(logging.WARNING, logger="weibo_lstm"):
        assert devices.configure_gpu_memory_growth() == 2
    assert "virtual devices" in caplog.text and "GPU:1" in caplog.text


def test_no_gpu_means_nothing_to_set():
    # The real device list of this (CPU-only) machine, or a GPU machine's: one per GPU.
    assert devices.configure_gpu_memory_growth() == len(tf.config.list_physical_devices("GPU"))
