"""Two agents click Take Over on the same conversation at once: one gets it, the other is told
who did — on the page, without an error page. A third agent's open queue shows who took it, and
the alert in their bell says so and no longer counts as unread."""

import pytest

from escalation.models import Escalation, Priority
from tests.factories import AgentFactory, ConversationFactory

from .conftest import assert_page_clean, sign_in, wait_live

pytestmark = [pytest.mark.browser]


def test_two_agents_take_over_at_once_and_the_loser_is_told_who_won(open_page, escalate):
    users = {
        name: AgentFactory(display_name=name.capitalize(), username=name)
        for name in ("marina", "alex", "sam")
    }
    conversation = ConversationFactory(contact__name="Jamie Patel")

    escalation = escalate(
        conversation,
        text="Refund please",
        reason="complexity",
        priority=Priority.HIGH,
        detail="Refund of a duplicate charge",
    )
    url = f"/crm/conversations/{conversation.pk}/"

    watcher = open_page("sam-queue")
    sign_in(watcher, users["sam"])
    wait_live(watcher)
    watcher.wait_for_selector(f'.queue-row[data-escalation-id="{escalation.pk}"]')
    watcher.wait_for_selector('#bell-count .badge[data-unread="1"]')
    watcher.click("#bell summary")
    watcher.wait_for_selector(".bell-panel li.unread:has-text('Jamie Patel needs an agent')")

    pages = {}
    for name in ("marina", "alex"):
        page = open_page(name)
        sign_in(page, users[name], next_url=url)
        wait_live(page)
        page.wait_for_selector("#take-over")
        pages[name] = page

    # Both browsers click at the same wall-clock moment (they share this machine's clock).
    at = pages["marina"].evaluate("Date.now()") + 400
    for page in pages.values():
        page.evaluate(
            "at => setTimeout(() => document.querySelector('#take-over').click(), at - Date.now())",
            at,
        )

    for _ in range(100):
        escalation.refresh_from_db()
        if escalation.status == "claimed":
            break
        pages["alex"].wait_for_timeout(100)
    assert escalation.status == "claimed"
    winner = "marina" if escalation.claimed_by.username == "marina" else "alex"
    loser = "alex" if winner == "marina" else "marina"
    winner_name = winner.capitalize()

    pages[winner].wait_for_selector("#handled-by:has-text('You are handling this conversation.')")
    pages[loser].wait_for_selector(
        f".toast:has-text('{winner_name} already took this conversation.')"
    )
    pages[loser].wait_for_selector(
        f"#handled-by:has-text('{winner_name} is handling this conversation.')"
    )
    assert pages[loser].locator("#take-over").count() == 0
    assert "Server Error" not in pages[loser].content()

    # The third agent's queue said who took it, then dropped the row.
    watcher.wait_for_selector(
        f".queue-row[data-escalation-id='{escalation.pk}'] .claimed-by"
        f":has-text('{winner_name} took this conversation')",
    )
    watcher.wait_for_selector(f".queue-row[data-escalation-id='{escalation.pk}']", state="detached")
    # ... and the alert it had followed the escalation, without a reload.
    watcher.wait_for_selector(
        f".bell-panel li.settled:has-text('Jamie Patel needs an agent')"
        f" .outcome:has-text('Taken by {winner_name}')"
    )
    watcher.wait_for_selector('#bell-count .badge[data-unread="0"]', state="attached")
    for page in (watcher, *pages.values()):
        assert_page_clean(page)
    assert Escalation.objects.get(pk=escalation.pk).events.filter(kind="claimed").count() == 1
