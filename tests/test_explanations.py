"""Explanations: the wide part's n-gram contributions exactly, the deep part by occlusion."""

import numpy as np
import pytest

from weibo_lstm.models.ngram_features import tfidf_logits
from weibo_lstm.models.presets import trained_model_path
from weibo_lstm.serving.explanations import deep_effects, explain, wide_contributions
from weibo_lstm.serving.numpy_predictor import NumpyPredictor

TEXTS = ["今天的外卖太难吃了，再也不点了", "一般般", "质量很好，物流也快[哈哈]", "好"]


@pytest.fixture(scope="module")
def predictor():
    return NumpyPredictor(trained_model_path())


@pytest.mark.parametrize("text", TEXTS)
def test_the_wide_contributions_sum_to_the_wide_logit(predictor, text):
    ids = predictor.ids([text])[0]
    logit = tfidf_logits(
        ids,
        np.array([0, len(ids)]),
        keys=predictor.keys,
        idf=predictor.idf,
        coef=predictor.coef,
        intercept=predictor.intercept,
        max_order=predictor.max_order,
    )[0]
    if np.ndim(logit) == 0:  # two classes: 积极's logit, and turned around for 消极
        logit = np.array([-logit, logit])
    assert len(logit) == len(predictor.class_names)
    for label, expected in enumerate(logit):
        terms, intercept = wide_contributions(predictor, ids, label)
        total = sum(t["contribution"] for t in terms) + intercept
        assert total == pytest.approx(float(expected), abs=1e-5)


def test_a_characters_effect_is_the_drop_without_it(predictor):
    text = "太难吃了"
    effects = deep_effects(predictor, text, label=0)
    assert [e["char"] for e in effects] == list(text)
    full = predictor._deep(predictor.ids([text]))[0, 0]
    without = predictor._deep(predictor.ids(["太吃了"]))[0, 0]  # 难 left out, by hand
    assert effects[1]["effect"] == pytest.approx(full - without, abs=1e-6)


def test_explain_gives_the_label_and_the_strongest_evidence(predictor):
    (why,) = explain(predictor, ["今天的外卖太难吃了，再也不点了"], top_k=3)
    assert why["label"] == "消极"
    assert len(why["wide"]) == 3 and len(why["deep"]) == 3
    assert any("难" in term["ngram"] for term in why["wide"])
    magnitudes = [abs(e["effect"]) for e in why["deep"]]
    assert magnitudes == sorted(magnitudes, reverse=True)


def test_predict_explain_prints_the_evidence_with_the_label(capsys):
    import json

    from weibo_lstm.cli.main import main

    assert main(["predict", "--explain", "太难吃了"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["label"] == "消极"
    assert {"wide", "wide_intercept", "deep"} <= set(line["explanation"])
    assert [e["char"] for e in line["explanation"]["deep"]] != []


def test_the_pipeline_explains_each_texts_label_as_explain_does(predictor):
    import weibo_lstm as wl
    from weibo_lstm.errors import ConfigError
    from weibo_lstm.tasks.pipeline import SentimentPipeline

    pipe = wl.pipeline(top_k=None)
    texts = ["太难吃了", " ", "质量很好"]
    answers = pipe(texts, explain=True)
    assert answers[1] == []  # blank: nothing to explain
    for text, answer in zip(texts[::2], answers[::2], strict=True):
        (why,) = explain(predictor, [text])
        assert answer[0]["label"] == why["label"]
        assert answer[0]["explanation"] == {k: v for k, v in why.items() if k != "label"}
        assert all("explanation" not in other for other in answer[1:])
    assert "explanation" not in pipe("太难吃了")[0]

    class TensorFlowEngine:  # what a `Predictor` offers a pipeline
        engine, class_names = "tensorflow", predictor.class_names
        predict = predictor.predict

    with pytest.raises(ConfigError, match="Argument `explain` must be False on the TensorFlow"):
        SentimentPipeline(TensorFlowEngine())("好", explain=True)
