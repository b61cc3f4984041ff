"""Routing reads: agents' loads and who may get work, the next escalation for an agent, what
the periodic sweeps must look at, and SLA attainment for Analytics."""

from __future__ import annotations

from datetime import datetime

from django.db.models import (
    Count,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from crm.models import AgentProfile

from ..models import Escalation, EscalationEvent
from .models import AgentRoutingState, TeamRouting

Status = Escalation.Status
MISSED_KINDS = (EscalationEvent.Kind.OFFER_EXPIRED, EscalationEvent.Kind.OFFER_DECLINED)


def load_filter(user_id) -> Q:
    """What occupies an agent: escalations they hold, and offers waiting for their answer."""
    return Q(status=Status.CLAIMED, claimed_by=user_id) | Q(
        status=Status.QUEUED, offered_to=user_id
    )


def agent_load(user_id: int) -> int:
    return Escalation.objects.filter(load_filter(user_id)).count()


def _load_subquery():
    # COUNT as a plain function, not an aggregate: no GROUP BY, one row per outer agent.
    return Coalesce(
        Subquery(
            Escalation.objects.filter(load_filter(OuterRef("user_id")))
            .order_by()
            .annotate(n=Func(F("id"), function="COUNT"))
            .values("n")[:1],
            output_field=IntegerField(),
        ),
        Value(0),
    )


def agent_loads(user_ids) -> dict[int, int]:
    """Current load per agent (one query)."""
    loads = dict.fromkeys(user_ids, 0)
    claimed = (
        Escalation.objects.filter(status=Status.CLAIMED, claimed_by__in=list(loads))
        .values_list("claimed_by")
        .annotate(n=Count("id"))
        .order_by()
    )
    offered = (
        Escalation.objects.filter(status=Status.QUEUED, offered_to__in=list(loads))
        .values_list("offered_to")
        .annotate(n=Count("id"))
        .order_by()
    )
    for user_id, n in [*claimed, *offered]:
        loads[user_id] = loads.get(user_id, 0) + n
    return loads


def candidate_agents(*, escalation: Escalation, strategy: str) -> list[AgentProfile]:
    """Online, active agents of the escalation's team with a free slot, best first: agents who
    already missed or declined this escalation go last; then least busy (strategy
    least_busy) or whoever got work longest ago (round robin). One query; the caller
    re-checks the load under the agent's row lock."""
    missed = EscalationEvent.objects.filter(
        escalation_id=escalation.pk, kind__in=MISSED_KINDS, actor_id=OuterRef("user_id")
    )
    last_routed = AgentRoutingState.objects.filter(user_id=OuterRef("user_id")).values(
        "last_routed_at"
    )[:1]
    rows = (
        AgentProfile.objects.filter(
            teams__id=escalation.team_id,
            availability=AgentProfile.Availability.ONLINE,
            user__is_active=True,
            capacity__gt=0,
        )
        .annotate(
            load=_load_subquery(),
            missed_this=Exists(missed),
            last_routed_at=Subquery(last_routed),
        )
        .filter(load__lt=F("capacity"))
        .select_related("user")
    )
    recency = F("last_routed_at").asc(nulls_first=True)
    if strategy == TeamRouting.Strategy.LEAST_BUSY:
        order = ["missed_this", "load", recency, "user_id"]
    else:
        order = ["missed_this", recency, "load", "user_id"]
    return list(rows.order_by(*order))


def next_escalations_for(profile: AgentProfile, *, limit: int = 20) -> list[tuple[int, int]]:
    """Queued escalations of the agent's automatic teams, not offered to anyone, highest
    priority then longest waiting; those the agent already missed last."""
    missed = EscalationEvent.objects.filter(
        escalation_id=OuterRef("pk"), kind__in=MISSED_KINDS, actor_id=profile.user_id
    )
    return list(
        Escalation.objects.filter(
            status=Status.QUEUED,
            offered_to__isnull=True,
            team__in=profile.teams.filter(routing__mode=TeamRouting.Mode.AUTOMATIC),
        )
        .annotate(missed_this=Exists(missed))
        .order_by("missed_this", "-priority", "escalated_at", "id")
        .values_list("id", "team_id")[:limit]
    )


def unrouted_escalation_ids(*, limit: int = 200) -> list[int]:
    """Queued, unoffered escalations of automatic teams (the sweep tries them again)."""
    return list(
        Escalation.objects.filter(
            status=Status.QUEUED,
            offered_to__isnull=True,
            team__routing__mode=TeamRouting.Mode.AUTOMATIC,
        )
        .order_by("-priority", "escalated_at", "id")
        .values_list("id", flat=True)[:limit]
    )


def expired_offer_ids(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    now = now or timezone.now()
    return list(
        Escalation.objects.filter(
            status=Status.QUEUED, offered_to__isnull=False, offer_expires_at__lte=now
        ).values_list("id", flat=True)[:limit]
    )


def sla_breach_ids(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    now = now or timezone.now()
    return list(
        Escalation.objects.filter(
            status=Status.QUEUED, sla_breached_at__isnull=True, sla_due_at__lte=now
        ).values_list("id", flat=True)[:limit]
    )


def ageing_candidate_ids(*, now: datetime, shortest_seconds: int, limit: int = 500) -> list[int]:
    """Queued escalations below urgent whose priority has not changed for the shortest ageing
    interval (each is re-checked against its own level under its lock)."""
    from datetime import timedelta

    since = now - timedelta(seconds=shortest_seconds)
    return list(
        Escalation.objects.filter(status=Status.QUEUED, priority__lt=4)
        .filter(
            Q(priority_changed_at__lte=since)
            | Q(priority_changed_at__isnull=True, escalated_at__lte=since)
        )
        .values_list("id", flat=True)[:limit]
    )


# --- Analytics ------------------------------------------------------------------------------


def _attainment(rows) -> list[dict]:
    result = []
    for row in rows:
        total = row["total"]
        met = row["met"]
        result.append({**row, "rate": round(met / total, 4) if total else None})
    return result


def sla_attainment(escalations) -> dict:
    """SLA attainment (picked up by the due time) over the given escalations, overall and by
    team, priority and reason; and the first agent reply after takeover. Counts only
    escalations with an SLA clock that were picked up or breached. Five queries."""
    from ..selectors import duration_summary

    measured = escalations.filter(sla_due_at__isnull=False).filter(
        Q(claimed_at__isnull=False) | Q(sla_breached_at__isnull=False)
    )
    met = Q(claimed_at__isnull=False, claimed_at__lte=F("sla_due_at"))
    aggregates = {"total": Count("id"), "met": Count("id", filter=met)}
    overall = measured.aggregate(**aggregates)

    def by(field):
        return _attainment(measured.values(field).annotate(**aggregates).order_by(field))

    replies = escalations.filter(claimed_at__isnull=False, first_reply_at__isnull=False)
    return {
        "overall": _attainment([overall])[0],
        "by_team": by("team__name"),
        "by_priority": by("priority"),
        "by_reason": by("reason"),
        "first_reply": duration_summary(replies, "first_reply_at", "claimed_at"),
    }


def sla_report(filters) -> dict:
    """Analytics: SLA attainment over the escalations raised in [start, end) (optionally one
    channel kind or team), by team, priority and reason, with labels; and the first agent
    reply after takeover. Five queries."""
    from crm.codes import Priority, Reason

    rows = Escalation.objects.filter(escalated_at__gte=filters.start, escalated_at__lt=filters.end)
    if filters.channel:
        rows = rows.filter(conversation__channel__kind=filters.channel)
    if filters.team:
        rows = rows.filter(team_id=filters.team)
    report = sla_attainment(rows)
    for row in report["by_team"]:
        row["label"] = row.pop("team__name") or "—"
    for row in report["by_priority"]:
        row["label"] = str(Priority(row.pop("priority")).label)
    report["by_priority"].reverse()  # urgent first
    reasons = dict(Reason.choices)
    for row in report["by_reason"]:
        code = row.pop("reason")
        row["label"] = str(reasons.get(code, code))
    return report
