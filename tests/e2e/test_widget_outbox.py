"""The widget never loses what a customer typed (static/widget.js with the customer socket):
a message whose acknowledgement never arrived stays "Sending…" (also across a reload) and is
sent again with its client id on reconnect; the server stores it once."""

import time

import pytest

from crm.models import Message
from tests.factories import AssistantFactory, ChannelFactory

# PostgreSQL and Redis only for now: on the embedded default the widget's first message is not
# acknowledged within the step timeout behind the test's WebSocket proxy (not yet understood).
pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.redis]


def wait_until(page, predicate, timeout=15.0):
    """Poll ``predicate``; waiting through the page lets Playwright run the route callbacks."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        page.wait_for_timeout(100)


def stored(text):
    return Message.objects.filter(text=text, sender="customer").count()


def test_a_message_whose_ack_was_lost_is_resent_and_stored_once(open_page, transactional_db):
    ChannelFactory(kind="website", assistant=AssistantFactory())
    state = {"drop_acks": False, "dropped": 0, "routes": []}

    def route(ws):
        # A proxy between the widget and the server that can lose the server's acks.
        server = ws.connect_to_server()
        state["routes"].append(ws)

        def from_server(message):
            if state["drop_acks"] and '"client_id"' in str(message):
                state["dropped"] += 1
                return
            ws.send(message)

        server.on_message(from_server)

    customer = open_page("customer")
    customer.route_web_socket("**/ws/conversations/**", route)
    customer.goto("/widget/demo/")
    customer.click(".le-launch")
    customer.fill(".le-input", "Hello there")
    customer.press(".le-input", "Enter")
    customer.wait_for_selector(".le-customer[data-id]:has-text('Hello there')")
    customer.wait_for_selector(".le-ai")

    # 1. Stored by the server, the ack lost: still "Sending…", kept in localStorage.
    state["drop_acks"] = True
    customer.fill(".le-input", "Is my order shipped?")
    customer.press(".le-input", "Enter")
    wait_until(customer, lambda: stored("Is my order shipped?") == 1 and state["dropped"] >= 1)
    pending = customer.locator(".le-pending:has-text('Is my order shipped?')")
    assert pending.count() == 1 and "Sending…" in pending.inner_text()
    saved = customer.evaluate(
        "Object.keys(localStorage).filter(k => k.includes(':unacked:'))"
        ".map(k => localStorage.getItem(k))"
    )
    assert len(saved) == 1 and "Is my order shipped?" in saved[0]

    # 2. A reload keeps it unacknowledged (the ack of the resend is lost too) ...
    customer.reload()
    customer.click(".le-launch")
    customer.wait_for_selector(".le-pending:has-text('Is my order shipped?')")
    wait_until(customer, lambda: state["dropped"] >= 2)

    # 3. ... until a connection delivers the ack: sent, shown once, stored once.
    state["drop_acks"] = False
    state["routes"][-1].close()
    customer.wait_for_selector(".le-pending", state="detached")
    customer.wait_for_selector(".le-customer[data-id]:has-text('Is my order shipped?')")
    assert customer.locator(".le-msg:has-text('Is my order shipped?')").count() == 1
    assert stored("Is my order shipped?") == 1
    assert (
        customer.evaluate("Object.keys(localStorage).filter(k => k.includes(':unacked:')).length")
        == 0
    )
