"""The files of a saved `Tokenizer`, read and written without TensorFlow.

    tokenizer.json     the options (`Tokenizer.get_config()` without the vocabulary)
    vocabulary.tsv     one row per id: `id`, the code point as `U+XXXX` (the
                       authoritative key), and the character for people to read

`Tokenizer.save` / `load` use this module, and so does
`weibo_lstm.serving.numpy_predictor`, which tokenizes without starting TensorFlow.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

CONFIG_FILE = "tokenizer.json"
VOCAB_FILE = "vocabulary.tsv"
FORMAT = "weibo_lstm.Tokenizer/1"
_RESERVED = ("<pad>", "<oov>")  # ids 0 and 1


def write(path: str | os.PathLike, config: Mapping, vocabulary: Sequence[str]) -> None:
    """Writes `config` (without a vocabulary) and `vocabulary` (the characters of ids
    2, 3, …) into directory `path`, created if needed."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, CONFIG_FILE), "w", encoding="utf-8") as f:
        json.dump({**config, "format": FORMAT}, f, ensure_ascii=False, indent=2)
    with open(os.path.join(path, VOCAB_FILE), "w", encoding="utf-8", newline="\n") as f:
        f.write("id\tcodepoint\tchar\n")
        for i, name in enumerate(_RESERVED):
            f.write(f"{i}\t-\t{name}\n")
        for i, char in enumerate(vocabulary, start=len(_RESERVED)):
            shown = char if char.isprintable() and not char.isspace() else ""
            f.write(f"{i}\tU+{ord(char):04X}\t{shown}\n")


def read(path: str | os.PathLike) -> tuple[dict, list[str]]:
    """`(config, vocabulary)` of a directory `write` wrote: the options without
    `format`, and the characters of ids 2, 3, ….

    Raises:
        ValueError: for a malformed or out-of-order vocabulary line.
    """
    with open(os.path.join(path, CONFIG_FILE), encoding="utf-8") as f:
        config = json.load(f)
    config.pop("format", None)
    vocabulary = []
    with open(os.path.join(path, VOCAB_FILE), encoding="utf-8") as f:
        next(f)
        for line_no, line in enumerate(f, start=2):
            token_id, codepoint, _ = line.rstrip("\n").split("\t", 2)
            if int(token_id) < len(_RESERVED):
                continue
            if int(token_id) != len(vocabulary) + len(_RESERVED) or not codepoint.startswith("U+"):
                raise ValueError(f"{path}/{VOCAB_FILE}: malformed line {line_no}: {line!r}")
            vocabulary.append(chr(int(codepoint[2:], 16)))
    return config, vocabulary
