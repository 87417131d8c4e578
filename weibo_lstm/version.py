"""The library version (a leaf module: setup.cfg reads it without importing TensorFlow)."""

__version__ = "0.2.0"
