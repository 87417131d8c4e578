"""The `Tokenizer`'s normalisation rules, for its TensorFlow ops and its NumPy twin.

`Tokenizer` normalises in TensorFlow (RE2 regular expressions, code-point arithmetic);
`weibo_lstm.serving.numpy_predictor` must give the same ids without TensorFlow. Both
read their patterns and constants here, and `normalized_codepoints` is the NumPy
side (tests/test_numpy_predictor.py compares the two on edge-case texts). No
TensorFlow here.

1. Emoticons (`strip_emoticons`): `weibo_lstm.data.emoticons.EMOTICON_PATTERN`.
2. Whitespace (`collapse_whitespace`): every run of `WHITESPACE_PATTERN` becomes one
   space; then `STRIP_CHARACTERS` are stripped from both ends.
3. Width (`fold_width`): full-width forms `FULL_WIDTH` shift down by `FULL_WIDTH_OFFSET`.
4. Case (`lowercase`): ASCII capitals only (Chinese has no case).
"""

from __future__ import annotations

import re

import numpy as np

from weibo_lstm.data.emoticons import EMOTICON_PATTERN

PAD_ID = 0
OOV_ID = 1
#: RE2's `\s` (TensorFlow's regular expressions): ASCII whitespace without `\v`.
RE2_SPACE = "\t\n\f\r "
#: Runs of whitespace collapsed to one space: RE2's `\s`, NO-BREAK SPACE and
#: IDEOGRAPHIC SPACE (RE2 syntax).
WHITESPACE_PATTERN = r"[\s\x{00A0}\x{3000}]+"
#: What `tf.strings.strip` removes from both ends: ASCII whitespace.
STRIP_CHARACTERS = " \t\n\v\f\r"
#: Full-width ASCII forms (！ … ～) and how far they are from their ASCII twins.
FULL_WIDTH = (0xFF01, 0xFF5E)
FULL_WIDTH_OFFSET = 0xFEE0
#: ASCII capitals and how far they are from their lower-case twins.
ASCII_CAPITALS = (0x41, 0x5A)
LOWERCASE_OFFSET = 0x20


def python_pattern(re2_pattern: str) -> re.Pattern:
    """An RE2 pattern of this module as Python's `re` reads it the same way: `\\s` as
    RE2's (ASCII) set, `\\x{HHHH}` as the character.

    >>> bool(python_pattern(WHITESPACE_PATTERN).fullmatch("\\u3000 \\t"))
    True
    """
    pattern = re2_pattern.replace(r"\s", RE2_SPACE)
    pattern = re.sub(r"\\x\{([0-9A-Fa-f]+)\}", lambda m: chr(int(m.group(1), 16)), pattern)
    return re.compile(pattern)


_EMOTICON = python_pattern(EMOTICON_PATTERN)
_WHITESPACE = python_pattern(WHITESPACE_PATTERN)


def normalized_codepoints(
    text: str,
    *,
    strip_emoticons: bool,
    collapse_whitespace: bool,
    fold_width: bool,
    lowercase: bool,
) -> np.ndarray:
    """The code points of `text` after the `Tokenizer`'s normalisation (int64).

    Example:

    >>> kwargs = dict(strip_emoticons=True, collapse_whitespace=True, fold_width=True,
    ...               lowercase=True)
    >>> "".join(map(chr, normalized_codepoints(" ＯＫ[哈哈]\\u3000好 ", **kwargs)))
    'ok 好'
    """
    # As TensorFlow reads a Python string: UTF-8, invalid bytes as U+FFFD.
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if strip_emoticons:
        text = _EMOTICON.sub("", text)
    if collapse_whitespace:
        text = _WHITESPACE.sub(" ", text).strip(STRIP_CHARACTERS)
    codepoints = np.fromiter(map(ord, text), np.int64, len(text))
    if fold_width:
        wide = (codepoints >= FULL_WIDTH[0]) & (codepoints <= FULL_WIDTH[1])
        codepoints = np.where(wide, codepoints - FULL_WIDTH_OFFSET, codepoints)
    if lowercase:
        upper = (codepoints >= ASCII_CAPITALS[0]) & (codepoints <= ASCII_CAPITALS[1])
        codepoints = np.where(upper, codepoints + LOWERCASE_OFFSET, codepoints)
    return codepoints
