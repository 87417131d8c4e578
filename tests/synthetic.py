"""Tiny generated sentiment corpora for end-to-end tests."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

POSITIVE = [*list("好喜欢棒赞满意开心"), "[哈哈]", "[爱你]"]
NEGATIVE = [*list("差讨厌烂糟失望难过"), "[泪]", "[抓狂]"]
FILLER = list("的了是我你他这那在有和就不人都一个上也很到说要去会着没看")


def texts_and_labels(n: int, seed: int = 0, noise: float = 0.05):
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = int(rng.random() < 0.5)
        cues = POSITIVE if label else NEGATIVE
        words = list(rng.choice(FILLER, rng.integers(3, 15)))
        for _ in range(rng.integers(1, 3)):
            words.insert(rng.integers(0, len(words) + 1), str(rng.choice(cues)))
        if rng.random() < noise:
            label = 1 - label
        texts.append("".join(words) + f"{i % 97}")
        labels.append(label)
    return texts, labels


def write_csv(path: Path, n: int, seed: int = 0, fmt: str = "weibo", encoding="utf-8") -> Path:
    texts, labels = texts_and_labels(n, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding=encoding, newline="") as f:
        writer = csv.writer(f)
        if fmt == "weibo":
            writer.writerow(["label", "review"])
            writer.writerows(zip(labels, texts, strict=True))
        else:
            writer.writerow(["evaluation", "label"])
            writer.writerows(
                (t, "积极" if y else "消极") for t, y in zip(texts, labels, strict=True)
            )
    return path


# Emoticons (half and full width), empty and blank texts, emoji (outside the BMP,
# with a skin-tone modifier), full-width letters, a text far beyond max_length,
# and invalid UTF-8.
EDGE_CASE_TEXTS = [
    "好喜欢[哈哈]",
    "太失望了[泪][抓狂]",
    "［赞］很满意",
    "",
    "   \u3000 ",
    "😀👍🏻",
    "ＯＫ好的ＯＫ",
    "我" + "很好的一天[哈哈]" * 700,
    "[分享自 @百度知道] 讨厌",
    "\t差\n差\n",
]
INVALID_UTF8 = b"\xff\xfe\xe5\xa5\xbd"


def edge_case_texts():
    """The edge cases above plus ordinary posts like the training data, as bytes."""
    ordinary, _ = texts_and_labels(20, seed=5)
    return [t.encode("utf-8") for t in EDGE_CASE_TEXTS + ordinary] + [INVALID_UTF8]
