"""Settings → Agent Framework (handoff, sensitivity with a preview, topics, backend and band), the
replay job the page polls, the verdict beside Resolve/Close, and precision in Analytics."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import Assistant, Message
from escalation import services as escalation_services
from escalation.models import EscalationEvent, HandoffVerdict, MessageAnalysis, ReplayJob
from tests.factories import AssistantFactory, ChannelFactory, ConversationFactory

ASKS = "I want to talk to a real person right now, get me a human agent"


def form_data(assistant, **changes):
    prefix = f"assistant-{assistant.pk}-"
    data = {
        "handoff_enabled": "on",
        "sensitivity": "0.5",
        "backend": "local",
        "claude_band_low": "0.2",
        "claude_band_high": "0.8",
        "sentiment_threshold": "0.6",
        "confidence_threshold": "0.45",
        "loop_threshold": "2",
        "always_human_topics": ["refund", "legal"],
        **changes,
    }
    return {prefix + name: value for name, value in data.items()}


@pytest.fixture
def assistant(db):
    return AssistantFactory(name="Shop")


def test_one_agent_framework_section_per_assistant_with_its_controls(manager_client, assistant):
    page = manager_client.get("/crm/settings/").content.decode()
    assert "Agent Framework · Shop" in page
    for control in ("Enable Human Handoff", "Sensitivity", "Topics that always need a human"):
        assert control in page
    assert "Local, and Claude when unsure" in page
    assert "Agent Framework →" not in page  # no more one checkbox reading the whole path
    assert "{{" not in page and "{%" not in page


def test_saving_the_section_stores_sensitivity_backend_and_band(
    manager_client, assistant, settings
):
    settings.ANTHROPIC_API_KEY = "sk-test"
    response = manager_client.post(
        f"/crm/settings/assistants/{assistant.pk}/",
        form_data(assistant, sensitivity="0.8", backend="local_claude", claude_band_low="0.3"),
    )
    assert response.status_code == 302
    assistant.refresh_from_db()
    assert (assistant.sensitivity, assistant.backend, assistant.claude_band_low) == (
        0.8,
        "local_claude",
        0.3,
    )


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"claude_band_low": "0.8", "claude_band_high": "0.8"}, "must be above its start"),
        ({"claude_band_low": "0.9", "claude_band_high": "0.2"}, "must be above its start"),
        ({"claude_band_high": "1.5"}, "less than or equal to 1"),
        ({"sensitivity": "-0.1"}, "greater than or equal to 0"),
        ({"backend": "gpt"}, "Select a valid choice"),
        ({"backend": "local_claude"}, "ANTHROPIC_API_KEY"),
    ],
)
def test_bad_settings_are_a_clear_error_and_change_nothing(
    manager_client, assistant, settings, changes, error
):
    settings.ANTHROPIC_API_KEY = ""
    response = manager_client.post(
        f"/crm/settings/assistants/{assistant.pk}/", form_data(assistant, **changes)
    )
    assert response.status_code == 400
    assert error in response.content.decode()
    fresh = Assistant.objects.get(pk=assistant.pk)
    assert (fresh.sensitivity, fresh.backend, fresh.claude_band_low, fresh.claude_band_high) == (
        0.5,
        "local",
        0.2,
        0.8,
    )


def test_agents_cannot_change_or_preview_settings(agent_client, assistant):
    assert agent_client.post(f"/crm/settings/assistants/{assistant.pk}/preview/").status_code == 403
    assert agent_client.post(f"/crm/settings/assistants/{assistant.pk}/replay/").status_code == 403


def test_the_sensitivity_preview_shows_the_predicted_rate_change(manager_client, assistant):
    weak_request = {
        "sentiment": {"intensity": 0.05, "labels": []},
        "intent": {"request_human": False, "confidence": 0.4, "threshold": 0.5, "source": "model"},
        "complexity": {"topics": [], "scores": {}},
        "loop": {"count": 0, "customer_repeats": 0, "assistant_repeats": 0, "already_told": False},
        "confidence": {"last": None, "recent_low": 0, "recent": []},
        "closing": False,
    }
    for _ in range(4):
        conversation = ConversationFactory(channel=ChannelFactory(assistant=assistant))
        message = Message.objects.create(
            conversation=conversation, channel=conversation.channel, sender="customer", text="hm"
        )
        MessageAnalysis.objects.create(message=message, backend="local", signals=weak_request)
    response = manager_client.post(
        f"/crm/settings/assistants/{assistant.pk}/preview/",
        form_data(assistant, sensitivity="0.9"),
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "0.0% now" in html and "100.0% with these settings" in html
    assert "+100.0 points" in html and "4 conversations" in html
    assert Assistant.objects.get(pk=assistant.pk).sensitivity == 0.5  # nothing saved
    bad = manager_client.post(
        f"/crm/settings/assistants/{assistant.pk}/preview/",
        form_data(assistant, claude_band_low="0.9", claude_band_high="0.1"),
        HTTP_HX_REQUEST="true",
    )
    assert "must be above its start" in bad.content.decode()


def test_the_preview_moves_topic_thresholds_too_and_names_the_reasons_that_move(
    manager_client, assistant
):
    """Signals as the detector stores them (each topic's threshold beside its score): a refund
    question just under its threshold hands over at a higher sensitivity, shown by reason."""
    from escalation.detection import Turn, detect

    stored = detect([Turn("customer", "hm")]).signals
    stored["intent"].update(confidence=0.05, request_human=False)
    stored["sentiment"].update(intensity=0.05, upset_probability=0.05)
    thresholds = stored["complexity"]["thresholds"]
    stored["complexity"].update(
        topics=[], scores={**dict.fromkeys(thresholds, 0.0), "refund": thresholds["refund"] - 0.05}
    )
    for _ in range(3):
        conversation = ConversationFactory(channel=ChannelFactory(assistant=assistant))
        message = Message.objects.create(
            conversation=conversation, channel=conversation.channel, sender="customer", text="hm"
        )
        MessageAnalysis.objects.create(message=message, backend="local", signals=stored)
    eager = manager_client.post(
        f"/crm/settings/assistants/{assistant.pk}/preview/",
        form_data(assistant, sensitivity="0.8"),
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "0.0% now" in eager and "100.0% with these settings" in eager
    assert "Complex issue: 0 → 3 conversations" in eager
    without_refunds = manager_client.post(
        f"/crm/settings/assistants/{assistant.pk}/preview/",
        form_data(assistant, sensitivity="0.8", always_human_topics=["legal"]),
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "0.0% with these settings" in without_refunds
    assert "Complex issue" not in without_refunds


def test_the_replay_button_starts_a_job_the_page_polls_until_its_chart(
    manager_client, assistant, django_capture_on_commit_callbacks
):
    for kind in ("website", "whatsapp"):
        conversation = ConversationFactory(channel=ChannelFactory(kind=kind, assistant=assistant))
        Message.objects.create(
            conversation=conversation, channel=conversation.channel, sender="customer", text=ASKS
        )
    with django_capture_on_commit_callbacks(execute=False):
        started = manager_client.post(
            f"/crm/settings/assistants/{assistant.pk}/replay/", HTTP_HX_REQUEST="true"
        )
    job = ReplayJob.objects.get()
    html = started.content.decode()
    assert 'hx-trigger="every 1s"' in html and "0 of 2 conversations replayed" in html
    again = manager_client.post(
        f"/crm/settings/assistants/{assistant.pk}/replay/", HTTP_HX_REQUEST="true"
    )
    assert again.status_code == 409 and "already running" in again.content.decode()
    escalation_services.run_replay_job(job_id=job.pk)
    done = manager_client.get(f"/crm/settings/replays/{job.pk}/", HTTP_HX_REQUEST="true")
    html = done.content.decode()
    assert "every 1s" not in html  # finished: polling stops
    assert "100.0% would escalate (2 of 2 conversations)" in html
    assert 'id="reason-chart"' in html and 'id="channel-chart"' in html
    assert "whatsapp" in html and ASKS in html
    assert manager_client.get("/crm/settings/replays/999999/").status_code == 404


@pytest.fixture
def resolved_escalation(agent):
    conversation = ConversationFactory()
    Message.objects.create(
        conversation=conversation, channel=conversation.channel, sender="customer", text=ASKS
    )
    escalation, _ = escalation_services.escalate_conversation(
        conversation=conversation, reason="request", priority=3, triggered_by="detection"
    )
    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    escalation_services.resolve_escalation(escalation_id=escalation.pk, agent=agent)
    return escalation


def test_the_verdict_question_sits_beside_resolve_and_is_answered_once(
    agent_client, agent, resolved_escalation
):
    panel = agent_client.get(
        f"/crm/conversations/{resolved_escalation.conversation_id}/panel/", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Was handing this over needed?" in panel
    url = f"/crm/escalations/{resolved_escalation.pk}/verdict/"
    assert agent_client.post(url, {"needed": "maybe"}, HTTP_HX_REQUEST="true").status_code == 400
    assert not HandoffVerdict.objects.exists()
    answered = agent_client.post(url, {"needed": "no"}, HTTP_HX_REQUEST="true")
    assert answered.status_code == 200
    assert "Handing this over was not needed" in answered.content.decode()
    verdict = HandoffVerdict.objects.get()
    assert (verdict.needed, verdict.given_by) == (False, agent)
    twice = agent_client.post(url, {"needed": "yes"}, HTTP_HX_REQUEST="true")
    assert twice.status_code == 409 and "already answered" in twice.content.decode()
    assert EscalationEvent.objects.filter(kind="verdict").count() == 1
    panel = agent_client.get(
        f"/crm/conversations/{resolved_escalation.conversation_id}/panel/", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Was handing this over needed?" not in panel
    assert "Handing this over was not needed" in panel


def test_analytics_shows_precision_by_reason(manager_client, manager, resolved_escalation):
    escalation_services.record_handoff_verdict(
        escalation_id=resolved_escalation.pk, needed=True, agent=manager
    )
    start = (timezone.localdate() - timedelta(days=1)).isoformat()
    page = manager_client.get(f"/crm/analytics/?start={start}").content.decode()
    assert "Were the handovers needed?" in page
    assert "Precision 1.0 from 1 agent answer." in page
