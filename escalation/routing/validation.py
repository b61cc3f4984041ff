"""One set of checks for routing settings, shared by the Settings screen, the admin and the API:
each returns ``{field: [messages]}`` (empty when fine)."""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from crm.models import AgentProfile, Team

from . import hours
from .models import CHANNEL_CODES, REASON_CODES, TOPIC_CODES, clean_sla_targets

MAX_ACCEPT_TIMEOUT = 3600
# A form's team choice that is no longer in the list: deleted while the page was open.
DELETED_TEAM_CHOICE = _lazy("That team no longer exists (deleted?): choose another.")


def _collect(errors: dict, field: str, check):
    try:
        return check()
    except ValidationError as exc:
        errors.setdefault(field, []).extend(exc.messages)
        return None


def team_routing_errors(routing) -> dict:
    """Checks a TeamRouting (normalising its JSON fields in place)."""
    errors: dict = {}
    _collect(errors, "time_zone", lambda: hours.parse_zone(routing.time_zone))
    weekly = _collect(
        errors, "weekly_hours", lambda: hours.clean_weekly_hours(routing.weekly_hours)
    )
    if weekly is not None:
        routing.weekly_hours = weekly
    holidays = _collect(errors, "holidays", lambda: hours.clean_holidays(routing.holidays))
    if holidays is not None:
        routing.holidays = holidays
    targets = _collect(
        errors, "sla_targets", lambda: clean_sla_targets(routing.sla_targets, partial=True)
    )
    if targets is not None:
        routing.sla_targets = targets
    if not 5 <= (routing.accept_timeout_seconds or 0) <= MAX_ACCEPT_TIMEOUT:
        errors.setdefault("accept_timeout_seconds", []).append(
            _("The accept timeout must be between 5 and %(max)d seconds.")
            % {"max": MAX_ACCEPT_TIMEOUT}
        )
    if not 1 <= (routing.max_missed_offers or 0) <= 100:
        errors.setdefault("max_missed_offers", []).append(
            _("Missed offers before away must be between 1 and 100.")
        )
    if routing.is_automatic and routing.team_id:
        members = AgentProfile.objects.filter(teams__id=routing.team_id, user__is_active=True)
        if members.exists() and not members.filter(capacity__gt=0).exists():
            errors.setdefault("mode", []).append(
                _(
                    "Automatic assignment needs an agent with capacity above 0: every agent of "
                    "this team has capacity 0."
                )
            )
    return errors


def agent_capacity_errors(*, capacity: int, team_ids) -> dict:
    """An agent in an automatic team with capacity 0 would never get work: refused."""
    if capacity > 0:
        return {}
    automatic = list(
        Team.objects.filter(pk__in=list(team_ids), routing__mode="automatic").values_list(
            "name", flat=True
        )
    )
    if not automatic:
        return {}
    return {
        "capacity": [
            _(
                "Capacity 0 with automatic assignment: %(teams)s would never give this agent "
                "work. Give a capacity of at least 1, or set the agent away."
            )
            % {"teams": ", ".join(automatic)}
        ]
    }


def _codes(errors, field, values, allowed, label):
    if values in (None, ""):
        return []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        errors.setdefault(field, []).append(
            _("%(label)s must be a list of codes.") % {"label": label}
        )
        return values
    unknown = [v for v in values if v not in allowed]
    if unknown:
        errors.setdefault(field, []).append(
            _("Unknown %(label)s: %(codes)s (one of %(allowed)s).")
            % {"label": label, "codes": ", ".join(unknown), "allowed": ", ".join(allowed)}
        )
    return sorted(set(values), key=values.index)


def rule_errors(rule) -> dict:
    """Checks a RoutingRule: known codes, a team that exists, a name."""
    errors: dict = {}
    if not (rule.name or "").strip():
        errors.setdefault("name", []).append(_("Give the rule a name."))
    rule.reasons = _codes(errors, "reasons", rule.reasons, REASON_CODES, _("reasons"))
    rule.topics = _codes(errors, "topics", rule.topics, TOPIC_CODES, _("topics"))
    rule.channel_kinds = _codes(
        errors, "channel_kinds", rule.channel_kinds, CHANNEL_CODES, _("channels")
    )
    languages = rule.languages
    if languages not in (None, ""):
        if not isinstance(languages, list) or not all(
            isinstance(v, str) and v.strip().isalpha() and 2 <= len(v.strip()) <= 3
            for v in languages
        ):
            errors.setdefault("languages", []).append(
                _("Languages must be two- or three-letter codes, e.g. de, es.")
            )
        else:
            rule.languages = sorted({v.strip().lower() for v in languages})
    if rule.team_id is None or not Team.objects.filter(pk=rule.team_id).exists():
        errors.setdefault("team", []).append(
            _("This rule names a team that does not exist (deleted?): choose a team.")
        )
    return errors
