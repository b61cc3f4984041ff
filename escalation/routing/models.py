"""Routing data: the global routing settings, each team's routing, ordered routing rules, and
each agent's routing state. Registered under the ``escalation`` app (imported by its models)."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from crm.codes import Priority, Reason
from crm.models import COMPLEXITY_TOPICS, ChannelKind

from . import hours

# Default time-to-takeover targets, in seconds of open time, per priority code.
DEFAULT_SLA_TARGETS = {"urgent": 120, "high": 300, "normal": 900, "low": 3600}
# Default ageing: seconds a queued escalation waits at a priority before it rises one level.
DEFAULT_AGEING = {"low": 1800, "normal": 900, "high": 600}
# Topics a rule can name: the detector's complexity topics plus the customer's stated subject.
ROUTING_TOPICS = [*COMPLEXITY_TOPICS, ("orders", _("Orders and delivery"))]


def default_sla_targets() -> dict:
    return dict(DEFAULT_SLA_TARGETS)


def default_ageing() -> dict:
    return dict(DEFAULT_AGEING)


def clean_sla_targets(value, *, partial: bool) -> dict:
    """``{"urgent": 120, ...}`` seconds per priority code; a team may give only some codes."""
    if value in (None, ""):
        value = {}
    if not isinstance(value, dict):
        raise ValidationError(_("SLA targets must map priority codes to seconds."))
    cleaned = {}
    for code, seconds in value.items():
        if code not in Priority.codes():
            raise ValidationError(
                _("SLA targets: unknown priority %(code)r (one of %(codes)s).")
                % {"code": code, "codes": ", ".join(Priority.codes())}
            )
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int)
            or not 10 <= seconds <= 7 * 86400
        ):
            raise ValidationError(
                _("SLA target for %(code)s: whole seconds between 10 and 604800.") % {"code": code}
            )
        cleaned[code] = seconds
    if not partial and set(cleaned) != set(Priority.codes()):
        raise ValidationError(
            _("Give an SLA target for every priority: urgent, high, normal, low.")
        )
    return cleaned


def clean_ageing(value) -> dict:
    """``{"low": 1800, "normal": 900, "high": 600}``: seconds before rising one level; a level
    left out never ages. Urgent is the top and cannot rise."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise ValidationError(_("The ageing schedule must map priority codes to seconds."))
    cleaned = {}
    for code, seconds in value.items():
        if code not in ("low", "normal", "high"):
            raise ValidationError(
                _("Ageing: %(code)r cannot rise (give low, normal or high).") % {"code": code}
            )
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int)
            or not 30 <= seconds <= 7 * 86400
        ):
            raise ValidationError(
                _("Ageing for %(code)s: whole seconds between 30 and 604800.") % {"code": code}
            )
        cleaned[code] = seconds
    return cleaned


class RoutingSettings(models.Model):
    """The one row (pk=1) of routing settings for the whole CRM."""

    default_team = models.ForeignKey(
        "crm.Team",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Where an escalation goes when no rule matches and its channel has no team."),
    )
    sla_targets = models.JSONField(
        default=default_sla_targets,
        help_text=_(
            "Default time-to-takeover targets in seconds per priority (teams may override)."
        ),
    )
    ageing_seconds = models.JSONField(
        default=default_ageing,
        blank=True,
        help_text=_("Seconds a queued escalation waits at low/normal/high before rising a level."),
    )
    sentiment_raise_step = models.FloatField(
        default=0.2,
        help_text=_(
            "A waiting customer's anger rising by this much (0–1) raises priority at once."
        ),
    )

    class Meta:
        verbose_name = "routing settings"
        verbose_name_plural = "routing settings"

    def __str__(self) -> str:
        return "Routing settings"

    def clean(self):
        errors = {}
        try:
            self.sla_targets = clean_sla_targets(self.sla_targets, partial=False)
        except ValidationError as exc:
            errors["sla_targets"] = exc.messages
        try:
            self.ageing_seconds = clean_ageing(self.ageing_seconds)
        except ValidationError as exc:
            errors["ageing_seconds"] = exc.messages
        if not 0.05 <= (self.sentiment_raise_step or 0) <= 1:
            errors["sentiment_raise_step"] = [_("Between 0.05 and 1.")]
        if errors:
            raise ValidationError(errors)

    @classmethod
    def load(cls) -> "RoutingSettings":
        obj, _created = cls.objects.get_or_create(pk=1)
        return obj


class TeamRouting(models.Model):
    """How one team receives work: pulled from the queue (manual) or pushed (automatic)."""

    class Mode(models.TextChoices):
        MANUAL = "manual", _("Manual (agents pull from the queue)")
        AUTOMATIC = "automatic", _("Automatic (pushed to agents)")

    class Strategy(models.TextChoices):
        ROUND_ROBIN = "round_robin", _("Round robin")
        LEAST_BUSY = "least_busy", _("Least busy")

    team = models.OneToOneField(
        "crm.Team", on_delete=models.CASCADE, primary_key=True, related_name="routing"
    )
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.MANUAL)
    strategy = models.CharField(
        max_length=12, choices=Strategy.choices, default=Strategy.ROUND_ROBIN
    )
    offer_first = models.BooleanField(
        default=True,
        help_text=_("Offer to the agent, who accepts; off: assign directly."),
    )
    accept_timeout_seconds = models.PositiveIntegerField(
        default=30, help_text=_("An offer not accepted in this time moves to the next agent.")
    )
    max_missed_offers = models.PositiveSmallIntegerField(
        default=3, help_text=_("Offers missed in a row before the agent is set away.")
    )
    time_zone = models.CharField(max_length=64, default="UTC")
    weekly_hours = models.JSONField(
        default=list,
        blank=True,
        help_text=_(
            '[{"day": "mon", "opens": "09:00", "closes": "17:00"}, ...]; empty: always open.'
        ),
    )
    holidays = models.JSONField(
        default=list, blank=True, help_text=_('Closed days, e.g. ["2026-12-25"].')
    )
    sla_targets = models.JSONField(
        default=dict,
        blank=True,
        help_text=_('Overrides of the default SLA targets in seconds, e.g. {"urgent": 60}.'),
    )

    class Meta:
        verbose_name = "team routing"
        verbose_name_plural = "team routing"

    def __str__(self) -> str:
        return f"Routing of {self.team}"

    @property
    def is_automatic(self) -> bool:
        return self.mode == self.Mode.AUTOMATIC

    def business_hours(self) -> hours.Hours:
        return hours.build_hours(
            time_zone=self.time_zone, weekly_hours=self.weekly_hours, holidays=self.holidays
        )

    def clean(self):
        from .validation import team_routing_errors

        errors = team_routing_errors(self)
        if errors:
            raise ValidationError(errors)


class RoutingRule(models.Model):
    """When an escalation matches every condition given (an empty list matches anything), it
    goes to ``team``. Rules are tried by ``position``; the first match wins."""

    name = models.CharField(max_length=100)
    position = models.PositiveIntegerField(default=0, db_index=True)
    is_active = models.BooleanField(default=True)
    reasons = models.JSONField(default=list, blank=True, help_text=_("Reason codes, e.g. request."))
    topics = models.JSONField(
        default=list, blank=True, help_text=_("Topics, e.g. billing_dispute, orders.")
    )
    channel_kinds = models.JSONField(
        default=list, blank=True, help_text=_("Channel kinds, e.g. website, whatsapp.")
    )
    languages = models.JSONField(
        default=list, blank=True, help_text=_("Customer languages, e.g. de, es.")
    )
    # PROTECT: a team named by a rule cannot be deleted from under it (the admin says which).
    team = models.ForeignKey("crm.Team", on_delete=models.PROTECT, related_name="routing_rules")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        from .validation import rule_errors

        errors = rule_errors(self)
        if errors:
            raise ValidationError(errors)


class AgentRoutingState(models.Model):
    """What routing remembers about an agent: when they last got work (round robin) and how
    many offers they have missed in a row."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="routing_state",
    )
    last_routed_at = models.DateTimeField(null=True, blank=True)
    missed_offers = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = "agent routing state"

    def __str__(self) -> str:
        return f"Routing state of {self.user}"


REASON_CODES = Reason.values
CHANNEL_CODES = ChannelKind.values
TOPIC_CODES = [code for code, _label in ROUTING_TOPICS]
ACTIVE_RULES = Q(is_active=True)
