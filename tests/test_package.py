import subprocess
import sys

import weibo_lstm


def test_public_api():
    for name in (
        "Tokenizer",
        "WeiboLSTM",
        "WarmupCosineDecay",
        "load_csv",
        "split_dataset",
        "SentimentClassifier",
        "DistributedTrainer",
        "TrainerOptions",
        "RunConfig",
        "run_training",
        "PRESETS",
        "ConfigError",
        "__version__",
    ):
        assert hasattr(weibo_lstm, name)
    assert sorted(weibo_lstm.__all__) == sorted(set(weibo_lstm.__all__))
    from weibo_lstm.data import csv_files as data

    assert weibo_lstm.DataError is data.DataError  # importable from both


def test_every_error_has_an_exit_status():
    import inspect

    from weibo_lstm import errors

    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass)]
    assert len(classes) >= 8
    for cls in classes:
        assert issubclass(cls, errors.WeiboLSTMError)
        assert cls.exit_status in (1, errors.USER_ERROR, errors.RUN_FAILED, errors.PREEMPTED)
        assert cls.__name__ in weibo_lstm.__all__
    assert weibo_lstm.ConfigError.exit_status == 2 and weibo_lstm.NonFiniteError.exit_status == 3


def test_import_does_not_print_or_initialise_devices():
    code = (
        "import weibo_lstm\n"
        "from tensorflow.python.eager import context\n"
        "assert context.context()._context_handle is None, 'devices initialised'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
