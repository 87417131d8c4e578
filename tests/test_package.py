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
        "__version__",
    ):
        assert hasattr(weibo_lstm, name)
    assert sorted(weibo_lstm.__all__) == sorted(set(weibo_lstm.__all__))


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
