"""The end of a conversation for the customer: the closing message, the rating prompt, and the
rating (1–5 and an optional comment), once per escalation.

The widget shows the prompt as buttons (a ``rating.requested`` frame) and sends the rating over
its socket or ``POST /widget/conversations/<id>/rating/``. On WhatsApp and Instagram the prompt
is a message ("Reply with a number from 1 to 5") and the customer's next message, when it is a
lone digit 1–5, is the rating: it is then kept away from detection and the assistant.
"""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from crm import customer_texts, realtime
from crm import services as crm_services
from crm.models import PROVIDER_CHANNELS, Message, agent_name

from .errors import AlreadyRated, EscalationNotFound, InvalidRating, RatingNotRequested
from .models import Escalation, EscalationEvent, SatisfactionRating

MAX_COMMENT_CHARS = 1000
# "4", " 4 ", "4." or "4!" — a reply that is the number and nothing else.
RATING_REPLY = re.compile(r"^\s*([1-5])\s*[.!]?\s*$")


def rating_request_event(escalation: Escalation) -> dict:
    """The widget's ``rating.requested`` frame: which escalation, and the prompt in the
    customer's language."""
    name = agent_name(escalation.claimed_by) if escalation.claimed_by_id else ""
    return {
        "type": "rating.requested",
        "conversation": escalation.conversation_id,
        "escalation": escalation.pk,
        "prompt": customer_texts.render("rating_prompt", escalation.language, agent_name=name),
        "min": 1,
        "max": 5,
    }


def pending_rating_request(conversation_id: int) -> dict | None:
    """The conversation's latest ended escalation still waiting for its rating, as the frame a
    (re)connecting widget gets; None when there is nothing to rate."""
    escalation = (
        Escalation.objects.filter(conversation_id=conversation_id)
        .select_related("claimed_by__agent_profile")
        .order_by("-escalated_at", "-id")
        .first()
    )
    if (
        escalation is None
        or escalation.rating_requested_at is None
        or SatisfactionRating.objects.filter(escalation=escalation).exists()
    ):
        return None
    return rating_request_event(escalation)


def end_for_customer(escalation: Escalation) -> bool:
    """The closing message, then the rating prompt, for an escalation a person handled, once
    (``rating_requested_at``). Inside the caller's transaction, with the conversation and the
    escalation locked (resolve and close). On WhatsApp/Instagram the prompt is a message; the
    widget gets a ``rating.requested`` frame after commit."""
    if escalation.rating_requested_at is not None or escalation.claimed_at is None:
        return False
    escalation.rating_requested_at = timezone.now()
    escalation.save(update_fields=["rating_requested_at"])
    conversation = escalation.conversation
    name = agent_name(escalation.claimed_by) if escalation.claimed_by_id else ""
    crm_services.post_system_message(
        conversation=conversation,
        text=customer_texts.render("closing", escalation.language, agent_name=name),
    )
    if conversation.channel.kind in PROVIDER_CHANNELS:
        crm_services.post_system_message(
            conversation=conversation,
            text=customer_texts.render("rating_reply_prompt", escalation.language, agent_name=name),
        )
    else:
        realtime.publish_on_commit(
            realtime.conversation_group(conversation.pk), rating_request_event(escalation)
        )
    return True


def _clean_score(score) -> int:
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise InvalidRating(_("A rating is a whole number from 1 to 5."))
    return score


def _clean_comment(comment) -> str:
    if comment is None:
        return ""
    if not isinstance(comment, str):
        raise InvalidRating(_("The comment must be text."))
    comment = comment.replace("\x00", "").strip()
    if len(comment) > MAX_COMMENT_CHARS:
        raise InvalidRating(
            _("The comment is longer than %(max)d characters.") % {"max": MAX_COMMENT_CHARS}
        )
    return comment


@transaction.atomic
def rate_escalation(
    *, conversation_id: int, escalation_id, score, comment=None, message: Message | None = None
) -> SatisfactionRating:
    """Store the customer's rating of an escalation of *their* conversation (the caller proved
    the conversation with its token), after the rating prompt went out. Refusals are typed:
    ``InvalidRating`` (400: not 1–5, a comment that is not text or too long),
    ``EscalationNotFound`` (404: no such escalation in this conversation — another customer's
    is not found either), ``RatingNotRequested`` (409: not ended yet), ``AlreadyRated`` (409:
    once per escalation, by the one-to-one, also against a concurrent rating). After commit:
    the thanks message and a ``rating.recorded`` frame to the customer's and the staff's
    sockets."""
    score = _clean_score(score)
    comment = _clean_comment(comment)
    if isinstance(escalation_id, bool) or not isinstance(escalation_id, int):
        raise InvalidRating(_("Say which conversation you rate (its escalation id)."))
    escalation = (
        Escalation.objects.select_related("conversation__channel")
        .filter(pk=escalation_id, conversation_id=conversation_id)
        .first()
    )
    if escalation is None:
        raise EscalationNotFound(_("There is no such conversation to rate."))
    if escalation.rating_requested_at is None:
        raise RatingNotRequested(_("This conversation can be rated once it has ended."))
    try:
        with transaction.atomic():
            rating = SatisfactionRating.objects.create(
                escalation=escalation, score=score, comment=comment, message=message
            )
    except IntegrityError:
        raise AlreadyRated(_("This conversation has already been rated. Thank you!")) from None
    EscalationEvent.objects.create(
        escalation=escalation,
        kind=EscalationEvent.Kind.RATED,
        new_value=str(score),
        note=comment[:200],
    )
    crm_services.post_system_message(
        conversation=escalation.conversation,
        text=customer_texts.render("rating_thanks", escalation.language, score=score),
    )
    event = {
        "type": "rating.recorded",
        "conversation": escalation.conversation_id,
        "escalation": escalation.pk,
        "score": score,
    }
    realtime.publish_on_commit(realtime.conversation_group(escalation.conversation_id), event)
    realtime.publish_on_commit(realtime.staff_conversation_group(escalation.conversation_id), event)
    return rating


def awaiting_reply_rating(conversation_id: int, message: Message) -> Escalation | None:
    """The escalation whose rating prompt ``message`` answers: the conversation's latest, with
    the prompt sent, no rating yet, and ``message`` the first customer message since."""
    escalation = (
        Escalation.objects.filter(
            conversation_id=conversation_id, rating_requested_at__isnull=False
        )
        .annotate(rated=Exists(SatisfactionRating.objects.filter(escalation=OuterRef("pk"))))
        .order_by("-escalated_at", "-id")
        .first()
    )
    if escalation is None or escalation.rated:
        return None
    answered_before = (
        Message.objects.filter(
            conversation_id=conversation_id,
            sender=Message.Sender.CUSTOMER,
            created_at__gt=escalation.rating_requested_at,
            id__lt=message.pk,
        )
        .exclude(pk=message.pk)
        .exists()
    )
    return None if answered_before else escalation


def take_rating_reply(*, message: Message) -> bool:
    """A WhatsApp/Instagram customer's message that is a lone digit 1–5 right after the rating
    prompt is their rating: stored (with the message), and True, so the caller neither
    analyses it nor lets the assistant answer. Anything else, or a second reply, is False and
    the message goes on as usual. Inside the storing transaction (``message_stored``)."""
    if message.sender != Message.Sender.CUSTOMER:
        return False
    match = RATING_REPLY.match(message.text)  # before the channel: no query for most messages
    if match is None or message.channel.kind not in PROVIDER_CHANNELS:
        return False
    escalation = awaiting_reply_rating(message.conversation_id, message)
    if escalation is None:
        return False
    try:
        rate_escalation(
            conversation_id=message.conversation_id,
            escalation_id=escalation.pk,
            score=int(match.group(1)),
            message=message,
        )
    except AlreadyRated:  # a concurrent reply won
        return False
    conversation = message.conversation
    if (
        escalation.status == Escalation.Status.CLOSED
        and conversation.mode != conversation.Mode.CLOSED
    ):
        # Storing the reply reopened the closed conversation with the assistant (any message
        # does); a rating is not a new question, so it stays closed.
        crm_services.close_conversation_now(conversation)
    return True
