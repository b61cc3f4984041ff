"""CRM services: messages stored first, effects after commit, typed errors for bad input."""

import pytest

from crm import realtime
from crm import services as crm_services
from crm.errors import ConversationClosed, InvalidMessage, NotAssigned
from crm.models import ContactIdentity, Conversation, CustomerText, Message
from escalation.models import MessageAnalysis
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    pushed = []
    monkeypatch.setattr(
        realtime, "send_soon", lambda group, event: pushed.append((group, event["type"])) or True
    )
    return pushed


def test_a_customer_message_is_stored_first_and_analysed_and_broadcast_after_commit(
    conversation, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message = crm_services.receive_customer_message(
            conversation=conversation, text="  hello there  "
        )
    assert message.pk and message.text == "hello there" and message.sender == "customer"
    assert sent == [] and not MessageAnalysis.objects.exists()
    for callback in callbacks:
        callback()
    assert (f"conversation.{conversation.pk}", "message.created") in sent
    assert MessageAnalysis.objects.filter(message=message).exists()


def test_the_customers_copy_names_the_socket_that_echoed_the_message_the_staff_copy_not(
    conversation, monkeypatch, django_capture_on_commit_callbacks
):
    pushed = []
    monkeypatch.setattr(
        realtime,
        "send_soon",
        lambda group, event, sender_channel=None: pushed.append((group, sender_channel)),
    )
    committed = []
    echo = realtime.Echo(channel="specific.abc!def", committed=lambda: committed.append(pushed[:]))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        crm_services.receive_customer_message(conversation=conversation, text="hi", echoed_to=echo)
    assert committed == []
    for callback in callbacks:
        callback()
    assert committed == [[]]  # told at commit, before any broadcast of the message
    assert (f"conversation.{conversation.pk}", "specific.abc!def") in pushed
    assert (f"staff.conversation.{conversation.pk}", None) in pushed


def test_a_socket_that_cannot_be_told_of_the_commit_still_gets_the_broadcast_and_the_analysis(
    conversation, monkeypatch, django_capture_on_commit_callbacks
):
    pushed = []
    monkeypatch.setattr(
        realtime,
        "send_soon",
        lambda group, event, sender_channel=None: pushed.append((group, sender_channel)),
    )

    def loop_closed():
        raise RuntimeError("Event loop is closed")

    echo = realtime.Echo(channel="specific.abc!def", committed=loop_closed)
    with django_capture_on_commit_callbacks(execute=True):
        message = crm_services.receive_customer_message(
            conversation=conversation, text="hi", echoed_to=echo
        )
    assert (f"conversation.{conversation.pk}", None) in pushed  # to every socket
    assert MessageAnalysis.objects.filter(message=message).exists()


def test_a_repeated_provider_message_id_is_processed_once(conversation):
    first = crm_services.receive_customer_message(
        conversation=conversation, text="hi", provider_message_id="wamid.1"
    )
    again = crm_services.receive_customer_message(
        conversation=conversation, text="hi", provider_message_id="wamid.1"
    )
    assert first.pk == again.pk and conversation.messages.count() == 1


def test_a_message_to_a_closed_conversation_reopens_it_with_the_ai(conversation, agent):
    Conversation.objects.filter(pk=conversation.pk).update(mode="closed", assigned_agent=agent)
    crm_services.receive_customer_message(conversation=conversation, text="back again")
    conversation.refresh_from_db()
    assert conversation.mode == Conversation.Mode.AI and conversation.assigned_agent is None


@pytest.mark.parametrize("text", ["", "   ", None, 42, "a\x00b", "x" * 4001])
def test_bad_message_text_is_a_typed_error(conversation, text):
    with pytest.raises(InvalidMessage):
        crm_services.receive_customer_message(conversation=conversation, text=text)
    assert not conversation.messages.exists()


def test_only_the_assigned_agent_replies(conversation, agent, other_agent):
    with pytest.raises(NotAssigned):
        crm_services.send_agent_message(conversation=conversation, agent=agent, text="hi")
    Conversation.objects.filter(pk=conversation.pk).update(mode="agent", assigned_agent=agent)
    with pytest.raises(NotAssigned):
        crm_services.send_agent_message(conversation=conversation, agent=other_agent, text="hi")
    reply = crm_services.send_agent_message(conversation=conversation, agent=agent, text="Hi!")
    assert (reply.sender, reply.author, reply.is_private_note) == ("agent", agent, False)


def test_a_private_note_is_never_sent_to_the_customer(
    conversation, other_agent, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        note = crm_services.send_agent_message(
            conversation=conversation, agent=other_agent, text="VIP customer", private_note=True
        )
    assert note.is_private_note
    assert sent == [(f"staff.conversation.{conversation.pk}", "message.created")]


def test_the_ai_cannot_reply_once_a_person_drives(conversation):
    Conversation.objects.filter(pk=conversation.pk).update(mode="awaiting_agent")
    with pytest.raises(ConversationClosed):
        crm_services.post_ai_reply(conversation=conversation, text="hello", confidence=0.9)
    assert not conversation.messages.exists()


def test_customer_texts_accept_only_their_placeholders(db):
    with pytest.raises(InvalidMessage, match=r"\{minutes\}.*Allowed: \{wait\}, \{wait_minutes\}"):
        crm_services.update_customer_texts(
            language="en", texts={"handoff": "Wait {minutes}", "takeover": "I'm {agent_name}"}
        )
    with pytest.raises(InvalidMessage, match="brace"):
        crm_services.update_customer_texts(language="en", texts={"handoff": "Wait {wait"})
    assert not CustomerText.objects.exists()  # nothing saved when one text is wrong
    saved = crm_services.update_customer_texts(
        language="en", texts={"handoff": "About {wait}", "takeover": "I'm {agent_name}"}
    )
    assert saved == {"handoff": "About {wait}", "takeover": "I'm {agent_name}"}


def test_fill_template_leaves_other_braces_alone():
    assert crm_services.fill_template("{agent_name} {x} {}", agent_name="Marina") == (
        "Marina {x} {}"
    )


def test_a_contact_is_found_by_channel_identity_then_by_email(db):
    known = ContactFactory(email="jo@example.com")
    by_email = crm_services.find_or_create_contact(
        channel_kind="whatsapp", email="JO@example.com", external_id="+3312"
    )
    assert by_email == known
    assert ContactIdentity.objects.get(external_id="+3312").contact == known
    again = crm_services.find_or_create_contact(channel_kind="whatsapp", external_id="+3312")
    assert again == known
    new = crm_services.find_or_create_contact(channel_kind="instagram", external_id="ig1")
    assert new != known


def test_availability_must_be_known(agent):
    with pytest.raises(InvalidMessage):
        crm_services.set_agent_availability(user=agent, availability="asleep")
    profile = crm_services.set_agent_availability(user=agent, availability="away")
    assert profile.availability == "away"


def test_the_system_and_agent_posts_on_a_provider_channel_are_queued_for_delivery(
    django_capture_on_commit_callbacks, monkeypatch
):
    from integrations import tasks
    from tests.factories import ChannelFactory, ConversationFactory

    delivered = []
    monkeypatch.setattr(tasks.deliver_message, "delay", delivered.append)
    conversation = ConversationFactory(channel=ChannelFactory(kind="whatsapp"))
    with django_capture_on_commit_callbacks(execute=True):
        notice = crm_services.post_system_message(conversation=conversation, text="Hold on")
    assert notice.delivery_status == Message.Delivery.PENDING
    assert delivered == [notice.pk]
