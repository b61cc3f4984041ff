"""The benchmark's database: created if missing, migrated, emptied at the start of each run, and
filled with what the benchmarks need (a channel, agents, conversations, logged-in sessions)."""

from __future__ import annotations

import itertools
import uuid

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.db import connection

_names = itertools.count(1)


def ensure_database() -> None:
    """CREATE DATABASE for DATABASE_URL's name if it does not exist (the bench owns that db)."""
    db = settings.DATABASES["default"]
    conninfo = {
        "host": db.get("HOST") or "127.0.0.1",
        "port": db.get("PORT") or 5432,
        "user": db.get("USER") or "postgres",
        "password": db.get("PASSWORD") or None,
        "dbname": "postgres",
    }
    with psycopg.connect(**{k: v for k, v in conninfo.items() if v is not None}) as admin:
        admin.autocommit = True
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]])
        if exists.fetchone() is None:
            admin.execute(f'CREATE DATABASE "{db["NAME"]}"')


def prepare_database() -> None:
    """Migrate and empty the benchmark database, and empty its Redis db (queues, groups)."""
    import redis

    ensure_database()
    call_command("migrate", interactive=False, verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    connection.close()


def make_channel(*, origin: str):
    from crm.models import Assistant, Channel, ChannelKind

    assistant = Assistant.objects.create(name=f"Bench assistant {next(_names)}")
    return Channel.objects.create(
        kind=ChannelKind.WEBSITE,
        name=f"Bench website {next(_names)}",
        assistant=assistant,
        allowed_origins=[origin],
    )


def make_agents(count: int, *, online: bool = True) -> list:
    from django.contrib.auth import get_user_model

    from crm.models import AgentProfile

    User = get_user_model()
    agents = []
    for _ in range(count):
        n = f"{next(_names)}-{uuid.uuid4().hex[:6]}"
        user = User.objects.create_user(
            username=f"bench-agent-{n}", email=f"bench-agent-{n}@example.com", is_staff=True
        )
        AgentProfile.objects.create(
            user=user,
            display_name=f"Agent {n}",
            availability=(
                AgentProfile.Availability.ONLINE if online else AgentProfile.Availability.OFFLINE
            ),
            notify_via=AgentProfile.NotifyVia.IN_APP,
        )
        agents.append(user)
    return agents


def make_conversations(count: int, *, channel) -> list:
    """``count`` conversations on ``channel`` in AI mode (bulk-inserted: two queries per 1,000)."""
    from crm.models import Contact, Conversation, new_token

    conversations = []
    for start in range(0, count, 1000):
        size = min(1000, count - start)
        contacts = Contact.objects.bulk_create(
            [Contact(name=f"Bench customer {next(_names)}") for _ in range(size)]
        )
        conversations += Conversation.objects.bulk_create(
            [
                Conversation(
                    contact=contact,
                    channel=channel,
                    assistant=channel.assistant,
                    team=channel.default_team,
                    customer_token=new_token(),
                )
                for contact in contacts
            ]
        )
    return conversations


def session_cookie(user) -> str:
    """A logged-in session for ``user`` in the database, as a Cookie header value."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"
