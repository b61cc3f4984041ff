"""The alert email: a plain-text and an HTML part rendered from templates/notifications/email/."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from crm.models import agent_name

from .models import Notification


def absolute_url(path: str) -> str:
    if not path or path.startswith(("http://", "https://")):
        return path
    return f"{settings.SITE_URL}{path}"


def message_id_for(notification: Notification) -> str:
    """Stable per notification: if a crash makes us send twice, mail servers and clients that
    de-duplicate by Message-ID show one email."""
    host = urlsplit(settings.SITE_URL).hostname or "localhost"
    return f"<notification-{notification.pk}.{notification.recipient_id}@{host}>"


def email_context(notification: Notification) -> dict:
    escalation = notification.escalation
    context = {
        "notification": notification,
        "recipient_name": agent_name(notification.recipient),
        "link": absolute_url(notification.link),
        "is_reminder": notification.kind == Notification.Kind.REMINDER,
        "is_fallback": notification.is_fallback,
        "escalation": escalation,
    }
    if escalation is not None:
        conversation = escalation.conversation
        context.update(
            contact=str(conversation.contact),
            channel=conversation.channel.name,
            reason=escalation.get_reason_display(),
            detail=escalation.detail,
            priority=escalation.get_priority_display(),
            summary=escalation.summary,
            team=escalation.team.name if escalation.team_id else "",
            escalated_at=escalation.escalated_at,
        )
    return context


def subject_for(notification: Notification, context: dict) -> str:
    """One line: a contact's name comes from customers, and a newline in a header would make
    Django refuse the whole email."""
    if "contact" not in context:
        subject = notification.text
    else:
        values = {"contact": context["contact"], "priority": context["priority"]}
        if context["is_reminder"]:
            subject = _("[%(priority)s] Still waiting for an agent: %(contact)s") % values
        else:
            subject = _("[%(priority)s] %(contact)s needs an agent") % values
    return " ".join(subject.split())[:200]


def build_notification_email(notification: Notification) -> EmailMultiAlternatives:
    """The email for one notification; ``notification`` must have its recipient and escalation
    (conversation, contact, channel, team) loaded."""
    context = email_context(notification)
    message = EmailMultiAlternatives(
        subject=subject_for(notification, context),
        body=render_to_string("notifications/email/notification.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.recipient.email],
        headers={"Message-ID": message_id_for(notification)},
    )
    message.attach_alternative(
        render_to_string("notifications/email/notification.html", context), "text/html"
    )
    return message
