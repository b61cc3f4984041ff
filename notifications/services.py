"""Who hears about an escalation, and how; sending the alert emails; reading and pruning.

Called by the escalation services inside their transaction: notifications are stored with the
escalation, pushed to the agents' sockets after commit, and their emails queued after commit as
Celery tasks (never sent inside the request or the transaction).
"""

import enum
import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from crm import realtime
from crm.models import AgentProfile

from .emails import build_notification_email
from .errors import NotificationNotFound
from .models import Notification

logger = logging.getLogger(__name__)

# How long one attempt may hold the right to send an email. Longer than any SMTP exchange
# (EMAIL_TIMEOUT applies per socket operation) and about the broker's visibility timeout, so a
# worker that died mid-send is taken over by the redelivered task, not blocked for ever.
EMAIL_CLAIM_LEASE = timedelta(minutes=5)
# The sweep queues again a requested email still unsent this long after creation whose task
# is gone: never attempted (the broker was down when it was queued), or last attempted longer
# ago than a live retry chain waits between attempts (the task ran out of retries).
EMAIL_SWEEP_AFTER = timedelta(minutes=2)
EMAIL_SWEEP_IDLE = timedelta(minutes=15)  # > the task's retry_backoff_max (10 min)
EMAIL_SWEEP_MAX_ATTEMPTS = 40


def conversation_link(conversation_id: int) -> str:
    """Where a notification leads: the CRM conversation screen (path; emails add SITE_URL)."""
    return f"/crm/conversations/{conversation_id}/"


def notification_payload(notification: Notification, details: dict) -> dict:
    """What an agent socket receives: enough for the bell and a toast without a query."""
    return {
        "id": notification.id,
        "kind": notification.kind,
        "text": notification.text,
        "link": notification.link,
        **details,
        "created_at": notification.created_at.isoformat(),
    }


# No savepoint inside a caller's transaction (none catches its errors): two round trips fewer on
# every handoff. _store_new keeps its own, which settles a concurrent duplicate, unless the key is
# new (then no duplicate can exist).
@transaction.atomic(savepoint=False)
def notify_people(
    *,
    recipients: list[AgentProfile],
    is_fallback: bool,
    kind: str,
    dedupe_key: str,
    text: str,
    escalation,
    details: dict,
    allow_email: bool = True,
    key_is_new: bool = False,
) -> list[Notification]:
    """Store one notification per recipient (idempotent per recipient and ``dedupe_key``), push
    the in-app ones after commit and queue the emails after commit. The caller chose whom
    (``is_fallback``: nobody was available, so everyone listed is emailed) and what; ``details``
    go into the live payload; ``allow_email=False`` keeps it in the app (an offer that expires in
    seconds is no use in an inbox). ``key_is_new``: the caller created what the key names in this
    transaction, so no other transaction can see it, nobody holds a row for it, and the rows are
    inserted in one statement with no read before it and no savepoint around it. A fixed
    number of queries whatever the team's size: this runs inside the escalation's transaction and
    its lock."""
    profiles = recipients
    already = (
        set()
        if key_is_new
        else set(
            Notification.objects.filter(
                dedupe_key=dedupe_key, recipient_id__in=[p.user_id for p in profiles]
            ).values_list("recipient_id", flat=True)
        )
    )
    link = conversation_link(escalation.conversation_id)
    rows = []
    for profile in profiles:
        if profile.user_id in already:
            continue
        has_address = bool(profile.user.email)
        # Fallback recipients are emailed whatever they chose: they are not watching the app.
        wants_email = allow_email and has_address and (is_fallback or profile.wants_email)
        # Someone who asked for email only but has no address still gets it in the app.
        in_app = profile.wants_in_app or not wants_email
        rows.append(
            Notification(
                recipient=profile.user,
                dedupe_key=dedupe_key,
                kind=kind,
                escalation=escalation,
                text=text[:500],
                link=link,
                show_in_app=in_app,
                email_requested=wants_email,
                is_fallback=is_fallback,
            )
        )
    if not profiles:
        logger.warning("escalation %s: nobody to notify (no agents, no managers)", escalation.pk)
    if not rows:
        return []
    created = Notification.objects.bulk_create(rows) if key_is_new else _store_new(rows)
    unread = unread_counts(n.recipient_id for n in created if n.show_in_app)
    for notification in created:
        if notification.show_in_app:
            realtime.publish_to_agent(
                notification.recipient_id,
                {
                    "type": "notification.created",
                    "notification": notification_payload(notification, details),
                    "unread": unread.get(notification.recipient_id, 1),
                },
            )
        if notification.email_requested:
            queue_notification_email(notification.pk)
    if is_fallback:
        logger.info(
            "nobody available for escalation %s; %d fallback recipients emailed",
            escalation.pk,
            len(created),
        )
    return created


def _store_new(rows: list[Notification]) -> list[Notification]:
    """Insert the rows in one statement; if a concurrent caller stored some of the same
    (recipient, key) first, insert one by one and keep only those that were new."""
    try:
        with transaction.atomic():
            return Notification.objects.bulk_create(rows)
    except IntegrityError:
        created = []
        for row in rows:
            fields = {
                f.name: getattr(row, f.name)
                for f in Notification._meta.concrete_fields
                if f.name not in ("id", "recipient", "dedupe_key", "created_at")
            }
            notification, is_new = Notification.objects.get_or_create(
                recipient=row.recipient, dedupe_key=row.dedupe_key, defaults=fields
            )
            if is_new:
                created.append(notification)
        return created


# --- Email ----------------------------------------------------------------------------------


def queue_notification_email(notification_id: int) -> None:
    """After commit, queue the email task. A broker that is down never breaks the caller: the
    email stays requested and unsent, and the sweep queues it again."""

    def enqueue():
        from .tasks import send_notification_email

        try:
            send_notification_email.delay(notification_id)
        except Exception:
            logger.warning(
                "could not queue the email of notification %s; the sweep will", notification_id
            )

    transaction.on_commit(enqueue)


class EmailOutcome(enum.StrEnum):
    SENT = "sent"
    ALREADY_SENT = "already_sent"
    IN_PROGRESS = "in_progress"  # another attempt holds the claim
    NOT_REQUESTED = "not_requested"
    GONE = "gone"  # the notification was deleted (pruned, or its escalation removed)
    SKIPPED = "skipped"  # stale: its escalation was picked up (or ended) before the send


# An alert that says the escalation waits for an agent; untrue once it has left the queue.
QUEUE_ALERT_KINDS = (Notification.Kind.ESCALATION, Notification.Kind.REMINDER)


def _unsent_and_unclaimed(now):
    """Requested emails not sent, not skipped, whose claim is free or has lapsed: what an
    attempt may claim and what the sweep looks at."""
    return Notification.objects.filter(
        email_requested=True, emailed_at__isnull=True, email_skipped_reason=""
    ).filter(Q(email_claimed_at__isnull=True) | Q(email_claimed_at__lt=now - EMAIL_CLAIM_LEASE))


def _claim_email(notification_id: int, token: str) -> bool:
    now = timezone.now()
    return bool(
        _unsent_and_unclaimed(now)
        .filter(pk=notification_id)
        .update(email_claim=token, email_claimed_at=now)
    )


def _why_not_claimed(notification_id: int) -> EmailOutcome:
    row = (
        Notification.objects.filter(pk=notification_id)
        .values("email_requested", "emailed_at", "email_skipped_reason")
        .first()
    )
    if row is None:
        return EmailOutcome.GONE
    if not row["email_requested"]:
        return EmailOutcome.NOT_REQUESTED
    if row["email_skipped_reason"]:
        return EmailOutcome.SKIPPED
    if row["emailed_at"] is not None:
        return EmailOutcome.ALREADY_SENT
    return EmailOutcome.IN_PROGRESS


def _stale_reason(notification: Notification) -> str:
    """Why this email must not go out any more, or "": an escalation or reminder alert ("needs
    an agent") whose escalation, re-read at send time, is no longer queued."""
    escalation = notification.escalation
    if notification.kind not in QUEUE_ALERT_KINDS or escalation is None:
        return ""
    if escalation.status == escalation.Status.QUEUED:
        return ""
    return f"escalation {escalation.status} before the email went out"


def send_notification_email(*, notification_id: int) -> EmailOutcome:
    """Send the email of one notification at most once, however often it is called.

    Deliberately not one transaction: the claim is a conditional UPDATE that commits before
    SMTP is spoken to (so a concurrent duplicate sees it), and the result is recorded after.
    On an SMTP or network error the claim is released, the attempt and error recorded, and the
    exception re-raised for the task to retry. A worker that dies between SMTP accepting the
    message and ``emailed_at`` being stored leaves the claim to lapse after
    ``EMAIL_CLAIM_LEASE``, and the redelivered task sends again (at least once, with the same
    Message-ID): an escalation nobody hears about is worse than a rare second email.

    An escalation or reminder alert whose escalation is no longer queued when the send comes
    (e.g. a retry after an SMTP outage, after someone took it over) is not sent: the reason is
    stored in ``email_skipped_reason`` and the email is never tried again (SKIPPED).
    """
    token = uuid.uuid4().hex
    if not _claim_email(notification_id, token):
        return _why_not_claimed(notification_id)
    notification = Notification.objects.select_related(
        "recipient__agent_profile",
        "escalation__conversation__contact",
        "escalation__conversation__channel",
        "escalation__team",
    ).get(pk=notification_id)
    mine = Notification.objects.filter(pk=notification_id, email_claim=token)
    stale = _stale_reason(notification)
    if stale:
        mine.update(email_claim="", email_claimed_at=None, email_skipped_reason=stale[:200])
        logger.info("email of notification %s not sent: %s", notification_id, stale)
        return EmailOutcome.SKIPPED
    try:
        build_notification_email(notification).send(fail_silently=False)
    except Exception as exc:
        mine.update(
            email_claim="",
            email_claimed_at=None,
            email_attempts=F("email_attempts") + 1,
            email_last_attempt_at=timezone.now(),
            email_error=f"{type(exc).__name__}: {exc}"[:500],
        )
        raise
    Notification.objects.filter(pk=notification_id).update(
        emailed_at=timezone.now(),
        email_claim="",
        email_attempts=F("email_attempts") + 1,
        email_last_attempt_at=timezone.now(),
        email_error="",
    )
    return EmailOutcome.SENT


def requeue_unsent_emails(*, now=None, limit: int = 200) -> int:
    """Queue again the emails requested a while ago, never sent, and whose task is gone (see
    EMAIL_SWEEP_IDLE); a task still retrying is left alone so chains do not multiply during an
    outage. Returns how many were queued."""
    from .tasks import send_notification_email

    now = now or timezone.now()
    ids = list(
        _unsent_and_unclaimed(now)
        .filter(
            created_at__lte=now - EMAIL_SWEEP_AFTER,
            created_at__gte=now - timedelta(days=1),
            email_attempts__lt=EMAIL_SWEEP_MAX_ATTEMPTS,
        )
        .filter(
            Q(email_last_attempt_at__isnull=True)
            | Q(email_last_attempt_at__lt=now - EMAIL_SWEEP_IDLE)
        )
        .order_by("created_at")
        .values_list("id", flat=True)[:limit]
    )
    for notification_id in ids:
        send_notification_email.delay(notification_id)
    return len(ids)


# --- Alerts that follow what they are about -----------------------------------------------


@transaction.atomic
def settle_alerts(*, escalation_id: int, outcome: str, kinds=QUEUE_ALERT_KINDS) -> int:
    """What ``kinds`` of alerts about an escalation asked for is done or moot (taken, resolved,
    closed, cancelled): every recipient's alert says so (``outcome``, e.g. "Taken by Marina")
    and counts as read from now on. One UPDATE, so it is safe against a concurrent mark-read or
    a second settle (the last outcome wins; a first read time is kept). After commit each
    recipient's sockets get ``notification.updated`` with the alerts and their unread count.
    Returns how many alerts changed."""
    now = timezone.now()
    alerts = Notification.objects.filter(escalation_id=escalation_id, kind__in=kinds).exclude(
        outcome=outcome[:200]
    )
    changed = list(alerts.values_list("id", "recipient_id", "show_in_app"))
    if not changed:
        return 0
    Notification.objects.filter(pk__in=[pk for pk, _r, _s in changed]).update(
        outcome=outcome[:200], read_at=Coalesce(F("read_at"), Value(now))
    )
    in_app = {recipient for _pk, recipient, shown in changed if shown}
    unread = unread_counts(in_app)
    for recipient in in_app:
        realtime.publish_to_agent(
            recipient,
            {
                "type": "notification.updated",
                "notifications": [
                    {"id": pk, "outcome": outcome[:200], "read": True}
                    for pk, owner, shown in changed
                    if owner == recipient and shown
                ],
                "unread": unread.get(recipient, 0),
            },
        )
    return len(changed)


def unread_counts(recipient_ids) -> dict[int, int]:
    """Unread in-app notifications per recipient (absent means none)."""
    return dict(
        Notification.objects.filter(
            recipient_id__in=list(recipient_ids), show_in_app=True, read_at__isnull=True
        )
        .values("recipient_id")
        .annotate(count=Count("id"))
        .values_list("recipient_id", "count")
    )


# --- Reading and pruning --------------------------------------------------------------------


@transaction.atomic
def mark_notification_read(*, user, notification_id: int) -> Notification:
    """Mark one of ``user``'s notifications read (reading it twice keeps the first time).
    Someone else's notification, or none, raises NotificationNotFound."""
    try:
        notification_id = int(notification_id)
    except (TypeError, ValueError):
        raise NotificationNotFound(_("No such notification.")) from None
    notification = (
        Notification.objects.select_for_update()
        .filter(pk=notification_id, recipient_id=getattr(user, "pk", None))
        .first()
    )
    if notification is None:
        raise NotificationNotFound(_("No such notification."))
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification


@transaction.atomic
def mark_all_read(*, user) -> int:
    """Mark every unread notification of ``user`` read; returns how many changed."""
    return Notification.objects.filter(recipient=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )


@transaction.atomic
def prune_old_notifications(*, now=None, older_than_days: int | None = None) -> int:
    """Delete notifications older than the retention (NOTIFICATION_RETENTION_DAYS), read or not.
    Returns how many were deleted."""
    now = now or timezone.now()
    days = older_than_days or settings.LIVE_ESCALATION["NOTIFICATION_RETENTION_DAYS"]
    deleted, _by_model = Notification.objects.filter(
        created_at__lt=now - timedelta(days=days)
    ).delete()
    return deleted
