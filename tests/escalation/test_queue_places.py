"""Queue position and estimate for every waiting customer: computed for the whole queue at
once, pushed to the widget as the queue moves, and sent to WhatsApp/Instagram customers only
when the estimate moved enough, rate-limited, by a Celery task."""

import json
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm import services as crm_services
from crm.models import Message, WaitNotice
from escalation import selectors, services
from escalation.models import Escalation, Priority
from integrations import transport
from tests.crm.test_customer_socket import (  # noqa: F401 (close_db_connections is a fixture)
    TIMEOUT,
    close_db_connections,
    connected,
    customer_socket,
    frames_until,
)
from tests.escalation.routing_helpers import closed_all_week_but
from tests.factories import AgentFactory, ChannelFactory, ConversationFactory, TeamFactory


def escalate(conversation, priority=Priority.NORMAL):
    return services.escalate_conversation(
        conversation=conversation,
        reason="request",
        priority=priority,
        triggered_by=Escalation.Trigger.DETECTION,
    )[0]


@pytest.mark.django_db
def test_places_are_per_team_in_queue_order_with_the_estimate(settings):
    settings.LIVE_ESCALATION = {**settings.LIVE_ESCALATION, "DEFAULT_PICKUP_SECONDS": 120}
    billing, support = TeamFactory(name="Billing"), TeamFactory(name="Support")
    AgentFactory(teams=[billing])  # one billing agent online; support has none
    first = escalate(ConversationFactory(team=billing))
    urgent = escalate(ConversationFactory(team=billing), Priority.URGENT)
    other = escalate(ConversationFactory(team=support))
    places = {p.escalation_id: p for p in selectors.queue_places()}
    assert (places[urgent.pk].position, places[urgent.pk].wait_minutes) == (1, 2)
    assert (places[first.pk].position, places[first.pk].wait_minutes) == (2, 4)
    assert places[other.pk].position == 1
    # The one-at-a-time reading agrees with the batch.
    for escalation in (first, urgent, other):
        single = selectors.queue_place(escalation.conversation_id)
        assert (single.position, single.wait_minutes) == (
            places[escalation.pk].position,
            places[escalation.pk].wait_minutes,
        )
    assert selectors.queue_place(ConversationFactory().pk) is None


@pytest.mark.django_db
def test_places_take_a_fixed_number_of_queries(django_assert_num_queries):
    team = TeamFactory(name="Billing")
    for _ in range(3):
        escalate(ConversationFactory(team=team))
    with django_assert_num_queries(5):
        selectors.queue_places()
    for _ in range(10):
        escalate(ConversationFactory())
    with django_assert_num_queries(5):
        selectors.queue_places()


@pytest.mark.django_db
def test_whatsapp_customers_are_told_only_when_the_estimate_moved_enough_and_not_too_often(
    settings,
):
    settings.LIVE_ESCALATION = {
        **settings.LIVE_ESCALATION,
        "WAIT_UPDATE_MIN_CHANGE_MINUTES": 3,
        "WAIT_UPDATE_MIN_INTERVAL_SECONDS": 300,
    }
    whatsapp = ChannelFactory(kind="whatsapp", access_token="t", provider_account_id="1")
    conversation = ConversationFactory(channel=whatsapp, external_id="34600")
    escalation = escalate(conversation)

    def updates():
        return list(
            Message.objects.filter(conversation=conversation, text__startswith="You are number")
        )

    def post(position, minutes):
        return crm_services.post_wait_update(
            conversation_id=conversation.pk,
            position=position,
            wait_minutes=minutes,
            language="en",
            min_change=3,
            min_interval=timedelta(seconds=300),
        )

    services.announce_queue_places()  # the baseline: the handoff message said it already
    notice = WaitNotice.objects.get(conversation=conversation)
    assert updates() == []
    baseline = notice.wait_minutes
    assert post(2, baseline + 2) is None  # moved too little
    WaitNotice.objects.filter(pk=notice.pk).update(sent_at=timezone.now() - timedelta(hours=1))
    message = post(3, baseline + 5)
    assert message.text == f"You are number 3 in the queue — about {baseline + 5} minutes."
    assert message.delivery_status == Message.Delivery.PENDING  # goes out through the provider
    assert post(3, baseline + 20) is None  # within the interval
    WaitNotice.objects.filter(pk=notice.pk).update(sent_at=timezone.now() - timedelta(hours=1))
    assert post(1, baseline + 19).text.startswith("You are number 1")  # next: always worth it
    assert len(updates()) == 2
    services.take_over_escalation(escalation_id=escalation.pk, agent=AgentFactory())
    WaitNotice.objects.filter(pk=notice.pk).update(sent_at=timezone.now() - timedelta(hours=1))
    assert post(1, 30) is None  # no longer waiting


def instagram_provider(sent):
    def provider(request):
        sent.append(json.loads(request.content)["message"]["text"])
        return httpx.Response(200, json={"message_id": f"mid.{len(sent)}"})

    return httpx.MockTransport(provider)


@pytest.mark.django_db
def test_an_instagram_customer_hears_through_the_provider_when_the_queue_moves_them_up(
    settings, django_capture_on_commit_callbacks
):
    # The whole path: a take-over announces queue_changed, escalation's listener queues the
    # announcement after commit, the update is stored and sent through Instagram's API.
    settings.LIVE_ESCALATION = {
        **settings.LIVE_ESCALATION,
        "WAIT_UPDATE_MIN_CHANGE_MINUTES": 3,
        "WAIT_UPDATE_MIN_INTERVAL_SECONDS": 300,
    }
    team = TeamFactory(name="Support")
    instagram = ChannelFactory(kind="instagram", access_token="t", provider_account_id="17")
    ahead = ConversationFactory(channel=instagram, external_id="ig-ahead", team=team)
    mine = ConversationFactory(channel=instagram, external_id="ig-mine", team=team)
    sent = []
    with transport.use_transport(instagram_provider(sent)):
        with django_capture_on_commit_callbacks(execute=True):
            first = escalate(ahead)
        with django_capture_on_commit_callbacks(execute=True):
            escalate(mine)
        # Only the handoff messages so far: the announcement recorded what they said.
        assert len(sent) == 2 and not any(text.startswith("You are number") for text in sent)
        assert WaitNotice.objects.get(conversation=mine).position == 2
        WaitNotice.objects.filter(conversation=mine).update(
            sent_at=timezone.now() - timedelta(hours=1)
        )
        with django_capture_on_commit_callbacks(execute=True):
            services.take_over_escalation(escalation_id=first.pk, agent=AgentFactory(teams=[team]))
    update = Message.objects.get(conversation=mine, text__startswith="You are number")
    assert update.text.startswith("You are number 1 in the queue — about ")
    assert update.delivery_status == Message.Delivery.SENT
    assert sent[-1] == update.text
    assert not Message.objects.filter(conversation=ahead, text__startswith="You are number")


@pytest.mark.django_db
def test_a_new_wait_is_measured_from_its_own_handoff_message_not_an_earlier_wait(
    django_capture_on_commit_callbacks,
):
    whatsapp = ChannelFactory(kind="whatsapp", access_token="t", provider_account_id="1")
    conversation = ConversationFactory(channel=whatsapp, external_id="34600")
    # Told long ago, while waiting an earlier time, that they were number 7, 90 minutes away.
    WaitNotice.objects.create(
        conversation=conversation,
        position=7,
        wait_minutes=90,
        sent_at=timezone.now() - timedelta(days=3),
    )
    accepted = httpx.Response(200, json={"messages": [{"id": "wamid.1"}]})
    with (
        transport.use_transport(httpx.MockTransport(lambda request: accepted)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        escalate(conversation)
    # The handoff message gave the estimate; nothing repeats it at once.
    assert not Message.objects.filter(conversation=conversation, text__startswith="You are number")
    notice = WaitNotice.objects.get(conversation=conversation)
    assert (notice.position, notice.wait_minutes) != (7, 90)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_announcing_at_once_send_one_update():
    import threading

    from django.db import connections

    whatsapp = ChannelFactory(kind="whatsapp", access_token="t", provider_account_id="1")
    conversation = ConversationFactory(channel=whatsapp, external_id="34600")
    escalate(conversation)
    WaitNotice.objects.update_or_create(
        conversation=conversation,
        defaults={"position": 9, "wait_minutes": 60, "sent_at": timezone.now() - timedelta(1)},
    )
    barrier = threading.Barrier(4)
    errors = []

    def work():
        try:
            barrier.wait()
            services.announce_queue_places()
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert (
        Message.objects.filter(conversation=conversation, text__startswith="You are number").count()
        == 1
    )


@pytest.mark.django_db(transaction=True)
async def test_the_widget_socket_gets_its_place_on_connect_and_as_the_queue_moves():
    team = await sync_to_async(TeamFactory)(name="Billing")
    ahead = await sync_to_async(ConversationFactory)(team=team)
    mine = await sync_to_async(ConversationFactory)(team=team)
    first = await sync_to_async(escalate)(ahead)
    await sync_to_async(escalate)(mine)

    socket = customer_socket(mine)
    await connected(socket)
    frames = await frames_until(socket, lambda f: f["type"] == "queue.position")
    assert frames[-1]["position"] == 2 and frames[-1]["wait_minutes"] >= 1
    assert frames[-1]["text"].startswith("You are number 2 in the queue — about ")

    agent = await sync_to_async(AgentFactory)(teams=[team])
    await sync_to_async(services.take_over_escalation)(escalation_id=first.pk, agent=agent)
    frames = await frames_until(socket, lambda f: f["type"] == "queue.position")
    assert frames[-1]["position"] == 1
    await socket.disconnect()


@contextmanager
def one_instant(monkeypatch):
    """Two readings of a closed team's wait at one instant: it counts down to the reopening by
    the minute, and a clock minute ending between them made 4302 against 4301."""
    instant = timezone.now()
    with monkeypatch.context() as frozen:
        frozen.setattr(timezone, "now", lambda: instant)
        yield


@pytest.mark.django_db
def test_the_estimates_told_as_the_queue_moves_count_the_closed_hours(settings, monkeypatch):
    """The handoff message of a team that is closed says when it is back; the updates that
    follow (widget, WhatsApp) must not then say "about 2 minutes"."""
    settings.LIVE_ESCALATION = {**settings.LIVE_ESCALATION, "DEFAULT_PICKUP_SECONDS": 120}
    night = TeamFactory(name="Night")
    closed_all_week_but(night, day_offset=3)
    waiting = escalate(ConversationFactory(team=night))
    with one_instant(monkeypatch):
        (place,) = selectors.queue_places()
        alone = selectors.queue_place(waiting.conversation_id)
    assert place.wait_minutes > 24 * 60
    assert place == alone


@pytest.mark.django_db
def test_while_the_team_is_closed_whatsapp_customers_get_no_countdown(settings, monkeypatch):
    """Counted in closed hours, the estimate falls a minute a minute all night: not news to a
    customer the handoff message told when the team is back. Once it opens, updates resume."""
    from escalation.models import TeamRouting

    settings.LIVE_ESCALATION = {
        **settings.LIVE_ESCALATION,
        "WAIT_UPDATE_MIN_CHANGE_MINUTES": 3,
        "WAIT_UPDATE_MIN_INTERVAL_SECONDS": 0,
    }
    night = TeamFactory(name="Night")
    closed_all_week_but(night, day_offset=3)
    whatsapp = ChannelFactory(kind="whatsapp", access_token="t", provider_account_id="1")
    conversation = ConversationFactory(channel=whatsapp, external_id="34600", team=night)
    escalate(conversation)
    with one_instant(monkeypatch):
        (place,) = selectors.queue_places()
        alone = selectors.queue_place(conversation.pk)
    assert not place.team_open and place == alone

    def updates():
        return Message.objects.filter(conversation=conversation, text__startswith="You are number")

    # As if told an hour ago what was then an hour more: the estimate has moved by 60 minutes.
    WaitNotice.objects.create(
        conversation=conversation,
        position=1,
        wait_minutes=place.wait_minutes + 60,
        sent_at=timezone.now() - timedelta(hours=1),
    )
    services.announce_queue_places()
    assert not updates().exists()

    TeamRouting.objects.filter(team=night).update(weekly_hours=[])  # open now
    services.announce_queue_places()
    assert updates().count() == 1


GERMAN_DAYS = {
    "mon": "Montag",
    "tue": "Dienstag",
    "wed": "Mittwoch",
    "thu": "Donnerstag",
    "fri": "Freitag",
    "sat": "Samstag",
    "sun": "Sonntag",
}


@pytest.mark.django_db
def test_while_the_team_is_closed_the_customer_reads_the_reopening_everywhere(client, settings):
    """Not "about 3977 minutes" (the wait stretched over the closed days): the widget's poll,
    its socket frame and a WhatsApp update say the same sentence, the reopening in the
    customer's language; the number of minutes stays in ``wait_minutes``."""
    from escalation.models import TeamRouting

    settings.LIVE_ESCALATION = {
        **settings.LIVE_ESCALATION,
        "WAIT_UPDATE_MIN_CHANGE_MINUTES": 3,
        "WAIT_UPDATE_MIN_INTERVAL_SECONDS": 0,
    }
    night = TeamFactory(name="Night")
    opens = (timezone.now() + timedelta(days=3)).replace(hour=9, minute=0, second=0, microsecond=0)
    far_day = opens.strftime("%a").lower()
    TeamRouting.objects.create(
        team=night,
        time_zone="UTC",
        weekly_hours=[{"day": far_day, "opens": "09:00", "closes": "17:00"}],
    )
    website = ChannelFactory()
    conversation = ConversationFactory(channel=website, team=night)
    Escalation.objects.filter(pk=escalate(conversation).pk).update(language="de")

    place = selectors.queue_place(conversation.pk)
    assert place.reopens_at == opens and place.wait_minutes > 24 * 60
    said = (
        f"Sie sind Nummer 1 in der Warteschlange — wir sind ab {GERMAN_DAYS[far_day]} {opens.day} "
    )
    assert place.text().startswith(said) and place.text().endswith(
        " 09:00 (UTC) wieder für Sie da."
    )
    polled = client.get(
        f"/widget/conversations/{conversation.pk}/messages/",
        HTTP_X_CUSTOMER_TOKEN=conversation.customer_token,
    ).json()["queue"]
    assert polled == {"position": 1, "wait_minutes": place.wait_minutes, "text": place.text()}
    assert services.queue_position_event(place)["text"] == place.text()
    (announced,) = selectors.queue_places()
    assert announced.text() == place.text()

    english = crm_services.post_wait_update(
        conversation_id=conversation.pk,
        position=2,
        wait_minutes=place.wait_minutes,
        language="en",
        reopens_at=place.reopens_at,
        min_change=3,
        min_interval=timedelta(0),
    ) or crm_services.post_wait_update(  # the first call only sets the baseline
        conversation_id=conversation.pk,
        position=1,
        wait_minutes=place.wait_minutes + 60,
        language="en",
        reopens_at=place.reopens_at,
        min_change=3,
        min_interval=timedelta(0),
    )
    assert english.text.startswith("You are number 1 in the queue — we'll be with you when we ")
    assert english.text.endswith(" 09:00 (UTC).") and "minute" not in english.text


@pytest.mark.django_db
@pytest.mark.parametrize("first_read", [1000, 2], ids=["top-of-queue", "deeper-than-first-read"])
def test_places_of_some_conversations_agree_with_one_at_a_time(settings, monkeypatch, first_read):
    """The API's list reads a page's places at once; each must be what the conversation's
    own reading says (the widget and the API's detail), closed hours counted in, whether the
    page lies within the first read of the queue or deeper."""
    monkeypatch.setattr(selectors, "QUEUE_FIRST_READ", first_read)
    settings.LIVE_ESCALATION = {**settings.LIVE_ESCALATION, "DEFAULT_PICKUP_SECONDS": 120}
    billing, night = TeamFactory(name="Billing"), TeamFactory(name="Night")
    closed_all_week_but(night, day_offset=3)
    AgentFactory(teams=[billing])
    AgentFactory(teams=[billing])
    AgentFactory()  # online, in no team: counts for the team-less queue only
    waiting = [
        escalate(ConversationFactory(team=billing)),
        escalate(ConversationFactory(team=billing), Priority.URGENT),
        escalate(ConversationFactory(team=billing)),
        escalate(ConversationFactory(team=night)),
        escalate(ConversationFactory(team=night), Priority.HIGH),
        escalate(ConversationFactory()),
        escalate(ConversationFactory()),
    ]
    not_waiting = ConversationFactory()
    asked = [e.conversation_id for e in waiting[1:]] + [not_waiting.pk]  # not the first

    with one_instant(monkeypatch):
        places = selectors.queue_places_of(asked)
        one_at_a_time = {c: selectors.queue_place(c) for c in places}

    assert set(places) == {e.conversation_id for e in waiting[1:]}
    assert places == one_at_a_time
    assert places[waiting[2].conversation_id].position == 3  # the first one is still ahead
    assert places[waiting[3].conversation_id].wait_minutes > 24 * 60  # closed for days
    assert selectors.queue_places_of([]) == {} and selectors.queue_places_of([not_waiting.pk]) == {}


@pytest.mark.django_db
def test_places_of_a_page_take_a_fixed_number_of_queries(django_assert_max_num_queries):
    from escalation.models import TeamRouting

    teams = [TeamFactory(name=f"Team {i}") for i in range(3)]
    for team in teams:
        TeamRouting.objects.create(team=team, time_zone="UTC")
    few = [escalate(ConversationFactory(team=teams[0])).conversation_id]
    with django_assert_max_num_queries(6):
        selectors.queue_places_of(few)
    many = [escalate(ConversationFactory(team=team)).conversation_id for team in teams * 4]
    many += [escalate(ConversationFactory()).conversation_id for _ in range(3)]
    with django_assert_max_num_queries(6):
        assert len(selectors.queue_places_of(few + many)) == 16


@pytest.mark.django_db
def test_places_at_the_top_of_a_long_queue_read_only_its_top(monkeypatch):
    """A page at the head of the queue does not read the whole queue to number its rows."""
    monkeypatch.setattr(selectors, "QUEUE_FIRST_READ", 3)
    waiting = [escalate(ConversationFactory()) for _ in range(6)]
    with CaptureQueriesContext(connection) as queries:
        places = selectors.queue_places_of([waiting[0].conversation_id, waiting[1].conversation_id])
    assert [places[e.conversation_id].position for e in waiting[:2]] == [1, 2]
    in_queue_order = 'ORDER BY "escalation_escalation"."priority" DESC'
    numbering = [q["sql"] for q in queries.captured_queries if in_queue_order in q["sql"]]
    assert len(numbering) == 1 and "LIMIT 3" in numbering[0]
