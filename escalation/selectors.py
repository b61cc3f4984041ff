"""Read queries: the queue, wait estimates and metrics. Each runs a fixed number of queries."""

import math
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    Q,
    Subquery,
    Value,
)
from django.utils import timezone

from crm import customer_texts
from crm.models import AgentProfile, Conversation

from .models import Escalation, Priority

Status = Escalation.Status


@dataclass(frozen=True)
class QueueFilters:
    channel: str | None = None  # channel kind
    priority: int | str | None = None  # a Priority or its code
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
        "conversation__contact",
        "conversation__channel",
        "team",
        "claimed_by__agent_profile",
        "offered_to__agent_profile",
        "routing_rule",
    )
    if filters.status:
        rows = rows.filter(status=filters.status)
    if filters.channel:
        rows = rows.filter(conversation__channel__kind=filters.channel)
    if filters.priority:
        rows = rows.filter(priority=Priority.parse(filters.priority))
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


def _ahead(escalation: Escalation):
    """The queued escalations picked up before this one: its team's (or the team-less queue's)
    of higher priority, or the same priority and escalated earlier."""
    same = Q(priority=escalation.priority)
    return Escalation.objects.filter(status=Status.QUEUED, team_id=escalation.team_id).filter(
        Q(priority__gt=escalation.priority)
        | same & Q(escalated_at__lt=escalation.escalated_at)
        | same & Q(escalated_at=escalation.escalated_at, id__lt=escalation.id)
    )


def queue_position(escalation: Escalation) -> int:
    """1 for the next escalation of its team's queue to be picked up (one query). Escalations
    without a team form one queue of their own."""
    return _ahead(escalation).count() + 1


def recent_pickup_seconds(*, sample: int = 50) -> float:
    """Median wait (escalation → first pickup) of the last ``sample`` pickups in the past week,
    or the configured default when there is no history (one query)."""
    since = timezone.now() - timedelta(days=7)
    waits = list(
        Escalation.objects.filter(claimed_at__isnull=False, claimed_at__gte=since)
        .order_by("-claimed_at")
        .annotate(
            wait=ExpressionWrapper(
                F("claimed_at") - F("escalated_at"), output_field=DurationField()
            )
        )
        .values_list("wait", flat=True)[:sample]
    )
    if not waits:
        return float(settings.LIVE_ESCALATION["DEFAULT_PICKUP_SECONDS"])
    return max(1.0, statistics.median(w.total_seconds() for w in waits))


def online_agents(team_id: int | None = None):
    """Active agents who are online: of the team, or everyone when ``team_id`` is None. A
    queryset (each profile once: one team's membership joins one row per agent), for the wait
    estimate to count and the notifications to list."""
    agents = AgentProfile.objects.filter(
        availability=AgentProfile.Availability.ONLINE, user__is_active=True
    )
    if team_id:
        agents = agents.filter(teams__id=team_id)
    return agents


def wait_estimate(*, position: int, pickup_seconds: float, online_agents: int) -> float:
    """The escalations ahead (and this one) each take a recent pickup time, shared among the
    agents online for the team (at least one: someone will come online)."""
    return pickup_seconds * position / max(1, online_agents)


def _count(rows) -> Subquery:
    """The number of ``rows`` as a scalar subquery (``COUNT`` without ``GROUP BY``: one row,
    0 when there are none), to ask several counts in one statement."""
    return Subquery(rows.order_by().annotate(n=Func(Value(1), function="COUNT")).values("n"))


def _wait_work(escalation: Escalation) -> tuple[int, float]:
    """This queued escalation's place in its team's queue and the open time until an agent
    probably picks it up. Two queries: the place and the agents online in one statement, the
    recent pickups."""
    place, online = (
        Escalation.objects.filter(pk=escalation.pk)
        .annotate(
            ahead=_count(_ahead(escalation)), online=_count(online_agents(escalation.team_id))
        )
        .values_list("ahead", "online")
        .get()
    )
    work = wait_estimate(
        position=place + 1, pickup_seconds=recent_pickup_seconds(), online_agents=online
    )
    return place + 1, work


def estimated_wait_seconds(escalation: Escalation, *, clock=None) -> float:
    """How long this queued escalation will probably wait from now, the team's closed hours
    in between counted in. Two queries (``_wait_work``); a third for the team's hours unless
    ``clock`` (a ``routing.clocks.TeamClock`` of its team, which the handoff has already read)
    is given."""
    from .routing.clocks import TeamClock

    _position, work = _wait_work(escalation)
    clock = clock if clock is not None else TeamClock(escalation.team_id)
    return clock.wait_in_open_time(work)


def estimated_wait_minutes(escalation: Escalation, *, clock=None) -> int:
    """The estimate in whole minutes, at least 1."""
    return estimated_wait(escalation, clock=clock)[0]


def estimated_wait(escalation: Escalation, *, clock=None) -> tuple[int, datetime | None]:
    """What the handoff message tells the customer: the estimate in whole minutes (at least 1)
    and, when the team closes before it runs out, the reopening the customer waits for (a wait
    stretched over the night in minutes would read "about 970 minutes"). Queries as
    ``estimated_wait_seconds``."""
    from .routing.clocks import TeamClock

    _position, work = _wait_work(escalation)
    clock = clock if clock is not None else TeamClock(escalation.team_id)
    seconds, reopens_at = clock.wait_over_closed_hours(work)
    return max(1, math.ceil(seconds / 60)), reopens_at


def target_wait_seconds(escalation: Escalation) -> int:
    if escalation.team_id and escalation.team:
        return escalation.team.target_wait_seconds
    return settings.LIVE_ESCALATION["DEFAULT_PICKUP_SECONDS"] * 2


def overdue_escalation_ids(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Queued escalations that may be past their team's target (re-checked per row)."""
    now = now or timezone.now()
    shortest = min(
        [
            target
            for target in Escalation.objects.filter(status=Status.QUEUED)
            .exclude(team=None)
            .values_list("team__target_wait_seconds", flat=True)
            .distinct()
        ]
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


class EpochSeconds(Func):
    """A PostgreSQL interval in seconds, as double precision."""

    template = "EXTRACT(EPOCH FROM %(expressions)s)::double precision"
    output_field = FloatField()


class PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)``."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, *, fraction: float, **extra):
        if not 0 <= fraction <= 1:
            raise ValueError("fraction must be between 0 and 1")
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


EMPTY_SUMMARY = {"count": 0, "mean": None, "median": None, "p90": None}


def _summary(values: list[float]) -> dict:
    """The SQLite fallback: the same numbers as ``_database_summary`` (same percentile rule)."""
    if not values:
        return dict(EMPTY_SUMMARY)
    values = sorted(values)
    return {
        "count": len(values),
        "mean": round(statistics.fmean(values), 1),
        "median": round(_percentile(values, 0.5), 1),
        "p90": round(_percentile(values, 0.9), 1),
    }


def _percentile(sorted_values: list[float], fraction: float) -> float:
    """Linear interpolation, the same definition as PostgreSQL's percentile_cont."""
    position = (len(sorted_values) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def _database_summary(rows, end_field: str, start_field: str) -> dict:
    """count, mean, median and p90 of (end - start) in seconds, in one PostgreSQL query."""
    seconds = EpochSeconds(
        ExpressionWrapper(F(end_field) - F(start_field), output_field=DurationField())
    )
    stats = rows.aggregate(
        count=Count("id"),
        mean=Avg(seconds),
        median=PercentileCont(seconds, fraction=0.5),
        p90=PercentileCont(seconds, fraction=0.9),
    )
    if not stats["count"]:
        return dict(EMPTY_SUMMARY)
    return {
        "count": stats["count"],
        "mean": round(float(stats["mean"]), 1),
        "median": round(float(stats["median"]), 1),
        "p90": round(float(stats["p90"]), 1),
    }


def _python_summary(rows, end_field: str, start_field: str) -> dict:
    return _summary(
        [(end - start).total_seconds() for end, start in rows.values_list(end_field, start_field)]
    )


def duration_summary(rows, end_field: str, start_field: str) -> dict:
    """Mean, median and p90 of ``end - start`` seconds over ``rows`` (percentile_cont in
    PostgreSQL; a Python fallback with the same definition elsewhere)."""
    if connection.vendor == "postgresql":
        return _database_summary(rows, end_field, start_field)
    return _python_summary(rows, end_field, start_field)


def escalation_metrics(filters: MetricsFilters) -> dict:
    """For conversations started and escalations raised in [start, end), optionally one channel
    kind or team: escalation rate (escalated conversations / conversations the AI handled),
    wait time (escalation → first pickup) and resolution time (pickup → resolution) in seconds
    as count/mean/median/p90, and counts per reason and priority. Six queries whatever the
    volume; the aggregates run in the database."""
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
    reasons = dict(escalations.values_list("reason").annotate(n=Count("id")).order_by("reason"))
    priorities = {
        Priority(p).code: n
        for p, n in escalations.values_list("priority").annotate(n=Count("id")).order_by()
    }
    waits = escalations.filter(claimed_at__isnull=False)
    resolutions = escalations.filter(resolved_at__isnull=False, claimed_at__isnull=False)
    return {
        "period": {"from": filters.start.isoformat(), "to": filters.end.isoformat()},
        "conversations": handled,
        "escalations": sum(reasons.values()),
        "escalated_conversations": escalated,
        "escalation_rate": round(escalated / handled, 4) if handled else 0.0,
        "wait_time": duration_summary(waits, "claimed_at", "escalated_at"),
        "resolution_time": duration_summary(resolutions, "resolved_at", "claimed_at"),
        "reasons": reasons,
        "priorities": priorities,
    }


# --- The conversation as the detector and the summary read it --------------------------------

CONTEXT_TURNS = 30
ROLE_OF_SENDER = {"customer": "customer", "ai": "assistant", "agent": "agent", "system": "system"}


def conversation_turns(
    conversation_id: int,
    *,
    up_to_message_id: int | None = None,
    after_message_id: int | None = None,
    limit: int = CONTEXT_TURNS,
):
    """The last ``limit`` visible turns (private notes left out), oldest first, up to and
    including ``up_to_message_id`` and after ``after_message_id`` when given."""
    from crm.models import Message

    from .detection import Turn

    rows = Message.objects.filter(conversation_id=conversation_id, is_private_note=False)
    if up_to_message_id is not None:
        rows = rows.filter(id__lte=up_to_message_id)
    if after_message_id is not None:
        rows = rows.filter(id__gt=after_message_id)
    rows = rows.order_by("-id").values_list("sender", "text", "confidence")[:limit]
    return [
        Turn(role=ROLE_OF_SENDER[sender], text=text, confidence=confidence)
        for sender, text, confidence in reversed(rows)
    ]


def detection_turns(conversation: Conversation, *, message_id: int):
    """What detection reads for the customer message ``message_id``: the turns up to it, and
    after a hand-back to the AI only those after the hand-back — the agent has dealt with what
    came before, and re-reading the AI's earlier weak answers, a request or the repeats would
    hand the conversation straight back. A message older than the hand-back (analysed late)
    keeps its own history."""
    resumed_after = conversation.ai_resumed_after_message_id
    if resumed_after is not None and resumed_after >= message_id:
        resumed_after = None
    return conversation_turns(
        conversation.pk, up_to_message_id=message_id, after_message_id=resumed_after
    )


def customer_moods(conversation_id: int, *, limit: int = CONTEXT_TURNS) -> list[str | None]:
    """The mood of each of the last ``limit`` analysed customer messages, oldest first, from
    the sentiment their analyses stored (one query)."""
    from .detection.summary import mood_of
    from .models import MessageAnalysis

    rows = (
        MessageAnalysis.objects.filter(message__conversation_id=conversation_id)
        .order_by("-message_id")
        .values_list("signals", flat=True)[:limit]
    )
    return [mood_of((signals or {}).get("sentiment")) for signals in reversed(rows)]


def handoff_card(conversation, reason: str | None, *, problem: str = "", turns=None):
    """The handoff card of ``conversation`` now: its last turns, the customer's moods, and what
    the contact already gave (name, email, phone), so the agent does not ask again. ``turns``:
    ``conversation_turns(conversation.pk)`` when the caller has just read them."""
    from .detection.summary import build_handoff_card

    contact = conversation.contact
    return build_handoff_card(
        conversation_turns(conversation.pk) if turns is None else turns,
        reason,
        moods=customer_moods(conversation.pk),
        known={"name": contact.name, "email": contact.email, "phone": contact.phone},
        problem=problem,
    )


def queue_depth() -> list[dict]:
    """Queued escalations counted by team (``""``: none) and priority, with the oldest wait in
    each; every team and priority appears, an empty one as 0, so a dashboard shows an emptied
    queue as 0 rather than no data. Two queries; for the metrics scrape."""
    from django.db.models import Count, Min

    from crm.models import Team

    now = timezone.now()
    counted = {
        (row["team__name"] or "", row["priority"]): row
        for row in Escalation.objects.filter(status=Escalation.Status.QUEUED)
        .values("team__name", "priority")
        .annotate(count=Count("id"), oldest=Min("escalated_at"))
        .order_by()
    }
    teams = ["", *Team.objects.order_by("name").values_list("name", flat=True)]
    teams += sorted({team for team, _priority in counted} - set(teams))  # renamed meanwhile
    rows = []
    for team in teams:
        for priority in Priority:
            row = counted.get((team, priority.value))
            rows.append(
                {
                    "team": team,
                    "priority": priority.code,
                    "count": row["count"] if row else 0,
                    "oldest_wait_seconds": (now - row["oldest"]).total_seconds() if row else 0.0,
                }
            )
    return rows


@dataclass(frozen=True)
class QueuePlace:
    """Where a waiting customer stands: 1 is next in the team's queue; the estimate in whole
    minutes, at least 1 (as the handoff message says it)."""

    escalation_id: int
    conversation_id: int
    channel_kind: str
    position: int
    wait_minutes: int
    language: str = ""
    # False while the team is closed: the estimate then runs to its reopening, which the
    # handoff message told the customer; it only counts down, and is not news to push.
    team_open: bool = True
    # While the wait runs over the team's closed hours: the opening (in the team's zone) the
    # customer waits for, which they read instead of the minutes. None otherwise.
    reopens_at: datetime | None = None

    def text(self, *, wordings: dict | None = None) -> str:
        """What the customer reads (``crm.customer_texts.queue_place_text``)."""
        return customer_texts.queue_place_text(
            position=self.position,
            wait_minutes=self.wait_minutes,
            reopens_at=self.reopens_at,
            language=self.language,
            wordings=wordings,
        )

    def shown(self, *, wordings: dict | None = None) -> dict:
        """``{"position", "wait_minutes", "text"}``: the place as the widget's frame and poll
        and the APIs' ``queue`` show it."""
        return {
            "position": self.position,
            "wait_minutes": self.wait_minutes,
            "text": self.text(wordings=wordings),
        }


def _placed(*, business, work: float, now: datetime, **place) -> QueuePlace:
    """A ``QueuePlace`` whose ``work`` seconds of open time start ``now``, over ``business``
    (the team's hours): the minutes and the reopening with the closed hours counted in."""
    from .routing.clocks import wait_over_closed_hours

    seconds, reopens_at = wait_over_closed_hours(business, work, now=now)
    return QueuePlace(
        **place,
        wait_minutes=max(1, math.ceil(seconds / 60)),
        team_open=business.is_open(now),
        reopens_at=reopens_at,
    )


def _open_hours(team_ids) -> dict:
    """Each team's business hours by team id (one query); a team without any is always open
    (``routing.clocks.ALWAYS_OPEN``, the default of the caller's ``get``)."""
    from .routing.models import TeamRouting

    return {
        routing.team_id: routing.business_hours()
        for routing in TeamRouting.objects.filter(team_id__in=[t for t in team_ids if t])
    }


def _online_per_team(team_ids=None) -> dict[int, int]:
    """The agents online in each team (of ``team_ids``; every team when None), one query; a
    team nobody is online in is absent."""
    online = online_agents()
    online = (
        online.filter(teams__isnull=False)
        if team_ids is None
        else online.filter(teams__in=team_ids)
    )
    return dict(online.values_list("teams__id").annotate(agents=Count("id", distinct=True)))


def queue_places(*, limit: int = 1000) -> list[QueuePlace]:
    """Every queued escalation's place and estimate (five queries, whatever the queue's
    size): the same arithmetic as ``estimated_wait_minutes``, the team's closed hours counted
    in, done for all at once."""
    from .routing.clocks import ALWAYS_OPEN

    rows = list(
        Escalation.objects.filter(status=Status.QUEUED)
        .order_by("team_id", "-priority", "escalated_at", "id")
        .values_list("id", "conversation_id", "team_id", "conversation__channel__kind", "language")[
            :limit
        ]
    )
    if not rows:
        return []
    pickup_seconds = recent_pickup_seconds()
    per_team = _online_per_team()
    everyone = online_agents().count()
    business = _open_hours({row[2] for row in rows})
    now = timezone.now()
    places, position, team = [], 0, object()
    for escalation_id, conversation_id, team_id, kind, language in rows:
        position = position + 1 if team_id == team else 1
        team = team_id
        agents = per_team.get(team_id, 0) if team_id else everyone
        places.append(
            _placed(
                business=business.get(team_id, ALWAYS_OPEN),
                work=wait_estimate(
                    position=position, pickup_seconds=pickup_seconds, online_agents=agents
                ),
                now=now,
                escalation_id=escalation_id,
                conversation_id=conversation_id,
                channel_kind=kind,
                position=position,
                language=language,
            )
        )
    return places


def customer_view(conversation) -> tuple[bool, str]:
    """``(resolved, language)`` for the customer's mode frame: whether the agent resolved the
    conversation's latest escalation but still holds the chat (for the customer it has ended),
    and the language that escalation guessed ("" when none). One query."""
    latest = (
        Escalation.objects.filter(conversation_id=conversation.pk)
        .order_by("-escalated_at", "-id")
        .values_list("status", "language")
        .first()
    )
    if latest is None:
        return False, ""
    status, language = latest
    return conversation.mode == conversation.Mode.AGENT and status == Status.RESOLVED, language


def queue_place(conversation_id: int) -> QueuePlace | None:
    """The place of one conversation's queued escalation, or None when it is not waiting."""
    escalation = (
        Escalation.objects.filter(conversation_id=conversation_id, status=Status.QUEUED)
        .select_related("conversation__channel")
        .first()
    )
    if escalation is None:
        return None
    from .routing.clocks import team_hours

    position, work = _wait_work(escalation)
    return _placed(
        business=team_hours(escalation.team_id),
        work=work,
        now=timezone.now(),
        escalation_id=escalation.pk,
        conversation_id=conversation_id,
        channel_kind=escalation.conversation.channel.kind,
        position=position,
        language=escalation.language,
    )


# How much of the queue ``queue_places_of`` reads first (see there).
QUEUE_FIRST_READ = 1000


def queue_places_of(conversation_ids) -> dict[int, QueuePlace]:
    """``queue_place`` for several conversations at once (a page of the API's conversation
    list), keyed by conversation id; the waiting ones only. The same arithmetic, closed hours
    counted in, in at most six queries whatever the page holds (none when ``conversation_ids`` is
    empty)."""
    from .routing.clocks import ALWAYS_OPEN

    ids = list(conversation_ids)
    if not ids:
        return {}
    waiting = list(
        Escalation.objects.filter(conversation_id__in=ids, status=Status.QUEUED).values_list(
            "id", "conversation_id", "team_id", "conversation__channel__kind", "language"
        )
    )
    if not waiting:
        return {}
    teams = {team_id for _id, _conversation, team_id, _kind, _language in waiting}
    in_teams = Q(team_id__in=[team for team in teams if team])
    if None in teams:
        in_teams |= Q(team_id__isnull=True)
    # Each team's queue in queue order (``queue_position``'s order), to number the waiting: the
    # top of the queue first (where a page of the queue usually is), all of it only when a
    # waiting row lies deeper (reading all of a 100,000-row queue for the first page took 0.1 s).
    queue = (
        Escalation.objects.filter(in_teams, status=Status.QUEUED)
        .order_by("-priority", "escalated_at", "id")
        .values_list("id", "team_id")
    )
    rows = list(queue[:QUEUE_FIRST_READ])
    wanted = {escalation_id for escalation_id, *_rest in waiting}
    if len(rows) == QUEUE_FIRST_READ and not wanted <= {row[0] for row in rows}:
        rows = list(queue)
    position, seen = {}, {}
    for escalation_id, team_id in rows:
        seen[team_id] = position[escalation_id] = seen.get(team_id, 0) + 1
    pickup_seconds = recent_pickup_seconds()
    per_team = _online_per_team([team for team in teams if team])
    everyone = online_agents().count() if None in teams else 0
    business = _open_hours(teams)
    now = timezone.now()
    places = {}
    for escalation_id, conversation_id, team_id, kind, language in waiting:
        places[conversation_id] = _placed(
            business=business.get(team_id, ALWAYS_OPEN),
            work=wait_estimate(
                position=position[escalation_id],
                pickup_seconds=pickup_seconds,
                online_agents=per_team.get(team_id, 0) if team_id else everyone,
            ),
            now=now,
            escalation_id=escalation_id,
            conversation_id=conversation_id,
            channel_kind=kind,
            position=position[escalation_id],
            language=language,
        )
    return places


# --- Agents' verdicts on handovers ------------------------------------------------------------


def verdict_precision(filters: MetricsFilters) -> dict:
    """Per reason, of the handovers agents judged in [start, end) (by escalation time): how many
    were needed, how many not, and precision = needed / judged. One query."""
    from .models import HandoffVerdict

    verdicts = HandoffVerdict.objects.filter(
        escalation__escalated_at__gte=filters.start, escalation__escalated_at__lt=filters.end
    )
    if filters.channel:
        verdicts = verdicts.filter(escalation__conversation__channel__kind=filters.channel)
    if filters.team:
        verdicts = verdicts.filter(escalation__team_id=filters.team)
    rows = (
        verdicts.values("reason")
        .annotate(needed=Count("id", filter=Q(needed=True)), judged=Count("id"))
        .order_by("reason")
    )
    by_reason = {
        row["reason"]: {
            "needed": row["needed"],
            "not_needed": row["judged"] - row["needed"],
            "judged": row["judged"],
            "precision": round(row["needed"] / row["judged"], 3),
        }
        for row in rows
    }
    needed = sum(r["needed"] for r in by_reason.values())
    judged = sum(r["judged"] for r in by_reason.values())
    return {
        "reasons": by_reason,
        "judged": judged,
        "precision": round(needed / judged, 3) if judged else None,
    }


class VerdictRow(NamedTuple):
    """One judged handover, for training: the customer message handed over, the escalation's
    reason and (for ``complexity``) its strongest topic, and the agent's answer."""

    text: str
    reason: str
    needed: bool
    topic: str | None = None


def verdict_training_rows() -> list[VerdictRow]:
    """Every judged handover: the customer message that was handed over (the last one at or
    before the escalation) with the agents' answer. For ``train_detector --with-verdicts``:
    ``needed=False`` is a hard negative for that reason's head, ``needed=True`` a positive.
    ``topic`` is the first topic detection had found (``complexity`` only). Handovers without a
    customer message are left out."""
    from django.db.models import OuterRef, Subquery

    from crm.models import Message

    from .models import HandoffVerdict

    last_customer_text = (
        Message.objects.filter(
            conversation_id=OuterRef("escalation__conversation_id"),
            sender=Message.Sender.CUSTOMER,
            is_private_note=False,
            created_at__lte=OuterRef("escalation__escalated_at"),
        )
        .order_by("-id")
        .values("text")[:1]
    )
    rows = (
        HandoffVerdict.objects.annotate(text=Subquery(last_customer_text))
        .filter(text__isnull=False)
        .order_by("id")
        .values_list(
            "text",
            "reason",
            "needed",
            "escalation__signals",
            "escalation__conversation__assistant__always_human_topics",
        )
    )
    return [
        VerdictRow(
            text,
            reason,
            needed,
            _handed_over_topic(signals, always_human) if reason == "complexity" else None,
        )
        for text, reason, needed, signals, always_human in rows
        if text.strip()
    ]


def _handed_over_topic(signals, always_human) -> str | None:
    """The topic the policy handed over for: the strongest detected one the assistant sends to
    a person (the signals list topics strongest first)."""
    topics = [t for t in ((signals or {}).get("complexity") or {}).get("topics") or [] if t]
    chosen = [t for t in topics if not always_human or t in always_human]
    return (chosen or topics or [None])[0]


# --- Customer satisfaction ---------------------------------------------------------------------


def _rating_group(rows) -> list[dict]:
    return [
        {**key, "count": row["count"], "average": round(row["average"], 2)} for key, row in rows
    ]


def satisfaction_report(filters: MetricsFilters) -> dict:
    """The customers' ratings (1–5) of the escalations raised in [start, end) (one channel kind
    or team if asked): how many, the average, the share of 4s and 5s (CSAT), the count per
    score, and count and average per agent (who held it), team and reason. Five queries."""
    from .models import SatisfactionRating

    ratings = SatisfactionRating.objects.filter(
        escalation__escalated_at__gte=filters.start, escalation__escalated_at__lt=filters.end
    )
    if filters.channel:
        ratings = ratings.filter(escalation__conversation__channel__kind=filters.channel)
    if filters.team:
        ratings = ratings.filter(escalation__team_id=filters.team)
    totals = ratings.aggregate(
        count=Count("id"), average=Avg("score"), satisfied=Count("id", filter=Q(score__gte=4))
    )
    count = totals["count"]
    scores = dict(ratings.values_list("score").annotate(n=Count("id")).order_by())
    measures = {"count": Count("id"), "average": Avg("score")}
    by_agent = (
        ratings.exclude(escalation__claimed_by=None)
        .values(
            "escalation__claimed_by",
            "escalation__claimed_by__agent_profile__display_name",
            "escalation__claimed_by__username",
        )
        .annotate(**measures)
        .order_by("-average", "escalation__claimed_by")
    )
    by_team = (
        ratings.exclude(escalation__team=None)
        .values("escalation__team", "escalation__team__name")
        .annotate(**measures)
        .order_by("-average", "escalation__team__name")
    )
    by_reason = (
        ratings.values("escalation__reason").annotate(**measures).order_by("escalation__reason")
    )
    return {
        "count": count,
        "average": round(totals["average"], 2) if count else None,
        "satisfied_share": round(totals["satisfied"] / count, 4) if count else None,
        "scores": {str(score): scores.get(score, 0) for score in range(1, 6)},
        "by_agent": _rating_group(
            (
                {
                    "id": row["escalation__claimed_by"],
                    "name": row["escalation__claimed_by__agent_profile__display_name"]
                    or row["escalation__claimed_by__username"],
                },
                row,
            )
            for row in by_agent
        ),
        "by_team": _rating_group(
            (
                {"id": row["escalation__team"], "name": row["escalation__team__name"]},
                row,
            )
            for row in by_team
        ),
        "by_reason": _rating_group(
            ({"reason": row["escalation__reason"]}, row) for row in by_reason
        ),
    }
