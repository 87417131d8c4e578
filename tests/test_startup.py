"""The command line answers --help and --version without starting TensorFlow."""

import json

from tests.helpers import run_python

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
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "weibo_lstm", "--version"],
        capture_output=True,
        text=True,
        cwd=repo_root,
        timeout=120,
    )
    from weibo_lstm import __version__

    assert result.returncode == 0 and result.stdout.strip() == __version__
