"""Label sets: the class names of a corpus, how CSV labels name them, and how one set maps
onto another.

A CSV's labels are integers (`0 … K-1`) or names. Binary sentiment keeps the seed's
ids (0 = 消极, 1 = 积极, under any of their spellings in `SPELLINGS`); adding 中性 gives
the three polarity classes `POLARITY` in that order, so a binary model's ids keep their
meaning in a three-class one. Other names (an emotion corpus's `happy`, `angry`, …)
become classes in sorted order.

`relabel` maps a corpus onto another label set — the mapping written down as a dict,
e.g. `EMOTION_TO_POLARITY` — and records in `LabeledTexts.expressible` which target
classes the corpus's labels can express, so a binary corpus pooled into a three-class
model never teaches it that nothing is neutral.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from weibo_lstm.data.labeled_texts import CLASS_NAMES, LabeledTexts
from weibo_lstm.errors import ConfigError

logger = logging.getLogger("weibo_lstm")

#: The three polarity classes: the binary ids first (0 = 消极, 1 = 积极), then 中性.
POLARITY = (*CLASS_NAMES, "中性")
#: Spellings of the polarity classes a CSV may use (compared stripped and lower-cased).
SPELLINGS = {
    "消极": frozenset({"0", "0.0", "消极", "负面", "negative", "neg"}),
    "积极": frozenset({"1", "1.0", "积极", "正面", "positive", "pos"}),
    "中性": frozenset({"中性", "neutral", "neu"}),
}
#: Polarity of the emotions of SMP2020-EWECT and NLPCC 2013 (None: no polarity). Read
#: from their rows: `surprise` is as often good news as bad.
EMOTION_TO_POLARITY = {
    "happy": "积极",
    "happiness": "积极",
    "like": "积极",
    "angry": "消极",
    "anger": "消极",
    "sad": "消极",
    "sadness": "消极",
    "fear": "消极",
    "disgust": "消极",
    "neutral": "中性",
    "none": "中性",
    "surprise": None,
}


class UnknownLabel(ValueError):
    """A label that names no class; `label` is the label as written."""

    def __init__(self, message: str, label: str):
        super().__init__(message)
        self.label = label


def _polarity_spelling(label: str) -> str | None:
    key = label.strip().lower()
    return next((name for name, spellings in SPELLINGS.items() if key in spellings), None)


def infer_class_names(labels: Iterable[str]) -> tuple[str, ...]:
    """The class names a column of CSV labels uses.

    Polarity spellings give `CLASS_NAMES` (binary) or `POLARITY` (with 中性); integers
    `0 … K-1` (K > 2) give their digits; other names give themselves, lower-cased and
    sorted.

    Raises:
        UnknownLabel: a positive or negative spelling beside another label (a typo in
            a sentiment file), or integers that are not 0 … K-1; the first odd label.

    Example:

    >>> infer_class_names(["1", "0", "积极"]), infer_class_names(["pos", "neutral"])
    (('消极', '积极'), ('消极', '积极', '中性'))
    >>> infer_class_names(["sad", "happy", "neutral"]), infer_class_names(["2", "0", "1"])
    (('happy', 'neutral', 'sad'), ('0', '1', '2'))
    """
    distinct = sorted({label.strip() for label in labels})
    polarity = {label: _polarity_spelling(label) for label in distinct}
    if all(polarity.values()):
        return POLARITY if "中性" in polarity.values() else CLASS_NAMES
    odd = [label for label in distinct if polarity[label] is None]
    if all(label.isdigit() for label in distinct):
        numbers = sorted(int(label) for label in distinct)
        if numbers == list(range(len(numbers))):
            return tuple(str(n) for n in numbers)
        odd = [label for label in distinct if int(label) >= len(numbers)]  # ids must be 0..K-1
        raise UnknownLabel(
            f"unknown label {odd[0]!r}: integer labels must be 0 … K-1, or give the class "
            "names (--class-names)",
            odd[0],
        )
    # A positive or negative spelling beside other labels: a sentiment file with a
    # stray label (a typo). A neutral one among others (SMP2020's `neutral`) is an
    # emotion label set.
    if {"消极", "积极"} & set(polarity.values()):
        raise UnknownLabel(
            f"unknown label {odd[0]!r} among polarity labels; expected 1/0 or 积极/消极/中性 "
            "(also 正面/负面, positive/negative/neutral, pos/neg/neu), or give the class "
            "names (--class-names)",
            odd[0],
        )
    return tuple(label.lower() for label in distinct)


def class_id(label: str, class_names: Sequence[str]) -> int:
    """The id of a CSV label among `class_names`: the name (case-insensitive), a
    polarity spelling of it, or its integer index.

    Raises:
        UnknownLabel: when the label names none of them.

    Example:

    >>> class_id("Positive", POLARITY), class_id("2", ("a", "b", "c")), class_id("b", "ab")
    (1, 2, 1)
    """
    key = label.strip()
    lowered = [name.lower() for name in class_names]
    if key.lower() in lowered:
        return lowered.index(key.lower())
    spelled = _polarity_spelling(key)
    if spelled in class_names:
        return list(class_names).index(spelled)
    if key.isdigit() and int(key) < len(class_names):
        return int(key)
    raise UnknownLabel(f"unknown label {key!r}; the classes are {list(class_names)}", key)


def relabel(
    data: LabeledTexts, class_names: Sequence[str], mapping: Mapping[str, str | None]
) -> LabeledTexts:
    """`data` with its classes mapped onto `class_names`; rows whose class maps to None
    are dropped.

    Every row gets the target classes the corpus's labels can express (those its
    classes map to) as `expressible`: trained on these rows, a model learns to choose
    among those classes only. A class of `data` missing from `mapping` maps to the
    class of the same name.

    Raises:
        ValueError: a class maps to a name not in `class_names`.

    Example:

    >>> binary = LabeledTexts(["好", "差"], [1, 0])
    >>> pooled = relabel(binary, POLARITY, {})
    >>> pooled.class_names, pooled.labels.tolist(), pooled.expressible[0].tolist()
    (('消极', '积极', '中性'), [1, 0], [True, True, False])
    >>> emotions = LabeledTexts(["好", "哇", "嗯"], [0, 2, 1], class_names=("happy", "neutral", "surprise"))
    >>> relabel(emotions, POLARITY, EMOTION_TO_POLARITY).labels.tolist()
    [1, 2]
    """
    class_names = tuple(class_names)
    targets = [mapping.get(name, name) for name in data.class_names]
    unknown = sorted({t for t in targets if t is not None and t not in class_names})
    if unknown:
        raise ValueError(f"Classes {unknown} are not among {list(class_names)}")
    target_ids = np.array([-1 if t is None else class_names.index(t) for t in targets])
    new_labels = target_ids[data.labels]
    kept = np.flatnonzero(new_labels >= 0)
    # What the corpus's own labels could say, in the new classes (per row: a row that
    # could only say some of its corpus's classes keeps that restriction).
    source = (
        np.ones((len(data), data.num_classes), bool)
        if data.expressible is None
        else data.expressible
    )
    expressible = np.zeros((len(data), len(class_names)), bool)
    for old, new in enumerate(target_ids):
        if new >= 0:
            expressible[:, new] |= source[:, old]
    return LabeledTexts(
        tuple(data.texts[i] for i in kept),
        new_labels[kept],
        source=data.source,
        stats=data.stats,
        class_names=class_names,
        expressible=expressible[kept],
    )


def onto_classes(data: LabeledTexts, class_names: Sequence[str]) -> LabeledTexts:
    """`data` with `class_names` as its classes: the same, or a subset of them (e.g. a
    binary test set of a three-class model), which then scores by the argmax over the
    classes `data` has (`relabel`); one log line says so.

    Raises:
        ConfigError: `data` has a class not in `class_names`.

    Example:

    >>> onto_classes(LabeledTexts(["好"], [1]), POLARITY).expressible.tolist()
    [[True, True, False]]
    """
    class_names = tuple(class_names)
    if data.class_names == class_names:
        return data
    unknown = sorted(set(data.class_names) - set(class_names))
    if unknown:
        raise ConfigError(f"The data's classes {unknown} are not among the model's {list(class_names)}")
    logger.info(
        "The data has %d of the model's %d classes (%s): scored by the argmax over them",
        len(data.class_names),
        len(class_names),
        ", ".join(data.class_names),
    )
    return relabel(data, class_names, {})


def concatenate(parts: Sequence[LabeledTexts], source: str = "pooled") -> LabeledTexts:
    """The rows of `parts` one after the other (they must share their class names).

    Example:

    >>> a = LabeledTexts(["好"], [1])
    >>> neutral = LabeledTexts(["嗯"], [0], class_names=("neutral", "x"))
    >>> b = relabel(neutral, POLARITY, {"neutral": "中性", "x": None})
    >>> pooled = concatenate([relabel(a, POLARITY, {}), b])
    >>> pooled.labels.tolist(), pooled.expressible.tolist()
    ([1, 2], [[True, True, False], [False, False, True]])
    """
    names = {p.class_names for p in parts}
    if len(names) != 1:
        raise ValueError(f"The parts have different class names: {sorted(names)}")
    (class_names,) = names
    expressible = None
    if any(p.expressible is not None for p in parts):
        expressible = np.concatenate(
            [
                np.ones((len(p), len(class_names)), bool)
                if p.expressible is None
                else p.expressible
                for p in parts
            ]
        )
    return LabeledTexts(
        tuple(t for p in parts for t in p.texts),
        np.concatenate([p.labels for p in parts]),
        source=source,
        class_names=class_names,
        expressible=expressible,
    )
