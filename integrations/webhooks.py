"""Inbound channel webhooks: WhatsApp Cloud API and Instagram messaging (both Meta).

One URL per channel (``/api/webhooks/<kind>/<channel key>/``), so the app secret that signs a
request is known before anything in it is read:

1. GET is Meta's verification: ``hub.mode=subscribe``, ``hub.verify_token`` equal to the
   channel's verify token → the ``hub.challenge`` echoed as text.
2. POST is checked first of all: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw
   body with the channel's app secret>``, compared in constant time. A missing or wrong
   signature is 401 and the body is never parsed.
3. Each message is stored once: Meta retries deliveries, and the provider's message id is
   unique per channel in the database (``receive_customer_message`` returns the stored one).
   A message that cannot be stored (empty, too long) is logged and skipped, so one bad item
   does not make Meta retry the whole batch forever.
"""

import hashlib
import hmac
import logging
from dataclasses import dataclass

from django.db import transaction
from django.http import HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import (
    APIException,
    AuthenticationFailed,
    NotFound,
    ParseError,
    PermissionDenied,
)
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from crm import services as crm_services
from crm.errors import DomainError
from crm.limits import JsonTooDeep, load_client_json
from crm.models import Channel, ChannelKind, Contact, ContactIdentity, Message

from . import senders
from .schema import error_response
from .throttles import WebhookThrottle

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
# Message.provider_message_id and ContactIdentity.external_id hold at most this many characters.
MAX_PROVIDER_ID_CHARS = 200
MAX_NAME_CHARS = 200  # Contact.name


class PayloadTooLarge(APIException):
    """413, like Django's own RequestDataTooBig above DATA_UPLOAD_MAX_MEMORY_SIZE."""

    status_code = 413
    default_code = "too_large"
    default_detail = _lazy("The request body is too large.")


@dataclass(frozen=True)
class InboundMessage:
    external_user_id: str
    text: str
    provider_message_id: str
    name: str = ""


@dataclass(frozen=True)
class StatusUpdate:
    provider_message_id: str
    status: str  # sent, delivered, read, failed
    error: str = ""


class InvalidInboundMessage(DomainError):
    """One item of a batch that cannot be stored as it is; the rest of the batch still is."""

    code = "invalid_inbound_message"


def check_inbound(inbound: InboundMessage) -> None:
    for label, value in (
        ("sender", inbound.external_user_id),
        ("message id", inbound.provider_message_id),
    ):
        if not value or len(value) > MAX_PROVIDER_ID_CHARS or "\x00" in value:
            raise InvalidInboundMessage(
                _("The %(what)s must be 1 to %(limit)d characters without NUL.")
                % {"what": label, "limit": MAX_PROVIDER_ID_CHARS}
            )


def signature_is_valid(secret: str, body: bytes, header: str) -> bool:
    if not secret or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower())


# --- Payload readers (pure: dict in, dataclasses out) -------------------------------------------


def _as_list(value) -> list:
    return value if isinstance(value, list) else []


def _as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _text_of_whatsapp_message(message: dict) -> str:
    kind = message.get("type")
    if kind == "text":
        return str(_as_dict(message.get("text")).get("body", ""))
    if kind == "interactive":
        interactive = _as_dict(message.get("interactive"))
        reply = _as_dict(interactive.get("button_reply") or interactive.get("list_reply"))
        return str(reply.get("title", ""))
    if kind == "button":
        return str(_as_dict(message.get("button")).get("text", ""))
    caption = _as_dict(message.get(kind)).get("caption", "") if isinstance(kind, str) else ""
    label = f"[{kind}]" if isinstance(kind, str) and kind else "[message]"
    return f"{label} {caption}".strip()


def read_whatsapp(payload: dict) -> tuple[list[InboundMessage], list[StatusUpdate]]:
    messages, statuses = [], []
    for entry in _as_list(payload.get("entry")):
        for change in _as_list(_as_dict(entry).get("changes")):
            value = _as_dict(_as_dict(change).get("value"))
            names = {
                str(c.get("wa_id")): str(_as_dict(c.get("profile")).get("name", ""))
                for c in map(_as_dict, _as_list(value.get("contacts")))
            }
            for message in map(_as_dict, _as_list(value.get("messages"))):
                sender, message_id = message.get("from"), message.get("id")
                if not isinstance(sender, str) or not isinstance(message_id, str):
                    continue
                messages.append(
                    InboundMessage(
                        external_user_id=sender,
                        text=_text_of_whatsapp_message(message),
                        provider_message_id=message_id,
                        name=names.get(sender, ""),
                    )
                )
            for status in map(_as_dict, _as_list(value.get("statuses"))):
                if isinstance(status.get("id"), str) and isinstance(status.get("status"), str):
                    errors = _as_list(status.get("errors"))
                    error = _as_dict(errors[0]).get("title", "") if errors else ""
                    statuses.append(StatusUpdate(status["id"], status["status"], str(error)))
    return messages, statuses


def read_instagram(payload: dict) -> tuple[list[InboundMessage], list[StatusUpdate]]:
    messages = []
    for entry in _as_list(payload.get("entry")):
        for event in map(_as_dict, _as_list(_as_dict(entry).get("messaging"))):
            message = _as_dict(event.get("message"))
            sender = _as_dict(event.get("sender")).get("id")
            mid = message.get("mid")
            if message.get("is_echo") or not isinstance(sender, str) or not isinstance(mid, str):
                continue  # our own replies come back as echoes
            text = message.get("text")
            if not isinstance(text, str):
                kinds = [
                    _as_dict(a).get("type", "attachment")
                    for a in _as_list(message.get("attachments"))
                ]
                text = " ".join(f"[{kind}]" for kind in kinds) or "[message]"
            messages.append(
                InboundMessage(external_user_id=sender, text=text, provider_message_id=mid)
            )
    return messages, []


# --- Storing -----------------------------------------------------------------------------------


def receive_provider_message(*, channel: Channel, inbound: InboundMessage) -> Message:
    """Store one inbound message in the contact's conversation on this channel (started if
    there is none). A provider id seen before returns the stored message.

    Concurrent deliveries (Meta retries while the first is still being handled) are settled in
    the database: a sender not seen before takes a row lock on the channel, so exactly one
    contact and one conversation are created; the message id is unique per channel.
    ``InvalidInboundMessage`` for ids the database cannot hold (checked before any query)."""
    check_inbound(inbound)
    existing = Message.objects.filter(
        channel=channel, provider_message_id=inbound.provider_message_id
    ).first()
    if existing is not None:
        return existing
    with transaction.atomic():
        known = ContactIdentity.objects.filter(
            channel_kind=channel.kind, external_id=inbound.external_user_id
        ).exists()
        if not known:
            Channel.objects.select_for_update().filter(pk=channel.pk).first()
        contact = crm_services.find_or_create_contact(
            channel_kind=channel.kind,
            name=inbound.name[:MAX_NAME_CHARS],
            external_id=inbound.external_user_id,
        )
        # One conversation per contact and channel even when two messages race.
        Contact.objects.select_for_update().filter(pk=contact.pk).first()
        conversation = (
            contact.conversations.filter(channel=channel, external_id=inbound.external_user_id)
            .order_by("-id")
            .first()
        )
        if conversation is None:
            conversation = crm_services.start_conversation(
                channel=channel, contact=contact, external_id=inbound.external_user_id
            )
        return crm_services.receive_customer_message(
            conversation=conversation,
            text=inbound.text,
            provider_message_id=inbound.provider_message_id,
        )


def parse_payload(body: bytes) -> dict:
    """Only ever called on a body whose signature checked out."""
    try:
        payload = load_client_json(body)
    except JsonTooDeep as error:
        raise ParseError(
            _("The body nests deeper than %(limit)d levels.") % {"limit": error.limit}
        ) from None
    except ValueError:
        raise ParseError(_("The body is not JSON.")) from None
    if not isinstance(payload, dict):
        raise ParseError(_("The body must be a JSON object."))
    return payload


class WebhookAckSerializer(serializers.Serializer):
    received = serializers.IntegerField(help_text="Messages in the payload.")
    stored = serializers.IntegerField(help_text="New messages stored (retries are not).")
    skipped = serializers.IntegerField(help_text="Messages that could not be stored.")


def _channel(kind: str, key: str) -> Channel:
    channel = Channel.objects.filter(key=key, kind=kind, is_active=True).first()
    if channel is None:
        raise NotFound()
    return channel


VERIFY_PARAMETERS = [
    OpenApiParameter("hub.mode", str, required=True, description="Always `subscribe`."),
    OpenApiParameter("hub.verify_token", str, required=True),
    OpenApiParameter("hub.challenge", str, required=True, description="Echoed back."),
]


class ProviderWebhookView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [WebhookThrottle]
    parser_classes = []  # the raw body is verified before anything parses it
    kind: str = ""
    read_payload = None

    def get(self, request, channel_key: str):
        channel = _channel(self.kind, channel_key)
        mode = request.query_params.get("hub.mode", "")
        token = request.query_params.get("hub.verify_token", "")
        challenge = request.query_params.get("hub.challenge", "")
        if not (
            mode == "subscribe"
            and channel.verify_token
            and hmac.compare_digest(token.encode(), channel.verify_token.encode())
            and challenge
        ):
            raise PermissionDenied(_("Verification failed."))
        return HttpResponse(challenge[:200], content_type="text/plain; charset=utf-8")

    def post(self, request, channel_key: str):
        channel = _channel(self.kind, channel_key)
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > MAX_BODY_BYTES:
            raise PayloadTooLarge()  # before reading it
        body = request.body
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge()
        header = request.META.get("HTTP_X_HUB_SIGNATURE_256", "")
        if not signature_is_valid(channel.webhook_secret, body, header):
            raise AuthenticationFailed(_("Missing or invalid X-Hub-Signature-256."))
        payload = parse_payload(body)
        messages, statuses = self.read_payload(payload)
        stored = skipped = 0
        for inbound in messages:
            try:
                check_inbound(inbound)  # before any query: PostgreSQL refuses NUL in a query too
                before = Message.objects.filter(
                    channel=channel, provider_message_id=inbound.provider_message_id
                ).exists()
                receive_provider_message(channel=channel, inbound=inbound)
                stored += not before
            except DomainError as exc:
                skipped += 1
                logger.warning(
                    "%s webhook: skipped message %s: %s",
                    self.kind,
                    inbound.provider_message_id,
                    exc.message,
                )
        for update in statuses:
            senders.apply_provider_status(
                channel=channel,
                provider_message_id=update.provider_message_id,
                status=update.status,
                error=update.error,
            )
        return Response({"received": len(messages), "stored": stored, "skipped": skipped})

    def get_authenticate_header(self, request):
        return 'HMAC-SHA256 header="X-Hub-Signature-256"'


def _schema(view_cls, name: str):
    get = extend_schema(
        operation_id=f"webhooks_{view_cls.kind}_verify",
        tags=["channel webhooks"],
        parameters=VERIFY_PARAMETERS,
        responses={
            (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="The challenge."),
            403: error_response("403", "Wrong verify token or mode."),
            404: error_response("404", "No active channel of this kind with this key."),
            429: error_response("429"),
        },
        summary=f"{name} webhook verification (GET challenge)",
    )
    post = extend_schema(
        operation_id=f"webhooks_{view_cls.kind}_receive",
        tags=["channel webhooks"],
        request={"application/json": OpenApiTypes.OBJECT},
        parameters=[
            OpenApiParameter(
                "X-Hub-Signature-256",
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="`sha256=<hex HMAC-SHA256 of the raw body, keyed by the app secret>`",
            )
        ],
        responses={
            200: WebhookAckSerializer,
            400: error_response("400", "The body is not a JSON object."),
            401: error_response("401", "Missing or invalid signature (checked before parsing)."),
            413: error_response("413", "The body is larger than the server accepts."),
            404: error_response("404", "No active channel of this kind with this key."),
            429: error_response("429"),
        },
        summary=f"{name} webhook: messages and delivery statuses",
    )

    # Fresh functions per subclass: the schema annotations live on the function object.
    def verify(self, request, channel_key: str):
        return ProviderWebhookView.get(self, request, channel_key)

    def receive(self, request, channel_key: str):
        return ProviderWebhookView.post(self, request, channel_key)

    view_cls.get = get(verify)
    view_cls.post = post(receive)
    return view_cls


class WhatsAppWebhookView(ProviderWebhookView):
    kind = ChannelKind.WHATSAPP
    read_payload = staticmethod(read_whatsapp)


class InstagramWebhookView(ProviderWebhookView):
    kind = ChannelKind.INSTAGRAM
    read_payload = staticmethod(read_instagram)


_schema(WhatsAppWebhookView, "WhatsApp Cloud API")
_schema(InstagramWebhookView, "Instagram messaging")
