"""Escalations: what the detector saw, the handoff's lifecycle, and its audit trail."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.codes import Priority, Reason


class MessageAnalysis(models.Model):
    """The detector's reading of one customer message, in the context of the conversation."""

    message = models.OneToOneField("crm.Message", on_delete=models.CASCADE, related_name="analysis")
    backend = models.CharField(max_length=20)
    signals = models.JSONField(default=dict)
    should_escalate = models.BooleanField(default=False)
    would_escalate = models.BooleanField(
        default=False, help_text=_("What the decision would be with handoff enabled.")
    )
    reason = models.CharField(max_length=20, choices=Reason.choices, blank=True)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, null=True, blank=True)
    detail = models.CharField(max_length=300, blank=True)
    summary = models.TextField(blank=True)
    duration_ms = models.FloatField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "message analyses"

    def __str__(self) -> str:
        return f"Analysis of message #{self.message_id}"


class Escalation(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        CLAIMED = "claimed", _("Claimed")
        RESOLVED = "resolved", _("Resolved")
        CLOSED = "closed", _("Closed")
        CANCELLED = "cancelled", _("Cancelled")

    class Trigger(models.TextChoices):
        DETECTION = "detection", _("Detection")
        ASSISTANT = "assistant", _("Assistant tool")
        AGENT = "agent", _("Agent")
        API = "api", _("API")

    ACTIVE_STATUSES = (Status.QUEUED, Status.CLAIMED)

    conversation = models.ForeignKey(
        "crm.Conversation", on_delete=models.CASCADE, related_name="escalations"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    detail = models.CharField(max_length=300, blank=True)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    # The card's plain-text rendering (kept for API clients and the webhooks that read it).
    summary = models.TextField(blank=True)
    # The handoff card (escalation.detection.summary.HandoffCard.as_dict): problem, what the AI
    # tried, facts, mood path, what not to ask again, why. Empty for escalations before cards.
    card = models.JSONField(default=dict, blank=True)
    signals = models.JSONField(default=dict, blank=True)
    team = models.ForeignKey(
        "crm.Team", on_delete=models.SET_NULL, null=True, blank=True, related_name="escalations"
    )
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="claimed_escalations",
    )
    triggered_by = models.CharField(max_length=10, choices=Trigger.choices)
    triggered_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="triggered_escalations",
    )
    escalated_at = models.DateTimeField(db_index=True)
    # The first pickup: a hop back to the queue keeps it, so wait metrics stay honest.
    claimed_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=300, blank=True)
    last_reminded_at = models.DateTimeField(null=True, blank=True)
    # Routing (escalation/routing): why this team, the agent offered it, the SLA clock.
    routing_rule = models.ForeignKey(
        "escalation.RoutingRule",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="escalations",
    )
    language = models.CharField(max_length=8, blank=True, help_text=_("The customer's language."))
    offered_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="offered_escalations",
    )
    offer_expires_at = models.DateTimeField(null=True, blank=True)
    sla_due_at = models.DateTimeField(null=True, blank=True)
    sla_breached_at = models.DateTimeField(null=True, blank=True)
    priority_changed_at = models.DateTimeField(null=True, blank=True)
    # Sentiment intensity when it last raised priority (or at escalation): the bar to beat.
    wait_sentiment = models.FloatField(null=True, blank=True)
    after_hours_until = models.DateTimeField(
        null=True, blank=True, help_text=_("Escalated while the team was closed: when it opens.")
    )
    follow_up_email = models.EmailField(blank=True)
    first_reply_at = models.DateTimeField(null=True, blank=True)
    # The closing message and the rating prompt went out (once: resolve or close, whichever
    # came first); a rating is accepted only after it.
    rating_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conversation"],
                condition=Q(status__in=["queued", "claimed"]),
                name="one_active_escalation_per_conversation",
            )
        ]
        indexes = [
            # The queue: most urgent first, then longest waiting.
            models.Index(
                F("priority").desc(),
                F("escalated_at"),
                name="escalation_queue_order",
                condition=Q(status="queued"),
            ),
            models.Index(fields=["status", "escalated_at"], name="escalation_status_time"),
            # The last pickups (the wait estimate reads the newest 50): without it, a scan of
            # every escalation ever made, inside each handoff's transaction.
            models.Index(
                F("claimed_at").desc(),
                name="escalation_recent_pickups",
                condition=Q(claimed_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"Escalation #{self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def handoff_card(self):
        """The stored card as a ``HandoffCard``, or None (an escalation from before cards)."""
        from .detection.summary import HandoffCard

        return HandoffCard.from_dict(self.card)

    @property
    def short_summary(self) -> str:
        """One line for alerts: the card's short text, else the start of the summary."""
        card = self.handoff_card
        if card is not None:
            return card.short_text()
        text = " ".join((self.summary or "").split())
        return text if len(text) <= 180 else text[:179] + "…"

    @property
    def priority_code(self) -> str:
        return Priority(self.priority).code

    @property
    def is_after_hours(self) -> bool:
        """Escalated while its team was closed, and the team has not opened yet."""
        return bool(self.after_hours_until and self.after_hours_until > timezone.now())

    @property
    def sla_breached(self) -> bool:
        """Marked by the sweep while queued, or picked up after the due time."""
        if self.sla_breached_at is not None:
            return True
        return bool(self.sla_due_at and self.claimed_at and self.claimed_at > self.sla_due_at)


class EscalationEvent(models.Model):
    """Audit trail: every transition of an escalation, who made it, old → new."""

    class Kind(models.TextChoices):
        ESCALATED = "escalated", _("Escalated")
        RETRIGGERED = "retriggered", _("Triggered again")
        REPRIORITISED = "reprioritised", _("Priority changed")
        CLAIMED = "claimed", _("Taken over")
        REASSIGNED = "reassigned", _("Reassigned")
        RELEASED = "released", _("Back to the queue")
        RESOLVED = "resolved", _("Resolved")
        CLOSED = "closed", _("Closed")
        CANCELLED = "cancelled", _("Cancelled")
        REMINDED = "reminded", _("Reminder sent")
        HANDED_BACK = "handed_back", _("Handed back to the AI")
        ROUTED = "routed", _("Routed to a team")
        OFFERED = "offered", _("Offered to an agent")
        OFFER_DECLINED = "offer_declined", _("Offer declined")
        OFFER_EXPIRED = "offer_expired", _("Offer expired")
        ASSIGNED = "assigned", _("Assigned automatically")
        AGED = "aged", _("Priority raised")
        SLA_BREACHED = "sla_breached", _("SLA breached")
        FOLLOW_UP = "follow_up", _("Follow-up email left")
        VERDICT = "verdict", _("Handover judged")
        RATED = "rated", _("Rated by the customer")

    escalation = models.ForeignKey(Escalation, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    old_value = models.CharField(max_length=200, blank=True)
    new_value = models.CharField(max_length=200, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.old_value} → {self.new_value}"


class HandoffVerdict(models.Model):
    """An agent's answer, once per escalation, to "Was handing this over needed?" — the
    ground truth for detection's precision by reason and, optionally, its training."""

    escalation = models.OneToOneField(Escalation, on_delete=models.CASCADE, related_name="verdict")
    needed = models.BooleanField()
    reason = models.CharField(
        max_length=20, choices=Reason.choices, help_text=_("The escalation's reason when judged.")
    )
    given_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    given_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Escalation #{self.escalation_id}: {'needed' if self.needed else 'not needed'}"


class SatisfactionRating(models.Model):
    """The customer's rating of one escalation (1–5, an optional comment): once per escalation,
    by the one-to-one; the score's range is a check constraint."""

    escalation = models.OneToOneField(Escalation, on_delete=models.CASCADE, related_name="rating")
    score = models.PositiveSmallIntegerField()
    comment = models.TextField(blank=True)
    # The WhatsApp/Instagram reply that carried the digit: kept away from the AI and detection.
    message = models.OneToOneField(
        "crm.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="rating"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(score__gte=1, score__lte=5), name="rating_score_1_to_5"
            )
        ]

    def __str__(self) -> str:
        return f"Escalation #{self.escalation_id}: {self.score}/5"


class ReplayJob(models.Model):
    """A replay of stored conversations through an assistant's current detection settings:
    what detection would have done. Progress is counted in conversations."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    assistant = models.ForeignKey(
        "crm.Assistant", on_delete=models.CASCADE, related_name="replay_jobs"
    )
    since = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    result = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=500, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["assistant"],
                condition=Q(status__in=["queued", "running"]),
                name="one_unfinished_replay_per_assistant",
            )
        ]

    def __str__(self) -> str:
        return f"Replay #{self.pk} ({self.status})"

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        return int(100 * self.done / self.total) if self.total else 0

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)


# Routing's models live in their own module and register under this app.
from .routing.models import (  # noqa: E402, F401
    AgentRoutingState,
    RoutingRule,
    RoutingSettings,
    TeamRouting,
)
