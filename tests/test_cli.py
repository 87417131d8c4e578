"""The example and the `weibo-lstm` CLI end to end, on tiny generated data."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from weibo_lstm.cli import main as cli
from weibo_lstm.cli import train as train_cli
from weibo_lstm.errors import DataError
from weibo_lstm.jobs import report

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, write_csv, fast_train_flags):
    """One CLI training run on 2 replicas shared by the tests below."""
    root = tmp_path_factory.mktemp("run")
    data = write_csv(root / "train.csv", 400, seed=1)
    out = root / "out"
    code = cli.main(
        [
            "train",
            "--data",
            str(data),
            "--output-dir",
            str(out),
            "--replicas",
            "2",
            *fast_train_flags,
        ]
    )
    assert code == 0
    return root, out


def test_train_writes_report_model_and_curves(trained, read_report):
    _, out = trained
    row, header = read_report(out)
    assert header[:27] == list(report.SEED_COLUMNS)
    assert header[27:] == [  # the extras, in the order 0.1.0 wrote them
        *("replicas", "workers", "device", "global_batch_size", "peak_learning_rate"),
        *("epochs_run", "train_time_s", "examples_per_second", "data", "train_rows"),
        *("val_rows", "test_rows", "input_rows", "dropped_empty_rows", "duplicate_rows"),
        *("dropped_duplicate_rows", "truncated_rows", "skipped_nonfinite_steps"),
        *("resumed_at_step", "deterministic", "strip_emoticons", "max_length", "model"),
        *("library_version", "model_dir"),
        "encoder",  # new in 0.2.0: the pretrained encoder the run started from
        # (0.3.0's largest_epoch_boundary_s, the longest pause between epochs, is gone)
        "mixed_precision",  # new in 0.3.0
        # added with emoticon dropout: the share of training posts whose emoticons were
        # removed, and the leakage audit's test accuracy without emoticons
        *("emoticon_dropout", "test_accuracy_emoticons_stripped"),
        # wide & deep (on by default): each part's test accuracy and the wide part's fit
        *("wide", "test_accuracy_deep", "test_accuracy_wide", "test_accuracy_wide_and_deep"),
        "wide_fit_s",
    ]
    assert row["wide"] == "True" and float(row["wide_fit_s"]) > 0
    assert row["test_accuracy_wide_and_deep"] == row["final_test_accuracy"]
    for part in ("deep", "wide"):
        assert 0 <= float(row[f"test_accuracy_{part}"]) <= 1
    # The generated posts carry label-bearing emoticons: the audit turns dropout on.
    assert float(row["emoticon_dropout"]) == 0.7
    assert 0.5 <= float(row["test_accuracy_emoticons_stripped"]) <= 1
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


def test_evaluate_and_predict_use_the_saved_model(trained, read_report, write_csv, capsys):
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
    # A Hugging Face pipeline's shape too: `score` is the probability of `label`.
    assert lines[0]["score"] == lines[0]["positive_probability"]
    assert lines[1]["score"] == pytest.approx(1 - lines[1]["positive_probability"], abs=2e-6)

    assert cli.main(["evaluate", "--model", row["model_dir"], "--data", str(test)]) == 0
    metrics_line = capsys.readouterr().out.splitlines()[1]
    assert "precision(积极) " in metrics_line and "recall(积极) " in metrics_line


def test_predict_reads_stdin(trained, read_report, monkeypatch, capsys):
    _, out = trained
    row, _ = read_report(out)
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO("好\n\n差[泪]\n \u3000\n"))
    assert cli.main(["predict", "--model", row["model_dir"]]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # Every line answered, in place; a blank one unlabelled (as wl.pipeline gives it []).
    assert [(x["line"], x["text"]) for x in lines] == [
        (1, "好"),
        (2, ""),
        (3, "差[泪]"),
        (4, " \u3000"),
    ]
    for x in (lines[0], lines[2]):
        assert 0 <= x["positive_probability"] <= 1 and x["label"] in ("积极", "消极")
    assert lines[1] == {
        "line": 2,
        "text": "",
        "label": "",
        "score": None,
        "probabilities": {"消极": None, "积极": None},
        "positive_probability": None,
    }
    assert lines[3]["label"] == "" and lines[3]["score"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--data", "missing.csv"], "missing.csv: no such file"),
        (["train", "--epochs", "0"], "Argument `epochs` must be >= 1. Received: epochs=0"),
        (["train", "--replicas", "0"], "Argument `replicas` must be >= 1 or None."),
        (["train", "--on-nonfinite", "x"], "argument --on-nonfinite: invalid choice: 'x'"),
        (["train", "--preset", "x"], "argument --preset: invalid choice: 'x'"),
        (["train", "--batch-size", "x"], "--batch-size: expected an int, got 'x'"),
        (["train", "--bogus"], "unrecognized arguments: --bogus"),
        (["train", "--adversarial-epsilon", "1"], "unrecognized arguments: --adversarial-epsilon"),
        (["train", "--emoticon-dropout", "2"], "Argument `emoticon_dropout` must be in [0, 1]"),
        (["evaluate", "--model", "nowhere", "--data", "x.csv"], "nowhere: no such model directory"),
        (["predict", "--model", "nowhere", "好"], "nowhere: no such model directory or SavedModel"),
        (["train", "--data", "{dir}"], "is a directory; give the CSV file inside it"),
        (["train", "--data", "{bad}"], "line 3: unknown label '7'"),
    ],
)
def test_user_errors_are_one_line_without_traceback(tmp_path, args, message, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("label,review\n1,好\n7,坏\n", "utf-8")
    args = [a.replace("{bad}", str(bad)).replace("{dir}", str(tmp_path)) for a in args]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_train_answers_a_wrong_path_without_starting_tensorflow(tmp_path):
    """Each wrong input of `train` is one line and exit 2, before TensorFlow loads."""
    cases = {
        "--data": (str(tmp_path / "missing.csv"), "missing.csv: no such file"),
        "--val-data": (str(tmp_path), "is a directory; give the CSV file inside it"),
        "--init": (str(tmp_path / "nowhere"), "nowhere: no such model directory"),
        "--encoder": (str(tmp_path / "none"), "none: no such encoder directory"),
    }
    code = (
        "import sys, json\n"
        "from weibo_lstm.cli.main import main\n"
        f"cases = {cases!r}\n"
        "statuses = [main(['train', flag, value]) for flag, (value, _) in cases.items()]\n"
        "print(json.dumps([statuses, 'tensorflow' in sys.modules]))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    statuses, loaded = json.loads(result.stdout.splitlines()[-1])
    assert statuses == [2, 2, 2, 2] and not loaded
    errors = result.stderr.strip().splitlines()
    assert [m in e for (_, m), e in zip(cases.values(), errors, strict=True)] == [True] * 4


def test_unwritable_output_dir_fails_before_training(tmp_path, write_csv, fast_train_flags, capsys):
    data = write_csv(tmp_path / "d.csv", 50)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert (
        cli.main(
            ["train", "--data", str(data), "--output-dir", str(blocker / "out"), *fast_train_flags]
        )
        == 2
    )
    assert "output directory is not writable" in capsys.readouterr().err


def run_script(args, cwd, timeout=600):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_example_runs_end_to_end_from_data_input(
    tmp_path, write_csv, read_report, fast_train_flags
):
    """The example finds data/input/all_utf8.csv by itself, as the seed did."""
    write_csv(
        tmp_path / "data" / "input" / "all_utf8.csv",
        300,
        seed=2,
        fmt="all_utf8",
        encoding="gb18030",
    )
    result = run_script(
        [sys.executable, str(ROOT / "examples" / "train_multi_gpu.py"), *fast_train_flags],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    row, _ = read_report(tmp_path / "data" / "output")
    assert row["data"].endswith("all_utf8.csv") and row["test_rows"] == "30"


def test_console_script_error_exit_code(tmp_path):
    result = run_script(
        [sys.executable, "-m", "weibo_lstm.cli.main", "train", "--data", "nope.csv"], tmp_path
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


# ------------------------------------------------------------------ hostile input files
TINY = ["--epochs", "1", "--batch-size", "32", "--max-length", "16", "--warmup-epochs", "0.5"]
TINY += ["--quiet"]


def hostile_rows(n=120):
    """`n` distinct labelled rows (built here: the table below needs them at import)."""
    return [[str(i % 2), ("很好喜欢" if i % 2 else "太差失望") + f"的第{i}条"] for i in range(n)]


def csv_bytes(rows, encoding="utf-8", header=("label", "review")):
    lines = [",".join(header)] + [",".join(f'"{c}"' if "," in c else c for c in r) for r in rows]
    return ("\n".join(lines) + "\n").encode(encoding)


def messy(encoding):
    """Valid rows plus 3 empty/whitespace reviews, a 100k-character post, 4 repeats."""
    rows = hostile_rows()
    rows[5][1], rows[9][1], rows[11][1] = "", "   ", "\u3000\t"
    rows[20][1] = "好" * 100_000
    rows += [list(r) for r in rows[30:34]]
    return csv_bytes(rows, encoding)


BINARY_GB18030 = bytes(np.random.default_rng(0).integers(0x81, 0xFF, 4000).astype(np.uint8))

HOSTILE = {
    # name: (file bytes, extra flags, expected exit status, message or counts)
    "empty file": (b"", [], 2, "the file is empty"),
    "blank lines": (b"\n \n\n", [], 2, "the file is empty"),
    "missing columns": (
        csv_bytes(hostile_rows(4), header=("label", "x")),
        [],
        2,
        "line 1: missing column(s)",
    ),
    "unknown label": (
        csv_bytes([["1", "好"], ["maybe", "坏"]]),
        [],
        2,
        "line 3: unknown label 'maybe'",
    ),
    "ragged row": (b"label,review\n1,a\n0,b,c\n1,d\n", [], 2, "line 3: expected 2 fields, found 3"),
    "unterminated quote": (b'label,review\n1,"oops\n0,b\n', [], 2, "line 2: malformed CSV"),
    "binary with NUL": (bytes(range(256)) * 8, [], 2, "contains NUL bytes"),
    "UTF-16": (csv_bytes(hostile_rows(4), "utf-16"), [], 2, "contains NUL bytes"),
    "binary, not text": (b"\x89PNG\r\n\x1a\n\xff\xfe\x81" * 50, [], 2, "not UTF-8 or GB18030/GBK"),
    "binary that decodes": (BINARY_GB18030, [], 2, "line 1: missing column(s)"),
    "only empty reviews": (
        b"label,review\n1, \n0,\n",
        [],
        2,
        "no usable rows (2 read, 2 with empty text)",
    ),
    "GBK, messy": (
        messy("gbk"),
        [],
        0,
        dict(input_rows=124, dropped_empty_rows=3, truncated_rows=1, duplicate_rows=4),
    ),
    "UTF-8 BOM, messy, --drop-duplicates": (
        messy("utf-8-sig"),
        ["--drop-duplicates"],
        0,
        dict(input_rows=124, dropped_empty_rows=3, truncated_rows=1, dropped_duplicate_rows=4),
    ),
    "GB18030 beyond GBK": (
        csv_bytes([[y, t + "𠀀€"] for y, t in hostile_rows()], "gb18030"),
        [],
        0,
        dict(input_rows=120, dropped_empty_rows=0),
    ),
}
LOG_LINES = {  # (one, many)
    "dropped_empty_rows": ("{} row with empty text dropped", "{} rows with empty text dropped"),
    "truncated_rows": ("{} text truncated", "{} texts truncated"),
    "duplicate_rows": ("{} row repeats an earlier text", "{} rows repeat an earlier text"),
    "dropped_duplicate_rows": (
        "{} duplicate/conflicting row dropped",
        "{} duplicate/conflicting rows dropped",
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_csv_through_the_cli(name, tmp_path, read_report, capsys, caplog):
    caplog.set_level("INFO", logger="weibo_lstm")
    content, flags, status, expected = HOSTILE[name]
    path = tmp_path / "input.csv"
    path.write_bytes(content)
    out = tmp_path / "out"
    code = cli.main(["train", "--data", str(path), "--output-dir", str(out), *TINY, *flags])
    err = capsys.readouterr().err
    assert code == status, err[-2000:]
    assert "Traceback" not in err
    if status:
        line = err.strip()
        assert "\n" not in line and len(line) < 400, line
        assert line.startswith(f"error: {path}") and expected in line
        assert not out.exists() or not list(out.iterdir())  # nothing trained or written
        return
    row, _ = read_report(out)
    for column, count in expected.items():
        assert int(row[column]) == count, column
        if count and column in LOG_LINES:
            assert LOG_LINES[column][count > 1].format(count) in caplog.text
    assert int(row["train_rows"]) + int(row["val_rows"]) + int(row["test_rows"]) == (
        expected["input_rows"]
        - expected.get("dropped_empty_rows", 0)
        - expected.get("dropped_duplicate_rows", 0)
    )
    if "GB" in name:
        assert f"{path}: {expected['input_rows']} rows read (gb18030)" in caplog.text


def test_hostile_csv_through_the_example_and_a_real_process(tmp_path):
    bad = tmp_path / "junk.csv"
    bad.write_bytes(HOSTILE["binary that decodes"][0])
    result = run_script(
        [sys.executable, str(ROOT / "examples" / "train_multi_gpu.py"), "--data", str(bad)],
        tmp_path,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {bad}, line 1: missing column(s)") and len(last) < 400


# ------------------------------------------------------------------ failures of a run
def test_nan_from_an_absurd_learning_rate_exits_3_with_one_line(tmp_path, write_csv, capsys):
    data = write_csv(tmp_path / "d.csv", 100)
    args = ["train", "--data", str(data), "--output-dir", str(tmp_path / "out"), *TINY]
    assert cli.main([*args, "--learning-rate", "1e30", "--warmup-epochs", "0"]) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: non-finite loss at epoch 1, step ") and "\n" not in err
    assert "--on-nonfinite skip" in err


def test_unwritable_checkpoint_dir_fails_before_training(tmp_path, write_csv, capsys, caplog):
    caplog.set_level("INFO", logger="weibo_lstm")
    data = write_csv(tmp_path / "d.csv", 50)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    args = ["train", "--data", str(data), "--output-dir", str(tmp_path / "out"), *TINY]
    assert cli.main([*args, "--checkpoint-dir", str(blocker / "ckpt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {blocker / 'ckpt'}: checkpoint directory is not writable")
    assert "Training" not in caplog.text and "rows read" not in caplog.text  # before the data


def test_full_disk_fails_before_training(tmp_path, capsys, monkeypatch):
    import errno

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    data = tmp_path / "x.csv"  # there (a missing file is answered first), never read
    data.write_text("label,review\n1,好\n", "utf-8")
    args = ["train", "--data", str(data), "--output-dir", str(tmp_path / "out")]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"error: {tmp_path / 'out'}: output directory is not writable: No space left on device"
    )


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ("DataError", 2),
        ("CheckpointError", 2),
        ("ConfigError", 2),
        ("NonFiniteError", 3),
        ("ClusterError", 3),
    ],
)
def test_run_errors_become_one_line_and_a_status(error, status, monkeypatch, capsys):
    import weibo_lstm
    from weibo_lstm.jobs import train as job

    def fail(config, options):
        raise getattr(weibo_lstm, error)("it went wrong")

    monkeypatch.setattr(job, "run_training", fail)
    assert cli.main(["train"]) == status
    assert capsys.readouterr().err == "error: it went wrong\n"


def test_fault_tolerance_flags_reach_the_config():
    args = cli.build_parser().parse_args(
        [
            *("train", "--checkpoint-dir", "ck", "--checkpoint-every-steps", "50"),
            *("--keep-checkpoints", "2", "--fresh", "--on-nonfinite", "skip", "--deterministic"),
        ]
    )
    config, options = train_cli.train_settings(args)
    assert options["checkpoint_dir"] == "ck" and options["checkpoint_every_steps"] == 50
    assert options["keep_checkpoints"] == 2 and options["fresh"] and config.deterministic
    assert options["on_nonfinite"] == "skip"
    config, options = train_cli.train_settings(cli.build_parser().parse_args(["train"]))
    assert options["checkpoint_dir"] is None and not options["fresh"]
    assert options["on_nonfinite"] == "stop" and not config.deterministic
    assert options["checkpoint_every_steps"] == 200  # None is spelt --checkpoint-every-steps none


# ------------------------------------------------------------------ a fresh process, as a user runs it
def console_script(args, cwd, *, tf_log_level=None, timeout=300):
    """Runs the installed `weibo-lstm` command (this checkout's code) in a fresh process.

    stderr goes into stdout, in order, as on a terminal. TF_CPP_MIN_LOG_LEVEL is removed
    from the environment unless given (this test process sets it).
    """
    script = shutil.which("weibo-lstm") or str(Path(sys.executable).with_name("weibo-lstm"))
    assert Path(script).is_file(), (
        "the weibo-lstm console script is not installed (pip install -e .)"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    if tf_log_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = tf_log_level
    return subprocess.run(
        [script, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


# Cheapest settings that still train: 1 epoch, 3 steps of 2 x 16 posts.
ONE_EPOCH = ["--epochs", "1", "--batch-size", "16", "--max-length", "16", "--preset", "best"]
ONE_EPOCH += ["--quiet"]


@pytest.mark.slow  # a fresh process that trains; replicas are tested in-process
def test_console_script_trains_on_two_cpu_replicas(tmp_path, write_csv, read_report):
    """`--replicas 2` splits the CPU before TensorFlow initialises (this test process
    already has 2 logical CPUs from conftest, which hid the bug)."""
    data = write_csv(tmp_path / "tiny.csv", 120)
    args = ["train", "--data", str(data), "--output-dir", "out", "--replicas", "2", *ONE_EPOCH]
    result = console_script(args, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    row, _ = read_report(tmp_path / "out")
    assert row["replicas"] == "2" and row["global_batch_size"] == "32"


@pytest.mark.slow
def test_example_trains_on_two_cpu_replicas(tmp_path, write_csv, read_report):
    data = write_csv(tmp_path / "tiny.csv", 120)
    script = str(ROOT / "examples" / "train_multi_gpu.py")
    args = ["--data", str(data), "--output-dir", "out", "--replicas", "2", *ONE_EPOCH]
    result = run_script([sys.executable, script, *args], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    row, _ = read_report(tmp_path / "out")
    assert row["replicas"] == "2" and row["global_batch_size"] == "32"


@pytest.mark.slow
def test_predict_prints_only_its_json_line_unless_verbose(trained, tmp_path, read_report):
    _, out = trained
    row, _ = read_report(out)
    result = console_script(["predict", "--model", row["model_dir"], "很好"], tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    (line,) = result.stdout.splitlines()  # no TensorFlow lines on stdout or stderr
    assert json.loads(line)["text"] == "很好"

    verbose = console_script(
        ["predict", "--model", row["model_dir"], "--verbose", "很好"], tmp_path
    )
    assert verbose.returncode == 0, verbose.stdout[-3000:]
    assert json.loads(verbose.stdout.splitlines()[-1])["text"] == "很好"  # TF's lines allowed


# ------------------------------------------------------------------ --model: a training output directory
@pytest.fixture
def output_dir_with_runs(trained, tmp_path, read_report):
    """An output directory with two complete runs and a newer, incomplete one."""
    _, out = trained
    row, _ = read_report(out)
    runs = tmp_path / "output"
    for stamp in ("20250101_000000", "20251231_235959"):
        shutil.copytree(row["model_dir"], runs / f"model_{stamp}")
    (runs / "model_20991231_000000").mkdir()  # training died before saving
    (runs / "model_backup").mkdir()
    return runs, runs / "model_20251231_235959"


@pytest.mark.parametrize("command", ["evaluate", "predict", "export"])
def test_commands_use_the_newest_model_of_an_output_dir(
    command, output_dir_with_runs, tmp_path, capsys, caplog, write_csv
):
    caplog.set_level("INFO", logger="weibo_lstm")
    runs, newest = output_dir_with_runs
    extra = {
        "evaluate": ["--data", str(write_csv(tmp_path / "t.csv", 30, seed=5))],
        "predict": ["很好"],
        "export": ["--output", str(tmp_path / "sm")],
    }[command]
    assert cli.main([command, "--model", str(runs), *extra]) == 0, capsys.readouterr().err
    messages = [r.getMessage() for r in caplog.records if r.name == "weibo_lstm"]
    assert messages.count(f"Using the newest model in {runs}: {newest}") == 1
    if command == "export":
        from weibo_lstm.serving.export import read_metadata

        assert read_metadata(tmp_path / "sm")["source_model_dir"] == str(newest.resolve())


@pytest.mark.parametrize("command", ["evaluate", "predict", "export"])
def test_a_directory_without_models_says_what_to_pass(command, tmp_path, capsys):
    (tmp_path / "output" / "model_20250101_000000").mkdir(parents=True)  # incomplete
    extra = {
        "evaluate": ["--data", "x.csv"],
        "predict": ["好"],
        "export": ["--output", str(tmp_path / "sm")],
    }[command]
    assert cli.main([command, "--model", str(tmp_path / "output"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"error: {tmp_path / 'output'}: ")
    assert (
        "model_YYYYMMDD_HHMMSS runs" in err and "pass the --output-dir of `weibo-lstm train`" in err
    )
    assert not (tmp_path / "sm").exists()


def test_memory_growth_flag_reaches_the_runtime(monkeypatch):
    from weibo_lstm.jobs import train as job

    class Stop(Exception):
        pass

    seen = []

    def create(*args, **kwargs):
        seen.append(kwargs["memory_growth"])
        raise Stop

    monkeypatch.setattr(job.Runtime, "create", create)
    for flags, expected in (([], True), (["--no-memory-growth"], False)):
        config, options = train_cli.train_settings(cli.build_parser().parse_args(["train", *flags]))
        assert config.memory_growth is expected
        with pytest.raises(Stop):
            job.run_training(config, options)
    assert seen == [True, False]
    pretrain = cli.build_parser().parse_args(["pretrain", "--text", "t.txt", "--no-memory-growth"])
    assert pretrain.memory_growth is False


@pytest.mark.parametrize("command", ["evaluate", "predict", "export"])
@pytest.mark.parametrize("flag, expected", [([], True), (["--no-memory-growth"], False)])
def test_commands_set_memory_growth_before_loading(
    command, flag, expected, tmp_path, monkeypatch, write_csv
):
    from weibo_lstm.distribute import devices as distribution
    from weibo_lstm.serving import model_directory

    class Stop(Exception):
        pass

    seen = []

    def configure(growth):
        seen.append(growth)
        raise Stop  # before anything is loaded

    monkeypatch.setattr(distribution, "configure_gpu_memory_growth", configure)
    monkeypatch.setattr(model_directory, "read", lambda *a, **k: seen.append("read"))
    extra = {
        "evaluate": ["--data", str(write_csv(tmp_path / "x.csv", 20))],
        "predict": ["--engine", "tensorflow", "text"],
        "export": ["--output", str(tmp_path / "sm")],
    }
    with pytest.raises(Stop):
        cli.main([command, *flag, *extra[command]])  # the shipped model
    assert seen == [expected]


@pytest.mark.slow  # two trainings; the settings file's parsing is tested fast
def test_config_file_reruns_a_run_and_flags_override_it(tmp_path, write_csv, read_report, capsys):
    """Every run writes settings.toml beside its model; `train --config` on it trains
    the same run again (same test accuracy, deterministic on a CPU), and a flag given
    on the command line beats the file."""
    data = write_csv(tmp_path / "train.csv", 200, seed=4)
    first = ["train", "--data", str(data), "--output-dir", str(tmp_path / "a"), *TINY]
    assert cli.main([*first, "--epochs", "2", "--preset", "best"]) == 0
    row, _ = read_report(tmp_path / "a")
    settings = Path(row["model_dir"]) / "settings.toml"
    text = settings.read_text("utf-8")
    assert 'preset = "best"' in text and "epochs = 2" in text and "batch_size = 32" in text
    # One section per dataclass; the emoticon-dropout share as the run decided it.
    assert "# training (TrainerOptions)" in text and "# loop (ControllerOptions)" in text
    assert "emoticon_dropout = 0.7" in text.split("# training")[0]

    again = ["train", "--config", str(settings), "--output-dir", str(tmp_path / "b")]
    assert cli.main(again) == 0
    rerun, _ = read_report(tmp_path / "b")
    assert rerun["final_test_accuracy"] == row["final_test_accuracy"]
    assert rerun["epochs_run"] == "2" and rerun["model"] == "best"

    assert cli.main([*again[:3], "--output-dir", str(tmp_path / "c"), "--epochs", "1"]) == 0
    assert read_report(tmp_path / "c")[0]["epochs_run"] == "1"

    bad = tmp_path / "bad.toml"
    bad.write_text("epochz = 3\n", "utf-8")
    capsys.readouterr()
    assert cli.main(["train", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown settings ['epochz']" in err and "\n" not in err


def test_a_settings_file_of_an_older_release_still_reads(tmp_path):
    """0.3's settings.toml had `adversarial_epsilon = 0.0` and `emoticon_dropout` among
    the trainer's settings; both read (the first is gone, the second is the run's)."""
    old = tmp_path / "settings.toml"
    old.write_text(
        '# run (RunConfig)\npreset = "best"\n\n# training (TrainerOptions)\nepochs = 2\n'
        "adversarial_epsilon = 0.0\nemoticon_dropout = 0.7\n",
        "utf-8",
    )
    parser = cli.build_parser()
    train_cli.apply_config_file(parser, ["train", "--config", str(old)])
    config, options = train_cli.train_settings(parser.parse_args(["train"]))
    assert (config.preset, config.emoticon_dropout, options["epochs"]) == ("best", 0.7, 2)
    assert "adversarial_epsilon" not in options
    old.write_text("adversarial_epsilon = 0.25\n", "utf-8")
    with pytest.raises(DataError, match="`adversarial_epsilon` is no longer a setting"):
        train_cli.apply_config_file(cli.build_parser(), ["train", "--config", str(old)])
