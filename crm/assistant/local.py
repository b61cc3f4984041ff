"""Offline responder: answers from the knowledge base by retrieval.

Confidence is the match strength: the sentence encoder's cosine of the message and the best
published article, rescaled to 0..1 (``retrieval.py``). Below the assistant's
``confidence_threshold`` it says it isn't sure; the stored confidence is what the detector
reads as the low-confidence signal on the next customer turn.
"""

import re

from django.db.models import Q
from django.utils.translation import gettext as _

from crm.models import KnowledgeArticle

from .retrieval import search
from .types import Answer

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOP_WORDS = (
    "a an the and or but if to of in on for with is are was were be been it this that i you "
    "my your me we our can could would should do does did have has had not no how what when "
    "where why which who please hi hello thanks thank"
)
_STOP = set(_STOP_WORDS.split())
# A fallback for messages the detector has not read (its multilingual intent comes first).
_HANDOFF_ASK = re.compile(
    r"\b(human|person|agent|representative|someone real|real person|operator|manager)\b",
    re.IGNORECASE,
)
DEFAULT_CONFIDENCE_THRESHOLD = 0.45


def best_articles(text: str, articles, limit: int = 3) -> list[tuple[float, object]]:
    """``(confidence, article)`` pairs, best first: semantic search with the sentence encoder
    (``retrieval.py``); the confidence (0..1) is the match strength."""
    return search(text, articles, limit)


def articles_for(assistant):
    return KnowledgeArticle.objects.filter(is_published=True).filter(
        Q(assistant=assistant) | Q(assistant__isnull=True)
    )


def confidence_threshold(assistant) -> float:
    return assistant.confidence_threshold if assistant else DEFAULT_CONFIDENCE_THRESHOLD


def asked_for_a_person(message, *, detected_request: bool = False) -> bool:
    """The detector's reading of the message (any language) when the caller has it, else
    keywords."""
    return detected_request or bool(_HANDOFF_ASK.search(message.text))


def handoff_disabled(assistant) -> bool:
    return assistant is not None and not assistant.handoff_enabled


def no_person_available_answer(assistant, text: str) -> Answer:
    """The honest reply when the customer asks for a person and handoff is disabled: nobody is
    available in this chat, and here is what the assistant can do."""
    honest = _("There's no human agent available in this chat, but I'll do my best to help.")
    matches = best_articles(text, articles_for(assistant))
    if matches and matches[0][0] >= confidence_threshold(assistant):
        confidence, article = matches[0]
        return Answer(text=f"{honest} {article.body}", confidence=confidence)
    titles = list(articles_for(assistant).order_by("title").values_list("title", flat=True)[:3])
    if titles:
        offer = _("I can help with: %(topics)s. Tell me what you need.") % {
            "topics": ", ".join(titles)
        }
    else:
        offer = _("Tell me what you need and I'll look it up.")
    return Answer(text=f"{honest} {offer}", confidence=0.5)


_SMALL_TALK = (
    "hi hello hey hiya morning afternoon evening good day thanks thank thx ty cheers ok okay "
    "great perfect cool nice awesome so much very lot bye goodbye yes yeah"
)
_SMALL_TALK_WORDS = set(_SMALL_TALK.split())
_QUESTION_WORDS = {"how", "what", "when", "where", "why", "which", "who"}
_THANKS = re.compile(r"\b(thanks?|thx|ty|cheers)\b", re.IGNORECASE)
_GREETING = re.compile(r"\b(hi|hello|hey|hiya|good (morning|afternoon|evening|day))\b", re.I)


def small_talk_answer(text: str) -> Answer | None:
    """A greeting or a thank-you asks nothing: answered without a confidence (``None``), so it
    is not mistaken for a weak answer (the low-confidence signal reads only real answers)."""
    words = [match.group(0).lower() for match in _WORD.finditer(text)]
    if not words or _QUESTION_WORDS.intersection(words):
        return None  # "???" or "what is it?" asks something: not small talk
    if any(word not in _SMALL_TALK_WORDS and word not in _STOP for word in words):
        return None
    if _THANKS.search(text):
        reply = _("You're welcome! Is there anything else I can help with?")
    elif _GREETING.search(text):
        reply = _("Hi! How can I help you today?")
    else:
        reply = _("Is there anything else I can help with?")
    return Answer(text=reply, confidence=None)


class AgentNote:
    """The note of the agent who handed the conversation back, retrieved like an article, so
    a question about what was done is answered from it."""

    def __init__(self, text: str):
        self.title = _("What our team did")
        self.keywords = ""
        self.body = text


class LocalResponder:
    def answer(self, *, conversation, message, detected_request: bool = False) -> Answer:
        assistant = conversation.assistant
        if handoff_disabled(assistant) and asked_for_a_person(
            message, detected_request=detected_request
        ):
            return no_person_available_answer(assistant, message.text)
        small_talk = small_talk_answer(message.text)
        if small_talk is not None:
            return small_talk
        candidates = list(articles_for(assistant))
        if conversation.assistant_note.strip():
            candidates.append(AgentNote(conversation.assistant_note.strip()))
        matches = best_articles(message.text, candidates)
        if not matches:
            return Answer(
                text=_(
                    "I'm not sure I can answer that. Could you tell me a bit more about what "
                    "you need?"
                ),
                confidence=0.0,
            )
        confidence, article = matches[0]
        if confidence < confidence_threshold(assistant):
            return Answer(
                text=_(
                    "I'm not sure I have the right answer for that. Could you tell me a bit "
                    "more? The closest I found is “%(title)s”."
                )
                % {"title": article.title},
                confidence=confidence,
            )
        if isinstance(article, AgentNote):
            return Answer(
                text=_("Here is where things stand, from our team: %(note)s")
                % {"note": article.body},
                confidence=confidence,
            )
        return Answer(text=article.body, confidence=confidence)
