"""Provider senders: AI, agent and system messages leave through WhatsApp or Instagram.

``integrations.tasks.deliver_message`` calls :func:`deliver` for a message marked pending. A send
that fails for a reason that may pass (network error, timeout, HTTP 429 or 5xx) is retried by the
task with exponential back-off; a refusal (other 4xx) or the last failed attempt marks the
message failed. Every attempt's error is stored on the message (``delivery_error``), so agents
see "failed" and why on the conversation, and the API returns it.
"""

import logging
import random
from collections.abc import Callable

import httpx
from django.db import transaction
from django.utils.translation import gettext as _

from crm.models import Channel, ChannelKind, ContactIdentity, Message

from . import transport

logger = logging.getLogger(__name__)

GRAPH_API = "https://graph.facebook.com/v21.0"


class SendError(Exception):
    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


def backoff_seconds(retries: int) -> int:
    """10 s, 20 s, 40 s ... capped at 10 minutes, with a little jitter."""
    base = min(600, 10 * 2**retries)
    return base + random.randint(0, max(1, base // 5))


def _post(url: str, *, token: str, body: dict) -> dict:
    try:
        with transport.client() as http:
            response = http.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        raise SendError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise SendError(_provider_error(response), retryable=True)
    if not response.is_success:
        raise SendError(_provider_error(response), retryable=False)
    try:
        return response.json()
    except ValueError:
        return {}


def _provider_error(response: httpx.Response) -> str:
    try:
        detail = response.json().get("error", {}).get("message", "")
    except (ValueError, AttributeError):
        detail = ""
    return f"HTTP {response.status_code}" + (f": {detail}" if detail else "")


def send_whatsapp(channel: Channel, recipient: str, text: str) -> str:
    """WhatsApp Cloud API: POST /<phone number id>/messages. Returns the wamid."""
    data = _post(
        f"{GRAPH_API}/{channel.provider_account_id}/messages",
        token=channel.access_token,
        body={
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": recipient,
            "type": "text",
            "text": {"preview_url": False, "body": text},
        },
    )
    messages = data.get("messages") if isinstance(data, dict) else None
    return str(messages[0].get("id", "")) if messages else ""


def send_whatsapp_template(channel: Channel, recipient: str, template) -> str:
    """WhatsApp Cloud API template message (allowed outside the 24-hour window)."""
    data = _post(
        f"{GRAPH_API}/{channel.provider_account_id}/messages",
        token=channel.access_token,
        body={
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": recipient,
            "type": "template",
            "template": {"name": template.name, "language": {"code": template.language}},
        },
    )
    messages = data.get("messages") if isinstance(data, dict) else None
    return str(messages[0].get("id", "")) if messages else ""


def send_instagram(channel: Channel, recipient: str, text: str) -> str:
    """Instagram messaging (Graph API): POST /<account id>/messages. Returns the mid."""
    data = _post(
        f"{GRAPH_API}/{channel.provider_account_id or 'me'}/messages",
        token=channel.access_token,
        body={"recipient": {"id": recipient}, "message": {"text": text}},
    )
    return str(data.get("message_id", "")) if isinstance(data, dict) else ""


SENDERS: dict[str, Callable[[Channel, str, str], str]] = {
    ChannelKind.WHATSAPP: send_whatsapp,
    ChannelKind.INSTAGRAM: send_instagram,
}


@transaction.atomic
def mark_message_delivery(
    *, message_id: int, status: str, error: str = "", provider_message_id: str = ""
) -> None:
    """Record a send's outcome on the message (the one write path for delivery state)."""
    fields = {"delivery_status": status, "delivery_error": error[:2000]}
    if provider_message_id:
        # Kept so the provider's receipts (WhatsApp statuses) find the message later.
        channel_id = Message.objects.filter(pk=message_id).values_list("channel_id", flat=True)
        taken = Message.objects.filter(
            channel_id__in=channel_id, provider_message_id=provider_message_id[:200]
        ).exists()
        if not taken:
            fields["provider_message_id"] = provider_message_id[:200]
    Message.objects.filter(pk=message_id).update(**fields)


def apply_provider_status(
    *, channel: Channel, provider_message_id: str, status: str, error: str = ""
) -> None:
    """A delivery receipt from the provider (WhatsApp ``statuses``) for one of our messages."""
    if status == "failed":
        new, error = Message.Delivery.FAILED, error or _("The provider reported a failure.")
    elif status in ("sent", "delivered", "read"):
        new, error = Message.Delivery.SENT, ""
    else:
        return
    message_id = (
        Message.objects.filter(channel=channel, provider_message_id=provider_message_id)
        .exclude(sender=Message.Sender.CUSTOMER)
        .values_list("id", flat=True)
        .first()
    )
    if message_id is not None:
        mark_message_delivery(message_id=message_id, status=new, error=error)


def deliver(*, message_id: int, task) -> None:
    """Send one pending message at most once at a time, however many copies of the task run.

    The message row stays locked (``SELECT ... FOR UPDATE SKIP LOCKED``) while the provider is
    called: a second copy of the task (Celery redelivers unacknowledged tasks after the
    broker's visibility timeout) skips the row instead of sending it again, and once the first
    copy commits, the row is no longer pending. A worker that dies mid-send releases the lock
    with its connection, so nothing stays claimed for ever. The HTTP call is bounded by the
    transport's timeouts, which bounds how long the transaction stays open.
    """
    retry_after = None
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("channel", "conversation", "template")
            .filter(pk=message_id, delivery_status=Message.Delivery.PENDING)
            .first()
        )
        if message is None:
            return  # sent already, being sent by another copy of the task, or nothing to send
        channel = message.channel
        sender = SENDERS.get(channel.kind)
        recipient = (
            message.conversation.external_id
            or ContactIdentity.objects.filter(
                contact_id=message.conversation.contact_id, channel_kind=channel.kind
            )
            .order_by("id")
            .values_list("external_id", flat=True)
            .first()
        )
        if sender is None or not recipient or not channel.access_token:
            reason = (
                _("No sender for %(kind)s channels.") % {"kind": channel.kind}
                if sender is None
                else _("The contact has no %(kind)s id.") % {"kind": channel.kind}
                if not recipient
                else _("The channel has no access token.")
            )
            mark_message_delivery(
                message_id=message.pk, status=Message.Delivery.FAILED, error=reason
            )
            return
        attempt = task.request.retries + 1
        try:
            if message.template is not None and channel.kind == ChannelKind.WHATSAPP:
                provider_id = send_whatsapp_template(channel, recipient, message.template)
            else:
                provider_id = sender(channel, recipient, message.text)
        except SendError as exc:
            final = not exc.retryable or task.request.retries >= task.max_retries
            error = _("Attempt %(n)d: %(error)s") % {"n": attempt, "error": exc}
            logger.warning("provider send of message %s failed: %s", message.pk, error)
            mark_message_delivery(
                message_id=message.pk,
                status=Message.Delivery.FAILED if final else Message.Delivery.PENDING,
                error=error,
            )
            if not final:
                retry_after = exc
        else:
            mark_message_delivery(
                message_id=message.pk, status=Message.Delivery.SENT, provider_message_id=provider_id
            )
    if retry_after is not None:  # outside the transaction: the failure is recorded first
        raise task.retry(countdown=backoff_seconds(task.request.retries)) from retry_after


def schedule_delivery(*, message: Message) -> None:
    """Listener of ``crm.hooks.message_stored``: queue the provider send of a message the crm
    stored pending, after commit."""
    if message.delivery_status != Message.Delivery.PENDING:
        return
    from .tasks import deliver_message

    message_id = message.id
    # robust: a broker outage must not cancel the other after-commit effects (broadcasts...).
    transaction.on_commit(lambda: deliver_message.delay(message_id), robust=True)
