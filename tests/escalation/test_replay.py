"""Replay: stored conversations through an assistant's current settings — the engine, the job
(claimed once, progress per chunk, a result), and ``replay_detection``'s errors."""

import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from crm.models import Conversation, Message
from escalation import replay, services
from escalation.errors import InvalidTransition, ReplayAlreadyRunning
from escalation.models import MessageAnalysis, ReplayJob
from tests.factories import AssistantFactory, ChannelFactory, ConversationFactory
from tests.races import race

pytestmark = pytest.mark.django_db

ASKS = "I want to talk to a real person right now, get me a human agent"
CALM = "What are your opening hours on Saturday?"


def conversation_with(assistant, *texts, kind="website", created=None):
    channel = ChannelFactory(kind=kind, assistant=assistant)
    conversation = ConversationFactory(channel=channel)
    for text in texts:
        Message.objects.create(
            conversation=conversation, channel=channel, sender="customer", text=text
        )
    if created is not None:
        Conversation.objects.filter(pk=conversation.pk).update(created_at=created)
    return conversation


@pytest.fixture
def assistant():
    return AssistantFactory(name="Shop")


def test_replay_counts_each_conversation_once_by_reason_and_channel(assistant):
    asking = conversation_with(assistant, CALM, ASKS, ASKS, kind="whatsapp")
    conversation_with(assistant, CALM)
    conversation_with(assistant, ASKS, created=timezone.now() - timedelta(days=40))  # too old
    since = timezone.now() - timedelta(days=30)
    tally = replay.empty_tally()
    for conversation in replay.conversations_to_replay(assistant, since):
        replay.add_outcome(
            tally, replay.replay_conversation(conversation, replay.replay_settings(assistant))
        )
    assert (tally["conversations"], tally["escalated"]) == (2, 1)
    assert tally["by_reason"] == {"request": 1}
    assert tally["by_channel"] == {
        "whatsapp": {"conversations": 1, "escalated": 1},
        "website": {"conversations": 1, "escalated": 0},
    }
    assert tally["samples"][0]["conversation_id"] == asking.pk
    assert tally["samples"][0]["text"] == ASKS


def test_replay_stops_at_the_first_human_reply(assistant):
    conversation = conversation_with(assistant, CALM)
    Message.objects.create(
        conversation=conversation, channel=conversation.channel, sender="agent", text="Hi, Marina"
    )
    Message.objects.create(
        conversation=conversation, channel=conversation.channel, sender="customer", text=ASKS
    )
    outcome = replay.replay_conversation(conversation, replay.replay_settings(assistant))
    assert outcome.escalates is False


def test_replay_uses_the_local_backend_with_handoff_on_whatever_the_assistant_runs():
    assistant = AssistantFactory(backend="claude", handoff_enabled=False, sensitivity=0.7)
    settings = replay.replay_settings(assistant)
    assert (settings.backend, settings.handoff_enabled, settings.sensitivity) == (
        "local",
        True,
        0.7,
    )


def test_a_job_runs_once_saves_progress_and_a_result(assistant, django_capture_on_commit_callbacks):
    for _ in range(3):
        conversation_with(assistant, ASKS)
    conversation_with(assistant, CALM)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = services.start_replay_job(
            assistant=assistant, since=timezone.now() - timedelta(days=30)
        )
    assert len(callbacks) == 1  # dispatched after commit
    assert (job.status, job.total, job.done) == ("queued", 4, 0)
    with pytest.raises(ReplayAlreadyRunning):
        services.start_replay_job(assistant=assistant, since=timezone.now() - timedelta(days=1))
    finished = services.run_replay_job(job_id=job.pk)
    assert services.run_replay_job(job_id=job.pk) is None  # claimed once
    assert (finished.status, finished.done, finished.total, finished.percent) == ("done", 4, 4, 100)
    assert finished.result["rate"] == 0.75
    assert finished.result["by_reason"] == {"request": 3}
    assert len(finished.result["samples"]) == 3
    assert finished.finished_at is not None
    json.dumps(finished.result)  # stored as JSON


def test_a_silent_unfinished_job_is_failed_when_a_new_one_starts(assistant):
    stale = ReplayJob.objects.create(
        assistant=assistant, since=timezone.now() - timedelta(days=1), status="running"
    )
    ReplayJob.objects.filter(pk=stale.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    job = services.start_replay_job(assistant=assistant, since=timezone.now() - timedelta(days=1))
    stale.refresh_from_db()
    assert stale.status == "failed" and job.status == "queued"


def test_a_job_that_breaks_ends_failed_with_the_error(assistant, monkeypatch):
    conversation_with(assistant, ASKS)
    job = services.start_replay_job(assistant=assistant, since=timezone.now() - timedelta(days=1))

    def broken(conversation, settings):
        raise RuntimeError("model file damaged")

    monkeypatch.setattr(replay, "replay_conversation", broken)
    finished = services.run_replay_job(job_id=job.pk)
    assert finished.status == "failed"
    assert "model file damaged" in finished.error


def test_a_replay_must_start_in_the_past(assistant):
    with pytest.raises(InvalidTransition):
        services.start_replay_job(assistant=assistant, since=timezone.now() + timedelta(days=1))
    assert not ReplayJob.objects.exists()


def test_the_preview_reapplies_the_policy_to_stored_signals(assistant):
    weak_request = {
        "sentiment": {"intensity": 0.05, "labels": []},
        "intent": {"request_human": False, "confidence": 0.4, "threshold": 0.5, "source": "model"},
        "complexity": {"topics": [], "scores": {}},
        "loop": {"count": 0, "customer_repeats": 0, "assistant_repeats": 0, "already_told": False},
        "confidence": {"last": None, "recent_low": 0, "recent": []},
        "closing": False,
    }
    for signals in (weak_request, {**weak_request, "intent": {"confidence": 0.1}}, {"old": 1}):
        conversation = conversation_with(assistant, CALM)
        MessageAnalysis.objects.create(
            message=conversation.messages.get(), backend="local", signals=signals
        )
    since = timezone.now() - timedelta(days=30)
    neutral = replay.predicted_rates(
        assistant=assistant, settings=replay.replay_settings(assistant), since=since
    )
    eager = replay.predicted_rates(
        assistant=assistant,
        settings=replay.replay_settings(assistant, sensitivity=0.9),
        since=since,
    )
    assert (neutral["conversations"], neutral["escalated"], neutral["skipped"]) == (3, 0, 1)
    assert (eager["escalated"], eager["by_reason"]) == (1, {"request": 1})
    assert eager["rate"] == round(1 / 3, 4)


# --- the command ------------------------------------------------------------------------------


def test_the_command_prints_progress_and_the_rates(assistant, capsys):
    conversation_with(assistant, ASKS, kind="whatsapp")
    conversation_with(assistant, CALM)
    call_command("replay_detection", "--since", "30d", "--assistant", "shop", "--json")
    out, err = capsys.readouterr()
    assert "[2/2]" in err
    assert "1 of 2 conversations would escalate (50.0%" in err
    assert "channel whatsapp" in err
    assert json.loads(out)["Shop"]["by_reason"] == {"request": 1}
    assert not ReplayJob.objects.exists() and not MessageAnalysis.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "30"], "--since must be a number of days"),
        (["--since", "yesterday"], "--since must be a number of days"),
        (["--since", "0d"], "more than zero"),
        (["--since", "5000d"], "at most a year"),
        (["--assistant", "nobody"], "No assistant 'nobody'. Known: "),
        (["--assistant", "999999"], "No assistant '999999'"),
    ],
)
def test_bad_input_is_a_clear_error_and_changes_nothing(assistant, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("replay_detection", *args)
    assert not ReplayJob.objects.exists()


def test_no_assistant_at_all_is_a_clear_error():
    with pytest.raises(CommandError, match="No assistants"):
        call_command("replay_detection")


@pytest.mark.django_db(transaction=True)
def test_two_starts_and_two_runners_at_once_make_one_job_run_once(monkeypatch):
    """On PostgreSQL and on SQLite: the partial unique constraint admits one unfinished job, and
    the conditional UPDATE lets one runner claim it."""
    monkeypatch.setattr(services, "_dispatch_replay", lambda job_id: None)
    assistant = AssistantFactory(name="Racy")
    conversation_with(assistant, ASKS)
    since = timezone.now() - timedelta(days=1)
    started = race(lambda i: services.start_replay_job(assistant=assistant, since=since), 2)
    jobs = [o for o in started if isinstance(o, ReplayJob)]
    refused = [o for o in started if isinstance(o, ReplayAlreadyRunning)]
    assert (len(jobs), len(refused)) == (1, 1), started
    ran = race(lambda i: services.run_replay_job(job_id=jobs[0].pk), 2)
    assert sorted(o is None for o in ran) == [False, True], ran
    assert ReplayJob.objects.get().status == "done"
