"""The example and the `weibo-lstm` CLI end to end, on tiny generated data."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.synthetic import write_csv
from weibo_lstm import cli, report

ROOT = Path(__file__).resolve().parents[1]
FAST = [
    "--epochs",
    "4",
    "--batch-size",
    "16",
    "--max-length",
    "24",
    "--learning-rate",
    "1e-2",
    "--warmup-epochs",
    "0.5",
    "--quiet",
    "--model",
    "best",
]


def read_report(output_dir):
    (path,) = sorted(Path(output_dir).glob("training_report_*.csv"))
    with open(path, encoding="utf-8-sig", newline="") as f:
        header, values = list(csv.reader(f))
    return dict(zip(header, values, strict=True)), header


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One CLI training run on 2 replicas shared by the tests below."""
    root = tmp_path_factory.mktemp("run")
    data = write_csv(root / "train.csv", 400, seed=1)
    out = root / "out"
    code = cli.main(
        ["train", "--data", str(data), "--output-dir", str(out), "--replicas", "2", *FAST]
    )
    assert code == 0
    return root, out


def test_train_writes_report_model_and_curves(trained, caplog):
    _, out = trained
    row, header = read_report(out)
    assert header[:27] == list(report.SEED_COLUMNS)
    assert (
        int(row["report_积极_support"]) + int(row["report_消极_support"])
        == int(row["test_rows"])
        == 40
    )
    # Two independent computations agree: exact sums in the trainer vs scikit-learn.
    assert float(row["final_test_accuracy"]) == pytest.approx(
        float(row["report_accuracy"]), abs=1e-9
    )
    assert float(row["final_test_precision"]) == pytest.approx(
        float(row["report_积极_precision"]), abs=1e-9
    )
    assert float(row["final_test_recall"]) == pytest.approx(
        float(row["report_积极_recall"]), abs=1e-9
    )
    assert row["replicas"] == "2" and row["global_batch_size"] == "32"
    model_dir = Path(row["model_dir"])
    assert (model_dir / "model.keras").is_file() and (
        model_dir / "tokenizer" / "vocabulary.tsv"
    ).is_file()
    assert list(out.glob("training_curves_*.png"))
    assert list((out / "tensorboard").rglob("events.out.tfevents.*"))
    assert float(row["final_test_accuracy"]) >= 0.75  # the generated task is easy


def test_evaluate_and_predict_use_the_saved_model(trained, capsys):
    root, out = trained
    row, _ = read_report(out)
    test = write_csv(root / "fresh.csv", 60, seed=9)
    assert cli.main(["evaluate", "--model", row["model_dir"], "--data", str(test), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rows"] == 60 and result["strip_emoticons"] is False
    assert (
        result["classification_report"]["积极"]["support"]
        + result["classification_report"]["消极"]["support"]
        == 60
    )
    assert (
        cli.main(
            ["evaluate", "--model", row["model_dir"], "--data", str(test), "--strip-emoticons"]
        )
        == 0
    )
    assert "emoticons stripped" in capsys.readouterr().out

    assert cli.main(["predict", "--model", row["model_dir"], "很好很喜欢[哈哈]", "太差了[泪]"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [x["text"] for x in lines] == ["很好很喜欢[哈哈]", "太差了[泪]"]
    assert lines[0]["label"] == "积极" and lines[1]["label"] == "消极"
    assert lines[0]["positive_probability"] > 0.5 > lines[1]["positive_probability"]


def test_predict_reads_stdin(trained, monkeypatch, capsys):
    _, out = trained
    row, _ = read_report(out)
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO("好\n\n差[泪]\n"))
    assert cli.main(["predict", "--model", row["model_dir"]]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [x["text"] for x in lines] == ["好", "", "差[泪]"]
    assert all(0 <= x["positive_probability"] <= 1 for x in lines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--data", "missing.csv"], "missing.csv: no such file"),
        (["train", "--epochs", "0"], "--epochs: must be > 0, got 0"),
        (["train", "--batch-size", "x"], "--batch-size: expected a int, got 'x'"),
        (["train", "--bogus"], "unrecognized arguments: --bogus"),
        (["evaluate", "--model", "nowhere", "--data", "x.csv"], "not a trained model directory"),
        (["train", "--data", "{bad}"], "line 3: unknown label '7'"),
    ],
)
def test_user_errors_are_one_line_without_traceback(tmp_path, args, message, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("label,review\n1,好\n7,坏\n", "utf-8")
    args = [a.replace("{bad}", str(bad)) for a in args]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_unwritable_output_dir_fails_before_training(tmp_path, capsys):
    data = write_csv(tmp_path / "d.csv", 50)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert (
        cli.main(["train", "--data", str(data), "--output-dir", str(blocker / "out"), *FAST]) == 2
    )
    assert "output directory is not writable" in capsys.readouterr().err


def run_script(args, cwd, timeout=600):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_example_runs_end_to_end_from_data_input(tmp_path):
    """The example finds data/input/all_utf8.csv by itself, as the seed did."""
    write_csv(
        tmp_path / "data" / "input" / "all_utf8.csv",
        300,
        seed=2,
        fmt="all_utf8",
        encoding="gb18030",
    )
    result = run_script(
        [sys.executable, str(ROOT / "examples" / "train_multi_gpu.py"), *FAST], tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    row, _ = read_report(tmp_path / "data" / "output")
    assert row["data"].endswith("all_utf8.csv") and row["test_rows"] == "30"


def test_console_script_error_exit_code(tmp_path):
    result = run_script(
        [sys.executable, "-m", "weibo_lstm.cli", "train", "--data", "nope.csv"], tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "error: nope.csv: no such file"
    assert "Traceback" not in result.stderr


def test_flags_shared_between_example_and_cli(capsys):
    import importlib.util
    import re

    spec = importlib.util.spec_from_file_location(
        "example", ROOT / "examples" / "train_multi_gpu.py"
    )
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    with pytest.raises(SystemExit):
        example.main(["--help"])
    example_flags = set(re.findall(r"--[a-z-]+", capsys.readouterr().out))
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    cli_flags = set(re.findall(r"--[a-z-]+", capsys.readouterr().out))
    assert example_flags == cli_flags and {"--data", "--replicas", "--strip-emoticons"} <= cli_flags
