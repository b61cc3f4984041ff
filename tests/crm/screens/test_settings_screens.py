"""Settings: messages with a live preview, the handoff switch and thresholds, preferences."""

from crm.models import AgentProfile, CRMSettings
from tests.factories import AssistantFactory


def test_messages_are_saved_through_the_service(manager_client):
    response = manager_client.post(
        "/crm/settings/messages/",
        {"handoff_message": "Wait {wait_minutes} min", "takeover_message": "I'm {agent_name}"},
    )
    assert response.status_code == 302
    crm_settings = CRMSettings.load()
    assert crm_settings.handoff_message == "Wait {wait_minutes} min"


def test_an_unknown_placeholder_is_shown_as_an_error(manager_client):
    response = manager_client.post(
        "/crm/settings/messages/",
        {"handoff_message": "Wait {minutes}", "takeover_message": "I'm {agent_name}"},
        follow=True,
    )
    assert "unknown placeholders: minutes" in response.content.decode()
    assert CRMSettings.load().handoff_message != "Wait {minutes}"


def test_the_preview_fills_the_placeholders_and_escapes(manager_client):
    response = manager_client.post(
        "/crm/settings/messages/preview/",
        {
            "handoff_message": "About {wait_minutes} minutes <script>",
            "takeover_message": "I'm {agent_name}",
        },
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert "About 4 minutes &lt;script&gt;" in html
    assert "I&#x27;m Marina" in html
    assert CRMSettings.load().handoff_message != "About {wait_minutes} minutes <script>"


def test_the_handoff_switch_and_thresholds(manager_client):
    assistant = AssistantFactory(handoff_enabled=True)
    prefix = f"assistant-{assistant.pk}-"
    page = manager_client.get("/crm/settings/").content.decode()
    assert "Agent Framework" in page and "Enable Human Handoff" in page
    response = manager_client.post(
        f"/crm/settings/assistants/{assistant.pk}/",
        {
            prefix + "sensitivity": "0.5",
            prefix + "backend": "local",
            prefix + "claude_band_low": "0.2",
            prefix + "claude_band_high": "0.8",
            prefix + "sentiment_threshold": "0.7",
            prefix + "confidence_threshold": "0.3",
            prefix + "loop_threshold": "3",
            prefix + "always_human_topics": ["refund", "legal"],
        },
    )
    assert response.status_code == 302
    assistant.refresh_from_db()
    assert assistant.handoff_enabled is False  # unchecked box
    assert (assistant.sentiment_threshold, assistant.loop_threshold) == (0.7, 3)
    assert assistant.always_human_topics == ["refund", "legal"]
    bad = manager_client.post(
        f"/crm/settings/assistants/{assistant.pk}/",
        {
            prefix + "sensitivity": "0.5",
            prefix + "backend": "local",
            prefix + "claude_band_low": "0.2",
            prefix + "claude_band_high": "0.8",
            prefix + "sentiment_threshold": "3",
            prefix + "confidence_threshold": "0.3",
            prefix + "loop_threshold": "3",
        },
    )
    assert bad.status_code == 400
    assistant.refresh_from_db()
    assert assistant.sentiment_threshold == 0.7


def test_managers_set_each_agents_notification_preference(manager_client, agent):
    profile = agent.agent_profile
    manager_client.post(f"/crm/settings/agents/{profile.pk}/", {"notify_via": "email"})
    profile.refresh_from_db()
    assert profile.notify_via == "email"


def test_agents_set_their_own_preference(agent_client, agent):
    response = agent_client.post("/crm/preferences/", {"notify_via": "both"})
    assert response.status_code == 302
    assert AgentProfile.objects.get(user=agent).notify_via == "both"
    assert agent_client.post("/crm/preferences/", {"notify_via": "pigeon"}).status_code == 400
