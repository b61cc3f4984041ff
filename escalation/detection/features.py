"""Text features shared by training and inference.

The same function turns a message into features when the classifier is trained (scikit-learn's
TfidfVectorizer calls it as its analyzer) and when it runs (``TextModel`` below), so the two can't
drift apart. Weights are stored as plain arrays (npz, no pickle), and inference is a sparse dot
product in numpy, so they load under any scikit-learn version — or none.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np

_REPEATS = re.compile(r"(.)\1{2,}")
_DIGITS = re.compile(r"\d+")
_WORDS = re.compile(r"[a-z0]+(?:'[a-z]+)?")
_NON_WORD = re.compile(r"[^a-z0'?! ]+")


def normalize(text: str) -> str:
    """Lowercase, strip accents, squeeze letter runs ("pleeeease" → "pleease"), digits → 0."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.replace("ß", "ss").replace("’", "'")
    text = _DIGITS.sub("0", text)
    text = _REPEATS.sub(r"\1\1", text)
    return " ".join(_NON_WORD.sub(" ", text).split())


def analyze(text: str) -> list[str]:
    """Character 2–5-grams inside word boundaries, plus word unigrams and bigrams."""
    norm = normalize(text)
    words = _WORDS.findall(norm)
    features: list[str] = []
    for word in words:
        padded = f" {word} "
        size = len(padded)
        for n in range(2, 6):
            if n > size:
                break
            features.extend(padded[i : i + n] for i in range(size - n + 1))
    features.extend(f"w:{word}" for word in words)
    features.extend(f"b:{a}_{b}" for a, b in zip(words, words[1:], strict=False))
    return features


class TextModel:
    """A linear classifier over TF-IDF features (sublinear tf, l2-normalised)."""

    def __init__(
        self,
        vocabulary: list[str],
        idf: np.ndarray,
        coef: np.ndarray,
        intercept: np.ndarray,
        classes: list[str],
    ):
        self.index = {term: i for i, term in enumerate(vocabulary)}
        self.idf = idf.astype(np.float64)
        self.coef = coef.astype(np.float64)  # (n_features, n_classes)
        self.intercept = intercept.astype(np.float64)
        self.classes = classes

    def predict_proba(self, text: str | Counter) -> dict[str, float]:
        """Class probabilities for a text, or for its ``Counter(analyze(text))`` (shared by
        several models so the features are computed once)."""
        features = text if isinstance(text, Counter) else Counter(analyze(text))
        index = self.index
        counts: dict[int, int] = {}
        for feature, count in features.items():
            i = index.get(feature)
            if i is not None:
                counts[i] = count
        logits = self.intercept.copy()
        if counts:
            cols = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            tf = np.fromiter(
                (1.0 + math.log(c) for c in counts.values()), dtype=np.float64, count=len(counts)
            )
            weights = tf * self.idf[cols]
            weights /= np.linalg.norm(weights)
            logits += weights @ self.coef[cols]
        if len(self.classes) == 2 and logits.shape[0] == 1:  # binary: one logit
            p = 1.0 / (1.0 + math.exp(-float(logits[0])))
            return {self.classes[0]: 1.0 - p, self.classes[1]: p}
        logits -= logits.max()
        exp = np.exp(logits)
        exp /= exp.sum()
        return {label: float(p) for label, p in zip(self.classes, exp, strict=True)}


WEIGHTS_PATH = Path(__file__).with_name("weights.npz")


def save_models(path: Path, models: dict[str, dict]) -> None:
    """Store each model's arrays under ``<name>.<array>`` in one compressed npz."""
    arrays: dict[str, np.ndarray] = {}
    for name, parts in models.items():
        arrays[f"{name}.vocabulary"] = np.array(parts["vocabulary"], dtype=str)
        arrays[f"{name}.idf"] = np.asarray(parts["idf"], dtype=np.float32)
        arrays[f"{name}.coef"] = np.asarray(parts["coef"], dtype=np.float32)
        arrays[f"{name}.intercept"] = np.asarray(parts["intercept"], dtype=np.float32)
        arrays[f"{name}.classes"] = np.array(parts["classes"], dtype=str)
    np.savez_compressed(path, **arrays)


@lru_cache(maxsize=4)
def load_models(path: Path = WEIGHTS_PATH) -> dict[str, TextModel]:
    with np.load(path, allow_pickle=False) as data:
        names = sorted({key.split(".", 1)[0] for key in data.files})
        return {
            name: TextModel(
                vocabulary=data[f"{name}.vocabulary"].tolist(),
                idf=data[f"{name}.idf"],
                coef=data[f"{name}.coef"],
                intercept=data[f"{name}.intercept"],
                classes=data[f"{name}.classes"].tolist(),
            )
            for name in names
        }
