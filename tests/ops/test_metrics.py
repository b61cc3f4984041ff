"""/metrics: who may read it, and that what the product does shows up in its text."""

import json
import re

import pytest
from django.conf import settings
from django.test import override_settings
from prometheus_client import REGISTRY

from crm import services as crm_services
from escalation import services
from escalation.models import Escalation, Priority
from tests.factories import AgentFactory, ChannelFactory, ConversationFactory, TeamFactory

pytestmark = pytest.mark.django_db
TOKEN = "a-metrics-token-of-some-length"


def scrape(client, **headers) -> str:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def escalate(conversation, priority):
    escalation, _ = services.escalate_conversation(
        conversation=conversation,
        reason="request",
        priority=priority,
        triggered_by=Escalation.Trigger.DETECTION,
    )
    return escalation


def test_queue_depth_by_team_and_priority_is_read_at_scrape_time(client):
    billing = TeamFactory(name="Billing")
    channel = ChannelFactory(default_team=billing)
    for priority in (Priority.HIGH, Priority.HIGH, Priority.LOW):
        escalate(ConversationFactory(channel=channel), priority)
    escalate(ConversationFactory(), Priority.URGENT)  # no team

    text = scrape(client)

    assert 'le_queue_depth{priority="high",team="Billing"} 2.0' in text
    assert 'le_queue_depth{priority="low",team="Billing"} 1.0' in text
    assert 'le_queue_depth{priority="urgent",team=""} 1.0' in text
    assert 'le_queue_oldest_wait_seconds{priority="high",team="Billing"}' in text
    # what is empty is 0, not missing: a dashboard shows an emptied queue as 0, not "no data"
    assert 'le_queue_depth{priority="urgent",team="Billing"} 0.0' in text
    assert 'le_queue_depth{priority="low",team=""} 0.0' in text
    assert 'le_queue_oldest_wait_seconds{priority="urgent",team="Billing"} 0.0' in text


def test_an_empty_queue_is_zero_for_every_team_and_priority(client):
    TeamFactory(name="Sales")

    text = scrape(client)

    for team in ("", "Sales"):
        for priority in ("low", "normal", "high", "urgent"):
            assert f'le_queue_depth{{priority="{priority}",team="{team}"}} 0.0' in text


def test_a_handoff_and_a_pickup_are_timed(conversation, django_capture_on_commit_callbacks):
    handoffs = sample("le_handoff_latency_seconds_count")
    detections = sample("le_detector_latency_seconds_count", backend="local")
    with django_capture_on_commit_callbacks(execute=True):
        crm_services.receive_customer_message(
            conversation=conversation, text="I want to speak to a person"
        )
    escalation = Escalation.objects.get(conversation=conversation)
    assert sample("le_handoff_latency_seconds_count") == handoffs + 1
    assert sample("le_detector_latency_seconds_count", backend="local") == detections + 1
    priority = Priority(escalation.priority).code
    waits = sample("le_escalation_wait_seconds_count", priority=priority)
    with django_capture_on_commit_callbacks(execute=True):
        services.take_over_escalation(escalation_id=escalation.pk, agent=AgentFactory())
    assert sample("le_escalation_wait_seconds_count", priority=priority) == waits + 1


def test_task_runs_are_counted_by_outcome(conversation, django_capture_on_commit_callbacks):
    before = sample(
        "le_celery_task_runs_total", task="escalation.tasks.analyze_message", outcome="succeeded"
    )
    with django_capture_on_commit_callbacks(execute=True):
        crm_services.receive_customer_message(conversation=conversation, text="Hello there")
    assert (
        sample(
            "le_celery_task_runs_total",
            task="escalation.tasks.analyze_message",
            outcome="succeeded",
        )
        == before + 1
    )


def test_http_requests_are_timed_by_status_class(client):
    before = sample("le_http_request_duration_seconds_count", method="GET", status="4xx")
    client.get("/api/v1/escalations/")  # no token: 401
    text = scrape(client)
    assert (
        sample("le_http_request_duration_seconds_count", method="GET", status="4xx") == before + 1
    )
    assert 'le_http_request_duration_seconds_count{method="GET",status="4xx"}' in text


def test_without_a_token_only_a_direct_loopback_client_reads_metrics(client):
    scrape(client, REMOTE_ADDR="127.0.0.1")
    scrape(client, REMOTE_ADDR="::1")
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.7").status_code == 404
    # through a proxy the loopback address is the proxy's: refused
    forwarded = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="10.0.0.7")
    assert forwarded.status_code == 404


def test_with_a_token_metrics_need_the_bearer_token_from_anywhere(client):
    with override_settings(METRICS_TOKEN=TOKEN):
        assert client.get("/metrics").status_code == 403
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
        assert client.get("/metrics", HTTP_AUTHORIZATION=f"Token {TOKEN}").status_code == 403
        scrape(client, REMOTE_ADDR="10.0.0.7", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")


def test_every_metric_the_grafana_dashboard_plots_is_exported(client):
    dashboard = json.loads((settings.BASE_DIR / "ops" / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    plotted = {
        re.sub(r"_(bucket|count|sum|total)$", "", name)
        for expr in exprs
        for name in re.findall(r"\ble_[a-z_]+", expr)
    }
    text = scrape(client)
    exported = {
        re.sub(r"_total$", "", name)
        for name in re.findall(r"^# TYPE (le_[a-z_]+) ", text, flags=re.MULTILINE)
    }
    assert plotted and plotted <= exported, plotted - exported
