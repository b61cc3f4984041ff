"""Local signals: the conversation so far → sentiment, intent, complexity, loop, confidence.

Every message is embedded once by the multilingual sentence encoder (``crm.encoder``; earlier
turns come from its cache) and scored by the model's calibrated heads (``model.py``). Lexical cues
(shouting, profanity, strongly negative words, VADER) are extra features of those heads and are
shown to the agent; the few strict patterns only adjust a score the model already gives (a
decline caps a request, an unmistakable request or topic phrase lifts the model's own score), so
no decision rests on a pattern alone. The last customer turn counts most; earlier turns add
context (a request or a topic raised before, anger that has been building).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np

from escalation.detection import patterns
from escalation.detection.features import normalize
from escalation.detection.model import EMOTIONS, DetectorModel, lexical_cues, load_model
from escalation.detection.types import TOPICS, DetectorSettings, Turn

# A request or topic raised in an earlier customer turn still counts, weakened by this much on
# the log-odds scale: thresholds are chosen on validation data and can lie anywhere in 0..1, so
# a fixed factor on the probability (0.7 once) could make an earlier request never count.
CONTEXT_LOGIT_DECAY = 2.0
MIN_REPEAT_CHARS = 12
LOOP_LOOKBACK = 6  # earlier turns per role compared for repeats
EARLIER_TURNS = 4  # earlier customer turns whose signals carry into this one
# A strict pattern lifts the model's own score by this much, never from nothing.
PATTERN_LIFT = 0.35

Embed = Callable[[list[str]], np.ndarray]
# A longer message mixes a story with the ask ("that's what you said last week. I want a
# person"): its sentences are also scored on their own, and the strongest counts for the request
# and the topics (not for the feeling: that belongs to the whole message).
_SENTENCE_BREAK = re.compile(r"(?<=[.!?。！？;\n])\s*")
MIN_SENTENCE_CHARS = 8
MAX_SENTENCES = 4


def _embed_queries(texts: list[str]) -> np.ndarray:
    from crm.encoder import embed_queries

    return embed_queries(texts)


def as_context(probability: float) -> float:
    """An earlier turn's probability as context for this one (``CONTEXT_LOGIT_DECAY``)."""
    p = min(max(probability, 1e-4), 1 - 1e-4)
    return 1.0 / (1.0 + math.exp(-(math.log(p / (1 - p)) - CONTEXT_LOGIT_DECAY)))


def customer_turns(turns: list[Turn]) -> list[Turn]:
    return [t for t in turns if t.role == "customer" and t.text.strip()]


def last_customer_index(turns: list[Turn]) -> int | None:
    for i in range(len(turns) - 1, -1, -1):
        if turns[i].role == "customer" and turns[i].text.strip():
            return i
    return None


def analyse_messages(texts: list[str], model: DetectorModel, embeddings: np.ndarray) -> list[dict]:
    """Per-message signals for several messages at once (one matrix product per head)."""
    if not texts:
        return []
    cues = [lexical_cues(t) for t in texts]
    rows = model.rows(embeddings, cues)
    probabilities = model.probabilities(rows)
    emotions = model.emotions(rows)
    out = []
    for i, text in enumerate(texts):
        norm = normalize(text)
        p = {name: float(values[i]) for name, values in probabilities.items()}
        emotion = {label: float(v) for label, v in zip(EMOTIONS, emotions[i], strict=True)}
        declined = bool(patterns.DECLINE.search(norm))
        request = p["request"]
        source = "model"
        if declined:
            request, source = min(request, 0.2), "declined"
        elif patterns.REQUEST.search(norm):
            request, source = min(1.0, request + PATTERN_LIFT), "model+pattern"
        topics = {t: p[t] for t in TOPICS}
        for topic, regex in patterns.TOPIC_PATTERNS.items():
            if regex.search(norm):
                topics[topic] = min(1.0, topics[topic] + PATTERN_LIFT)
        labels = [lab for lab in ("anger", "frustration", "confusion") if emotion[lab] >= 0.35]
        if patterns.CONFUSION.search(norm) and "confusion" not in labels:
            labels.append("confusion")
        out.append(
            {
                "request": (request, source),
                "request_threshold": model.heads["request"].threshold,
                "declined": declined,
                "topics": topics,
                "topic_thresholds": {t: model.heads[t].threshold for t in TOPICS},
                "emotion": emotion,
                "upset": p["upset"],
                "intensity": model.intensity(p["upset"]),
                "vader": cues[i]["vader"],
                "labels": labels,
                "cues": cues[i],
                "already_told": bool(patterns.ALREADY_TOLD.search(norm)),
                "closing": patterns.is_closing(norm, text),
            }
        )
    return out


def sentences(text: str) -> list[str]:
    """The sentences of a message that has several (none for a one-sentence message)."""
    parts = [p.strip() for p in _SENTENCE_BREAK.split(text) if len(p.strip()) >= MIN_SENTENCE_CHARS]
    return parts[-MAX_SENTENCES:] if len(parts) > 1 else []


def _strongest_sentence(
    current: dict, parts: list[str], model: DetectorModel, vectors: np.ndarray
) -> None:
    if not parts:
        return
    for part in analyse_messages(parts, model, vectors):
        if current["request"][1] != "declined" and part["request"][0] > current["request"][0]:
            current["request"] = (part["request"][0], part["request"][1] + ", sentence")
        for topic, p in part["topics"].items():
            current["topics"][topic] = max(current["topics"][topic], p)


def _repeats(vectors: np.ndarray, texts: list[str], target: np.ndarray, similarity: float) -> int:
    """How many of the earlier turns (the most recent LOOP_LOOKBACK) say what ``target`` says."""
    keep = [i for i, t in enumerate(texts) if len(t) >= MIN_REPEAT_CHARS][-LOOP_LOOKBACK:]
    if not keep:
        return 0
    return int(np.sum(vectors[keep] @ target >= similarity))


def compute_signals(
    turns: list[Turn],
    settings: DetectorSettings,
    model: DetectorModel | None = None,
    embed: Embed | None = None,
) -> dict:
    """Signals for the last customer turn in the context of the turns before it. ``model`` and
    ``embed`` default to the committed model and the process's encoder (evaluation passes its
    own: a model trained without the held-out source, embeddings computed once)."""
    last = last_customer_index(turns)
    if last is None:
        return empty_signals()
    model = model or load_model()
    embed = embed or _embed_queries
    history, current_turn = turns[:last], turns[last]
    customer_texts = [t.text for t in customer_turns(history)]
    assistant_texts = [t.text for t in history if t.role == "assistant" and t.text.strip()]
    # One encoder call for every text this decision reads (the cache answers for earlier turns):
    # the current message's sentences go with it, so the engine runs once per message.
    looked_at = customer_texts[-LOOP_LOOKBACK:]
    answers = assistant_texts[-(LOOP_LOOKBACK + 1) :]
    parts = sentences(current_turn.text)
    vectors = embed([*looked_at, current_turn.text, *answers, *parts])
    customer_vectors, current_vector = vectors[: len(looked_at)], vectors[len(looked_at)]
    answer_vectors = vectors[len(looked_at) + 1 : len(looked_at) + 1 + len(answers)]
    part_vectors = vectors[len(looked_at) + 1 + len(answers) :]
    earlier_count = min(EARLIER_TURNS, len(looked_at))
    analysed = analyse_messages(
        [*looked_at[len(looked_at) - earlier_count :], current_turn.text],
        model,
        vectors[len(looked_at) - earlier_count : len(looked_at) + 1],
    )
    earlier, current = analysed[:-1], analysed[-1]
    _strongest_sentence(current, parts, model, part_vectors)

    # Sentiment: the current message, carried context, and whether it has been building up.
    carried = max((e["intensity"] for e in earlier), default=0.0) * 0.6
    intensity = max(current["intensity"], carried)
    trend = [e["upset"] for e in earlier[-2:]] + [current["upset"]]
    # Rising, then holding (two readings at the top of the scale differ only in the noise).
    escalating = len(trend) >= 3 and trend[0] < trend[1] <= trend[2] + 0.01 and trend[2] >= 0.4
    if escalating:
        intensity = min(1.0, intensity + 0.1)
    if current["closing"] and current["intensity"] < 0.3:
        intensity = current["intensity"]  # "ok thanks" after a rough patch: it's over
    labels = list(current["labels"])
    for e in earlier:
        for label in e["labels"]:
            if label not in labels and e["intensity"] >= settings.sentiment_threshold:
                labels.append(label)

    # Intent: the current message, or an earlier request not withdrawn since.
    threshold = current["request_threshold"]
    conf, source = current["request"]
    if source != "declined" and not current["closing"]:
        for e in earlier:
            carried_conf = as_context(e["request"][0])
            if e["request"][1] != "declined" and carried_conf > conf:
                conf, source = carried_conf, "context"

    # Complexity: topics of the current message, and (decayed) of earlier ones; each against
    # its own threshold.
    topics = dict(current["topics"])
    for e in earlier:
        for topic, p in e["topics"].items():
            topics[topic] = max(topics[topic], as_context(p))
    topic_thresholds = current["topic_thresholds"]
    detected = sorted(
        (t for t, p in topics.items() if p >= topic_thresholds[t]),
        key=lambda t: -topics[t] / topic_thresholds[t],
    )

    # Loop: the customer saying the same again (in other words too: the encoder compares
    # meaning), the AI giving the same answer again, and "I already told you".
    similarity = model.loop_similarity
    customer_repeats = 0
    if len(current_turn.text) >= MIN_REPEAT_CHARS:
        customer_repeats = _repeats(customer_vectors, looked_at, current_vector, similarity)
    assistant_repeats = 0
    if len(answers) >= 2 and len(answers[-1]) >= MIN_REPEAT_CHARS:
        assistant_repeats = _repeats(
            answer_vectors[:-1], answers[:-1], answer_vectors[-1], similarity
        )
    loop_count = customer_repeats + assistant_repeats + (1 if current["already_told"] else 0)
    if current["closing"] and current["intensity"] < 0.3:
        loop_count = 0

    # The AI's recent answer confidence (assistant turns before this customer turn).
    confidences = [
        t.confidence for t in history if t.role == "assistant" and t.confidence is not None
    ][-3:]
    low = [c for c in confidences if c < settings.confidence_threshold]

    return {
        "sentiment": {
            "score": current["vader"],
            "intensity": round(intensity, 3),
            "upset_probability": round(current["upset"], 3),
            # The upset probability that maps to intensity 0.6 (the head's validation threshold).
            "threshold": round(model.heads["upset"].threshold, 4),
            "labels": labels,
            "escalating": escalating,
            "emotion": {k: round(v, 3) for k, v in current["emotion"].items()},
            "cues": current["cues"],
        },
        "intent": {
            "request_human": conf >= threshold,
            "confidence": round(conf, 3),
            "threshold": round(threshold, 4),
            "source": source,
            "declined": current["declined"],
        },
        # Each head's threshold travels with its score, so a sensitivity can be re-applied to
        # stored signals (policy.py; the Settings preview and replay read them).
        "complexity": {
            "topics": detected,
            "scores": {t: round(p, 3) for t, p in topics.items()},
            "thresholds": {t: round(topic_thresholds[t], 4) for t in TOPICS},
        },
        "loop": {
            "count": loop_count,
            "customer_repeats": customer_repeats,
            "assistant_repeats": assistant_repeats,
            "already_told": current["already_told"],
        },
        "confidence": {
            "last": confidences[-1] if confidences else None,
            "recent_low": len(low),
            "recent": confidences,
        },
        "closing": current["closing"],
    }


def empty_signals() -> dict:
    return {
        "sentiment": {
            "score": 0.0,
            "intensity": 0.0,
            "labels": [],
            "escalating": False,
            "emotion": {},
            "cues": {},
        },
        "intent": {"request_human": False, "confidence": 0.0, "source": "none", "declined": False},
        "complexity": {"topics": [], "scores": {}},
        "loop": {"count": 0, "customer_repeats": 0, "assistant_repeats": 0, "already_told": False},
        "confidence": {"last": None, "recent_low": 0, "recent": []},
        "closing": False,
    }
