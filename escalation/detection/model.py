"""The local detector's model: calibrated linear heads over the sentence encoder's embeddings.

A message becomes one feature row: its 384 embedding numbers (``crm.encoder``) plus a few cheap
lexical cues (shouting, profanity, "!!", strongly negative words, VADER's polarity). Each reason
has a head over that row — ``request``, ``upset`` (anger or frustration, sarcasm included) and one
per complexity topic — a logistic regression whose score is calibrated (Platt scaling, fitted on
a validation split the regression never saw) and whose threshold was chosen on that same
validation split, never on the data the figures are reported on. An ``emotion`` head (anger,
frustration, confusion, mild, neutral) names the feeling for the agent. The loop threshold (how
similar two turns must be to count as "said again") is also chosen on validation data.

Everything is stored as plain arrays in one npz (``allow_pickle=False``) and run with numpy;
scikit-learn is needed only to train (``training/trainer.py``).
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from escalation.detection import patterns
from escalation.detection.features import normalize
from escalation.detection.types import TOPICS

MODEL_PATH = Path(__file__).with_name("model.npz")
HEADS = ("request", "upset", *TOPICS)
EMOTIONS = ("anger", "frustration", "confusion", "mild", "neutral")
LEXICAL = (
    "shouted_share",
    "all_shouted",
    "profanity",
    "exclamations",
    "elongated",
    "negative_words",
    "vader_negative",
)
ENCODER_DIM = 384

_SHOUTED = re.compile(r"\b[A-ZÀ-ÖØ-Þ]{3,}\b")
_WORD = re.compile(r"\b\w{3,}\b")
_EXCLAIM = re.compile(r"[!?]{2,}")
_ELONGATED = re.compile(r"([a-zA-Z])\1{3,}")


class ModelUnavailable(RuntimeError):
    """The model file is missing, damaged or doesn't fit this code."""


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def lexical_cues(text: str) -> dict:
    """The cheap cues of one message (also shown to the agent in the signals)."""
    return dict(_lexical_cues(text))


@lru_cache(maxsize=4096)  # earlier turns are read again with every message (VADER is slow)
def _lexical_cues(text: str) -> dict:
    norm = normalize(text)
    words = _WORD.findall(text)
    shouted = [w for w in _SHOUTED.findall(text) if not w.isdigit()]
    return {
        "caps_ratio": round(len(shouted) / len(words), 3) if words else 0.0,
        "all_shouted": len(shouted) >= 3 and len(shouted) >= 0.6 * len(words),
        "profanity": bool(
            patterns.PROFANITY.search(norm) or patterns.PROFANITY.search(text.lower())
        ),
        "exclamations": len(_EXCLAIM.findall(text)),
        "elongated": bool(_ELONGATED.search(text)),
        "negative_words": len(patterns.NEGATIVE_WORDS.findall(norm)),
        "vader": round(_vader().polarity_scores(text)["compound"], 3),
    }


def lexical_row(cues: dict) -> np.ndarray:
    """The cues as numbers in 0..1, in LEXICAL's order."""
    return np.array(
        [
            cues["caps_ratio"],
            float(cues["all_shouted"]),
            float(cues["profanity"]),
            min(cues["exclamations"], 3) / 3,
            float(cues["elongated"]),
            min(cues["negative_words"], 2) / 2,
            max(0.0, -cues["vader"]),
        ],
        dtype=np.float32,
    )


# The settings' sentiment scale: the upset head's validation threshold maps to this intensity
# (the default ``sentiment_threshold``).
INTENSITY_AT_THRESHOLD = 0.6


def intensity_of(upset: float, threshold: float) -> float:
    """The upset probability on the settings' 0..1 intensity scale: ``threshold`` (the upset
    head's, chosen on validation) maps to 0.6, and the scale is monotone, so a manager who lowers
    the setting gets a more sensitive detector."""
    k = INTENSITY_AT_THRESHOLD
    if upset <= threshold:
        return k * upset / threshold
    return k + (1 - k) * (upset - threshold) / (1 - threshold)


def upset_at(intensity: float, threshold: float) -> float:
    """The inverse of ``intensity_of``: the upset probability an intensity stands for."""
    k = INTENSITY_AT_THRESHOLD
    intensity = min(max(intensity, 0.0), 1.0)
    if intensity <= k:
        return intensity * threshold / k
    return threshold + (intensity - k) * (1 - threshold) / (1 - k)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))


@dataclass(frozen=True)
class Head:
    """One reason: a linear score, its calibration and its threshold."""

    coef: np.ndarray  # (features,)
    intercept: float
    scale: float  # Platt scaling: p = sigmoid(scale * score + shift)
    shift: float
    threshold: float  # on the calibrated probability, chosen on validation

    def probability(self, rows: np.ndarray) -> np.ndarray:
        return _sigmoid(self.scale * (rows @ self.coef + self.intercept) + self.shift)


@dataclass(frozen=True)
class DetectorModel:
    heads: dict[str, Head]
    emotion_coef: np.ndarray  # (features, len(EMOTIONS))
    emotion_intercept: np.ndarray
    loop_similarity: float  # cosine of two turns' embeddings that counts as a repeat
    card: dict = field(default_factory=dict)  # what it was trained on (JSON)

    def rows(self, embeddings: np.ndarray, cues: list[dict]) -> np.ndarray:
        lexical = np.stack([lexical_row(c) for c in cues]) if cues else np.zeros((0, len(LEXICAL)))
        return np.hstack([embeddings.astype(np.float32), lexical.astype(np.float32)])

    def probabilities(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        return {name: head.probability(rows) for name, head in self.heads.items()}

    def emotions(self, rows: np.ndarray) -> np.ndarray:
        logits = rows @ self.emotion_coef + self.emotion_intercept
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def intensity(self, upset: float) -> float:
        """The upset probability on the settings' scale (``intensity_of``)."""
        return intensity_of(upset, self.heads["upset"].threshold)

    def save(self, path: Path) -> None:
        arrays = {
            "emotion.coef": self.emotion_coef.astype(np.float32),
            "emotion.intercept": self.emotion_intercept.astype(np.float32),
            "loop_similarity": np.array(self.loop_similarity, dtype=np.float32),
            "card": np.array(json.dumps(self.card, ensure_ascii=False)),
        }
        for name, head in self.heads.items():
            arrays[f"{name}.coef"] = head.coef.astype(np.float32)
            arrays[f"{name}.calibration"] = np.array(
                [head.intercept, head.scale, head.shift, head.threshold], dtype=np.float64
            )
        with path.open("wb") as handle:
            np.savez_compressed(handle, **arrays)

    @classmethod
    def load(cls, path: Path) -> DetectorModel:
        width = ENCODER_DIM + len(LEXICAL)
        try:
            with np.load(path, allow_pickle=False) as data:
                heads = {}
                for name in HEADS:
                    intercept, scale, shift, threshold = data[f"{name}.calibration"].tolist()
                    coef = data[f"{name}.coef"].astype(np.float64)
                    if coef.shape != (width,) or not 0 < threshold < 1:
                        raise ValueError(f"head {name} doesn't fit ({coef.shape}, {threshold})")
                    heads[name] = Head(coef, intercept, scale, shift, threshold)
                emotion_coef = data["emotion.coef"].astype(np.float64)
                if emotion_coef.shape != (width, len(EMOTIONS)):
                    raise ValueError(f"emotion head doesn't fit ({emotion_coef.shape})")
                return cls(
                    heads=heads,
                    emotion_coef=emotion_coef,
                    emotion_intercept=data["emotion.intercept"].astype(np.float64),
                    loop_similarity=float(data["loop_similarity"]),
                    card=json.loads(str(data["card"])),
                )
        except FileNotFoundError:
            raise ModelUnavailable(
                f"detector model {path} is missing; run `manage.py train_detector`"
            ) from None
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ModelUnavailable(
                f"detector model {path} is damaged or from another version ({exc}); "
                "run `manage.py train_detector`"
            ) from None


@lru_cache(maxsize=4)
def load_model(path: Path = MODEL_PATH) -> DetectorModel:
    """The model at ``path``, read once per process."""
    return DetectorModel.load(path)
