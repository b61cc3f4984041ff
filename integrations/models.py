"""Third-party access: API tokens (stored hashed, with scopes) and outbound webhooks."""

import hashlib
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

TOKEN_PREFIX = "le_"


class Scope(models.TextChoices):
    READ = "read", _("Read: conversations, escalations, tickets, metrics")
    WRITE = "write", _("Write: post messages, take over, resolve, update tickets")
    MANAGE = "manage", _("Manage: outbound webhook subscriptions")


def hash_token(raw: str) -> str:
    """Tokens are 256-bit random strings, so one SHA-256 is enough (no slow hash needed)."""
    return hashlib.sha256(raw.encode()).hexdigest()


def new_raw_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class ApiToken(models.Model):
    """A credential for ``Authorization: Token <token>``. Only its hash is stored; the token
    acts as its owner (an agent's token takes over as that agent)."""

    name = models.CharField(max_length=100, help_text=_("What this token is for."))
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    key_prefix = models.CharField(
        max_length=16, editable=False, help_text=_("The first characters, to recognise it.")
    )
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])


class WebhookEvent(models.TextChoices):
    ESCALATION_CREATED = "escalation.created", _("Escalation created")
    ESCALATION_CLAIMED = "escalation.claimed", _("Escalation taken over")
    ESCALATION_RESOLVED = "escalation.resolved", _("Escalation resolved")
    ESCALATION_OFFERED = "escalation.offered", _("Escalation offered to an agent")
    ESCALATION_ASSIGNED = "escalation.assigned", _("Escalation assigned to an agent")
    ESCALATION_OFFER_EXPIRED = "escalation.offer_expired", _("Offer not accepted in time")
    ESCALATION_SLA_BREACHED = "escalation.sla_breached", _("Escalation SLA breached")
    TICKET_CREATED = "ticket.created", _("Ticket created")
    MESSAGE_CREATED = "message.created", _("Message created")


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(24)


class WebhookSubscription(models.Model):
    """An outside URL that receives signed JSON for the events it subscribed to."""

    url = models.URLField(max_length=500)
    secret = models.CharField(
        max_length=200,
        default=new_webhook_secret,
        help_text=_("Signs every delivery (HMAC-SHA256); the receiver checks it."),
    )
    events = models.JSONField(default=list)
    description = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url

    def wants(self, event: str) -> bool:
        return self.is_active and event in (self.events or [])


class WebhookDelivery(models.Model):
    """One event for one subscription: created in the transaction that caused the event
    (an outbox row), sent by Celery after commit, retried with back-off."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Delivered")
        FAILED = "failed", _("Failed")

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=40, choices=WebhookEvent.choices)
    event_id = models.UUIDField(default=uuid.uuid4, editable=False)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # Who is sending it right now: a conditional UPDATE sets both before the HTTP call, so a
    # second copy of the task (Celery redelivery) cannot send too; the claim lapses after
    # services.DELIVERY_CLAIM_LEASE if the worker died mid-send.
    claim = models.CharField(max_length=32, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["status", "created_at"], name="webhook_delivery_status")]

    def __str__(self) -> str:
        return f"{self.event} → {self.subscription_id} ({self.status})"
