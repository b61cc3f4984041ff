"""In-app notifications, and the record of which ones were emailed."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Notification(models.Model):
    class Kind(models.TextChoices):
        ESCALATION = "escalation", _("New escalation")
        REMINDER = "reminder", _("Still waiting")
        ASSIGNED = "assigned", _("Assigned to you")
        CLAIMED = "claimed", _("Taken over")
        OFFERED = "offered", _("Offered to you")
        SLA_BREACHED = "sla_breached", _("SLA breached")
        SET_AWAY = "set_away", _("Set away")

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    escalation = models.ForeignKey(
        "escalation.Escalation",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
    )
    text = models.CharField(max_length=500)
    link = models.CharField(max_length=300, blank=True)
    # Identifies one alert across retries (e.g. "escalation:12", "reminder:12:3"), so a retried
    # or duplicated task cannot notify or email the same person twice.
    dedupe_key = models.CharField(max_length=100)
    show_in_app = models.BooleanField(default=True)
    email_requested = models.BooleanField(default=False)
    # Sent to someone who was not available, because nobody on the team was.
    is_fallback = models.BooleanField(default=False)
    emailed_at = models.DateTimeField(null=True, blank=True)
    # The sending claim: one attempt at a time holds it (a random token) while it talks to
    # SMTP; it lapses after services.EMAIL_CLAIM_LEASE so a crashed worker cannot block it.
    email_claim = models.CharField(max_length=64, blank=True)
    email_claimed_at = models.DateTimeField(null=True, blank=True)
    email_attempts = models.PositiveSmallIntegerField(default=0)
    email_last_attempt_at = models.DateTimeField(null=True, blank=True)
    email_error = models.CharField(max_length=500, blank=True)
    # Why a requested email was deliberately not sent (e.g. its escalation was picked up before
    # a retried send went out); set once, and the email is never tried again.
    email_skipped_reason = models.CharField(max_length=200, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    # What became of what the alert is about ("Taken by Marina"), set for every recipient when
    # it moves on; such an alert no longer counts as unread (see services.settle_alerts).
    outcome = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "dedupe_key"], name="one_notification_per_recipient_and_key"
            )
        ]
        indexes = [
            models.Index(fields=["recipient", "read_at"], name="notification_unread"),
            # The sweep of emails that were requested but never went out.
            models.Index(
                fields=["created_at"],
                name="notification_email_pending",
                condition=models.Q(email_requested=True, emailed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return self.text
