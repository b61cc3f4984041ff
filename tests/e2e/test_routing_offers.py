"""An automatic team in the browser: the escalation is offered to one agent, who does not
answer; when the accept timeout passes, the scheduler (the embedded beat inside the server)
offers it to the next agent, who accepts and lands in the conversation. Each page shows one
consistent state after every step, no template syntax, no console errors."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from escalation import services as escalation_services
from escalation.models import Escalation, Priority, TeamRouting
from tests.factories import AgentFactory, ChannelFactory, ConversationFactory, TeamFactory

from .conftest import off_the_browser_thread, sign_in, wait_for_js, wait_live

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.redis]

TIMEOUT_S = 5  # the shortest accept timeout a team may set
BEAT_MS = (TIMEOUT_S + 5 + 10) * 1000  # the timeout, one beat interval, and a busy machine


def _clean(page):
    html = page.content()
    assert "{{" not in html and "{%" not in html, "template syntax on the page"
    assert "Server Error" not in html
    assert not [line for line in page.le_console if "error" in line.lower()], page.le_console


def test_an_offer_times_out_moves_to_the_next_agent_who_accepts(open_page, escalate):
    team = TeamFactory(name="Orders")
    TeamRouting.objects.create(
        team=team, mode="automatic", strategy="round_robin", accept_timeout_seconds=TIMEOUT_S
    )
    marina = AgentFactory(display_name="Marina", username="marina", teams=[team])
    alex = AgentFactory(display_name="Alex", username="alex", teams=[team])
    conversation = ConversationFactory(
        contact__name="Jamie Patel", channel=ChannelFactory(default_team=team)
    )

    pages = {}
    for name, user in (("marina", marina), ("alex", alex)):
        page = open_page(name)
        sign_in(page, user)
        wait_live(page)
        pages[name] = page

    escalation = escalate(conversation, text="Where is my order?", priority=Priority.HIGH)
    row = f'.queue-row[data-escalation-id="{escalation.pk}"]'

    # Round robin starts with Marina: her queue offers it to her, Alex's says so.
    pages["marina"].wait_for_selector(f"{row} .offer:has-text('Offered to you')")
    pages["marina"].wait_for_selector(f"{row} .offer-left:has-text('s to accept')")
    pages["alex"].wait_for_selector(f"{row} .offered-to:has-text('Offered to Marina')")
    pages["alex"].wait_for_selector(f"{row} .sla")
    for page in pages.values():
        _clean(page)
    assert pages["marina"].is_enabled(f"{row} .offer button:has-text('Accept')")
    # Her countdown ends (moved to the past here, not waited for): both answers are disabled,
    # as the server would refuse them until the sweep moves the offer on.
    pages["marina"].evaluate(
        "sel => { document.querySelector(sel).dataset.offerExpires ="
        " new Date(Date.now() - 1000).toISOString(); }",
        f"{row} .offer",
    )
    pages["marina"].wait_for_selector(f"{row} .offer button:has-text('Accept'):disabled")
    assert pages["marina"].is_disabled(f"{row} .offer button:has-text('Decline')")
    assert pages["marina"].locator(f"{row} .offer-left").inner_text() == "expiring…"

    # Marina does not answer: after the timeout the scheduler offers it to Alex.
    pages["alex"].wait_for_selector(f"{row} .offer:has-text('Offered to you')", timeout=BEAT_MS)
    pages["marina"].wait_for_selector(f"{row} .offered-to:has-text('Offered to Alex')")
    assert pages["marina"].locator(f"{row} .offer").count() == 0
    for page in pages.values():
        _clean(page)

    # Alex accepts and lands in the conversation, which is his.
    pages["alex"].click(f"{row} .offer button:has-text('Accept')")
    pages["alex"].wait_for_url(f"**/crm/conversations/{conversation.pk}/")
    pages["alex"].wait_for_selector("#handled-by:has-text('You are handling this conversation.')")
    _clean(pages["alex"])
    pages["marina"].wait_for_selector(row, state="detached")

    escalation.refresh_from_db()
    assert (escalation.status, escalation.claimed_by) == ("claimed", alex)
    kinds = list(escalation.events.values_list("kind", flat=True))
    assert kinds.count("offered") == 2 and kinds.count("offer_expired") == 1
    assert kinds[-1] == "claimed"


def test_the_queue_turns_amber_then_red_and_re_sorts_live_when_waiting_raises_priority(
    open_page, transactional_db
):
    """The SLA cell of each row: plain with time to spare, amber in the last quarter of the
    target, red once breached. Then the embedded beat (make run's scheduler) ages the low row
    that waited long enough, and the agent's queue re-sorts live: no reload, no click."""
    team = TeamFactory(name="Orders", target_wait_seconds=86400)  # no reminder meddles
    TeamRouting.objects.create(team=team, sla_targets={"low": 1200, "normal": 1500})
    marina = AgentFactory(display_name="Marina", username="marina", teams=[team])

    def escalate(name, priority, waited_seconds):
        conversation = ConversationFactory(
            contact__name=name, channel=ChannelFactory(default_team=team)
        )
        escalation = escalation_services.escalate_conversation(
            conversation=conversation,
            reason="request",
            priority=priority,
            triggered_by=Escalation.Trigger.DETECTION,
        )[0]
        # Escalated that long ago (its SLA clock shifted with it); its priority set just now.
        shift = timedelta(seconds=waited_seconds)
        Escalation.objects.filter(pk=escalation.pk).update(
            escalated_at=escalation.escalated_at - shift, sla_due_at=escalation.sla_due_at - shift
        )
        return escalation

    # Low, waited 1000 s of its 1200 s target: amber. Normal, new: plenty of time. High, waited
    # 400 s of its 300 s (the default): red.
    low = off_the_browser_thread(escalate, "Lou Low", Priority.LOW, 1000)
    normal = off_the_browser_thread(escalate, "Nora Normal", Priority.NORMAL, 0)
    high = off_the_browser_thread(escalate, "Hal High", Priority.HIGH, 400)

    page = open_page("marina")
    sign_in(page, marina)
    wait_live(page)

    def sla(escalation):
        return f'.queue-row[data-escalation-id="{escalation.pk}"] .sla'

    page.wait_for_selector(f"{sla(low)}.sla-amber")
    page.wait_for_selector(f"{sla(high)}.sla-red")
    assert page.locator(f"{sla(normal)}.sla-amber, {sla(normal)}.sla-red").count() == 0
    assert page.locator(f"{sla(low)}.sla-red").count() == 0
    order = "Array.from(document.querySelectorAll('.queue-row')).map(r => +r.dataset.escalationId)"
    assert page.evaluate(order) == [high.pk, normal.pk, low.pk]  # most urgent, then oldest
    _clean(page)

    # The low row has now waited its level's ageing time (30 min by default): the next beat
    # raises it to normal, and, older than the other normal row, it moves above it.
    Escalation.objects.filter(pk=low.pk).update(
        priority_changed_at=timezone.now() - timedelta(hours=1)
    )
    re_sorted = json.dumps([high.pk, low.pk, normal.pk], separators=(",", ":"))
    wait_for_js(page, f"JSON.stringify({order}) === '{re_sorted}'", timeout=60)
    low_row = f'.queue-row[data-escalation-id="{low.pk}"]'
    page.wait_for_selector(f"{low_row} .pill.prio-normal:has-text('Normal')")
    _clean(page)

    aged = low.events.get(kind="aged")
    assert (aged.old_value, aged.new_value) == ("low", "normal")
    assert "Waited 30 min at low priority" in aged.note
