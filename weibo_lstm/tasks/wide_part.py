"""The wide part of a classifier: fitting it beside the trained deep network, and each
part's accuracy.

`SentimentClassifier.fit` adds a TF-IDF + logistic regression over character
n-grams to its trained deep network and stacks the two on validation
(`weibo_lstm.models.wide_and_deep.WideAndDeep.fit`). Under emoticon dropout the
stack has two mixings: one for posts with an emoticon, fitted on the validation
posts that have one, and one for posts without, fitted on the others and on the
emoticon posts with their emoticons removed. Fitted on the raw posts alone, where the
emoticons give the label away, one mixing would weigh the parts for emoticon lookup;
fitted on emoticon-free posts alone, it would give up raw accuracy (on the weibo
sample's validation: 0.9944 to 0.9904).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from weibo_lstm.data.emoticons import without_emoticons
from weibo_lstm.data.labeled_texts import LabeledTexts
from weibo_lstm.models.wide_and_deep import WideAndDeep
from weibo_lstm.preprocessing.normalization import OOV_ID
from weibo_lstm.preprocessing.tokenized_examples import TokenizedExamples

logger = logging.getLogger("weibo_lstm")


def fit(
    classifier,
    train: TokenizedExamples,
    validation: TokenizedExamples,
    emoticon_texts: LabeledTexts | None = None,
    **wide_options,
) -> tuple[WideAndDeep, float] | None:
    """`(the wide & deep network, seconds it took)` of `classifier`'s trained deep network,
    or None (with a warning) when the wide part cannot be fitted (e.g. validation rows
    of one class only).

    Args:
        classifier: a `SentimentClassifier` whose deep network is trained.
        train: the training rows the deep network was trained on.
        validation: the validation rows (they fit the mixing).
        emoticon_texts: the validation texts, for two mixings (under emoticon dropout).
        **wide_options: passed to `NgramLogisticRegression.fit` (e.g. `max_features`).
    """
    start = time.perf_counter()
    emoticon_ids = ()
    if emoticon_texts is not None:
        emoticon_ids = emoticon_token_ids(classifier.tokenizer)
        stripped = without_emoticons(emoticon_texts)
        validation = validation.concatenate(classifier.tokenize(stripped))
    deep_validation = classifier.evaluator("deep").predict(validation)
    try:
        model = WideAndDeep.fit(
            classifier.deep,
            train,
            validation,
            deep_validation,
            strategy=classifier.strategy,
            emoticon_ids=emoticon_ids,
            **wide_options,
        )
    except ValueError as e:
        logger.warning("No wide part (%s): the classifier is the deep part alone", e)
        return None
    seconds = round(time.perf_counter() - start, 2)
    logger.info(
        "Wide & deep: TF-IDF + logistic regression over %d character n-grams fitted on the "
        "training rows; mixing %s fitted on validation (%.1f s)",
        model.wide.vocabulary_size,
        _describe(model.mixing),
        seconds,
    )
    if model.emoticon_mixing is not None:
        logger.info(
            "Wide & deep: posts with an emoticon mix %s; the mixing above is for posts without one",
            _describe(model.emoticon_mixing),
        )
    return model, seconds


def _describe(mixing) -> str:
    a, b, *c = mixing
    return f"(deep {a:.2f}, wide {b:.2f}, bias {', '.join(f'{v:.2f}' for v in c)})"


def emoticon_token_ids(tokenizer) -> tuple[int, ...]:
    """The token ids of the opening brackets an emoticon starts with (`[`, `［`)."""
    ids = tokenizer(["[", "［"], ragged=True).flat_values.numpy()
    return tuple(sorted({int(i) for i in ids if i > OOV_ID}))


def part_accuracies(classifier, examples: TokenizedExamples) -> dict[str, float]:
    """Accuracy of the deep and the wide part alone on `examples` (`{}` for a
    classifier without a wide part)."""
    if classifier.wide_and_deep is None:
        return {}
    deep = classifier.evaluator("deep").predict(examples)
    wide = classifier.wide_and_deep.wide.decision_function(examples.values, examples.row_splits)
    if wide.ndim == 1:  # two classes: the logit of class 1
        wide = np.stack([np.zeros_like(wide), wide], axis=1)
    if examples.expressible is not None:
        deep = np.where(examples.expressible, deep, -np.inf)
        wide = np.where(examples.expressible, wide, -np.inf)
    return {
        "deep": float(np.mean(deep.argmax(1) == examples.labels)),
        "wide": float(np.mean(wide.argmax(1) == examples.labels)),
    }
