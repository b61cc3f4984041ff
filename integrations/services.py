"""State changes of the integrations app: API tokens, webhook subscriptions and deliveries.

``emit_event`` is the one entry point the domain services call when something a subscriber
may care about happens. It writes one ``WebhookDelivery`` per interested subscription inside
the caller's transaction (an outbox: a rolled-back change sends nothing) and queues the sends
with ``transaction.on_commit``.
"""

import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from . import transport
from .errors import InvalidScopes, InvalidSubscription, InvalidTokenOwner
from .models import (
    ApiToken,
    Scope,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
    hash_token,
    new_raw_token,
)

logger = logging.getLogger(__name__)

LAST_USED_RESOLUTION = timedelta(minutes=1)
SIGNATURE_HEADER = "X-LiveEscalation-Signature"
# A delivery's claim outlives one HTTP attempt (transport: 5 s connect + 10 s per read) by far;
# a claim older than this belongs to a worker that died mid-send and may be taken over.
DELIVERY_CLAIM_LEASE = timedelta(minutes=2)
# The sweep queues again a pending delivery whose task is gone: nobody tried it for longer
# than a live retry chain ever waits between attempts (tasks.backoff_seconds: at most
# 3,600 s + 25 % jitter = 4,500 s), so a chain still retrying is never doubled.
WEBHOOK_SWEEP_AFTER = timedelta(minutes=10)
WEBHOOK_SWEEP_IDLE = timedelta(minutes=90)
# ... and gives up (marks it failed, to be redelivered by hand) after three full chains or a day.
WEBHOOK_SWEEP_MAX_ATTEMPTS = 24
WEBHOOK_SWEEP_MAX_AGE = timedelta(days=1)


# --- API tokens -------------------------------------------------------------------------------


def clean_scopes(scopes) -> list[str]:
    if isinstance(scopes, str):
        scopes = [part.strip() for part in scopes.split(",")]
    scopes = [scope for scope in scopes or [] if scope]
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown:
        raise InvalidScopes(
            _("Unknown scopes: %(unknown)s. Use %(allowed)s.")
            % {"unknown": ", ".join(unknown), "allowed": ", ".join(Scope.values)}
        )
    if not scopes:
        raise InvalidScopes(_("A token needs at least one scope."))
    return [scope for scope in Scope.values if scope in scopes]


@transaction.atomic
def create_api_token(
    *, owner, name: str, scopes, created_by=None, expires_at=None
) -> tuple[ApiToken, str]:
    """A new token for ``owner``. Returns the row and the raw token, which is shown once and
    never stored (only its SHA-256 is)."""
    if not (owner.is_active and owner.is_staff):
        raise InvalidTokenOwner(_("The token's owner must be an active staff user (an agent)."))
    raw = new_raw_token()
    token = ApiToken.objects.create(
        owner=owner,
        name=(name or _("API token"))[:100],
        scopes=clean_scopes(scopes),
        key_hash=hash_token(raw),
        key_prefix=raw[:10],
        created_by=created_by,
        expires_at=expires_at,
    )
    return token, raw


@transaction.atomic
def revoke_api_token(*, token: ApiToken) -> ApiToken:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db()
    return token


def authenticate_api_token(raw: str) -> ApiToken | None:
    """The live token for this raw value, or None. Marks it used (at most once a minute, so a
    busy integration does not write on every request)."""
    if not raw or len(raw) > 200:
        return None
    token = (
        ApiToken.objects.select_related("owner", "owner__agent_profile")
        .filter(key_hash=hash_token(raw), revoked_at__isnull=True)
        .first()
    )
    now = timezone.now()
    if token is None or not (token.owner.is_active and token.owner.is_staff):
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    if token.last_used_at is None or token.last_used_at < now - LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


# --- Webhook subscriptions ----------------------------------------------------------------------


def _internal_host(host: str) -> bool:
    """Loopback, private, link-local and other non-public addresses, given as a literal IP, and
    the obvious local names: refused when the subscription is saved. Names are resolved and
    checked again at every delivery (``transport.post_to_public_host``): DNS may change."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        return not transport.is_public_address(host)
    except ValueError:
        return False


def webhook_url_pattern() -> str:
    """What a webhook URL looks like (the API schema states the same): https (http too while
    DEBUG is on, for a local receiver), then a host of at most 253 characters and an optional
    port, path and query."""
    scheme = "https?" if settings.DEBUG else "https"
    return rf"^{scheme}://[^/?#:@\s]{{1,253}}(:[0-9]{{1,5}})?([/?#]\S*)?$"


def check_webhook_url(url) -> None:
    """Raise InvalidSubscription unless ``url`` may receive webhooks (see _internal_host)."""
    if not isinstance(url, str) or not url.lower().startswith(("https://", "http://")):
        raise InvalidSubscription(_("The URL must start with https:// or http://."))
    if not re.match(webhook_url_pattern(), url, flags=re.IGNORECASE):
        raise InvalidSubscription(
            _("The URL must be https://, a host of at most 253 characters, then a path.")
        )
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        host = ""
    if not host:
        raise InvalidSubscription(_("The URL has no host."))
    if settings.DEBUG:
        return  # local development may deliver to a receiver on this machine, over http
    if not url.lower().startswith("https://"):
        raise InvalidSubscription(_("The URL must start with https://."))
    if _internal_host(host):
        raise InvalidSubscription(
            _("The URL must point to a public host, not a local or private address.")
        )


def _clean_subscription(url: str, events) -> list[str]:
    check_webhook_url(url)
    events = list(dict.fromkeys(events or []))
    unknown = sorted(set(events) - set(WebhookEvent.values))
    if unknown:
        raise InvalidSubscription(
            _("Unknown events: %(unknown)s.") % {"unknown": ", ".join(unknown)}
        )
    if not events:
        raise InvalidSubscription(_("Subscribe to at least one event."))
    return events


@transaction.atomic
def create_webhook_subscription(
    *,
    url: str,
    events,
    description: str = "",
    secret: str = "",
    created_by=None,
    is_active: bool = True,
) -> WebhookSubscription:
    events = _clean_subscription(url, events)
    subscription = WebhookSubscription(
        url=url,
        events=events,
        description=description[:200],
        created_by=created_by,
        is_active=is_active,
    )
    if secret:
        subscription.secret = secret
    subscription.save()
    return subscription


@transaction.atomic
def update_webhook_subscription(
    *, subscription: WebhookSubscription, **changes
) -> WebhookSubscription:
    """Change url, events, description, secret or is_active (only the keys given)."""
    subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
    allowed = {"url", "events", "description", "secret", "is_active"}
    for field, value in changes.items():
        if field not in allowed:
            raise InvalidSubscription(_("%(field)s cannot be changed.") % {"field": field})
        setattr(subscription, field, value)
    subscription.events = _clean_subscription(subscription.url, subscription.events)
    if not subscription.secret:
        raise InvalidSubscription(_("The secret cannot be empty."))
    subscription.save()
    return subscription


@transaction.atomic
def delete_webhook_subscription(*, subscription: WebhookSubscription) -> None:
    subscription.delete()


# --- Events and deliveries ----------------------------------------------------------------------


# The active subscriptions as read by the first event of a ``subscriptions_read_once`` block
# (UNREAD until then); None outside any block, where every event reads them.
_UNREAD = object()
_read_once: ContextVar = ContextVar("webhook_subscriptions_read_once", default=None)


@contextmanager
def subscriptions_read_once():
    """Inside this block (one service's transaction, in one thread), the events emitted read
    the active subscriptions once, at the first event, instead of once each: a handoff emits
    three or four. Nothing outlives the block, so no process ever holds a stale list: a
    subscription committed before the block's first event gets every event of the block, as
    before; one committed during the block gets none of them (before, it got the later ones)."""
    token = _read_once.set(_UNREAD)
    try:
        yield
    finally:
        _read_once.reset(token)


def _active_subscriptions() -> list[WebhookSubscription]:
    cached = _read_once.get()
    if cached is not None and cached is not _UNREAD:
        return cached
    active = list(WebhookSubscription.objects.filter(is_active=True))
    if cached is _UNREAD:
        _read_once.set(active)
    return active


def emit_event(name: str, payload) -> list[WebhookDelivery]:
    """Record ``name`` for every active subscription that wants it and send after commit.

    Call inside the transaction that made the change; nothing is sent if it rolls back.
    ``payload`` is a dict, or a callable returning one (built only when someone listens).
    """
    if name not in WebhookEvent.values:
        raise ValueError(f"Unknown webhook event {name!r}")
    subscriptions = [s for s in _active_subscriptions() if s.wants(name)]
    if not subscriptions:
        return []
    if callable(payload):
        payload = payload()
    payload = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
    deliveries = [
        WebhookDelivery.objects.create(subscription=s, event=name, payload=payload)
        for s in subscriptions
    ]
    ids = [delivery.id for delivery in deliveries]
    transaction.on_commit(lambda: _queue_deliveries(ids))
    return deliveries


def _queue_deliveries(ids: list[int]) -> None:
    from .tasks import deliver_webhook

    for delivery_id in ids:
        try:
            deliver_webhook.delay(delivery_id)
        except Exception:  # broker down: the row stays pending and the sweep resends it
            logger.warning("could not queue webhook delivery %s; the sweep will", delivery_id)


def delivery_body(delivery: WebhookDelivery) -> bytes:
    return json.dumps(
        {
            "id": str(delivery.event_id),
            "event": delivery.event,
            "created_at": delivery.created_at.isoformat(),
            "data": delivery.payload,
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>``: the timestamp is signed too,
    so a receiver can refuse replays older than a few minutes."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: str, header: str, body: bytes, *, tolerance: int = 300) -> bool:
    """What a receiver does (also used by our tests and docs)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def _claim_delivery(delivery_id: int, token: str) -> bool:
    """Pending → claimed by ``token``, unless another attempt holds a live claim. A conditional
    UPDATE, committed before the HTTP call, so two copies of the task never both send."""
    now = timezone.now()
    return bool(
        WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - DELIVERY_CLAIM_LEASE))
        .update(claim=token, claimed_at=now)
    )


def attempt_webhook_delivery(*, delivery_id: int, final: bool) -> bool:
    """POST one delivery. Returns True when the receiver answered 2xx, or when there is nothing
    for this task to do (delivered already, deleted, or another copy is sending it right now).
    A failure is recorded on the row; ``final`` marks it failed for good (the task decides when
    to give up)."""
    token = uuid.uuid4().hex
    if not _claim_delivery(delivery_id, token):
        return True  # delivered, deleted with its subscription, or being sent by another copy
    delivery = WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)
    subscription = delivery.subscription
    if not subscription.is_active:
        _record_attempt(
            delivery, token, ok=False, status=None, error=_("Subscription disabled."), final=True
        )
        return True
    body = delivery_body(delivery)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "X-LiveEscalation-Event": delivery.event,
        "X-LiveEscalation-Delivery": str(delivery.event_id),
        "X-LiveEscalation-Timestamp": str(timestamp),
        SIGNATURE_HEADER: sign(subscription.secret, timestamp, body),
    }
    status, error = None, ""
    try:
        response = transport.post_to_public_host(subscription.url, content=body, headers=headers)
        status = response.status_code
        if not response.is_success:
            error = _("The receiver answered HTTP %(status)d.") % {"status": status}
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:1000]
    ok = not error
    _record_attempt(delivery, token, ok=ok, status=status, error=error, final=final)
    return ok


@transaction.atomic
def _record_attempt(delivery, token: str, *, ok: bool, status, error: str, final: bool) -> None:
    now = timezone.now()
    fields = {
        "attempts": F("attempts") + 1,
        "response_status": status,
        "last_error": error,
        "last_attempt_at": now,
        "claim": "",
        "claimed_at": None,
    }
    if ok:
        fields.update(status=WebhookDelivery.Status.SUCCEEDED, delivered_at=now)
    elif final:
        fields["status"] = WebhookDelivery.Status.FAILED
    WebhookDelivery.objects.filter(
        pk=delivery.pk, status=WebhookDelivery.Status.PENDING, claim=token
    ).update(**fields)


@transaction.atomic
def redeliver_webhook(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a failed delivery again (from the admin or the API)."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=WebhookDelivery.Status.PENDING, delivered_at=None
    )
    delivery_id = delivery.pk
    transaction.on_commit(lambda: _queue_deliveries([delivery_id]))
    delivery.refresh_from_db()
    return delivery


def pending_delivery_ids(*, now=None, limit: int = 500) -> list[int]:
    """Pending deliveries whose task is gone, for the sweep: older than WEBHOOK_SWEEP_AFTER,
    not claimed, and never tried or last tried longer ago than WEBHOOK_SWEEP_IDLE (a live
    retry chain is left alone). Those past the caps are marked failed instead."""
    now = now or timezone.now()
    give_up = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).filter(
        Q(attempts__gte=WEBHOOK_SWEEP_MAX_ATTEMPTS) | Q(created_at__lt=now - WEBHOOK_SWEEP_MAX_AGE)
    )
    give_up.filter(
        Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - DELIVERY_CLAIM_LEASE)
    ).filter(
        Q(last_attempt_at__isnull=True) | Q(last_attempt_at__lt=now - WEBHOOK_SWEEP_IDLE)
    ).update(
        status=WebhookDelivery.Status.FAILED,
        last_error=_("Gave up: too many attempts or too old; redeliver it by hand."),
        claim="",
        claimed_at=None,
    )
    rows = (
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING,
            created_at__lte=now - WEBHOOK_SWEEP_AFTER,
            created_at__gte=now - WEBHOOK_SWEEP_MAX_AGE,
            attempts__lt=WEBHOOK_SWEEP_MAX_ATTEMPTS,
        )
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - DELIVERY_CLAIM_LEASE))
        .filter(Q(last_attempt_at__isnull=True) | Q(last_attempt_at__lt=now - WEBHOOK_SWEEP_IDLE))
        .order_by("created_at")
    )
    return list(rows.values_list("id", flat=True)[:limit])
