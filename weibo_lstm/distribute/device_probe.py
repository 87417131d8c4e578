"""The device kind without starting TensorFlow, for `--help` (which must answer at once)."""

from __future__ import annotations

import glob
import os
import sys


def probable_device_kind() -> str:
    """`"GPU"` if this machine shows an NVIDIA GPU to this process, else `"CPU"`.

    Once TensorFlow is loaded, it asks TensorFlow (`devices.local_device_kind`);
    before, it looks for the NVIDIA driver's devices and honours
    `CUDA_VISIBLE_DEVICES=""` or `-1`, which costs microseconds instead of the seconds
    TensorFlow's start takes. Training itself always asks TensorFlow.

    Example:

    >>> probable_device_kind() in ("CPU", "GPU")
    True
    """
    if "tensorflow" in sys.modules:
        from weibo_lstm.distribute.devices import local_device_kind

        return local_device_kind()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return "CPU"
    found = glob.glob("/proc/driver/nvidia/gpus/*") or glob.glob("/dev/nvidia[0-9]*")
    return "GPU" if found else "CPU"
