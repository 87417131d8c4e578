"""Why a text got its label: the n-grams of the wide part, the characters of the deep part.

- **Wide part** (exact): its logit is a sum over the text's n-grams,
  `w_g · tfidf_g / ‖tfidf‖` per n-gram `g`, plus the intercept. Each n-gram's term is
  its contribution to the logit of the predicted class (with two classes, the logit of
  积极, turned around for 消极), so the contributions and the intercept sum to the
  wide part's logit.
- **Deep part** (leave-one-out occlusion): the text without each character in turn is
  run again; a character's effect is how much the deep part's probability of the
  predicted class drops without it (negative: it argued against the label).

Computed with a `NumpyPredictor` (no TensorFlow), from the same arrays it predicts with.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from weibo_lstm.models.ngram_features import KEY_BITS, ngram_keys


def wide_contributions(
    predictor, ids: np.ndarray, label: int, characters: dict[int, str] | None = None
) -> tuple[list[dict], float]:
    """`([{"ngram", "contribution"}...], intercept)` of the wide part's logit of class
    `label` for one text's `ids` (every n-gram of the vocabulary it holds).

    The contributions sum, with the intercept, to the wide part's logit of `label` (for
    two classes: ± the logit of 积极).
    """
    _, keys = ngram_keys(ids, np.array([0, len(ids)]), predictor.max_order)
    position = np.minimum(np.searchsorted(predictor.keys, keys), len(predictor.keys) - 1)
    found = predictor.keys[position] == keys
    columns, counts = np.unique(position[found], return_counts=True)
    value = (1 + np.log(counts)) * predictor.idf[columns]
    norm = max(float(np.sqrt(np.sum(value * value))), 1e-12)
    coef = predictor.coef[columns]
    intercept = predictor.intercept
    if coef.ndim == 2:  # one logit per class
        coef, intercept = coef[:, label], intercept[label]
    elif label == 0:  # two classes: the logit of 积极, turned around for 消极
        coef, intercept = -coef, -intercept
    terms = value * coef / norm
    characters = characters if characters is not None else _vocabulary_characters(predictor)
    names = [_ngram_text(int(predictor.keys[c]), characters) for c in columns]
    return [
        {"ngram": name, "contribution": float(term)}
        for name, term in sorted(zip(names, terms, strict=True), key=lambda x: -abs(x[1]))
    ], float(intercept)


def deep_effects(predictor, text: str, label: int) -> list[dict]:
    """`[{"char", "position", "effect"}...]`: the drop of the deep part's probability of
    `label` when the character at `position` (of the normalised text) is left out."""
    characters = _characters(predictor, text)
    base = predictor.ids([text])[0]
    rows = [base] + [np.delete(base, i) if len(base) > 1 else base for i in range(len(base))]
    probabilities = predictor._deep(rows)[:, label]  # the deep part alone
    return [
        {
            "char": characters[i],
            "position": i,
            "effect": float(probabilities[0] - probabilities[i + 1]),
        }
        for i in range(len(base))
    ]


def explain(predictor, texts: Sequence[str], *, top_k: int = 5) -> list[dict]:
    """For each text: its label, and the `top_k` n-grams (wide part, a model without
    one: none) and characters (deep part) that moved its score most, by magnitude.

    Example:

    >>> from weibo_lstm.models.presets import trained_model_path
    >>> from weibo_lstm.serving.numpy_predictor import NumpyPredictor
    >>> (why,) = explain(NumpyPredictor(trained_model_path()), ["太好吃了"], top_k=2)
    >>> sorted(why), why["label"], len(why["deep"])
    (['deep', 'label', 'wide', 'wide_intercept'], '积极', 2)
    """
    outputs = predictor.predict(list(texts))
    characters = _vocabulary_characters(predictor)
    explanations = []
    for i, text in enumerate(texts):
        label = int(outputs["label_id"][i])
        ids = predictor.ids([text])[0]
        wide, intercept = ([], 0.0)
        if predictor.mixing is not None:
            wide, intercept = wide_contributions(predictor, ids, label, characters)
        deep = sorted(deep_effects(predictor, text, label), key=lambda x: -abs(x["effect"]))
        explanations.append(
            {
                "label": predictor.class_names[label],
                "wide": wide[:top_k],
                "wide_intercept": intercept,
                "deep": deep[:top_k],
            }
        )
    return explanations


def _characters(predictor, text: str) -> list[str]:
    options, _ = predictor.tokenizer
    codepoints = predictor.codepoints(text)[: options["max_length"]]
    return [chr(c) for c in codepoints] or [""]


def _vocabulary_characters(predictor) -> dict[int, str]:
    _, vocabulary = predictor.tokenizer
    return {i: chr(cp) for cp, i in vocabulary.items()}


def _ngram_text(key: int, characters: dict[int, str]) -> str:
    """The characters of an n-gram key (ids of `KEY_BITS` bits each; OOV shown as `□`)."""
    ids = []
    while key:
        ids.append(key & ((1 << KEY_BITS) - 1))
        key >>= KEY_BITS
    return "".join(characters.get(i, "□") for i in reversed(ids))
