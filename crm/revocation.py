"""Revoked access reaches open agent sockets within moments.

When a user is deactivated, loses staff, changes password, logs out, or a session of theirs is
deleted (the admin, ``clearsessions``, a script), an ``access.revoked`` event goes to their
``agent.<id>`` group after commit. Each of their sockets then re-checks its user and session
(``crm.consumers.agent_access_lost``) and closes itself if they no longer hold; sockets also
re-check before every frame and every ``SOCKET_RECHECK_SECONDS``, which covers a lost event.

These are Django signals, not explicit calls, on purpose: access is changed by the admin,
``manage.py`` commands and Django's own views, none of which go through our services.
"""

import logging

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.contrib.sessions.models import Session
from django.db.models.signals import post_delete, post_save, pre_save

from . import realtime

logger = logging.getLogger(__name__)

REVOKED = {"type": "access.revoked"}


def announce_revocation(user_id) -> None:
    """Tell the user's open sockets to re-check their access (after commit; never raises)."""
    if user_id is not None:
        realtime.publish_to_agent(int(user_id), REVOKED)


WATCHED_FIELDS = {"is_active", "is_staff", "password"}


def remember_access(sender, instance, update_fields=None, **kwargs) -> None:
    """Before a user is saved: what they had, to tell after the save whether they lost it."""
    if instance.pk is None:
        return
    if update_fields is not None and not WATCHED_FIELDS & set(update_fields):
        return  # e.g. last_login on every login
    before = (
        sender.objects.filter(pk=instance.pk).values("is_active", "is_staff", "password").first()
    )
    instance._access_before = before


def user_saved(sender, instance, created, **kwargs) -> None:
    before = getattr(instance, "_access_before", None)
    if created or before is None:
        return
    lost = (
        (before["is_active"] and not instance.is_active)
        or (before["is_staff"] and not instance.is_staff)
        or before["password"] != instance.password
    )
    if lost:
        announce_revocation(instance.pk)


def session_deleted(sender, instance, **kwargs) -> None:
    try:
        user_id = instance.get_decoded().get("_auth_user_id")
    except Exception:  # an undecodable session belongs to nobody we can tell
        return
    announce_revocation(user_id)


def user_logged_out_handler(sender, request, user, **kwargs) -> None:
    if user is not None:
        announce_revocation(user.pk)


def connect_revocation_signals() -> None:
    user_model = get_user_model()
    pre_save.connect(remember_access, sender=user_model, dispatch_uid="crm.revocation.pre")
    post_save.connect(user_saved, sender=user_model, dispatch_uid="crm.revocation.post")
    post_delete.connect(session_deleted, sender=Session, dispatch_uid="crm.revocation.session")
    user_logged_out.connect(user_logged_out_handler, dispatch_uid="crm.revocation.logout")
