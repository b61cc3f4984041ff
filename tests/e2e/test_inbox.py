"""The agent's workspace in Chromium, two agents in two browser contexts: the three-pane inbox
with live counts, keyboard shortcuts, a canned reply on "/", who else is on the conversation,
and the reply box's warning before sending into a colleague's conversation."""

import re

import pytest

from crm import services as crm_services
from crm.models import AgentProfile, Message
from escalation.models import Escalation, Priority
from tests.factories import AgentFactory, ConversationFactory, TeamFactory

from .conftest import sign_in, wait_for_js, wait_live

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.redis]

TEMPLATE_SYNTAX = re.compile(r"\{[{%]|[%}]\}")


# htmx logs an aborted request as an error: an action replacing an in-flight live refresh of
# the panel (hx-sync, by design) or a navigation leaving one behind. A failed request still
# shows up, as its HTTP status or htmx:responseError/sendError.
ABORTED = {"htmx:sendAbort, [object HTMLElement]", "htmx:afterRequest, [object HTMLElement]"}


def watch_console(page):
    errors = []
    page.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and m.text not in ABORTED else None,
    )
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on(
        "response",
        lambda r: errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None,
    )
    return errors


def counts(page) -> dict:
    return {
        name: int(page.locator(f"#count-{name}").inner_text())
        for name in ("queued", "mine", "team", "resolved")
    }


def wait_counts(page, **expected):
    condition = " && ".join(
        f"document.querySelector('#count-{name}')?.textContent.trim() === '{value}'"
        for name, value in expected.items()
    )
    wait_for_js(page, condition)


def assert_clean(page):
    text = page.locator("body").inner_text()
    assert not TEMPLATE_SYNTAX.search(text), text[:500]
    assert "Server Error" not in text


@pytest.fixture
def world(escalate):
    team = TeamFactory(name="Billing")
    marina = AgentFactory(display_name="Marina", username="marina", teams=[team])
    alex = AgentFactory(
        display_name="Alex", username="alex", teams=[team], role=AgentProfile.Role.AGENT
    )
    crm_services.save_canned_reply(
        actor=marina,
        shortcut="refund",
        title="Refund on its way",
        body="Hi {contact.first_name}, {agent.name} here: {ticket.reference} is refunded.",
    )

    def refund(name, priority):
        return escalate(
            ConversationFactory(contact__name=name, team=team),
            text="Refund please",
            reason="complexity",
            priority=priority,
            detail="Refund of a duplicate charge",
        )

    first = refund("Jamie Patel", Priority.HIGH)
    second = refund("Ana Ruiz", Priority.NORMAL)
    return {"marina": marina, "alex": alex, "first": first, "second": second}


def test_two_agents_in_the_inbox_counts_shortcuts_canned_reply_and_collision(open_page, world):
    first, second = world["first"], world["second"]
    marina = open_page("marina")
    marina_errors = watch_console(marina)
    sign_in(marina, world["marina"], next_url="/crm/inbox/")
    wait_live(marina)
    alex = open_page("alex")
    alex_errors = watch_console(alex)
    sign_in(alex, world["alex"], next_url="/crm/inbox/")
    wait_live(alex)

    for page in (marina, alex):
        assert counts(page) == {"queued": 2, "mine": 0, "team": 2, "resolved": 0}
        # The most urgent is open first, in the middle pane, with the contact on the right.
        page.wait_for_selector(f'#conversation[data-conversation-id="{first.conversation_id}"]')
        assert "Jamie Patel" in page.locator(".contact-card").inner_text()
        assert_clean(page)

    # j / k move through the list and open the conversation in place (no reload).
    marina.evaluate("window.__sameDocument = true")
    marina.keyboard.press("j")
    marina.wait_for_selector(f'#conversation[data-conversation-id="{second.conversation_id}"]')
    assert f"c={second.conversation_id}" in marina.url
    marina.keyboard.press("k")
    marina.wait_for_selector(f'#conversation[data-conversation-id="{first.conversation_id}"]')
    assert marina.evaluate("window.__sameDocument") is True

    # Alex sees Marina viewing the conversation, live.
    alex.wait_for_selector("#presence:has-text('Marina is viewing')")
    marina.wait_for_selector("#presence:has-text('Alex is viewing')")

    # t takes over; both inboxes' counts follow without a reload.
    marina.keyboard.press("t")
    marina.wait_for_selector("#handled-by:has-text('You are handling this conversation.')")
    wait_counts(marina, queued=1, mine=1, team=2)
    wait_counts(alex, queued=1, mine=0, team=2)
    alex.wait_for_selector("#handled-by:has-text('Marina is handling this conversation.')")
    alex.wait_for_selector("#reply-warning:has-text('Marina is handling this conversation')")
    assert alex.locator("#send-reply").is_disabled()

    # r focuses the reply box; "/" finds the canned reply, Enter inserts it filled in.
    marina.keyboard.press("r")
    marina.keyboard.type("/ref")
    marina.wait_for_selector(".canned-option:has-text('/refund')")
    marina.keyboard.press("Enter")
    ticket = Escalation.objects.get(pk=first.pk).ticket
    expected = f"Hi Jamie, Marina here: {ticket.reference} is refunded."
    wait_for_js(marina, "t => document.querySelector('#reply-text').value === t", expected)

    # Alex types a note; Marina sees it and her send asks to confirm first.
    alex.fill("#reply-text", "I could take this one")
    alex.type("#reply-text", "!")
    marina.wait_for_selector("#presence:has-text('Alex is typing a reply')")
    marina.click("#send-reply")
    marina.wait_for_selector("#reply-warning:has-text('Press Send again')")
    assert not Message.objects.filter(text=expected).exists()
    marina.click("#send-reply")
    marina.wait_for_selector(f"#messages .sender-agent:has-text('{expected}')")
    assert Message.objects.filter(text=expected).count() == 1
    alex.wait_for_selector(f"#messages .sender-agent:has-text('{expected}')")

    # e resolves; "Recently resolved" counts it on both screens.
    marina.keyboard.press("Escape")
    marina.keyboard.press("e")
    marina.wait_for_selector("#conversation-panel .status-text:has-text('Resolved')")
    wait_counts(marina, queued=1, mine=0, team=1, resolved=1)
    wait_counts(alex, queued=1, mine=0, team=1, resolved=1)

    # ? shows the shortcuts.
    marina.keyboard.press("?")
    marina.wait_for_selector("#shortcut-help[open]")
    marina.keyboard.press("Escape")

    # Alex leaves the conversation: Marina no longer sees him.
    alex.keyboard.press("Escape")
    alex.keyboard.press("j")
    alex.wait_for_selector(f'#conversation[data-conversation-id="{second.conversation_id}"]')
    marina.wait_for_selector("#presence", state="hidden")

    # Deep links keep working: the inbox on a list and a conversation, and the separate pages.
    marina.goto(f"/crm/inbox/?list=resolved&c={first.conversation_id}")
    marina.wait_for_selector('#inbox-lists [data-list="resolved"][aria-selected="true"]')
    marina.wait_for_selector(f'#conversation[data-conversation-id="{first.conversation_id}"]')
    assert "Jamie Patel" in marina.locator("#inbox-items").inner_text()
    marina.goto("/crm/live-escalation/")
    marina.wait_for_selector(f'.queue-row[data-escalation-id="{second.pk}"]')
    assert marina.locator(f'.queue-row[data-escalation-id="{first.pk}"]').count() == 0
    ticket = Escalation.objects.get(pk=first.pk).ticket
    marina.goto(f"/crm/tickets/{ticket.pk}/")
    assert marina.locator("#ticket-status").inner_text() == "Resolved"
    marina.click("#ticket-conversation")
    marina.wait_for_url(f"**/crm/conversations/{first.conversation_id}/")
    marina.wait_for_selector("#conversation-panel .status-text:has-text('Resolved')")
    for page in (marina, alex):
        assert_clean(page)
    assert Escalation.objects.get(pk=first.pk).status == "resolved"
    assert marina_errors == [] and alex_errors == []


def test_the_inbox_is_usable_at_1280_pixels(open_page, world):
    page = open_page("marina-1280")
    errors = watch_console(page)
    sign_in(page, world["marina"], next_url="/crm/inbox/")
    wait_live(page)
    page.wait_for_selector("#conversation")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280
    for selector in (".inbox-lists-pane", ".conv-main", ".conv-side", "#reply-text"):
        box = page.locator(selector).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 1280, selector
        assert box["width"] > 200, selector
    # Side by side, none over another, none cutting off its own content.
    panes = [page.locator(s).bounding_box() for s in (".inbox-lists-pane", ".conv-main")]
    panes.append(page.locator(".conv-side").bounding_box())
    for left, right in zip(panes, panes[1:], strict=False):
        assert left["x"] + left["width"] <= right["x"]
    for selector in (".inbox-lists-pane", ".conv-main", ".conv-side", "#messages"):
        assert page.locator(selector).evaluate("e => e.scrollWidth <= e.clientWidth"), selector
    # What an agent acts on is on screen without scrolling sideways.
    for selector in ("#count-queued", "#take-over", "#send-reply", ".contact-card"):
        box = page.locator(selector).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 1280, selector
        assert page.locator(selector).is_visible(), selector
    assert errors == []
