"""Canned replies: who may write and insert which, placeholders checked on save and filled on
insert, and a use count that no concurrent insert loses."""

import threading

import pytest
from django.db import connections

from crm import selectors, services
from crm.errors import InvalidMessage, NotAssigned, NotFound
from crm.models import AgentProfile, CannedReply

from ..factories import AgentFactory, ConversationFactory, TeamFactory


@pytest.fixture
def billing(db):
    return TeamFactory(name="Billing")


@pytest.fixture
def marina(billing):
    return AgentFactory(display_name="Marina Costa", username="marina", teams=[billing])


@pytest.fixture
def manager(db):
    return AgentFactory(display_name="Morgan", username="morgan", role=AgentProfile.Role.MANAGER)


def test_placeholders_are_checked_when_saved(marina):
    with pytest.raises(InvalidMessage, match="unknown placeholders: contact.email"):
        services.save_canned_reply(
            actor=marina, shortcut="hi", title="Hello", body="Hi {contact.email}"
        )
    with pytest.raises(InvalidMessage, match="unmatched brace"):
        services.save_canned_reply(actor=marina, shortcut="hi", title="Hello", body="Hi {oops")
    with pytest.raises(InvalidMessage, match="shortcut"):
        services.save_canned_reply(actor=marina, shortcut="two words", title="t", body="b")
    assert not CannedReply.objects.exists()


def test_team_replies_are_written_by_managers_and_shortcuts_are_unique(marina, manager, billing):
    with pytest.raises(NotAssigned):
        services.save_canned_reply(actor=marina, team=billing, shortcut="r", title="t", body="b")
    services.save_canned_reply(actor=manager, team=billing, shortcut="refund", title="R", body="b")
    with pytest.raises(InvalidMessage, match="already used"):
        services.save_canned_reply(
            actor=manager, team=billing, shortcut="refund", title="R2", body="b"
        )
    # A personal reply may reuse a team's shortcut.
    services.save_canned_reply(actor=marina, shortcut="refund", title="Mine", body="b")
    assert CannedReply.objects.count() == 2


def test_insert_fills_placeholders_and_counts_the_use(marina, billing, manager):
    reply = services.save_canned_reply(
        actor=manager,
        team=billing,
        shortcut="refund",
        title="Refund on its way",
        body="Hi {contact.first_name}, {agent.name} here: {ticket.reference} is refunded.",
    )
    conversation = ConversationFactory(contact__name="Jamie Patel")
    text = services.use_canned_reply(
        reply_id=reply.pk, conversation=conversation, agent=marina, ticket_reference="T-000042"
    )
    assert text == "Hi Jamie, Marina Costa here: T-000042 is refunded."
    reply.refresh_from_db()
    assert reply.use_count == 1


def test_an_agent_cannot_insert_another_agents_or_another_teams_reply(marina, manager):
    other_team = TeamFactory(name="Support")
    theirs = services.save_canned_reply(actor=manager, shortcut="p", title="Personal", body="b")
    support = services.save_canned_reply(
        actor=manager, team=other_team, shortcut="s", title="Support", body="b"
    )
    conversation = ConversationFactory()
    for reply in (theirs, support):
        with pytest.raises(NotFound):
            services.use_canned_reply(reply_id=reply.pk, conversation=conversation, agent=marina)
    assert list(selectors.search_canned_replies(marina, "")) == []


def test_search_matches_shortcut_prefix_first_then_title(marina):
    services.save_canned_reply(actor=marina, shortcut="ship", title="Shipping times", body="b")
    services.save_canned_reply(actor=marina, shortcut="late", title="Where is my ship", body="b")
    services.save_canned_reply(actor=marina, shortcut="hello", title="Greeting", body="b")
    found = [r.shortcut for r in selectors.search_canned_replies(marina, "/ship")]
    assert found == ["ship", "late"]


def test_search_finds_a_word_of_the_reply_text_after_shortcut_and_title_matches(marina):
    services.save_canned_reply(
        actor=marina, shortcut="money", title="Money back", body="Your refund is on its way."
    )
    services.save_canned_reply(actor=marina, shortcut="ref", title="Referral", body="b")
    services.save_canned_reply(actor=marina, shortcut="x", title="Refund policy", body="b")
    services.save_canned_reply(actor=marina, shortcut="hello", title="Greeting", body="Hi!")
    found = [r.shortcut for r in selectors.search_canned_replies(marina, "/refund")]
    assert found == ["x", "money"]
    found = [r.shortcut for r in selectors.search_canned_replies(marina, "/ref")]
    assert found == ["ref", "x", "money"]


def test_a_shortcut_match_is_not_crowded_out_by_many_more_used_replies_that_say_the_word(marina):
    """The / menu with a short query: the word is in the text of many replies, but the reply
    whose shortcut starts with it still comes first, however little it is used."""
    CannedReply.objects.bulk_create(
        CannedReply(owner=marina, shortcut=f"r{i}", title=f"Reply {i}", body="Thanks!", use_count=9)
        for i in range(60)
    )
    services.save_canned_reply(actor=marina, shortcut="thanks", title="Thank you", body="b")
    found = [r.shortcut for r in selectors.search_canned_replies(marina, "/thanks")]
    assert found[0] == "thanks" and len(found) == 8


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_inserts_never_lose_a_count(marina):
    reply = services.save_canned_reply(actor=marina, shortcut="hi", title="Hello", body="Hi")
    conversation = ConversationFactory()
    barrier = threading.Barrier(8)
    errors = []

    def insert():
        try:
            barrier.wait()
            for _ in range(5):
                services.use_canned_reply(
                    reply_id=reply.pk, conversation=conversation, agent=marina
                )
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=insert) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    reply.refresh_from_db()
    assert reply.use_count == 40
