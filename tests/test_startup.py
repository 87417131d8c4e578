"""The command line answers --help, --version and wrong paths or flags without starting
TensorFlow."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_python

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = [
    ["--version"],
    ["--help"],
    *([command, "--help"] for command in ("train", "pretrain", "evaluate", "predict", "export")),
]


def test_help_and_version_do_not_import_tensorflow(repo_root):
    """In a fresh process, as a user's shell runs it: each of these exits without
    TensorFlow (and Keras) in sys.modules, which is what makes them take well under
    a second instead of the 4-7 s TensorFlow's start takes on 2 cores
    (benchmarks/startup.py times them)."""
    code = (
        "import contextlib, io, json, sys\n"
        "from weibo_lstm.cli.main import main\n"
        "loaded = {}\n"
        f"for argv in {COMMANDS!r}:\n"
        "    out = io.StringIO()\n"
        "    with contextlib.redirect_stdout(out):\n"
        "        try:\n"
        "            status = main(argv)\n"
        "        except SystemExit as e:\n"
        "            status = e.code\n"
        "    heavy = sorted(m for m in ('tensorflow', 'keras', 'tensorflow_text') if m in sys.modules)\n"
        "    loaded[' '.join(argv)] = [status, heavy, len(out.getvalue())]\n"
        "print(json.dumps(loaded))\n"
    )
    loaded = json.loads(run_python(code, repo_root).strip().splitlines()[-1])
    for argv, (status, heavy, printed) in loaded.items():
        assert status in (0, None) and printed > 0, argv
        assert heavy == [], f"{argv} imported {heavy}"


def test_python_dash_m_runs_the_command_line(repo_root):
    result = subprocess.run(
        [sys.executable, "-m", "weibo_lstm", "--version"],
        capture_output=True,
        text=True,
        cwd=repo_root,
        timeout=120,
    )
    from weibo_lstm import __version__

    assert result.returncode == 0 and result.stdout.strip() == __version__


_ERROR_RUN = (
    "import sys\n"
    "from weibo_lstm.cli.main import main\n"
    "status = main(sys.argv[1:])\n"
    "print(status, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evaluate", "--data", "missing.csv"], "error: missing.csv: no such file"),
        (
            ["predict", "--input", "missing.csv", "--output", "out.csv"],
            "error: missing.csv: no such file",
        ),
        (["predict", "--model", "nowhere", "很差"], "error: nowhere: no such model directory"),
        (["predict", "--model", "nowhere"], "error: nowhere: no such model directory"),
        (
            ["evaluate", "--model", "nowhere", "--data", "missing.csv"],
            "error: nowhere: no such model directory",
        ),
        (["export", "--model", "nowhere", "--output", "sm"], "error: nowhere: no such model"),
        (["evaluate", "--model", ".", "--data", "x.csv"], "error: .: neither a trained model"),
        (["predict", "--engine", "jax", "好"], "argument --engine: invalid choice: 'jax'"),
        (["evaluate", "--data", "x.csv", "--bogus"], "unrecognized arguments: --bogus"),
        (["evaluate"], "the following arguments are required: --data"),
        (["predict", "--batch-size", "0", "好"], "--batch-size: must be > 0"),
    ],
)
def test_wrong_paths_and_flags_are_answered_before_tensorflow_starts(argv, message, tmp_path):
    """In a fresh process, as a user's shell runs it: exit status 2, one line on
    stderr, and TensorFlow never imported (benchmarks/pipeline.py times it)."""
    result = subprocess.run(
        [sys.executable, "-c", _ERROR_RUN, *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # the relative paths above do not exist there
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=120,
    )
    assert result.stdout.split() == ["2", "False", "False"], result.stderr[-2000:]
    (line,) = result.stderr.splitlines()
    assert message in line, line
