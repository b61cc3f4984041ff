"""The local assistant searches the knowledge base with the detector's sentence encoder: the
right article for questions worded differently and in other languages, passage vectors computed
once per article version, and a keyword fallback when the encoder can't run."""

import pytest

from crm import encoder
from crm.assistant import retrieval
from crm.assistant.local import LocalResponder
from crm.demo_data import KNOWLEDGE_BASE
from crm.models import KnowledgeArticle, Message
from tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_knowledge(db):
    retrieval.forget_passages()
    for title, keywords, body in KNOWLEDGE_BASE:
        KnowledgeArticle.objects.create(title=title, keywords=keywords, body=body)
    yield
    retrieval.forget_passages()


def answer(text: str, conversation=None):
    conversation = conversation or ConversationFactory()
    message = Message.objects.create(
        conversation=conversation, channel=conversation.channel, sender="customer", text=text
    )
    return LocalResponder().answer(conversation=conversation, message=message)


def body_of(title: str) -> str:
    return next(body for t, _keywords, body in KNOWLEDGE_BASE if t == title)


@pytest.mark.parametrize(
    ("question", "title"),
    [
        ("Where is my order?", "Track your order"),  # used to get "closest is Discount codes"
        ("what's the status of my order 4411", "Track your order"),
        ("Wo ist meine Bestellung?", "Track your order"),
        ("¿Cuánto tarda el envío?", "Shipping times"),
        ("my promo code doesn't work", "Discount codes"),
        ("can I swap for a bigger size", "Exchange an item"),
        ("is there an iphone app", "Mobile app"),
    ],
)
def test_a_question_finds_its_article_whatever_the_wording_or_language(
    demo_knowledge, question, title
):
    reply = answer(question)
    assert reply.text == body_of(title)
    assert reply.confidence >= 0.45


@pytest.mark.parametrize(
    "question", ["what's the weather in Paris", "do you sell bicycles?", "my cat is sick"]
)
def test_a_question_the_knowledge_base_does_not_cover_is_low_confidence(demo_knowledge, question):
    reply = answer(question)
    assert reply.confidence < 0.45 and "not sure" in reply.text


def test_passages_are_embedded_once_per_article_version(demo_knowledge, monkeypatch):
    embedded = []
    real = encoder.embed_passages

    def counting(texts):
        embedded.append(list(texts))
        return real(texts)

    monkeypatch.setattr(encoder, "embed_passages", counting)
    conversation = ConversationFactory()
    answer("Where is my order?", conversation)
    answer("How long does delivery take?", conversation)
    answer("my promo code doesn't work", conversation)
    assert len(embedded) == 1 and len(embedded[0]) == len(KNOWLEDGE_BASE)
    article = KnowledgeArticle.objects.get(title="Discount codes")
    article.keywords = "discount promo code coupon voucher"
    article.save()
    answer("my voucher doesn't work", conversation)
    assert embedded[1:] == [["Discount codes (discount promo code coupon voucher)"]]


def test_without_the_encoder_the_search_falls_back_to_keywords(demo_knowledge, monkeypatch):
    def broken(texts):
        raise encoder.EncoderUnavailable("model file damaged")

    monkeypatch.setattr(encoder, "embed_queries", broken)
    reply = answer("How do I track my order status?")
    assert reply.text == body_of("Track your order")


def test_the_confidence_scale_fits_the_encoders_cosines():
    assert retrieval.cosine_confidence(0.76) == 0.0
    assert retrieval.cosine_confidence(retrieval.COSINE_FULL) == 1.0
    assert 0.4 < retrieval.cosine_confidence(0.835) < 0.6
