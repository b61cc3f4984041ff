"""Text normalisation for the lexical cues and the strict patterns (the model itself reads the
sentence encoder's embeddings of the raw text)."""

from __future__ import annotations

import re
import unicodedata

_REPEATS = re.compile(r"(.)\1{2,}")
_DIGITS = re.compile(r"\d+")
_NON_WORD = re.compile(r"[^a-z0'?! ]+")


def normalize(text: str) -> str:
    """Lowercase, strip accents, squeeze letter runs ("pleeeease" → "pleease"), digits → 0."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.replace("ß", "ss").replace("’", "'")
    text = _DIGITS.sub("0", text)
    text = _REPEATS.sub(r"\1\1", text)
    return " ".join(_NON_WORD.sub(" ", text).split())


def text_key(text: str) -> str:
    """The identity of a line for de-duplication and leak checks: case-folded, NFKC, single
    spaces — in every script (``normalize`` keeps Latin letters only)."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())
