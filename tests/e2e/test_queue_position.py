"""A customer waiting for a person sees their place and estimate in the widget, and sees it
move as agents (here, in the inbox of another browser context) pick up the people ahead."""

import re

import pytest

from escalation.models import Escalation, Priority
from tests.factories import (
    AgentFactory,
    AssistantFactory,
    ChannelFactory,
    ConversationFactory,
    TeamFactory,
)

from .conftest import sign_in, wait_live
from .test_inbox import assert_clean, wait_counts, watch_console

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.redis]


def ask_for_a_person(customer, channel) -> None:
    """The customer opens the channel's widget on the demo page and asks for a person."""
    customer.goto(f"/widget/demo/?channel={channel.key}")
    customer.click(".le-launch")
    customer.fill(".le-input", "I want to speak to a person")
    customer.press(".le-input", "Enter")


def test_the_widget_shows_the_place_in_the_queue_and_updates_it_live(open_page, escalate):
    team = TeamFactory(name="Support")
    channel = ChannelFactory(
        kind="website", assistant=AssistantFactory(handoff_enabled=True), default_team=team
    )
    marina = AgentFactory(display_name="Marina", username="marina", teams=[team])

    def waiting(name):
        return escalate(
            ConversationFactory(channel=channel, contact__name=name, team=team),
            text="Help please",
            priority=Priority.URGENT,  # ahead of the customer's request, whatever its priority
        )

    first = waiting("Jamie Patel")
    waiting("Ana Ruiz")

    agent = open_page("marina")
    agent_errors = watch_console(agent)
    sign_in(agent, marina, next_url="/crm/inbox/")
    wait_live(agent)

    customer = open_page("customer")
    customer_errors = watch_console(customer)
    ask_for_a_person(customer, channel)
    status = customer.locator(".le-status")
    # (the widget lives in a shadow root: Playwright's selectors reach into it)
    customer.wait_for_selector(".le-status:has-text('You are number 3')", timeout=45_000)
    assert re.fullmatch(
        r"You are number 3 in the queue — about \d+ minutes?\.", status.inner_text().strip()
    )
    wait_counts(agent, queued=3)

    # Marina opens the first in her inbox and takes it over: the customer moves up, live.
    agent.goto(f"/crm/inbox/?c={first.conversation_id}")
    wait_live(agent)
    agent.keyboard.press("t")
    agent.wait_for_selector("#handled-by:has-text('You are handling this conversation.')")
    customer.wait_for_selector(".le-status:has-text('You are number 2')")
    wait_counts(agent, queued=2, mine=1)

    # Then the customer's own conversation is taken: the place gives way to the agent's name.
    customer_escalation = Escalation.objects.filter(status="queued").order_by("-id").first()
    agent.goto(f"/crm/inbox/?c={customer_escalation.conversation_id}")
    wait_live(agent)
    agent.keyboard.press("t")
    customer.wait_for_selector(".le-status:has-text('Now speaking with Marina')")
    assert "You are number" not in status.inner_text()
    assert_clean(agent)
    assert agent_errors == [], agent_errors
    assert customer_errors == [], customer_errors


def test_while_the_team_is_closed_the_status_line_names_the_reopening(open_page):
    """Not "about 3977 minutes": the wait stretched over the closed days reads as the day and
    hour the team is back."""
    from datetime import timedelta

    from django.utils import timezone

    from escalation.models import TeamRouting

    team = TeamFactory(name="Night")
    opens = (timezone.now() + timedelta(days=3)).replace(hour=9, minute=0)
    TeamRouting.objects.create(
        team=team,
        time_zone="UTC",
        weekly_hours=[{"day": opens.strftime("%a").lower(), "opens": "09:00", "closes": "17:00"}],
    )
    channel = ChannelFactory(
        kind="website", assistant=AssistantFactory(handoff_enabled=True), default_team=team
    )
    customer = open_page("customer")
    customer_errors = watch_console(customer)
    ask_for_a_person(customer, channel)
    status = customer.locator(".le-status")
    customer.wait_for_selector(".le-status:has-text('You are number 1')", timeout=45_000)
    assert status.inner_text().strip() == (
        "You are number 1 in the queue — we'll be with you when we reopen, "
        f"{opens.strftime('%A')} {opens.day} {opens.strftime('%B')} 09:00 (UTC)."
    )
    assert customer_errors == [], customer_errors
