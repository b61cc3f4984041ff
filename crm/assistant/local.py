"""Offline responder: answers from the knowledge base by retrieval.

Confidence is the match strength (cosine of TF-IDF vectors over the published articles).
"""

import math
import re
from collections import Counter

from django.db.models import Q
from django.utils.translation import gettext as _

from crm.models import KnowledgeArticle

from .types import Answer

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOP = set(
    "a an the and or but if to of in on for with is are was were be been it this that i you "
    "my your me we our can could would should do does did have has had not no how what when "
    "where why which who please hi hello thanks thank".split()
)
_HANDOFF_ASK = re.compile(
    r"\b(human|person|agent|representative|someone real|real person)\b", re.IGNORECASE
)


def tokens(text: str) -> list[str]:
    return [w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in _STOP]


def best_articles(text: str, articles, limit: int = 3) -> list[tuple[float, object]]:
    docs = [(a, Counter(tokens(f"{a.title} {a.title} {a.keywords} {a.keywords} {a.body}")))
            for a in articles]
    if not docs:
        return []
    df = Counter(term for _a, counts in docs for term in counts)
    n = len(docs)

    def weights(counts):
        return {t: (1 + math.log(c)) * math.log(1 + n / (1 + df.get(t, 0))) for t, c in counts.items()}

    query = weights(Counter(tokens(text)))
    qnorm = math.sqrt(sum(v * v for v in query.values())) or 1.0
    scored = []
    for article, counts in docs:
        doc = weights(counts)
        dnorm = math.sqrt(sum(v * v for v in doc.values())) or 1.0
        dot = sum(query[t] * doc.get(t, 0.0) for t in query)
        scored.append((dot / (qnorm * dnorm), article))
    scored.sort(key=lambda pair: pair[0], reverse=True)
    return scored[:limit]


def articles_for(assistant):
    return KnowledgeArticle.objects.filter(is_published=True).filter(
        Q(assistant=assistant) | Q(assistant__isnull=True)
    )


class LocalResponder:
    # Cosine strength mapped to a confidence: strong matches of a short question score ~0.3+.
    STRENGTH_FOR_FULL_CONFIDENCE = 0.35

    def answer(self, *, conversation, message) -> Answer:
        assistant = conversation.assistant
        threshold = assistant.confidence_threshold if assistant else 0.45
        if assistant is not None and not assistant.handoff_enabled and _HANDOFF_ASK.search(
            message.text
        ):
            return Answer(
                text=_(
                    "There's no human agent available in this chat, but I'll do my best to help. "
                    "Tell me what you need and I'll look it up, or check our help articles."
                ),
                confidence=0.5,
            )
        matches = best_articles(message.text, articles_for(assistant))
        if not matches:
            return Answer(text=_("I'm not sure I can answer that."), confidence=0.0)
        strength, article = matches[0]
        confidence = round(min(1.0, strength / self.STRENGTH_FOR_FULL_CONFIDENCE), 2)
        if confidence < threshold:
            return Answer(
                text=_(
                    "I'm not sure I have the right answer for that. Could you tell me a bit "
                    "more? The closest I found is “%(title)s”."
                )
                % {"title": article.title},
                confidence=confidence,
            )
        return Answer(text=article.body, confidence=confidence)
