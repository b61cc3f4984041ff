"""Metrics: escalation rate, wait and resolution times (mean, median, p90), reasons.

The same expected numbers hold on PostgreSQL (percentile_cont in the database) and on SQLite
(the Python fallback), so the two definitions cannot drift apart."""

import random
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import Contact, Conversation
from escalation import selectors
from escalation.models import Escalation, Priority
from escalation.selectors import MetricsFilters
from tests.factories import ChannelFactory, TeamFactory

pytestmark = pytest.mark.django_db


NOW = timezone.now().replace(microsecond=0)
PERIOD = MetricsFilters(start=NOW - timedelta(days=7), end=NOW)


def conversation(channel, *, team=None, created_days_ago=1):
    created = Conversation.objects.create(
        contact=Contact.objects.create(name="c"), channel=channel, team=team
    )
    Conversation.objects.filter(pk=created.pk).update(
        created_at=NOW - timedelta(days=created_days_ago)
    )
    return created


def escalation(conv, *, reason="request", wait=None, resolution=None, days_ago=1, team=None):
    escalated_at = NOW - timedelta(days=days_ago)
    claimed_at = escalated_at + timedelta(seconds=wait) if wait is not None else None
    resolved_at = claimed_at + timedelta(seconds=resolution) if resolution is not None else None
    return Escalation.objects.create(
        conversation=conv,
        status="resolved" if resolved_at else ("claimed" if claimed_at else "queued"),
        reason=reason,
        priority=Priority.HIGH if reason == "request" else Priority.NORMAL,
        triggered_by="detection",
        team=team,
        escalated_at=escalated_at,
        claimed_at=claimed_at,
        resolved_at=resolved_at,
    )


@pytest.fixture
def history():
    web, whatsapp = ChannelFactory(kind="website"), ChannelFactory(kind="whatsapp")
    billing = TeamFactory(name="Billing")
    waits = [60, 120, 180, 240, 600]
    resolutions = [300, 900, None, None, None]
    reasons = ["request", "request", "sentiment", "complexity", "loop"]
    for wait, resolution, reason in zip(waits, resolutions, reasons, strict=True):
        conv = conversation(web, team=billing)
        escalation(conv, reason=reason, wait=wait, resolution=resolution, team=billing)
    escalation(conversation(web), reason="low_confidence")  # still queued: no wait yet
    for _ in range(4):  # answered by the AI alone
        conversation(whatsapp)
    escalation(conversation(whatsapp), reason="request", wait=30)
    # Outside the period: not counted.
    escalation(conversation(web, created_days_ago=30), wait=5000, days_ago=30)
    return {"web": web, "whatsapp": whatsapp, "billing": billing}


def test_the_period_numbers(history):
    metrics = selectors.escalation_metrics(PERIOD)
    assert metrics["conversations"] == 11
    assert metrics["escalated_conversations"] == 7
    assert metrics["escalations"] == 7
    assert metrics["escalation_rate"] == round(7 / 11, 4)
    # Waits 30, 60, 120, 180, 240, 600: linear-interpolated percentiles (percentile_cont).
    assert metrics["wait_time"] == {"count": 6, "mean": 205.0, "median": 150.0, "p90": 420.0}
    assert metrics["resolution_time"] == {"count": 2, "mean": 600.0, "median": 600.0, "p90": 840.0}
    assert metrics["reasons"] == {
        "complexity": 1,
        "loop": 1,
        "low_confidence": 1,
        "request": 3,
        "sentiment": 1,
    }
    assert metrics["priorities"] == {"high": 3, "normal": 4}


def test_filtered_by_channel_and_by_team(history):
    web = selectors.escalation_metrics(
        MetricsFilters(start=PERIOD.start, end=PERIOD.end, channel="website")
    )
    assert (web["conversations"], web["escalated_conversations"]) == (6, 6)
    assert web["wait_time"] == {"count": 5, "mean": 240.0, "median": 180.0, "p90": 456.0}
    whatsapp = selectors.escalation_metrics(
        MetricsFilters(start=PERIOD.start, end=PERIOD.end, channel="whatsapp")
    )
    assert whatsapp["escalation_rate"] == 0.2
    assert whatsapp["wait_time"]["median"] == 30.0
    assert whatsapp["resolution_time"] == {"count": 0, "mean": None, "median": None, "p90": None}
    team = selectors.escalation_metrics(
        MetricsFilters(start=PERIOD.start, end=PERIOD.end, team=history["billing"].pk)
    )
    assert team["escalations"] == 5 and team["reasons"]["request"] == 2


def test_an_empty_period_has_no_rate_and_no_times(db):
    metrics = selectors.escalation_metrics(PERIOD)
    assert metrics["escalation_rate"] == 0.0 and metrics["conversations"] == 0
    assert metrics["wait_time"]["mean"] is None and metrics["reasons"] == {}


def test_metrics_cost_a_fixed_number_of_queries(history, django_assert_num_queries):
    with django_assert_num_queries(6):
        selectors.escalation_metrics(PERIOD)


@pytest.mark.postgres
def test_postgresql_computes_percentiles_in_the_database_like_the_fallback(db):
    channel = ChannelFactory()
    rng = random.Random(4)
    for _ in range(40):
        escalation(
            conversation(channel),
            wait=rng.randint(1, 3600) + rng.random(),
            resolution=rng.randint(1, 7200),
        )
    rows = Escalation.objects.filter(claimed_at__isnull=False)
    with CaptureQueriesContext(connection) as queries:
        in_database = selectors.duration_summary(rows, "claimed_at", "escalated_at")
    assert len(queries) == 1 and "percentile_cont(0.9)" in queries[0]["sql"]
    assert in_database == selectors._python_summary(rows, "claimed_at", "escalated_at")
    resolution = selectors.duration_summary(rows, "resolved_at", "claimed_at")
    assert resolution == selectors._python_summary(rows, "resolved_at", "claimed_at")
