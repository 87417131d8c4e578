"""`pipeline`: raw texts in, labels and scores out, the model loaded once.

The call Hugging Face's `pipeline("text-classification")` made familiar:
`pipe("很差")` gives `[{"label": "消极", "score": 0.99…}]`, a list of texts one such
list per text, `top_k=None` every class. A shipped model or a saved model directory
runs on the NumPy engine when its architecture allows it (no TensorFlow start: the
first answer comes in well under a second), else on TensorFlow; the engine is built
once and kept, so later calls cost only the computation. A blank text (empty or
whitespace only) gets `[]`: there is nothing to label (`weibo_lstm.serving.answers`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

import numpy as np

from weibo_lstm.errors import check_argument
from weibo_lstm.models.presets import DEFAULT_MODEL
from weibo_lstm.serving import answers, engines

_SAME = object()  # `__call__`'s top_k: the pipeline's


class SentimentPipeline:
    """Labels raw texts with a loaded classifier: `pipe(text)` → `[{"label", "score"}]`.

    `pipeline` makes one; the constructor takes an engine already built.

    Args:
        predictor: the engine: a `NumpyPredictor` or a `Predictor` (TensorFlow), or
            anything with `engine`, `class_names` and `predict(texts)` returning
            `probabilities`.
        top_k: how many classes each text gets, most probable first (None: all).
        batch_size: texts per engine call (texts sorted by length first).

    Attributes:
        engine: `"numpy"` or `"tensorflow"`.
        class_names: the model's classes.

    Example:

    >>> from weibo_lstm.serving.engines import load, locate
    >>> pipe = SentimentPipeline(load(locate("sentiment_zh")), top_k=None)
    >>> [answer["label"] for answer in pipe("太好吃了")], pipe.engine
    (['积极', '消极', '中性'], 'numpy')
    """

    def __init__(self, predictor, *, top_k: int | None = 1, batch_size: int = 256):
        check_argument("batch_size", batch_size, batch_size >= 1, ">= 1")
        self.predictor = predictor
        self.engine = predictor.engine
        self.class_names = tuple(predictor.class_names)
        self.top_k = _checked_top_k(top_k)
        self.batch_size = int(batch_size)

    def __call__(self, texts: str | Iterable[str], *, top_k=_SAME, explain: bool = False) -> list:
        """The labels of `texts`.

        Args:
            texts: one text (`str`) or several.
            top_k: this call's `top_k` (default: the pipeline's).
            explain: add to each text's first answer an `"explanation"`: the n-grams
                of the wide part and the characters of the deep part that moved its
                score most (`weibo_lstm.serving.explanations.explain`; NumPy engine).

        Returns:
            For one `str`, a list of `{"label": class name, "score": probability}`,
            highest score first (`top_k` of them; `[]` for a blank text); for
            several texts, one such list per text, in their order.

        Raises:
            ConfigError: for texts that are not strings, an invalid `top_k`, or
                `explain` on the TensorFlow engine.
        """
        top_k = self.top_k if top_k is _SAME else _checked_top_k(top_k)
        one = isinstance(texts, str)
        texts = answers.text_list([texts] if one else texts)
        rows = self.probabilities(texts)
        labels = [answers.top_classes(row, self.class_names, top_k) for row in rows]
        if explain:
            self._add_explanations(texts, labels)
        return labels[0] if one else labels

    def explanations(self, texts: list[str]) -> list[dict]:
        """Why each (non-blank) text got its label: `{"wide", "wide_intercept", "deep"}`,
        the n-grams and characters that moved its score most
        (`weibo_lstm.serving.explanations.explain`; NumPy engine only)."""
        check_argument("explain", True, self.engine == "numpy", "False on the TensorFlow engine")
        from weibo_lstm.serving.explanations import explain

        whys = explain(self.predictor, texts)
        return [{k: v for k, v in why.items() if k != "label"} for why in whys]

    def _add_explanations(self, texts: list[str], labels: list[list[dict]]) -> None:
        shown = [i for i, answer in enumerate(labels) if answer]  # a blank text has none
        for i, why in zip(shown, self.explanations([texts[i] for i in shown]), strict=True):
            labels[i][0]["explanation"] = why

    def probabilities(self, texts: Iterable[str]) -> np.ndarray:
        """Class probabilities `[N, K]` (float32, columns `class_names`), a row of NaN
        for each blank text."""
        return answers.probabilities(
            self.predictor.predict, texts, len(self.class_names), batch_size=self.batch_size
        )

    def __repr__(self) -> str:
        return (
            f"SentimentPipeline(engine={self.engine!r}, class_names={self.class_names}, "
            f"top_k={self.top_k})"
        )


def pipeline(
    model=DEFAULT_MODEL,
    *,
    top_k: int | None = 1,
    engine: str = "auto",
    device: str | None = None,
    batch_size: int = 256,
) -> SentimentPipeline:
    """A `SentimentPipeline` of a trained classifier, loaded once.

    Args:
        model: a shipped model's name (`"sentiment_zh"`), a model directory written
            by training or `SentimentClassifier.save`, a training output directory
            (its newest run), an exported SavedModel, or a `SentimentClassifier`.
        top_k: how many classes each text gets, most probable first (None: all).
        engine: `"auto"` (the NumPy engine when the model allows it: a model
            directory of a WeiboLSTM without BatchNorm, wide & deep or not, e.g. the
            shipped model; else TensorFlow), `"numpy"` or `"tensorflow"`.
        device: run on this TensorFlow device, e.g. `"/cpu:0"` or `"/gpu:0"`
            (TensorFlow only; None: TensorFlow's choice).
        batch_size: texts per model call.

    Returns:
        A callable: `pipe(text)` → `[{"label", "score"}, ...]`, `pipe([texts])` →
        one such list per text (`[]` for a blank text).

    Raises:
        DataError: if `model` is not a model (one line saying what to pass).
        ConfigError: for an invalid argument, `engine="numpy"` with a model it does
            not run, with a `device` or with a `SentimentClassifier` (save it first).

    Example:

    >>> import weibo_lstm as wl
    >>> pipe = wl.pipeline()
    >>> pipe("很差")
    [{'label': '消极', 'score': 0.9...}]
    >>> [[answer["label"] for answer in answers] for answers in pipe(["太好吃了", " "])]
    [['积极'], []]
    """
    check_argument("engine", engine, engine in engines.ENGINES, f"one of {engines.ENGINES}")
    top_k = _checked_top_k(top_k)
    if isinstance(model, str | os.PathLike):
        predictor = engines.load(
            engines.locate(model), engine=engine, device=device, batch_size=batch_size
        )
    else:
        predictor = _in_memory(model, engine, device, batch_size)
    return SentimentPipeline(predictor, top_k=top_k, batch_size=batch_size)


def _in_memory(classifier, engine: str, device: str | None, batch_size: int):
    """The TensorFlow engine of a `SentimentClassifier` object."""
    # A SentimentClassifier exists only once its module is imported: a check that
    # never imports TensorFlow itself.
    module = sys.modules.get("weibo_lstm.tasks.sentiment_classifier")
    known = module is not None and isinstance(classifier, module.SentimentClassifier)
    check_argument(
        "model",
        classifier,
        known,
        "a shipped model's name, a model directory, a SavedModel or a SentimentClassifier",
    )
    check_argument(
        "engine",
        engine,
        engine != "numpy",
        "'auto' or 'tensorflow' for a SentimentClassifier (save it to run it in NumPy)",
    )
    check_argument("batch_size", batch_size, batch_size >= 1, ">= 1")
    return engines.on_device(classifier.predictor(batch_size=batch_size), device)


def _checked_top_k(top_k):
    ok = top_k is None or (isinstance(top_k, int) and not isinstance(top_k, bool) and top_k >= 1)
    check_argument("top_k", top_k, ok, "None or an int >= 1")
    return top_k
