"""Shared fixtures. Tests that need a real service carry a marker (postgres, redis, browser):
without the service they skip with the reason; under CI=true that skip is a failure."""

import ipaddress
import os
import shutil
import socket
import time

import httpx
import pytest
from celery._state import _set_task_join_will_block
from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection
from django.test import TransactionTestCase

from config.celery import app as celery_app
from crm import limits
from integrations.transport import use_resolver, use_transport

from .factories import AgentFactory, ChannelFactory, ConversationFactory

ON_CI = os.environ.get("CI", "").lower() == "true"


def _redis_available() -> bool:
    if not settings.REDIS_URL:
        return False
    import redis

    try:
        return bool(redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")


def _missing_service(item) -> str | None:
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        return "needs PostgreSQL: set DATABASE_URL=postgres://..."
    if item.get_closest_marker("redis") and not _redis_available():
        return "needs Redis: set REDIS_URL=redis://... to a running server"
    if item.get_closest_marker("browser") and not chromium_path():
        return "needs Chromium: apt-get install chromium (or set CHROMIUM_PATH)"
    return None


def pytest_runtest_setup(item):
    missing = _missing_service(item)
    if missing is None:
        return
    if ON_CI:
        pytest.fail(f"CI=true must exercise the real service, but this test {missing}")
    pytest.skip(missing)


LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
_true_getaddrinfo = socket.getaddrinfo


class OutsideNameResolved(RuntimeError):
    """A test asked the resolver for a name other than loopback's."""


def _loopback_only_getaddrinfo(host, *args, **kwargs):
    """pytest-socket (``--allow-hosts`` in pyproject.toml) refuses connections to anything but
    loopback; this refuses even to resolve another name, so no query leaves the machine."""
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and name.lower().rstrip(".") not in LOOPBACK_NAMES:
        try:
            ipaddress.ip_address(name.split("%")[0])  # a literal: the connect guard judges it
        except ValueError:
            raise OutsideNameResolved(f"a test tried to resolve {name!r}") from None
    return _true_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True, scope="session")
def loopback_only_resolver():
    socket.getaddrinfo = _loopback_only_getaddrinfo
    yield
    socket.getaddrinfo = _true_getaddrinfo


def _flush_again_after_a_deadlock(original):
    """A transactional test ends with a flush (TRUNCATE of every table, each lock taken in turn)
    while a live server of the test (uvicorn, its embedded beat) may still be in a transaction
    over two of those tables: PostgreSQL then breaks the deadlock by failing the flush, and the
    next test would start on the last one's rows. Once the server's transaction ends, the flush
    goes through: try it again."""

    def teardown(self):
        for attempt in range(1, 4):
            try:
                return original(self)
            except CommandError as error:
                if attempt == 3 or "deadlock detected" not in str(error.__cause__):
                    raise
                time.sleep(0.2 * attempt)

    return teardown


@pytest.fixture(autouse=True, scope="session")
def flush_survives_a_live_servers_transaction():
    original = TransactionTestCase._fixture_teardown
    TransactionTestCase._fixture_teardown = _flush_again_after_a_deadlock(original)
    yield
    TransactionTestCase._fixture_teardown = original


# Webhook deliveries resolve their receiver's name (integrations.transport): in tests, names
# under example.com answer a public address (nothing connects there: a MockTransport answers)
# and every other name fails like an unknown name, so no lookup ever leaves the machine.
PUBLIC_TEST_ADDRESS = "93.184.215.14"


def _test_resolver(host, port, *args, **kwargs):
    name = host.rstrip(".").lower()
    if name == "example.com" or name.endswith(".example.com"):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_TEST_ADDRESS, port))]
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        raise socket.gaierror(socket.EAI_NONAME, f"{host}: tests resolve no outside name") from None
    return _true_getaddrinfo(name.strip("[]"), port, *args, **kwargs)


def _no_outside_host(request):
    raise httpx.ConnectError(f"tests reach no outside host ({request.url.host})", request=request)


@pytest.fixture(autouse=True)
def offline_outbound_http():
    """Outbound HTTP (provider sends, webhook deliveries) fails like an unreachable network
    unless a test installs its own MockTransport; names resolve only as above."""
    with use_resolver(_test_resolver), use_transport(httpx.MockTransport(_no_outside_host)):
        yield


@pytest.fixture(autouse=True)
def fresh_socket_limits():
    """Socket slots, message budgets (crm.limits) and the customer tokens checked
    (crm.consumers.token_checks) are shared state: each test starts empty."""
    from crm.consumers import token_checks

    limits.clear_all()
    token_checks.clear()
    yield


@pytest.fixture(autouse=True)
def close_message_store_connections():
    """The customer message store's threads (crm.consumers.store_threads) keep their database
    connections, as the consumers' database thread does: closed after a test that used them, so
    the test database can be flushed and dropped."""
    yield
    from crm.consumers import close_store_connections, store_threads

    if store_threads._threads:
        close_store_connections()


@pytest.fixture(autouse=True)
def fresh_cache():
    """The default cache is this process's (locmem: CACHE_URL is unset in tests) and outlives a
    test: the widget's per-address start and pre-chat limits, the API throttles (per address,
    per user or token, per conversation: ids repeat on SQLite, where a rollback gives them
    back) and the 30 s key that lets a burst of queue changes queue one announcement
    (escalation.tasks.QUEUE_PLACES_PENDING). Each test starts with it empty."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def eager_celery(request):
    """Tasks run in-process unless a test starts a real worker (marker ``real_celery``).
    ``shared_task`` resolves to the *current* Celery app, and a ``Celery(...)`` made without
    ``set_as_current=False`` becomes current: ours is made current again for every test.

    An eager task sets Celery's process-wide "a join would block" flag while it runs and puts
    back the value it found; two threads' eager tasks that overlap (race tests) can leave it
    set for good, and every later ``.delay().get()`` raises "Never call result.get() within a
    task!": it is cleared for every test."""
    celery_app.set_current()
    celery_app.set_default()
    _set_task_join_will_block(False)
    eager = request.node.get_closest_marker("real_celery") is None
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = eager
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Real hashing costs ~0.4 s a user; no test here is about password strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def agent(db):
    return AgentFactory(display_name="Marina", username="marina")


@pytest.fixture
def other_agent(db):
    return AgentFactory(display_name="Alex", username="alex")


@pytest.fixture
def channel(db):
    return ChannelFactory()


@pytest.fixture
def conversation(db, channel):
    return ConversationFactory(channel=channel)
