"""`weibo-lstm pretrain`: the command, resume after SIGKILL, and the shipped preset."""

import json
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.synthetic import texts_and_labels, write_csv
from tests.test_checkpointing import start
from weibo_lstm.jobs.train import RunConfig, run_training
from weibo_lstm.models.encoder import load_encoder
from weibo_lstm.models.presets import PRETRAINED_ENCODER

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
FAST = ["--vocabulary-size", "60", "--embedding-dim", "8", "--lstm-units", "16", "12"]
FAST += ["--bigram-buckets", "30", "--num-sampled", "8", "--batch-size", "16", "--epochs", "2"]
FAST += ["--val-fraction", "0.1", "--weights-dtype", "float32"]


def write_lines(path, n, seed):
    texts, _ = texts_and_labels(n, seed=seed)
    path.write_text("\n".join(texts) + "\n", "utf-8")
    return path


def command(texts, output, *extra):
    return [
        sys.executable,
        "-m",
        "weibo_lstm.cli.main",
        "pretrain",
        "--text",
        *map(str, texts),
        "--output",
        str(output),
        *FAST,
        *extra,
    ]


@pytest.mark.slow
def test_pretrain_command_reads_lines_and_csvs_and_writes_an_encoder(tmp_path):
    lines = write_lines(tmp_path / "posts.txt", 150, seed=1)
    labelled = write_csv(tmp_path / "reviews.csv", 100, seed=2)
    # In bfloat16 (the flag reaches the config; the model computes in half precision).
    process = start(
        command([lines, labelled], tmp_path / "enc", "--mixed-precision", "bfloat16"), tmp_path
    )
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["corpus"]["texts"] == 250
    assert summary["corpus"]["train_texts"] + summary["corpus"]["val_texts"] == 250
    assert np.isfinite(summary["val_perplexity"])
    report = json.loads((tmp_path / "enc" / "pretrain_report.json").read_text("utf-8"))
    assert len(report["epochs"]) == 2 and report["best_epoch"] in (1, 2)
    assert report["config"]["mixed_precision"] == "bfloat16"
    metadata = json.loads((tmp_path / "enc" / "encoder.json").read_text("utf-8"))["metadata"]
    assert metadata["report"]["best_epoch"] == report["best_epoch"]
    assert list((tmp_path / "enc" / "tensorboard").iterdir())


def test_pretrain_user_errors_exit_with_status_2(tmp_path):
    process = start(command([tmp_path / "missing.txt"], tmp_path / "enc"), tmp_path)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 2 and "missing.txt: no such file" in err


@pytest.mark.slow
def test_sigkill_then_same_command_resumes_and_matches_an_uninterrupted_run(tmp_path):
    """Sampled softmax, dropout and Adam state continue bit for bit after kill -9."""
    lines = write_lines(tmp_path / "posts.txt", 300, seed=3)
    extra = ["--dropout", "0.2", "--steps-per-loop", "2", "--checkpoint-every-steps", "3"]
    reference = start(
        command([lines], tmp_path / "ref", "--checkpoint-dir", tmp_path / "ref_ckpt", *extra),
        tmp_path,
    )
    victim_command = command(
        [lines], tmp_path / "enc", "--checkpoint-dir", tmp_path / "ckpt", *extra
    )
    victim = start(victim_command, tmp_path)
    index = tmp_path / "ckpt" / "checkpoint"
    deadline = time.monotonic() + 300
    while not index.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    _, killed_err = victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL, killed_err[-3000:]
    assert not (tmp_path / "enc" / "weights.npz").exists()

    resumed = start(victim_command, tmp_path)
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    assert "Resuming from checkpoint" in err
    _, ref_err = reference.communicate(timeout=600)
    assert reference.returncode == 0, ref_err[-3000:]
    assert json.loads(out.strip().splitlines()[-1])["resumed_at_step"] >= 3
    _, weights, _ = load_encoder(tmp_path / "enc")
    _, ref_weights, _ = load_encoder(tmp_path / "ref")
    assert weights.keys() == ref_weights.keys()
    for key, value in ref_weights.items():
        np.testing.assert_array_equal(weights[key], value, err_msg=key)


@pytest.mark.skipif(not PRETRAINED_ENCODER.is_dir(), reason="the preset has not been built")
def test_the_shipped_preset_loads_and_fine_tunes_on_tiny_data(tmp_path):
    arguments, _, _ = load_encoder(PRETRAINED_ENCODER)
    assert arguments["bigram_context"] == "previous"
    size = sum(p.stat().st_size for p in PRETRAINED_ENCODER.rglob("*") if p.is_file())
    assert size < 8 * 2**20
    data = write_csv(tmp_path / "posts.csv", 120, seed=8)
    result = run_training(
        RunConfig(
            data=str(data), output_dir=str(tmp_path / "out"), preset="pretrained", max_length=24
        ),
        {"epochs": 1, "batch_size": 16, "quiet": True},
    )
    assert np.isfinite(result.history.epochs[0]["loss"])
    assert result.report_row["encoder"] == str(PRETRAINED_ENCODER)


@pytest.mark.slow  # reads ../shared/data and normalises ~200k texts (about a minute)
@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data")
def test_no_validation_or_test_text_is_in_the_pretraining_corpus():
    from tools import pretrain_preset as script

    parts = script.splits(SHARED)
    corpus, stats = script.build_corpus(parts)
    evaluation = [t for _, val, test in parts.values() for p in (val, test) for t in p.texts]
    assert len(evaluation) > 30_000 and len(corpus) > 100_000
    # Independent of build_corpus's keys: exact texts, and texts without any bracket part.
    assert not set(corpus) & set(evaluation)
    keys = set(script.normalized_keys(corpus, True))
    assert not keys & set(script.normalized_keys(evaluation, True))
    assert not keys & set(script.normalized_keys(evaluation, False))
    manifest = PRETRAINED_ENCODER / "corpus_manifest.json"
    if manifest.is_file():
        recorded = json.loads(manifest.read_text("utf-8"))
        assert recorded["sha256"] == script.corpus_digest(corpus)
        assert recorded["texts"] == len(corpus) and recorded["sources"] == stats


def test_pretraining_budget_is_the_one_pretrain_config_had_before_the_split():
    """The training knobs left `PretrainConfig` for the option groups; their defaults did
    not move. The reference is the options that run_pretraining wrote out by hand from
    `PretrainConfig`'s own defaults before commit 7760d19, split by group."""
    from weibo_lstm.jobs.config import pretrain_options
    from weibo_lstm.training.controller_options import ControllerOptions
    from weibo_lstm.training.options import TrainerOptions

    before = (
        TrainerOptions(
            batch_size=128, learning_rate=2e-3, warmup_epochs=0.1, min_lr_fraction=0.05, seed=42
        ),
        ControllerOptions(
            epochs=3,
            steps_per_loop=None,
            monitor="val_loss",
            mode="min",
            quiet=False,
            summary_dir="enc/tensorboard",
            on_nonfinite="skip",
            checkpoint_dir=None,
            checkpoint_every_steps=200,
            keep_checkpoints=3,
            fresh=False,
        ),
    )
    assert pretrain_options(None, "enc/tensorboard") == before
    assert pretrain_options({"epochs": 5}, "x")[1].epochs == 5
