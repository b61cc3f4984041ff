"""Take-over race: N agents click Take Over on the same escalation at the same instant, each on
its own thread and its own PostgreSQL connection, repeated for R escalations.

Every round must have exactly one winner: counted from what the callers were told (returned vs
AlreadyClaimed) and checked against the database (status, claimer, one ``claimed`` audit row).
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from django.db import close_old_connections, connection

from .harness import latency_summary


def run_race(*, claimers: int, rounds: int, progress) -> dict:
    from crm.models import Conversation
    from escalation.errors import AlreadyClaimed
    from escalation.models import Escalation, EscalationEvent, Priority
    from escalation.services import escalate_conversation, take_over_escalation

    from .world import make_agents, make_channel, make_conversations

    channel = make_channel(origin="http://127.0.0.1")
    # Offline agents: nobody is notified of the setup escalations, only the race is measured.
    agents = make_agents(claimers, online=False)
    escalation_ids = []
    for conversation in make_conversations(rounds, channel=channel):
        escalation, _created = escalate_conversation(
            conversation=conversation,
            reason="request",
            priority=Priority.NORMAL,
            triggered_by=Escalation.Trigger.DETECTION,
            summary="bench",
        )
        escalation_ids.append(escalation.pk)
    connection.close()

    start = threading.Barrier(claimers + 1)
    end = threading.Barrier(claimers + 1)
    outcomes: list[list[str]] = [[""] * claimers for _ in range(rounds)]
    winners_of: list[list[int]] = [[] for _ in range(rounds)]
    round_ms: list[float] = []

    def claimer(index: int) -> None:
        agent = agents[index]
        try:
            for r in range(rounds):
                start.wait(timeout=60)
                try:
                    take_over_escalation(escalation_id=escalation_ids[r], agent=agent)
                    outcomes[r][index] = "won"
                    winners_of[r].append(agent.pk)
                except AlreadyClaimed:
                    outcomes[r][index] = "already_claimed"
                except Exception as exc:  # anything else is a finding, counted and reported
                    outcomes[r][index] = f"error: {type(exc).__name__}: {exc}"[:200]
                    close_old_connections()
                end.wait(timeout=60)
        finally:
            connection.close()

    threads = [threading.Thread(target=claimer, args=(i,), daemon=True) for i in range(claimers)]
    for thread in threads:
        thread.start()
    try:
        for r in range(rounds):
            started = time.perf_counter()
            start.wait(timeout=60)
            end.wait(timeout=120)
            round_ms.append((time.perf_counter() - started) * 1000)
            progress.count(r + 1, rounds)
    finally:
        for thread in threads:
            thread.join(timeout=30)

    winners_per_round = [sum(1 for o in row if o == "won") for row in outcomes]
    errors = Counter(o for row in outcomes for o in row if o.startswith("error"))
    # The database's word: one claimer, one "claimed" audit row per escalation.
    claimed_events = Counter(
        EscalationEvent.objects.filter(
            escalation_id__in=escalation_ids, kind=EscalationEvent.Kind.CLAIMED
        ).values_list("escalation_id", flat=True)
    )
    rows = dict(Escalation.objects.filter(pk__in=escalation_ids).values_list("pk", "claimed_by_id"))
    db_consistent = 0
    for r, escalation_id in enumerate(escalation_ids):
        if (
            claimed_events[escalation_id] == 1
            and len(winners_of[r]) == 1
            and rows.get(escalation_id) == winners_of[r][0]
        ):
            db_consistent += 1
    agent_mode = Conversation.objects.filter(
        escalations__pk__in=escalation_ids, mode=Conversation.Mode.AGENT
    ).count()
    connection.close()
    distribution = Counter(winners_per_round)
    return {
        "claimers": claimers,
        "rounds": rounds,
        "winners_per_round": {str(k): v for k, v in sorted(distribution.items())},
        "rounds_with_exactly_one_winner": distribution.get(1, 0),
        "rounds_consistent_in_database": db_consistent,
        "conversations_in_agent_mode": agent_mode,
        "errors": dict(errors),
        "round_ms": latency_summary(round_ms),
        "ok": distribution.get(1, 0) == rounds and db_consistent == rounds and not errors,
    }
