"""Knowledge-base search with the sentence encoder the detector uses (``crm.encoder``).

A customer's message is embedded as a query, each published article as a passage — its title and
keywords, which matched what customers ask better than the body on the demo knowledge base (12 of
12 questions in five languages found their article, against 6 of 12 with the body). Rows are
normalised, so a dot product is the cosine. Passage vectors are computed once per article version
(its ``updated_at``) and kept in this process; a message costs one query embedding.

multilingual-e5 gives every pair a high cosine (unrelated texts ≈ 0.76–0.81 there, matching
questions ≈ 0.83–0.90), so the confidence is the cosine rescaled between COSINE_FLOOR (nothing
in common: 0) and COSINE_FULL (a clear match: 1). When the encoder can't run (package missing,
model file damaged) the search falls back to keyword TF-IDF with its own scale and logs it.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import Counter

import numpy as np

logger = logging.getLogger(__name__)

COSINE_FLOOR = 0.80
COSINE_FULL = 0.87
CACHE_LIMIT = 10_000

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOP_WORDS = (
    "a an the and or but if to of in on for with is are was were be been it this that i you "
    "my your me we our can could would should do does did have has had not no how what when "
    "where why which who please hi hello thanks thank"
)
_STOP = set(_STOP_WORDS.split())
# Keyword fallback: a TF-IDF cosine of a short question and a good article is ~0.3+.
KEYWORD_STRENGTH_FOR_FULL_CONFIDENCE = 0.35

_vectors: dict[tuple[int, object], tuple[str, np.ndarray]] = {}
_vectors_lock = threading.Lock()


def passage_text(article) -> str:
    """Title and keywords of a stored article; a candidate that is not a stored article (the
    agent's hand-back note) is its text."""
    if getattr(article, "pk", None) is None:
        return f"{article.title}: {article.body}"
    keywords = article.keywords.strip()
    return f"{article.title} ({keywords})" if keywords else article.title


def cosine_confidence(cosine: float) -> float:
    """How sure an answer grounded on a match of this cosine is, 0..1."""
    scaled = (cosine - COSINE_FLOOR) / (COSINE_FULL - COSINE_FLOOR)
    return round(min(1.0, max(0.0, scaled)), 2)


def passage_vectors(articles: list) -> np.ndarray:
    """(len(articles), DIM): cached per (article id, updated_at); only new or edited articles are
    embedded (a candidate without an id is embedded each time, through the encoder's cache)."""
    from crm.encoder import DIM, embed_passages

    out = np.empty((len(articles), DIM), dtype=np.float32)
    missing = []
    with _vectors_lock:
        for i, article in enumerate(articles):
            text = passage_text(article)
            key = _cache_key(article)
            hit = _vectors.get(key) if key is not None else None
            if hit is not None and hit[0] == text:
                out[i] = hit[1]
            else:
                missing.append(i)
    if missing:
        texts = [passage_text(articles[i]) for i in missing]
        vectors = embed_passages(texts)
        with _vectors_lock:
            if len(_vectors) + len(missing) > CACHE_LIMIT:
                _vectors.clear()
            for i, text, vector in zip(missing, texts, vectors, strict=True):
                out[i] = vector
                key = _cache_key(articles[i])
                if key is not None:
                    _vectors[key] = (text, vector)
    return out


def _cache_key(article) -> tuple | None:
    pk = getattr(article, "pk", None)
    return None if pk is None else (pk, getattr(article, "updated_at", None))


def forget_passages() -> None:
    """Drop the cached passage vectors (tests and benchmarks measure a cold start)."""
    with _vectors_lock:
        _vectors.clear()


def semantic_matches(text: str, articles: list, limit: int) -> list[tuple[float, object]]:
    from crm.encoder import embed_queries

    query = embed_queries([text])[0]
    cosines = passage_vectors(articles) @ query
    best = np.argsort(-cosines)[:limit]
    return [(cosine_confidence(float(cosines[i])), articles[i]) for i in best]


def tokens(text: str) -> list[str]:
    return [w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in _STOP]


def keyword_matches(text: str, articles: list, limit: int) -> list[tuple[float, object]]:
    """TF-IDF cosine over title, keywords and body: the fallback without the encoder."""
    docs = [
        (a, Counter(tokens(f"{a.title} {a.title} {a.keywords} {a.keywords} {a.body}")))
        for a in articles
    ]
    df = Counter(term for _a, counts in docs for term in counts)
    n = len(docs)

    def weights(counts):
        return {
            t: (1 + math.log(c)) * math.log(1 + n / (1 + df.get(t, 0))) for t, c in counts.items()
        }

    query = weights(Counter(tokens(text)))
    qnorm = math.sqrt(sum(v * v for v in query.values())) or 1.0
    scored = []
    for article, counts in docs:
        doc = weights(counts)
        dnorm = math.sqrt(sum(v * v for v in doc.values())) or 1.0
        dot = sum(query[t] * doc.get(t, 0.0) for t in query)
        scored.append((dot / (qnorm * dnorm), article))
    scored.sort(key=lambda pair: pair[0], reverse=True)
    return [
        (round(min(1.0, strength / KEYWORD_STRENGTH_FOR_FULL_CONFIDENCE), 2), article)
        for strength, article in scored[:limit]
        if strength > 0
    ]


def search(text: str, articles, limit: int = 3) -> list[tuple[float, object]]:
    """``(confidence, article)`` pairs, best first; confidence is 0..1."""
    from crm.encoder import EncoderUnavailable

    articles = list(articles)
    if not articles or not text.strip():
        return []
    try:
        return semantic_matches(text, articles, limit)
    except EncoderUnavailable as exc:
        logger.warning("knowledge-base search without the encoder (%s): keyword fallback", exc)
        return keyword_matches(text, articles, limit)
