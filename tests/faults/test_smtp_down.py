"""The SMTP server is down when a customer asks for a person.

What must hold: the handoff is untouched (escalation, ticket, the customer's handoff notice and
the agent's in-app notification, all at once); the alert email is retried by the worker, and
delivered exactly once when SMTP comes back, without anyone doing anything.

End to end through a real worker: the customer message is analysed by the worker, which hands
off and queues the email on the same (throwaway) Redis.
"""

import time

import pytest
from celery import Celery

from crm.models import AgentProfile, Message
from escalation.models import Escalation
from notifications.models import Notification
from tests.factories import AgentFactory
from tickets.models import Ticket

from .services import (
    RedisServer,
    SMTPServer,
    database_url_of_tests,
    product_env,
    start_worker,
    wait_for,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.real_celery,
]


def email_retries(worker) -> int:
    return sum(
        1
        for line in worker.log().splitlines()
        if "notifications.tasks.send_notification_email[" in line and " retry: " in line
    )


def test_smtp_down_delays_the_email_not_the_handoff(need_redis_server, conversation):
    agent = AgentFactory(
        display_name="Marina",
        availability=AgentProfile.Availability.ONLINE,
        notify_via=AgentProfile.NotifyVia.BOTH,
    )
    redis = RedisServer().start()
    smtp = SMTPServer()  # its port is closed until start(): SMTP is down
    worker = None
    try:
        env = product_env(
            DATABASE_URL=database_url_of_tests(),
            REDIS_URL=redis.url(),
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(smtp.port),
            EMAIL_TIMEOUT="2",
        )
        worker = start_worker(env)
        message = Message.objects.create(
            conversation=conversation,
            channel=conversation.channel,
            sender=Message.Sender.CUSTOMER,
            text="I want to speak to a person",
        )
        started = time.monotonic()
        Celery(broker=redis.url(), set_as_current=False).send_task(
            "escalation.tasks.analyze_message", args=[message.pk]
        )

        # The handoff, complete, while SMTP is down.
        escalation = wait_for(
            lambda: Escalation.objects.filter(conversation=conversation).first(),
            timeout=60,
            what="the escalation",
        )
        handoff_seconds = time.monotonic() - started
        assert escalation.status == Escalation.Status.QUEUED
        assert Ticket.objects.filter(escalation=escalation).exists()
        assert Message.objects.filter(
            conversation=conversation, sender=Message.Sender.SYSTEM
        ).exists()
        notification = Notification.objects.get(recipient=agent, escalation=escalation)
        assert notification.show_in_app and notification.email_requested
        assert handoff_seconds < 30

        # The email is retried, not dropped and not sent.
        wait_for(lambda: email_retries(worker) >= 1, timeout=60, what="an email retry")
        notification.refresh_from_db()
        assert notification.emailed_at is None

        smtp.start()
        wait_for(
            lambda: Notification.objects.filter(
                pk=notification.pk, emailed_at__isnull=False
            ).exists(),
            timeout=90,
            what="the email to go out once SMTP is back",
        )
        time.sleep(2)  # a duplicate would arrive now
    finally:
        if worker is not None:
            worker.stop()
        smtp.stop()
        redis.stop()

    assert len(smtp.messages) == 1
    recipients, _content = smtp.messages[0]
    assert recipients == [agent.email]
