"""CRM → Live Escalation: columns, order, filters in the URL, htmx partial, fixed query count."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import Channel, Contact, Conversation
from escalation.models import Escalation, Priority
from tests.factories import ChannelFactory, ConversationFactory, TeamFactory

URL = "/crm/live-escalation/"


def row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-escalation-id="(\d+)"', html)]


def test_the_queue_shows_the_columns_and_the_most_urgent_first(agent_client, escalate):
    low = escalate(priority="low", contact_name="Lou Low")
    urgent = escalate(priority="urgent", reason="sentiment", contact_name="Una Urgent")
    normal = escalate(priority="normal", contact_name="Nora Normal")
    html = agent_client.get(URL).content.decode()
    for heading in ["Contact", "Wait time", "Channel", "Reason", "Priority", "Team"]:
        assert f">{heading}</th>" in html
    assert row_ids(html) == [urgent.pk, normal.pk, low.pk]
    assert "Una Urgent" in html and "Frustration" in html and "Urgent" in html
    # the wait ticks in the browser from the escalation time
    assert f'data-since="{urgent.escalated_at.isoformat()}"' in html


def test_claimed_and_closed_escalations_leave_the_queue(agent_client, agent, escalate):
    from escalation import services

    waiting = escalate()
    taken = escalate()
    services.take_over_escalation(escalation_id=taken.pk, agent=agent)
    assert row_ids(agent_client.get(URL).content.decode()) == [waiting.pk]


def test_filters_are_read_from_the_url_and_combine(agent_client, escalate):
    billing, support = TeamFactory(name="Billing"), TeamFactory(name="Support")
    whatsapp = ChannelFactory(kind="whatsapp")
    web_billing = escalate(team=billing, reason="request", priority="high")
    escalate(team=support, reason="request", priority="high")
    wa_billing = escalate(team=billing, reason="complexity", priority="normal", channel=whatsapp)
    old = escalate(team=billing, reason="loop", priority="low")
    Escalation.objects.filter(pk=old.pk).update(escalated_at=timezone.now() - timedelta(minutes=30))

    def ids(query):
        return row_ids(agent_client.get(URL + "?" + query).content.decode())

    assert set(ids(f"team={billing.pk}")) == {web_billing.pk, wa_billing.pk, old.pk}
    assert ids("channel=whatsapp") == [wa_billing.pk]
    assert ids(f"team={billing.pk}&priority=high") == [web_billing.pk]
    assert ids("reason=complexity") == [wa_billing.pk]
    assert ids("wait=gt15") == [old.pk]
    assert old.pk not in ids("wait=lt5")
    page = agent_client.get(URL + "?channel=whatsapp").content.decode()
    assert '<option value="whatsapp" selected>' in page


def test_an_invalid_filter_is_reported_and_ignored(agent_client, escalate):
    escalation = escalate()
    response = agent_client.get(URL + "?priority=extreme&team=abc")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="form-error"' in html
    assert row_ids(html) == [escalation.pk]


def test_htmx_refreshes_get_only_the_results(agent_client, escalate):
    escalation = escalate()
    response = agent_client.get(
        URL + "?priority=normal", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="queue-results"
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="queue-results"')
    assert "<header" not in html
    assert row_ids(html) == [escalation.pk]


def test_customer_text_in_the_queue_is_escaped(agent_client, escalate):
    escalate(contact_name="<script>alert(1)</script>", detail="<img src=x onerror=alert(2)>")
    html = agent_client.get(URL).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html


def _bulk_queue(count: int) -> None:
    """``count`` queued escalations written in bulk (the service path is tested elsewhere)."""
    channel = Channel.objects.first() or ChannelFactory()
    team = TeamFactory(name="Bulk")
    contacts = Contact.objects.bulk_create(
        [Contact(name=f"Bulk {i}", email=f"bulk{i}@example.com") for i in range(count)]
    )
    conversations = Conversation.objects.bulk_create(
        [
            Conversation(
                contact=c,
                channel=channel,
                mode="awaiting_agent",
                team=team,
                customer_token=f"bulk-token-{c.pk}",
            )
            for c in contacts
        ]
    )
    now = timezone.now()
    Escalation.objects.bulk_create(
        [
            Escalation(
                conversation=conversation,
                reason="request",
                priority=Priority.NORMAL if i % 3 else Priority.HIGH,
                team=team,
                triggered_by="detection",
                escalated_at=now - timedelta(seconds=i),
                detail="bulk",
            )
            for i, conversation in enumerate(conversations)
        ]
    )


@pytest.mark.django_db
def test_the_queue_page_runs_as_many_queries_for_1000_rows_as_for_10(
    client, agent, django_assert_num_queries
):
    client.force_login(agent)
    ConversationFactory()  # a channel with an assistant for the bulk rows
    _bulk_queue(10)
    with CaptureQueriesContext(connection) as ten:
        response = client.get(URL)
    assert len(row_ids(response.content.decode())) == 10
    assert len(ten) <= 8, [q["sql"] for q in ten.captured_queries]

    _bulk_queue(990)
    with django_assert_num_queries(len(ten)):
        response = client.get(URL)
    html = response.content.decode()
    assert len(row_ids(html)) == 50  # one page
    assert 'data-queue-count="1000"' in html
    with django_assert_num_queries(len(ten)):
        client.get(URL + "?page=20&priority=high")
