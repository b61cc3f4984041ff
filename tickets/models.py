"""Support tickets: one per escalation, with their own status and history."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from crm.codes import Priority, Reason


class Ticket(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        PENDING = "pending", _("Pending")
        RESOLVED = "resolved", _("Resolved")
        CLOSED = "closed", _("Closed")

    # One ticket per escalation, enforced by the one-to-one's unique index.
    escalation = models.OneToOneField(
        "escalation.Escalation", on_delete=models.PROTECT, related_name="ticket"
    )
    conversation = models.ForeignKey(
        "crm.Conversation", on_delete=models.PROTECT, related_name="tickets"
    )
    contact = models.ForeignKey("crm.Contact", on_delete=models.PROTECT, related_name="tickets")
    subject = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tickets",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.reference} {self.subject}"

    @property
    def reference(self) -> str:
        return f"T-{self.pk:06d}" if self.pk else "T-new"


class TicketEvent(models.Model):
    class Kind(models.TextChoices):
        OPENED = "opened", _("Opened")
        STATUS = "status", _("Status changed")
        ASSIGNED = "assigned", _("Assigned")
        PRIORITY = "priority", _("Priority changed")
        NOTE = "note", _("Note")

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
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
