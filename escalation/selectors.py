"""Read queries: the queue, wait estimates and metrics. Each runs a fixed number of queries."""

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q
from django.utils import timezone

from crm.models import AgentProfile, Conversation

from .models import Escalation, Priority

Status = Escalation.Status


@dataclass(frozen=True)
class QueueFilters:
    channel: str | None = None  # channel kind
    priority: int | None = None
    team: int | None = None
    reason: str | None = None
    min_wait_seconds: int | None = None
    max_wait_seconds: int | None = None
    status: str = Status.QUEUED


def queued_escalations(filters: QueueFilters = QueueFilters(), *, now: datetime | None = None):
    """The queue: most urgent first, then longest waiting. Rows carry conversation, contact,
    channel, team and claimer in one query (slice it for a page)."""
    now = now or timezone.now()
    rows = Escalation.objects.select_related(
        "conversation__contact", "conversation__channel", "team", "claimed_by__agent_profile"
    )
    if filters.status:
        rows = rows.filter(status=filters.status)
    if filters.channel:
        rows = rows.filter(conversation__channel__kind=filters.channel)
    if filters.priority:
        rows = rows.filter(priority=filters.priority)
    if filters.team:
        rows = rows.filter(team_id=filters.team)
    if filters.reason:
        rows = rows.filter(reason=filters.reason)
    # Waiting at least N seconds means escalated at or before now - N.
    if filters.min_wait_seconds is not None:
        rows = rows.filter(escalated_at__lte=now - timedelta(seconds=filters.min_wait_seconds))
    if filters.max_wait_seconds is not None:
        rows = rows.filter(escalated_at__gte=now - timedelta(seconds=filters.max_wait_seconds))
    return rows.order_by("-priority", "escalated_at", "id")


def queue_position(escalation: Escalation) -> int:
    """1 for the next escalation to be picked up."""
    ahead = Escalation.objects.filter(status=Status.QUEUED).filter(
        Q(priority__gt=escalation.priority)
        | Q(priority=escalation.priority, escalated_at__lt=escalation.escalated_at)
        | Q(priority=escalation.priority, escalated_at=escalation.escalated_at, id__lt=escalation.id)
    )
    if escalation.team_id:
        ahead = ahead.filter(team_id=escalation.team_id)
    return ahead.count() + 1


def recent_pickup_seconds(*, sample: int = 50) -> float:
    """Median wait of the last ``sample`` pickups in the past week, or the configured default."""
    since = timezone.now() - timedelta(days=7)
    waits = list(
        Escalation.objects.filter(claimed_at__isnull=False, claimed_at__gte=since)
        .order_by("-claimed_at")
        .annotate(wait=ExpressionWrapper(F("claimed_at") - F("escalated_at"),
                                         output_field=DurationField()))
        .values_list("wait", flat=True)[:sample]
    )
    if not waits:
        return float(settings.LIVE_ESCALATION["DEFAULT_PICKUP_SECONDS"])
    return max(1.0, statistics.median(w.total_seconds() for w in waits))


def estimated_wait_seconds(escalation: Escalation) -> float:
    """Recent pickup time, times the escalations ahead (and this one), shared among the
    agents online for the team."""
    agents = AgentProfile.objects.filter(availability=AgentProfile.Availability.ONLINE)
    if escalation.team_id:
        agents = agents.filter(teams__id=escalation.team_id)
    online = max(1, agents.count())
    return recent_pickup_seconds() * queue_position(escalation) / online


def target_wait_seconds(escalation: Escalation) -> int:
    if escalation.team_id and escalation.team:
        return escalation.team.target_wait_seconds
    return settings.LIVE_ESCALATION["DEFAULT_PICKUP_SECONDS"] * 2


def overdue_escalation_ids(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Queued escalations that may be past their team's target (re-checked per row)."""
    now = now or timezone.now()
    shortest = min(
        [target for target in Escalation.objects.filter(status=Status.QUEUED)
         .exclude(team=None).values_list("team__target_wait_seconds", flat=True).distinct()]
        + [settings.LIVE_ESCALATION["DEFAULT_PICKUP_SECONDS"] * 2]
    )
    return list(
        Escalation.objects.filter(
            status=Status.QUEUED, escalated_at__lte=now - timedelta(seconds=shortest)
        ).values_list("id", flat=True)[:limit]
    )


# --- Metrics ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class MetricsFilters:
    start: datetime
    end: datetime
    channel: str | None = None  # channel kind
    team: int | None = None


def _summary(values: list[float]) -> dict:
    if not values:
        return {"count": 0, "mean": None, "median": None, "p90": None}
    values = sorted(values)
    return {
        "count": len(values),
        "mean": round(statistics.fmean(values), 1),
        "median": round(statistics.median(values), 1),
        "p90": round(_percentile(values, 0.9), 1),
    }


def _percentile(sorted_values: list[float], fraction: float) -> float:
    """Linear interpolation, the same definition as PostgreSQL's percentile_cont."""
    position = (len(sorted_values) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def escalation_metrics(filters: MetricsFilters) -> dict:
    """Escalation rate (escalated conversations / conversations the AI handled), wait time
    (escalation → first pickup) and resolution time (pickup → resolution) in seconds, and the
    reasons breakdown. On PostgreSQL the aggregates run in the database."""
    conversations = Conversation.objects.filter(
        created_at__gte=filters.start, created_at__lt=filters.end
    )
    escalations = Escalation.objects.filter(
        escalated_at__gte=filters.start, escalated_at__lt=filters.end
    )
    if filters.channel:
        conversations = conversations.filter(channel__kind=filters.channel)
        escalations = escalations.filter(conversation__channel__kind=filters.channel)
    if filters.team:
        conversations = conversations.filter(team_id=filters.team)
        escalations = escalations.filter(team_id=filters.team)

    handled = conversations.count()
    escalated = conversations.filter(escalations__isnull=False).distinct().count()
    reasons = dict(
        escalations.values_list("reason").annotate(n=Count("id")).order_by("reason")
    )
    priorities = {
        Priority(p).code: n
        for p, n in escalations.values_list("priority").annotate(n=Count("id")).order_by()
    }
    waits = escalations.filter(claimed_at__isnull=False)
    resolutions = escalations.filter(resolved_at__isnull=False, claimed_at__isnull=False)
    if connection.vendor == "postgresql":
        wait_time = _pg_summary(waits, "claimed_at", "escalated_at")
        resolution_time = _pg_summary(resolutions, "resolved_at", "claimed_at")
    else:
        wait_time = _summary(_seconds(waits, "claimed_at", "escalated_at"))
        resolution_time = _summary(_seconds(resolutions, "resolved_at", "claimed_at"))
    return {
        "period": {"from": filters.start.isoformat(), "to": filters.end.isoformat()},
        "conversations": handled,
        "escalations": escalations.count(),
        "escalated_conversations": escalated,
        "escalation_rate": round(escalated / handled, 4) if handled else 0.0,
        "wait_time": wait_time,
        "resolution_time": resolution_time,
        "reasons": reasons,
        "priorities": priorities,
    }


def _seconds(rows, end_field: str, start_field: str) -> list[float]:
    return [
        (end - start).total_seconds() for end, start in rows.values_list(end_field, start_field)
    ]


def _pg_summary(rows, end_field: str, start_field: str) -> dict:
    """count, mean, median and p90 of (end - start) in seconds, with percentile_cont."""
    sql, params = rows.values("id").query.sql_with_params()
    table = Escalation._meta.db_table
    query = f"""
        SELECT count(*),
               avg(s),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY s),
               percentile_cont(0.9) WITHIN GROUP (ORDER BY s)
        FROM (
            SELECT EXTRACT(EPOCH FROM (e.{end_field} - e.{start_field})) AS s
            FROM {table} e WHERE e.id IN ({sql})
        ) t
    """
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        count, mean, median, p90 = cursor.fetchone()
    if not count:
        return {"count": 0, "mean": None, "median": None, "p90": None}
    return {
        "count": count,
        "mean": round(float(mean), 1),
        "median": round(float(median), 1),
        "p90": round(float(p90), 1),
    }
