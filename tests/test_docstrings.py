"""Every `Example:` in the public docstrings runs."""

import doctest
import importlib
import pkgutil

import numpy as np
import pytest
import tensorflow as tf

import weibo_lstm

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(weibo_lstm.__path__, "weibo_lstm.")
    if m.name not in ("weibo_lstm.cli.main", "weibo_lstm.__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, extraglobs={"np": np, "tf": tf}, optionflags=doctest.ELLIPSIS, verbose=False
    )
    assert result.failed == 0
