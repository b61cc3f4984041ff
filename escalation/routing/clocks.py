"""The clocks of a queued escalation, read inside the escalation services' transactions:
business hours (open now? back when?), the SLA due time, and the after-hours notice.

Nothing here imports the escalation services, so they can call it freely.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone, translation
from django.utils.translation import gettext as _

from crm import customer_texts
from crm.codes import Priority

from . import hours
from .models import DEFAULT_SLA_TARGETS, RoutingSettings, TeamRouting

ALWAYS_OPEN = hours.Hours()


def team_routing(team_id: int | None) -> TeamRouting | None:
    if not team_id:
        return None
    return TeamRouting.objects.filter(team_id=team_id).first()


def team_hours(team_id: int | None) -> hours.Hours:
    routing = team_routing(team_id)
    return routing.business_hours() if routing is not None else ALWAYS_OPEN


class TeamClock:
    """One team's hours and takeover targets, its routing row read once: for a transaction
    that asks several times (the handoff asks whether the team is open, when the SLA falls
    due and how long the wait is). ``load_settings`` reads the routing settings, called only
    when the team sets no target for a priority (the handoff passes one that reads once)."""

    def __init__(self, team_id: int | None, *, load_settings=RoutingSettings.load):
        self.team_id = team_id
        self.routing = team_routing(team_id)
        self.hours = self.routing.business_hours() if self.routing is not None else ALWAYS_OPEN
        self._load_settings = load_settings

    def sla_due_at(self, escalation) -> datetime | None:
        """When the takeover target for its priority falls due, counting the team's open hours
        only (None: the team never opens)."""
        code = Priority(escalation.priority).code
        if self.routing is not None and code in (self.routing.sla_targets or {}):
            target = int(self.routing.sla_targets[code])
        else:
            defaults = self._load_settings().sla_targets
            target = int(defaults.get(code) or DEFAULT_SLA_TARGETS[code])
        return self.hours.add_open_seconds(escalation.escalated_at, target)

    def reopens_at(self, at: datetime | None = None) -> datetime | None:
        """None when the team is open at ``at``; else when it opens next (far future: never)."""
        at = at or timezone.now()
        if self.hours.is_open(at):
            return None
        return self.hours.next_opening(at) or at + timedelta(days=hours.HORIZON_DAYS)

    def wait_in_open_time(self, seconds: float, *, now: datetime | None = None) -> float:
        """``seconds`` of work from now, stretched over the closed hours in between."""
        return self.wait_over_closed_hours(seconds, now=now)[0]

    def wait_over_closed_hours(
        self, seconds: float, *, now: datetime | None = None
    ) -> tuple[float, datetime | None]:
        """``wait_over_closed_hours`` with this team's hours: the stretched wait and the
        reopening the customer waits for (None when the team stays open until then)."""
        return wait_over_closed_hours(self.hours, seconds, now=now)


def sla_due_at(escalation) -> datetime | None:
    """When the takeover target for its priority falls due, counting the team's open hours
    only (None: the team never opens)."""
    return TeamClock(escalation.team_id).sla_due_at(escalation)


def reopens_at(team_id: int | None, at: datetime | None = None) -> datetime | None:
    """None when the team is open at ``at``; else when it opens next (far future: never)."""
    return TeamClock(team_id).reopens_at(at)


def wait_over_closed_hours(
    business: hours.Hours, seconds: float, *, now: datetime | None = None
) -> tuple[float, datetime | None]:
    """``seconds`` of work from now, stretched over the closed hours in between (hours already
    read: a caller estimating many teams' waits), and the reopening the customer waits for:
    when closed hours fall within the wait, the opening (in the team's zone) of the open
    stretch it ends in; None when the team stays open until then (or never opens again)."""
    now = now or timezone.now()
    if business.always_open:
        return seconds, None
    end = business.add_open_seconds(now, seconds)
    if end is None:
        return float(hours.HORIZON_DAYS * 86400), None
    opening = business.reopening_between(now, end)
    return (end - now).total_seconds(), opening.astimezone(business.zone) if opening else None


def describe_reopening(team, when: datetime) -> str:
    """ "Monday 09:00 (Europe/Berlin)" in the team's zone."""
    business = team_hours(team.pk if team else None)
    return customer_texts.describe_instant(when.astimezone(business.zone))


def handoff_before_closing_notice(reopens_at: datetime, language: str) -> str:
    """The handoff text when the team is open now but closes before the customer's turn:
    the reopening (already in the team's zone), its day named in the customer's language."""
    code = customer_texts.supported(language)
    with translation.override(code):
        reopens = customer_texts.describe_instant(reopens_at)
    return customer_texts.render("handoff_reopens", code, reopens=reopens)


def after_hours_notice(team, when: datetime, language: str) -> str:
    """The after-hours handoff text in the customer's language; the reopening time in the
    team's zone, its day named in that language."""
    code = customer_texts.supported(language)
    with translation.override(code):
        reopens = describe_reopening(team, when)
        team_name = team.name if team else _("support")
    return customer_texts.render("after_hours", code, team=team_name, reopens=reopens)
