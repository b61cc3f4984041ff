"""Settings: messages to customers per language with a live preview, the handoff switch and
thresholds, preferences."""

from crm import customer_texts
from crm.models import AgentProfile, CustomerText
from tests.factories import AssistantFactory


def test_messages_are_saved_per_language_through_the_service(manager_client):
    response = manager_client.post(
        "/crm/settings/messages/",
        {"language": "de", "handoff": "Einen Moment, {wait}.", "takeover": ""},
    )
    assert response.status_code == 302 and response["Location"].endswith("?texts=de#customer-texts")
    assert CustomerText.objects.get(kind="handoff", language="de").text == "Einen Moment, {wait}."
    # empty and untouched texts are the built-in ones, not overrides
    assert not CustomerText.objects.filter(kind="takeover").exists()
    page = manager_client.get("/crm/settings/?texts=de").content.decode()
    assert "Einen Moment, {wait}." in page and 'data-language="de" aria-current="page"' in page
    assert customer_texts.DEFAULTS["takeover"]["de"] in page


def test_an_unknown_placeholder_is_a_form_error_and_nothing_is_saved(manager_client):
    response = manager_client.post(
        "/crm/settings/messages/",
        {"language": "fr", "handoff": "Patientez {minutes}", "closing": "Merci {agent_name}"},
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert 'data-field="handoff"' in html
    assert "unknown placeholders: {minutes}. Allowed: {wait}, {wait_minutes}." in html
    assert not CustomerText.objects.exists()


def test_an_unknown_language_is_refused(manager_client):
    response = manager_client.post("/crm/settings/messages/", {"language": "xx", "handoff": "Hi"})
    assert response.status_code == 400
    assert "Choose one of the languages listed." in response.content.decode()
    assert not CustomerText.objects.exists()


def test_the_preview_fills_the_placeholders_and_escapes(manager_client):
    response = manager_client.post(
        "/crm/settings/messages/preview/",
        {"language": "en", "handoff": "About {wait} <script>", "takeover": "I'm {agent_name}"},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert "About about 4 minutes &lt;script&gt;" in html
    assert "I&#x27;m Marina" in html
    assert not CustomerText.objects.exists()


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
