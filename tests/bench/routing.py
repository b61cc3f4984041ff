"""Routing under load: 50 agents of one automatic team (direct assignment, capacity 5 each)
and 1,000 escalations arriving from several threads while the agents, once full, resolve their
oldest conversation, each thread on its own PostgreSQL connection.

Measured: the time from an escalation to its assignment (claimed_at − escalated_at, from the
database's own timestamps), and apart those assigned within a second; beside it the floor, one
conditional UPDATE + commit on the same database (the least an assignment can cost). Checked:
agents reach their capacity and never go above it (a monitor samples every agent's load
throughout, and the audit trail is replayed afterwards), and no escalation with two agents (one
claim event each, claimed_by matching it).

Routing runs as it does under `make run`: Celery eager, so the task queued after commit runs in
the committing thread (with a broker it would be a worker's task; the races are the same).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict

from django.db import close_old_connections, connection, transaction

from .harness import latency_summary


def _floor(samples: int) -> dict:
    """One conditional UPDATE of an escalation row + commit, as an assignment does."""
    from escalation.models import Escalation

    row = Escalation.objects.order_by("id").values_list("id", flat=True).first()
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        with transaction.atomic():
            Escalation.objects.filter(pk=row, status="nothing").update(detail="floor")
        timings.append((time.perf_counter() - started) * 1000)
    return latency_summary(timings)


def run_routing(*, agents: int, escalations: int, capacity: int, producers: int, progress) -> dict:
    from config.celery import app as celery_app
    from crm import realtime
    from crm.models import AgentProfile, Team
    from escalation import services
    from escalation.models import Escalation, EscalationEvent, Priority, TeamRouting
    from escalation.routing.selectors import agent_loads

    from .world import make_agents, make_channel, make_conversations

    celery_app.conf.task_always_eager = True
    # The tasks run here as a worker's would, and a worker sends its broadcasts inline
    # (config/celery.py): through this process's outbox, the queue-place fan-out of 1,000
    # waiting customers overflowed it.
    realtime.inline_sends = True
    team = Team.objects.create(name=f"Bench routing {time.time_ns()}")
    TeamRouting.objects.create(
        team=team, mode="automatic", strategy="least_busy", offer_first=False
    )
    channel = make_channel(origin="http://127.0.0.1")
    channel.default_team = team
    channel.save(update_fields=["default_team"])
    people = make_agents(agents, online=True)
    for user in people:
        profile = AgentProfile.objects.get(user=user)
        profile.capacity = capacity
        profile.save(update_fields=["capacity"])
        profile.teams.add(team)
    agent_ids = [user.pk for user in people]
    conversations = make_conversations(escalations, channel=channel)
    connection.close()

    done = threading.Event()
    created = Counter()
    errors: list[str] = []
    max_load_seen = [0]
    over_capacity_samples = [0]

    def produce(index: int) -> None:
        try:
            for n, conversation in enumerate(conversations[index::producers]):
                services.escalate_conversation(
                    conversation=conversation,
                    reason="request",
                    priority=random.choice(list(Priority)),
                    triggered_by=Escalation.Trigger.DETECTION,
                    summary="bench",
                )
                created[index] += 1
                if n % 10 == 0:
                    time.sleep(0.01)  # arrivals spread out rather than one burst
        except Exception as exc:  # noqa: BLE001 - a finding, reported
            errors.append(f"producer: {type(exc).__name__}: {exc}"[:300])
        finally:
            connection.close()

    def work(index: int) -> None:
        """Agents' hands: an agent resolves their oldest conversation only once they are full,
        so every agent works at its capacity and each freed slot is raced by the pushes of
        new escalations and the fill of the freed agent (resolving at once kept the agents
        below capacity: a peak load of 3 of 5 in an earlier run, which tested nothing)."""
        mine = agent_ids[index::8]
        users = {user.pk: user for user in people}
        try:
            while not done.is_set():
                held = defaultdict(list)
                for escalation_id, user_id in (
                    Escalation.objects.filter(status="claimed", claimed_by_id__in=mine)
                    .order_by("claimed_at")
                    .values_list("id", "claimed_by_id")
                ):
                    held[user_id].append(escalation_id)
                full = [(ids[0], user_id) for user_id, ids in held.items() if len(ids) >= capacity]
                for escalation_id, user_id in full:
                    services.resolve_escalation(escalation_id=escalation_id, agent=users[user_id])
                if not full:
                    time.sleep(0.05)
                close_old_connections()
        except Exception as exc:  # noqa: BLE001
            errors.append(f"agent: {type(exc).__name__}: {exc}"[:300])
        finally:
            connection.close()

    def monitor() -> None:
        try:
            while not done.is_set():
                loads = agent_loads(agent_ids)
                peak = max(loads.values()) if loads else 0
                max_load_seen[0] = max(max_load_seen[0], peak)
                over_capacity_samples[0] += sum(1 for v in loads.values() if v > capacity)
                time.sleep(0.05)
        finally:
            connection.close()

    threads = [threading.Thread(target=produce, args=(i,), daemon=True) for i in range(producers)]
    hands = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(8)]
    watcher = threading.Thread(target=monitor, daemon=True)
    started = time.monotonic()
    for thread in [*threads, *hands, watcher]:
        thread.start()
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        made = sum(created.values())
        claimed = Escalation.objects.filter(team=team, claimed_at__isnull=False).count()
        progress.count(claimed, escalations, f"{made} escalated")
        if claimed >= escalations or (
            made >= escalations and not any(t.is_alive() for t in threads) and errors
        ):
            break
        time.sleep(0.5)
    done.set()
    for thread in [*threads, *hands, watcher]:
        thread.join(timeout=60)
    elapsed = time.monotonic() - started

    rows = list(
        Escalation.objects.filter(team=team).values_list(
            "id", "escalated_at", "claimed_at", "claimed_by_id"
        )
    )
    waits_ms = [
        (claimed - escalated).total_seconds() * 1000
        for _id, escalated, claimed, _by in rows
        if claimed is not None
    ]
    claim_kinds = [EscalationEvent.Kind.ASSIGNED, EscalationEvent.Kind.CLAIMED]
    claims = Counter(
        EscalationEvent.objects.filter(escalation__team=team, kind__in=claim_kinds).values_list(
            "escalation_id", flat=True
        )
    )
    double = [escalation_id for escalation_id, n in claims.items() if n > 1]
    # Replay the audit trail: each agent's load over time never above capacity.
    timeline = defaultdict(list)
    for escalation_id, kind, at in EscalationEvent.objects.filter(
        escalation__team=team, kind__in=[*claim_kinds, EscalationEvent.Kind.RESOLVED]
    ).values_list("escalation_id", "kind", "created_at"):
        timeline[escalation_id].append((at, kind))
    owner = {escalation_id: by for escalation_id, _e, _c, by in rows}
    changes = []
    for escalation_id, events in timeline.items():
        for at, kind in events:
            changes.append((at, 1 if kind in claim_kinds else -1, owner.get(escalation_id)))
    changes.sort(key=lambda change: (change[0], change[1]))  # frees before takes at one instant
    load = Counter()
    replay_peak = 0
    for _at, delta, agent in changes:
        load[agent] += delta
        replay_peak = max(replay_peak, load[agent])

    on_arrival = [w for w in waits_ms if w < 1000]  # within a second (not "found a free slot")
    floor = _floor(300)
    summary = latency_summary(waits_ms)
    return {
        "agents": agents,
        "capacity": capacity,
        "escalations": escalations,
        "assigned": len(waits_ms),
        "seconds": round(elapsed, 1),
        "assignment_ms": summary,
        "assigned_on_arrival": len(on_arrival),
        "on_arrival_ms": latency_summary(on_arrival),
        "floor_ms": floor,
        "ratio_p50": round(summary["p50"] / floor["p50"], 1) if summary["p50"] else None,
        "max_load_sampled": max_load_seen[0],
        "over_capacity_samples": over_capacity_samples[0],
        "max_load_replayed": replay_peak,
        "double_assignments": len(double),
        "errors": errors[:10],
        "ok": (
            len(waits_ms) == escalations
            and max(max_load_seen[0], replay_peak) == capacity  # the limit was reached
            and not double
            and over_capacity_samples[0] == 0
            and replay_peak <= capacity
            and not errors
        ),
        "headline": (
            f"{len(waits_ms)}/{escalations} assigned, p50 {summary['p50']} ms, "
            f"p95 {summary['p95']} ms (floor p50 {floor['p50']} ms); peak load "
            f"{max(max_load_seen[0], replay_peak)}/{capacity}; {len(double)} double"
        ),
    }
