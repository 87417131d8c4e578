"""The shipped trained classifier: usable right after install, with no --model."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import weibo_lstm as wl
from weibo_lstm.models.presets import DEFAULT_MODEL, trained_model_path
from weibo_lstm.serving.model_format import is_model_directory

# Texts whose label a person does not doubt, from none of the training corpora.
CLEAR = {"很差": 0, "[泪]": 0, "太好吃了": 1, "质量非常好，很满意": 1, "垃圾，再也不买了": 0}


def _weibo_lstm(args, repo_root):
    """`python -m weibo_lstm ARGS` in a fresh process (the devices a user's process has)."""
    env = dict(os.environ, PYTHONPATH=str(repo_root), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-m", "weibo_lstm", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=repo_root,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_the_shipped_model_is_small_and_complete():
    path = trained_model_path()
    assert is_model_directory(path)
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    assert size <= 15e6, f"{size / 1e6:.1f} MB"
    about = json.loads((path / "classifier.json").read_text("utf-8"))
    assert (
        about["metadata"]["built_by"] == "tools/build_shipped_model.py build --model sentiment_zh"
    )
    assert about["class_names"] == ["消极", "积极", "中性"]


def test_from_preset_loads_it_ready_to_predict():
    classifier = wl.SentimentClassifier.from_preset(DEFAULT_MODEL)
    assert isinstance(classifier.model, wl.WideAndDeep)  # wide & deep
    probabilities = classifier.predict(list(CLEAR))
    assert probabilities.argmax(1).tolist() == list(CLEAR.values())
    with pytest.raises(wl.ConfigError, match="must be one of"):
        trained_model_path("no_such_model")


def test_from_preset_refuses_building_arguments_for_the_trained_model():
    """Silently ignoring them would hand back a model other than the one asked for."""
    for arguments in ({"seed": 3}, {"vocabulary_texts": ["好"]}, {"max_length": 20}):
        with pytest.raises(
            wl.ConfigError, match=f"takes only `strategy`. Received: {next(iter(arguments))}"
        ):
            wl.SentimentClassifier.from_preset(DEFAULT_MODEL, **arguments)
    with pytest.raises(wl.ConfigError, match="Received: dropout, strip_emoticons"):
        wl.SentimentClassifier.from_preset(DEFAULT_MODEL, strip_emoticons=True, dropout=0.1)


def test_predict_without_model_uses_it_in_a_fresh_process(repo_root):
    """What a new user types first: no --model, no training."""
    stdout = _weibo_lstm(["predict", *CLEAR], repo_root)
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert [line["text"] for line in lines] == list(CLEAR)
    labels = [wl.CLASS_NAMES.index(line["label"]) for line in lines]
    assert labels == list(CLEAR.values())
    for line in lines:
        assert list(line["probabilities"]) == ["消极", "积极", "中性"]
        assert line["score"] == pytest.approx(max(line["probabilities"].values()), abs=1e-6)


def test_evaluate_without_model_scores_a_csv(tmp_path, repo_root):
    data = tmp_path / "clear.csv"
    data.write_text("label,review\n" + "".join(f"{y},{t}\n" for t, y in CLEAR.items()), "utf-8")
    report = json.loads(_weibo_lstm(["evaluate", "--data", str(data), "--json"], repo_root))
    assert report["rows"] == len(CLEAR) and report["metrics"]["accuracy"] == 1.0
    assert np.isclose(report["classification_report"]["accuracy"], 1.0)


# One plain emotion each, from none of the training corpora.
EMOTIONS = {
    "气死我了，太过分了": "angry",
    "今天好开心啊": "happy",
    "好害怕，晚上不敢一个人出门": "fear",
    "竟然是他！没想到": "surprise",
    "难过得哭了一整晚": "sad",
}


def test_emotion_zh_is_shipped_small_and_answers_without_tensorflow(repo_root):
    path = trained_model_path("emotion_zh")
    assert is_model_directory(path)
    assert sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) <= 15e6
    code = (
        "import json, sys, weibo_lstm as wl\n"
        "pipe = wl.pipeline('emotion_zh', top_k=None)\n"
        f"answers = pipe({list(EMOTIONS)!r})\n"
        "print(json.dumps({'engine': pipe.engine, 'tensorflow': 'tensorflow' in sys.modules,"
        " 'answers': answers}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(repo_root), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout)
    assert out["engine"] == "numpy" and out["tensorflow"] is False
    assert [answer[0]["label"] for answer in out["answers"]] == list(EMOTIONS.values())
    names = sorted(a["label"] for a in out["answers"][0])
    assert names == ["angry", "fear", "happy", "neutral", "sad", "surprise"]
