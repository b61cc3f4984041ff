"""Celery entry points of routing: thin, ids in, services called. The sweeps run on Celery
beat (``config/celery.py``), or on the embedded scheduler under ``make run``; no timer ever
runs inside a request."""

import logging

from celery import shared_task
from django.utils import timezone

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def route_escalation_task(escalation_id: int) -> str | None:
    from . import services

    outcome = services.route_escalation(escalation_id=escalation_id)
    return outcome.value if outcome else None


@shared_task(acks_late=True)
def fill_agent_slots_task(user_id: int) -> int:
    from . import services

    return services.fill_agent_slots(user_id=user_id)


@shared_task
def expire_offers() -> int:
    """Offers past their accept timeout move to the next agent (every 5 s)."""
    from . import selectors, services

    now = timezone.now()
    return sum(
        services.expire_offer(escalation_id=escalation_id, now=now)
        for escalation_id in selectors.expired_offer_ids(now=now)
    )


@shared_task
def route_waiting_escalations() -> int:
    """Automatic teams' escalations nobody holds or was offered (a team that just opened, an
    agent who came back, a lost task): try each again (every 15 s)."""
    from . import selectors, services

    routed = 0
    for escalation_id in selectors.unrouted_escalation_ids():
        if services.route_escalation(escalation_id=escalation_id) == services.Outcome.GIVEN:
            routed += 1
    return routed


@shared_task
def age_priorities() -> int:
    """Raise the priority of escalations that waited their level's ageing time (every 30 s)."""
    from . import selectors, services
    from .models import RoutingSettings

    schedule = RoutingSettings.load().ageing_seconds or {}
    if not schedule:
        return 0
    now = timezone.now()
    ids = selectors.ageing_candidate_ids(now=now, shortest_seconds=min(schedule.values()))
    return sum(services.age_escalation(escalation_id=i, now=now) for i in ids)


@shared_task
def mark_sla_breaches() -> int:
    """Record SLA breaches of queued escalations and alert managers (every 15 s)."""
    from . import selectors, services

    now = timezone.now()
    return sum(
        services.mark_sla_breach(escalation_id=i, now=now)
        for i in selectors.sla_breach_ids(now=now)
    )
