"""State changes of the CRM: conversations and their messages.

Every function runs in one transaction; broadcasts and Celery tasks go out after commit.
"""

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from . import customer_texts, hooks, realtime, selectors
from .errors import (
    ChannelNotFound,
    ConversationClosed,
    InvalidMessage,
    NotAssigned,
    NotFound,
    PrechatRequired,
    ReplyWindowClosed,
)
from .models import (
    CANNED_PLACEHOLDERS,
    PROVIDER_CHANNELS,
    AgentProfile,
    CannedReply,
    Channel,
    ChannelKind,
    Contact,
    ContactIdentity,
    Conversation,
    CustomerText,
    Message,
    MessageTemplate,
    Team,
    WaitNotice,
)
from .visitors import VisitorContext


def clean_text(text) -> str:
    """The text of a message as stored, or InvalidMessage saying what is wrong."""
    if not isinstance(text, str):
        raise InvalidMessage(_("Message text must be a string."))
    text = text.strip()
    if not text:
        raise InvalidMessage(_("Message text is empty."))
    limit = settings.LIVE_ESCALATION["MAX_MESSAGE_CHARS"]
    if len(text) > limit:
        raise InvalidMessage(
            _("Message is too long: %(length)d characters, the limit is %(limit)d.")
            % {"length": len(text), "limit": limit}
        )
    if "\x00" in text:
        raise InvalidMessage(_("Message text contains a NUL character."))
    return text


def find_channel(key_or_kind: str) -> Channel:
    """A channel by its public key, or the first active channel of that kind."""
    channel = Channel.objects.filter(key=key_or_kind, is_active=True).first()
    if channel is None and key_or_kind in ChannelKind.values:
        channel = Channel.objects.filter(kind=key_or_kind, is_active=True).order_by("pk").first()
    if channel is None:
        raise ChannelNotFound(_("No active channel %(key)r.") % {"key": key_or_kind})
    return channel


def create_contact(*, name: str = "", email: str = "") -> Contact:
    """A new contact from what a visitor told us about themselves (unverified: never matched
    to an existing contact by email, so nobody can read another person's history)."""
    return Contact.objects.create(name=name[:200], email=email)


@transaction.atomic
def find_or_create_contact(
    *, channel_kind: str, name: str = "", email: str = "", external_id: str = ""
) -> Contact:
    """The contact known by this channel identity or email, created if new."""
    if external_id:
        identity = (
            ContactIdentity.objects.select_related("contact")
            .filter(channel_kind=channel_kind, external_id=external_id)
            .first()
        )
        if identity:
            return identity.contact
    existing = Contact.objects.filter(email__iexact=email).first() if email else None
    if not external_id:
        return existing or Contact.objects.create(name=name, email=email)
    try:
        # The new contact and its identity commit together or not at all, so a concurrent
        # first message from the same sender leaves no orphan contact behind.
        with transaction.atomic():
            contact = existing or Contact.objects.create(name=name, email=email)
            ContactIdentity.objects.create(
                contact=contact, channel_kind=channel_kind, external_id=external_id
            )
    except IntegrityError:  # created by a concurrent request: use theirs
        return ContactIdentity.objects.get(
            channel_kind=channel_kind, external_id=external_id
        ).contact
    return contact


@transaction.atomic
def start_conversation(
    *,
    channel: Channel,
    contact: Contact,
    text: str | None = None,
    provider_message_id: str | None = None,
    external_id: str = "",
    context: VisitorContext | None = None,
) -> Conversation:
    """Open a conversation driven by the channel's assistant; ``text`` is the first message,
    ``external_id`` the customer's id at the provider (where replies go), ``context`` what the
    widget reported about the visit (checked by ``crm.visitors.clean_visitor_context``)."""
    if text is not None:
        text = clean_text(text)
    context = context or VisitorContext()
    conversation = Conversation.objects.create(
        contact=contact,
        channel=channel,
        assistant=channel.assistant,
        team=channel.default_team,
        external_id=external_id,
        page_url=context.page_url,
        referrer=context.referrer,
        browser_language=context.language,
        time_zone=context.time_zone,
    )
    if text is not None:
        receive_customer_message(
            conversation=conversation, text=text, provider_message_id=provider_message_id
        )
    return conversation


def check_prechat(*, channel: Channel, name: str, email: str) -> None:
    """``PrechatRequired`` naming the first field a required pre-chat form misses (the
    caller checked the email's shape). Reads nothing, stores nothing."""
    if channel.prechat_form == Channel.PrechatForm.REQUIRED:
        if not name.strip():
            raise PrechatRequired("name", _("Please tell us your name."))
        if not email.strip():
            raise PrechatRequired("email", _("Please give us your email address."))


@transaction.atomic  # a refused first message leaves no contact behind
def start_widget_conversation(
    *,
    channel: Channel,
    name: str = "",
    email: str = "",
    text: str | None = None,
    context: VisitorContext | None = None,
) -> Conversation:
    """A website visitor's new conversation. ``name`` and ``email`` come from the channel's
    pre-chat form (the caller checked the email's shape); a required form refuses a missing
    field with ``PrechatRequired`` naming it. Always a new contact: the email is what the visitor
    claims, unverified, so it never files them under an existing contact (and its history)."""
    check_prechat(channel=channel, name=name, email=email)
    contact = create_contact(name=name.strip(), email=email.strip())
    return start_conversation(channel=channel, contact=contact, text=text, context=context)


def _store_message(
    *, conversation: Conversation, echoed_to: realtime.Echo | None = None, **fields
) -> Message:
    message = Message.objects.create(
        conversation=conversation, channel_id=conversation.channel_id, **fields
    )
    Conversation.objects.filter(pk=conversation.pk).update(last_message_at=message.created_at)
    realtime.publish_message(message, echoed_to=echoed_to)
    hooks.message_stored.announce(message=message)
    return message


@transaction.atomic
def receive_customer_message(
    *,
    conversation: Conversation,
    text: str,
    provider_message_id: str | None = None,
    echoed_to: realtime.Echo | None = None,
) -> Message:
    """Store a customer's message first, then (after commit) broadcast it; ``escalation``
    queues its analysis through the ``message_stored`` hook.

    A repeated ``provider_message_id`` on the channel returns the stored message: provider
    retries are processed once. A message to a closed conversation reopens it with the AI.
    ``echoed_to``: the customer socket it came from, which echoes it itself
    (``realtime.publish_message``).
    """
    text = clean_text(text)
    if provider_message_id:
        existing = Message.objects.filter(
            channel_id=conversation.channel_id, provider_message_id=provider_message_id
        ).first()
        if existing:
            return existing
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    if conversation.mode == Conversation.Mode.CLOSED:
        conversation.mode = Conversation.Mode.AI
        conversation.assigned_agent = None
        conversation.closed_at = None
        conversation.save(update_fields=["mode", "assigned_agent", "closed_at", "updated_at"])
        realtime.publish_mode(conversation)
    if not provider_message_id:  # nothing unique to collide on: no savepoint (two round trips)
        return _store_message(
            conversation=conversation,
            sender=Message.Sender.CUSTOMER,
            text=text,
            echoed_to=echoed_to,
        )
    try:
        with transaction.atomic():
            message = _store_message(
                conversation=conversation,
                sender=Message.Sender.CUSTOMER,
                text=text,
                provider_message_id=provider_message_id,
                echoed_to=echoed_to,
            )
    except IntegrityError:  # the same provider id arrived concurrently
        return Message.objects.get(
            channel_id=conversation.channel_id, provider_message_id=provider_message_id
        )
    return message


def _outgoing(conversation: Conversation, **fields) -> Message:
    """A message to the customer; on a provider channel it is stored pending, and
    ``integrations`` (listening to ``message_stored``) queues its delivery."""
    if conversation.channel.kind in PROVIDER_CHANNELS and not fields.get("is_private_note"):
        fields["delivery_status"] = Message.Delivery.PENDING
    return _store_message(conversation=conversation, **fields)


@transaction.atomic
def post_ai_reply(*, conversation: Conversation, text: str, confidence: float | None) -> Message:
    """The assistant's answer. Callers check the mode first; this refuses if it changed."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    if conversation.mode != Conversation.Mode.AI:
        raise ConversationClosed(_("The assistant no longer drives this conversation."))
    return _outgoing(conversation, sender=Message.Sender.AI, text=text, confidence=confidence)


def post_system_message(*, conversation: Conversation, text: str) -> Message:
    """A notice to the customer (handoff, "Now speaking with..."). Call inside a transaction."""
    return _outgoing(conversation, sender=Message.Sender.SYSTEM, text=text)


def post_agent_text(*, conversation: Conversation, agent, text: str) -> Message:
    """An agent's words without permission checks (the takeover greeting). Inside a transaction."""
    return _outgoing(conversation, sender=Message.Sender.AGENT, author=agent, text=text)


def post_private_note(*, conversation: Conversation, agent, text: str) -> Message:
    """A staff-only note (a hand-back note, ...). Inside the caller's transaction."""
    return _store_message(
        conversation=conversation,
        sender=Message.Sender.AGENT,
        author=agent,
        text=clean_text(text),
        is_private_note=True,
    )


@transaction.atomic
def send_agent_message(
    *, conversation: Conversation, agent, text: str, private_note: bool = False
) -> Message:
    """An agent's reply (only the assigned agent, while the conversation is theirs) or a
    private note (any staff member, never shown to the customer)."""
    text = clean_text(text)
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    if private_note:
        return _store_message(
            conversation=conversation,
            sender=Message.Sender.AGENT,
            author=agent,
            text=text,
            is_private_note=True,
        )
    if conversation.mode != Conversation.Mode.AGENT or conversation.assigned_agent_id != agent.pk:
        raise NotAssigned(_("Take over this conversation before replying."))
    if not selectors.reply_window(conversation).is_open:
        raise ReplyWindowClosed(
            _(
                "The customer last wrote more than 24 hours ago, so WhatsApp accepts no free "
                "text. Send an approved template instead."
            )
        )
    message = _outgoing(conversation, sender=Message.Sender.AGENT, author=agent, text=text)
    hooks.agent_replied.announce(message=message)
    return message


@transaction.atomic
def set_agent_availability(*, user, availability: str) -> AgentProfile:
    if availability not in AgentProfile.Availability.values:
        raise InvalidMessage(_("Unknown availability %(value)r.") % {"value": availability})
    profile = AgentProfile.objects.select_for_update().get(user=user)
    profile.availability = availability
    profile.save(update_fields=["availability"])
    hooks.agent_availability_changed.announce(profile=profile)
    return profile


def _check_placeholders(text: str, allowed: set[str], field: str) -> str:
    import string

    text = (text or "").strip()
    if not text:
        raise InvalidMessage(_("%(field)s cannot be empty.") % {"field": field})
    try:
        names = {name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name}
    except ValueError:
        raise InvalidMessage(_("%(field)s has an unmatched brace.") % {"field": field}) from None
    unknown = names - allowed
    if unknown:
        raise InvalidMessage(
            _("%(field)s uses unknown placeholders: %(names)s. Allowed: %(allowed)s.")
            % {
                "field": field,
                "names": ", ".join(sorted(unknown)),
                "allowed": ", ".join("{" + name + "}" for name in sorted(allowed)),
            }
        )
    return text


@transaction.atomic
def update_customer_texts(*, language: str, texts: dict[str, str]) -> dict[str, str]:
    """Save a manager's wording of the customer texts of one language (``{kind: text}``; the
    kinds and placeholders of ``crm.customer_texts``). Every text is checked before anything is
    saved (``InvalidMessage`` names the first wrong one); a text left empty or equal to the
    built-in default removes the override. Returns the overrides now in force."""
    if language not in customer_texts.LANGUAGES:
        raise InvalidMessage(_("Unknown language %(code)r.") % {"code": language})
    cleaned = {}
    for kind, text in texts.items():
        if kind not in customer_texts.KIND_BY_CODE:
            raise InvalidMessage(_("Unknown message kind %(kind)r.") % {"kind": kind})
        if (text or "").strip():
            cleaned[kind] = customer_texts.validate(kind, text)
        else:
            cleaned[kind] = ""
    for kind, text in cleaned.items():
        if not text or text == customer_texts.default_text(kind, language):
            CustomerText.objects.filter(kind=kind, language=language).delete()
        else:
            CustomerText.objects.update_or_create(
                kind=kind, language=language, defaults={"text": text}
            )
    return customer_texts.overrides(language)


def fill_template(template: str, **values) -> str:
    """Fill ``{name}`` placeholders without tripping on other braces in the text."""
    return customer_texts.fill(template, **values)


def close_conversation_now(conversation: Conversation) -> None:
    """Mark a conversation closed (inside the caller's transaction)."""
    conversation.mode = Conversation.Mode.CLOSED
    conversation.closed_at = timezone.now()
    conversation.save(update_fields=["mode", "closed_at", "updated_at"])
    realtime.publish_mode(conversation)


# --- Settings screens (added by the screens engineer) -------------------------------------------
ASSISTANT_SETTING_FIELDS = (
    "handoff_enabled",
    "sentiment_threshold",
    "confidence_threshold",
    "loop_threshold",
    "always_human_topics",
    "sensitivity",
    "backend",
    "claude_band_low",
    "claude_band_high",
)


@transaction.atomic
def update_assistant_settings(*, assistant, **fields):
    """Change an assistant's Agent Framework settings — handoff switch, backend and Claude band,
    sensitivity, thresholds, always-human topics — only the fields given."""
    from .models import COMPLEXITY_TOPICS, Assistant

    unknown = set(fields) - set(ASSISTANT_SETTING_FIELDS)
    if unknown:
        raise InvalidMessage(
            _("Unknown assistant settings: %(names)s.") % {"names": ", ".join(sorted(unknown))}
        )
    for name in ("sentiment_threshold", "confidence_threshold"):
        if name in fields and not 0.0 <= float(fields[name]) <= 1.0:
            raise InvalidMessage(_("Thresholds must be between 0 and 1."))
    if "loop_threshold" in fields and not 1 <= int(fields["loop_threshold"]) <= 10:
        raise InvalidMessage(_("Loop repeats must be between 1 and 10."))
    if "sensitivity" in fields and not 0.0 <= float(fields["sensitivity"]) <= 1.0:
        raise InvalidMessage(_("Sensitivity must be between 0 and 1."))
    if "backend" in fields and fields["backend"] not in Assistant.Backend.values:
        raise InvalidMessage(_("Unknown backend %(value)r.") % {"value": fields["backend"]})
    low = float(fields.get("claude_band_low", assistant.claude_band_low))
    high = float(fields.get("claude_band_high", assistant.claude_band_high))
    if not 0.0 <= low < high <= 1.0:
        raise InvalidMessage(_("The Claude band needs 0 ≤ from < to ≤ 1."))
    if "always_human_topics" in fields:
        known = {code for code, _label in COMPLEXITY_TOPICS}
        topics = list(fields["always_human_topics"] or [])
        if set(topics) - known:
            raise InvalidMessage(_("Unknown topic in the always-human list."))
        fields["always_human_topics"] = topics
    assistant = Assistant.objects.select_for_update().get(pk=assistant.pk)
    for name, value in fields.items():
        setattr(assistant, name, value)
    assistant.save(update_fields=list(fields))
    return assistant


@transaction.atomic
def update_agent_preferences(*, profile, notify_via: str, availability: str | None = None):
    """An agent's notification channel (and, optionally, availability)."""
    if notify_via not in AgentProfile.NotifyVia.values:
        raise InvalidMessage(
            _("Unknown notification preference %(value)r.") % {"value": notify_via}
        )
    if availability is not None and availability not in AgentProfile.Availability.values:
        raise InvalidMessage(_("Unknown availability %(value)r.") % {"value": availability})
    profile = AgentProfile.objects.select_for_update().get(pk=profile.pk)
    profile.notify_via = notify_via
    update_fields = ["notify_via"]
    if availability is not None:
        profile.availability = availability
        update_fields.append("availability")
    profile.save(update_fields=update_fields)
    if availability is not None:
        hooks.agent_availability_changed.announce(profile=profile)
    return profile


# --- The agent's workspace ----------------------------------------------------------------------
def validate_canned_reply_fields(*, shortcut: str, title: str, body: str) -> dict:
    from django.utils.text import slugify

    shortcut = (shortcut or "").strip().lstrip("/")
    if not shortcut or slugify(shortcut) != shortcut.lower() or len(shortcut) > 40:
        raise InvalidMessage(
            _("The shortcut must be 1 to 40 letters, digits, hyphens or underscores.")
        )
    title = (title or "").strip()
    if not title or len(title) > 120:
        raise InvalidMessage(_("The title must be 1 to 120 characters."))
    body = _check_placeholders(body, set(CANNED_PLACEHOLDERS), _("The reply"))
    if len(body) > 4000:
        raise InvalidMessage(_("The reply is longer than 4000 characters."))
    return {"shortcut": shortcut.lower(), "title": title, "body": body}


def _may_edit_canned(user, reply: CannedReply) -> bool:
    if reply.owner_id is not None:
        return reply.owner_id == user.pk
    return selectors.is_manager(user)


@transaction.atomic
def save_canned_reply(
    *,
    actor,
    shortcut: str,
    title: str,
    body: str,
    team: Team | None = None,
    reply: CannedReply | None = None,
) -> CannedReply:
    """Create (``reply`` None) or change a canned reply. Personal replies belong to ``actor``;
    team replies (``team`` given) are a manager's to write. Placeholders are checked here."""
    fields = validate_canned_reply_fields(shortcut=shortcut, title=title, body=body)
    if reply is None:
        if team is not None and not selectors.is_manager(actor):
            raise NotAssigned(_("Only a manager can write a team's canned replies."))
        reply = CannedReply(team=team, owner=None if team is not None else actor)
    else:
        reply = CannedReply.objects.select_for_update().get(pk=reply.pk)
        if not _may_edit_canned(actor, reply):
            raise NotAssigned(_("You can't change this canned reply."))
    for name, value in fields.items():
        setattr(reply, name, value)
    try:
        with transaction.atomic():
            reply.save()
    except IntegrityError:
        raise InvalidMessage(
            _("The shortcut /%(shortcut)s is already used.") % {"shortcut": fields["shortcut"]}
        ) from None
    return reply


@transaction.atomic
def delete_canned_reply(*, actor, reply: CannedReply) -> None:
    if not _may_edit_canned(actor, reply):
        raise NotAssigned(_("You can't delete this canned reply."))
    reply.delete()


def render_canned_text(
    body: str, *, conversation: Conversation, agent, ticket_reference: str = ""
) -> str:
    """Fill the three placeholders for this conversation and agent (no format(): a body is
    plain text with a few known names, nothing else is interpreted)."""
    from .models import agent_name

    contact_name = (conversation.contact.name or "").strip()
    return fill_template(
        body,
        **{
            "contact.first_name": contact_name.split()[0] if contact_name else "",
            "agent.name": agent_name(agent),
            "ticket.reference": ticket_reference,
        },
    )


@transaction.atomic
def use_canned_reply(
    *, reply_id: int, conversation: Conversation, agent, ticket_reference: str = ""
) -> str:
    """The reply's text filled in for this conversation; counts the use (an F() update, so
    agents inserting at once never lose a count)."""
    from django.db.models import F

    reply = selectors.canned_replies_for(agent).filter(pk=reply_id).first()
    if reply is None:
        raise NotFound(_("That canned reply does not exist."))
    CannedReply.objects.filter(pk=reply.pk).update(use_count=F("use_count") + 1)
    return render_canned_text(
        reply.body, conversation=conversation, agent=agent, ticket_reference=ticket_reference
    )


@transaction.atomic
def send_template_message(
    *, conversation: Conversation, agent, template: MessageTemplate
) -> Message:
    """Send an approved provider template (the only way to write after the 24 h window)."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    if conversation.mode != Conversation.Mode.AGENT or conversation.assigned_agent_id != agent.pk:
        raise NotAssigned(_("Take over this conversation before replying."))
    if template.channel_id != conversation.channel_id or not template.is_approved:
        raise InvalidMessage(_("That template is not approved for this channel."))
    return _outgoing(
        conversation,
        sender=Message.Sender.AGENT,
        author=agent,
        text=template.body,
        template=template,
    )


def forget_wait_notice(*, conversation: Conversation) -> None:
    """A new wait begins: its handoff message gives the estimate the next updates are measured
    from, not what the customer was told while waiting an earlier time."""
    WaitNotice.objects.filter(conversation=conversation).delete()


@transaction.atomic
def post_wait_update(
    *,
    conversation_id: int,
    position: int,
    wait_minutes: int,
    language: str,
    min_change: int,
    min_interval,
    reopens_at=None,
) -> Message | None:
    """Tell a provider-channel customer their new place and estimate, when it moved by at
    least ``min_change`` minutes (or they reached the front) and the last notice is older than
    ``min_interval``. The notice row is locked, so two workers never send the same update.
    ``reopens_at``: the reopening they wait for, said instead of the minutes
    (``customer_texts.queue_place_text``)."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
    if conversation.mode != Conversation.Mode.AWAITING_AGENT:
        return None
    now = timezone.now()
    notice = WaitNotice.objects.select_for_update().filter(conversation=conversation).first()
    if notice is None:
        # The handoff message has just told them the estimate: this is the baseline.
        WaitNotice.objects.create(
            conversation=conversation, position=position, wait_minutes=wait_minutes, sent_at=now
        )
        return None
    moved = abs(notice.wait_minutes - wait_minutes) >= min_change or (
        position == 1 and notice.position != 1
    )
    if not moved or now - notice.sent_at < min_interval:
        return None
    notice.position, notice.wait_minutes, notice.sent_at = position, wait_minutes, now
    notice.save()
    return _outgoing(
        conversation,
        sender=Message.Sender.SYSTEM,
        text=customer_texts.queue_place_text(
            position=position, wait_minutes=wait_minutes, reopens_at=reopens_at, language=language
        ),
    )
