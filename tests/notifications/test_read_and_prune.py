"""The bell: unread count, recent list, mark one or all read; old notifications pruned."""

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications import selectors, services
from notifications.errors import NotificationNotFound
from notifications.models import Notification
from notifications.tasks import prune_old_notifications

pytestmark = pytest.mark.django_db


def _make(user, key, **fields):
    return Notification.objects.create(
        recipient=user, kind="escalation", text=f"n {key}", dedupe_key=key, **fields
    )


def test_unread_count_and_recent_list_show_only_in_app_notifications(make_agent):
    bo, other = make_agent("bo"), make_agent("other")
    first = _make(bo, "1")
    second = _make(bo, "2")
    _make(bo, "email-only", show_in_app=False)
    _make(other, "3")
    assert selectors.unread_count(bo) == 2
    assert [n.pk for n in selectors.recent_notifications(bo, limit=10)] == [second.pk, first.pk]
    assert [n.pk for n in selectors.recent_notifications(bo, limit=1)] == [second.pk]


def test_recent_list_runs_one_query(make_agent, escalate, team, django_assert_num_queries):
    bo = make_agent("bo", teams=[team])
    for _ in range(3):
        escalate(team)
    with django_assert_num_queries(1):
        rows = selectors.recent_notifications(bo, limit=20)
        assert [str(n.escalation.conversation.contact) for n in rows]


def test_mark_one_read(make_agent):
    bo = make_agent("bo")
    notification = _make(bo, "1")
    _make(bo, "2")
    marked = services.mark_notification_read(user=bo, notification_id=notification.pk)
    assert marked.read_at is not None
    first_read = marked.read_at
    again = services.mark_notification_read(user=bo, notification_id=str(notification.pk))
    assert again.read_at == first_read
    assert selectors.unread_count(bo) == 1


def test_someone_elses_or_a_missing_notification_is_not_found(make_agent):
    bo, other = make_agent("bo"), make_agent("other")
    theirs = _make(other, "1")
    for bad_id in (theirs.pk, 999999, "abc", None):
        with pytest.raises(NotificationNotFound):
            services.mark_notification_read(user=bo, notification_id=bad_id)
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_mark_all_read_touches_only_my_unread(make_agent):
    bo, other = make_agent("bo"), make_agent("other")
    _make(bo, "1")
    _make(bo, "2")
    _make(bo, "3", read_at=timezone.now() - timedelta(hours=1))
    _make(other, "4")
    assert services.mark_all_read(user=bo) == 2
    assert selectors.unread_count(bo) == 0
    assert selectors.unread_count(other) == 1
    assert services.mark_all_read(user=bo) == 0


def test_notifications_older_than_the_retention_are_pruned(make_agent, settings):
    settings.LIVE_ESCALATION = {**settings.LIVE_ESCALATION, "NOTIFICATION_RETENTION_DAYS": 30}
    bo = make_agent("bo")
    old = _make(bo, "old")
    read_old = _make(bo, "read-old", read_at=timezone.now())
    recent = _make(bo, "recent")
    Notification.objects.filter(pk__in=[old.pk, read_old.pk]).update(
        created_at=timezone.now() - timedelta(days=31)
    )
    Notification.objects.filter(pk=recent.pk).update(created_at=timezone.now() - timedelta(days=29))
    assert prune_old_notifications.delay().get() == 2
    assert list(Notification.objects.values_list("pk", flat=True)) == [recent.pk]
