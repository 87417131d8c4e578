"""Emoticons: find them, tell whether they decide a corpus's labels, drop them from posts.

weibo_senti_100k's labels were derived from emoticons such as `[哈哈]` and `[泪]`,
which are still in the text: a model trained on it learns an emoticon detector. The
distant-supervision remedy (Go, Bhayani & Huang 2009) is to remove the label-bearing
emoticons from the training text. `emoticon_audit` measures how far a corpus's labels
follow its emoticons; `drop_emoticons` removes them from a seeded share of the posts,
so a model still sees emoticons (raw posts keep working) but must also learn the
words.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections import Counter

import numpy as np

from weibo_lstm.data.labeled_texts import LabeledTexts
from weibo_lstm.errors import check_argument

logger = logging.getLogger("weibo_lstm")

# A Weibo emoticon is a short bracketed name: `[哈哈]`, `[泪]`, `[good]`, `[lt江南style]`.
# Half- or full-width brackets around 1-10 characters that are neither brackets nor
# whitespace. Longer or spaced brackets (`[分享自 @百度知道]`) are ordinary text. The same
# expression runs in Python's `re` and in TensorFlow's RE2 (the tokenizer's).
EMOTICON_PATTERN = r"[\[［][^\[\]［］\s]{1,10}[\]］]"
_EMOTICON = re.compile(EMOTICON_PATTERN)

#: `emoticon_audit` calls a corpus's labels emoticon-derived when at least this share
#: of its posts carry an emoticon ...
MIN_SHARE = 0.2
#: ... and the emoticons alone give the label of at least this share of those posts.
MIN_AGREEMENT = 0.85
#: The share of training posts whose emoticons are removed when the labels follow the
#: emoticons (chosen on the weibo sample's validation split among 0.5, 0.7 and 0.9
#: with the wide & deep default; benchmarks/HISTORY.md).
AUTO_EMOTICON_DROPOUT = 0.7


@dataclasses.dataclass(frozen=True)
class EmoticonAudit:
    """How far a corpus's labels follow its emoticons.

    Attributes:
        share: posts with at least one emoticon, as a share of all posts.
        agreement: among those posts, the share whose label the emoticons alone
            give (each emoticon votes for the label it co-occurs with most often;
            measured on the same posts, so it is an upper bound).
        labels_from_emoticons: `share >= MIN_SHARE and agreement >= MIN_AGREEMENT`.
    """

    share: float
    agreement: float
    labels_from_emoticons: bool


def emoticons(text: str) -> list[str]:
    """The emoticons in `text`, in order.

    Example:

    >>> emoticons("好开心[哈哈][哈哈]，［赞］[分享自 @百度知道]")
    ['[哈哈]', '[哈哈]', '［赞］']
    """
    return _EMOTICON.findall(text)


def emoticon_audit(data: LabeledTexts) -> EmoticonAudit:
    """Measures whether `data`'s labels follow its emoticons.

    Example:

    >>> data = LabeledTexts(["好[哈哈]", "差[泪]", "还行[哈哈]", "没有表情"], [1, 0, 1, 0])
    >>> audit = emoticon_audit(data)
    >>> audit.share, audit.agreement, audit.labels_from_emoticons
    (0.75, 1.0, True)
    """
    found = [emoticons(t) for t in data.texts]
    votes: dict[str, Counter] = {}
    for names, label in zip(found, data.labels, strict=True):
        for name in set(names):
            votes.setdefault(name, Counter())[int(label)] += 1
    with_emoticons = [i for i, names in enumerate(found) if names]
    agree = 0
    for i in with_emoticons:
        tally = Counter()
        for name in found[i]:
            tally[votes[name].most_common(1)[0][0]] += 1
        agree += int(tally.most_common(1)[0][0] == data.labels[i])
    share = len(with_emoticons) / max(len(data), 1)
    agreement = agree / max(len(with_emoticons), 1)
    return EmoticonAudit(
        float(share), float(agreement), bool(share >= MIN_SHARE and agreement >= MIN_AGREEMENT)
    )


def drop_emoticons(data: LabeledTexts, share: float, *, seed: int = 0) -> LabeledTexts:
    """`data` with the emoticons removed from a seeded `share` of its posts.

    A post that would be empty without its emoticons keeps them (it says nothing
    else). Labels and order are unchanged.

    Example:

    >>> data = LabeledTexts(["好[哈哈]", "差[泪]", "[泪]"], [1, 0, 0])
    >>> drop_emoticons(data, 1.0).texts
    ('好', '差', '[泪]')
    """
    if not 0 <= share <= 1:
        raise ValueError(f"Argument `share` must be in [0, 1]. Received: share={share}")
    chosen = np.random.default_rng(seed).random(len(data)) < share
    texts = []
    for text, drop in zip(data.texts, chosen, strict=True):
        stripped = _EMOTICON.sub("", text) if drop else text
        texts.append(stripped if stripped.strip() else text)
    return data.with_texts(texts)


def choose_emoticon_dropout(train: LabeledTexts, share: float | None) -> float:
    """The emoticon-dropout share for training on `train`: `share`, or, when it is None,
    `AUTO_EMOTICON_DROPOUT` if the labels follow the emoticons (`emoticon_audit`, with
    a log line saying so) and 0 otherwise. The one place the share is decided.

    Raises:
        ConfigError: `share` is neither None nor in [0, 1].

    Example:

    >>> choose_emoticon_dropout(LabeledTexts(["好[哈哈]", "差[泪]"] * 5, [1, 0] * 5), None)
    0.7
    """
    check_argument("emoticon_dropout", share, share is None or 0 <= share <= 1, "in [0, 1] or None")
    if share is not None:
        return float(share)
    audit = emoticon_audit(train)
    if not audit.labels_from_emoticons:
        return 0.0
    logger.info(
        "The training labels follow the emoticons (%.0f %% of the posts have one; they give "
        "the label of %.0f %% of those): emoticons removed from %.0f %% of the training "
        "posts (emoticon_dropout; 0 turns it off)",
        *(100 * audit.share, 100 * audit.agreement, 100 * AUTO_EMOTICON_DROPOUT),
    )
    return AUTO_EMOTICON_DROPOUT


def without_emoticons(data: LabeledTexts) -> LabeledTexts:
    """The rows of `data` that hold an emoticon, with their emoticons removed (what
    wide & deep's mixing for posts without emoticons is also fitted on).

    >>> without_emoticons(LabeledTexts(["好[哈哈]", "差", "[泪]糟"], [1, 0, 0])).texts
    ('好', '糟')
    """
    with_emoticons = [i for i, text in enumerate(data.texts) if emoticons(text)]
    return drop_emoticons(data.subset(with_emoticons), 1.0)
