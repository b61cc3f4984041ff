"""Settings → Agent Framework in a real browser: the replay button shows progress, then the
predicted rate by reason and channel as charts with sample conversations; the sensitivity preview
updates as the slider moves; after resolving, one click answers "Was handing this over needed?"."""

import re

import pytest

from crm.models import AgentProfile, Message
from escalation import services as escalation_services
from escalation.models import HandoffVerdict, MessageAnalysis, ReplayJob
from tests.factories import AgentFactory, AssistantFactory, ChannelFactory, ConversationFactory

from .conftest import off_the_browser_thread, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.redis]

ASKS = "I want to talk to a real person right now, get me a human agent"
CALM = "What are your opening hours on Saturday?"
WEAK_REQUEST = {
    "sentiment": {"intensity": 0.05, "labels": []},
    "intent": {"request_human": False, "confidence": 0.4, "threshold": 0.5, "source": "model"},
    "complexity": {"topics": [], "scores": {}},
    "loop": {"count": 0, "customer_repeats": 0, "assistant_repeats": 0, "already_told": False},
    "confidence": {"last": None, "recent_low": 0, "recent": []},
    "closing": False,
}


def no_errors(page):
    html = page.content()
    assert "{{" not in html and "{%" not in html and "Server Error" not in html
    assert [line for line in page.le_console if "error" in line.lower()] == []


def test_the_replay_button_shows_progress_then_charts_and_samples(open_page, transactional_db):
    assistant = AssistantFactory(name="Shop")
    channels = {
        kind: ChannelFactory(kind=kind, assistant=assistant) for kind in ("website", "whatsapp")
    }
    for i in range(24):
        channel = channels["whatsapp" if i % 2 else "website"]
        conversation = ConversationFactory(channel=channel)
        message = Message.objects.create(
            conversation=conversation,
            channel=channel,
            sender="customer",
            text=ASKS if i % 3 == 0 else CALM,
        )
        if i % 4 == 1:  # a stored reading just under the request threshold
            MessageAnalysis.objects.create(message=message, backend="local", signals=WEAK_REQUEST)
    manager = AgentFactory(display_name="Morgan", username="morgan", role=AgentProfile.Role.MANAGER)

    page = open_page("manager")
    sign_in(page, manager, next_url="/crm/settings/")
    section = page.locator(f"#assistant-{assistant.pk}")
    assert "Agent Framework" in section.locator("h2").inner_text()
    section.locator(f"#replay-button-{assistant.pk}").click()
    page.wait_for_selector(f"#replay-{assistant.pk} progress")
    assert re.search(r"\d+ of 24 conversations replayed", section.inner_text())
    page.wait_for_selector(f"#replay-{assistant.pk} .replay-job[data-status=done]", timeout=60_000)
    summary = section.locator(".replay-summary").inner_text()
    assert "33.3% would escalate (8 of 24 conversations)" in summary
    assert section.locator("#reason-chart rect").count() == 1
    assert section.locator("#channel-chart rect").count() == 2
    assert section.locator(".replay-samples li").count() == 5
    assert ASKS in section.locator(".replay-samples").inner_text()
    assert ReplayJob.objects.get().status == "done"
    no_errors(page)

    # The sensitivity preview answers as the slider moves, and nothing is saved.
    slider = page.locator(f"#id_assistant-{assistant.pk}-sensitivity")
    slider.fill("0.9")
    slider.dispatch_event("input")
    preview = page.locator(f"#sensitivity-preview-{assistant.pk}")
    preview.locator(".preview-rate").wait_for()
    assert "0.0% now → 100.0% with these settings" in preview.inner_text()
    assert "+100.0 points" in preview.inner_text()
    assistant.refresh_from_db()
    assert assistant.sensitivity == 0.5
    no_errors(page)


def test_one_click_after_resolving_says_whether_the_handover_was_needed(
    open_page, transactional_db
):
    marina = AgentFactory(display_name="Marina", username="marina")
    conversation = ConversationFactory(contact__name="Jamie Patel")

    def escalate_and_resolve():
        Message.objects.create(
            conversation=conversation, channel=conversation.channel, sender="customer", text=ASKS
        )
        escalation, _ = escalation_services.escalate_conversation(
            conversation=conversation, reason="request", priority=3, triggered_by="detection"
        )
        escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=marina)
        return escalation

    escalation = off_the_browser_thread(escalate_and_resolve)
    page = open_page("marina")
    sign_in(page, marina, next_url=f"/crm/conversations/{conversation.pk}/")
    assert page.locator("#verdict-yes").count() == 0  # not before resolving
    page.click("#resolve")
    page.wait_for_selector("#handoff-verdict:has-text('Was handing this over needed?')")
    page.click("#verdict-no")
    page.wait_for_selector("#handoff-verdict .verdict-given:has-text('was not needed')")
    assert page.locator("#verdict-yes").count() == 0
    verdict = HandoffVerdict.objects.get(escalation=escalation)
    assert (verdict.needed, verdict.given_by) == (False, marina)
    page.reload()
    page.wait_for_selector("#handoff-verdict .verdict-given")
    assert page.locator("#verdict-no").count() == 0
    no_errors(page)
