"""Abuse tests: each reproduces a finding of the open-internet review (issue 15) against the
product running as in production (uvicorn subprocesses on loopback, the test database, Redis)
and shows it fixed. Like tests/faults, `make faults` runs them and under CI=true `make test`
collects them; a plain `make test` on a developer's machine leaves them out."""

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.services import (
    RedisServer,
    database_url_of_tests,
    folder_requested,
    need,
    product_env,
    redis_available,
    start_uvicorn,
)

ABUSE_DIR = Path(__file__).resolve().parent


def pytest_ignore_collect(collection_path, config):
    if collection_path.name.startswith("test_") and not folder_requested(config, ABUSE_DIR):
        return True
    return None


def pytest_terminal_summary(terminalreporter):
    """What each abuse test printed (its figures: refusals, times, the flood's latencies),
    shown at the end of `make faults` without ``-s``."""
    lines = []
    for outcome in ("passed", "failed", "xfailed", "xpassed"):
        for report in terminalreporter.stats.get(outcome, []):
            if "tests/abuse/" not in report.nodeid or report.when != "call":
                continue
            for name, content in report.sections:
                if name == "Captured stdout call" and content.strip():
                    lines.append(f"{report.nodeid.split('::')[-1]}: {content.strip()}")
    if lines:
        terminalreporter.write_sep("-", "abuse figures")
        for line in lines:
            terminalreporter.write_line(line)


@dataclass(frozen=True)
class Served:
    port: int
    redis_url: str


@pytest.fixture
def same_layer(product, settings):
    """This process publishes on the served product's channel layer (as one more process of the
    same deployment would)."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [product.redis_url]},
        }
    }


@pytest.fixture(scope="module")
def product(django_db_setup):
    """uvicorn serving the product from the test database, with its own throwaway Redis
    (channel layer, broker and the shared limits), for the tests of one module; yields the
    port and the Redis URL. Tests use ``django_db(transaction=True)`` so the server sees their
    rows, and ``same_layer`` when what they change in this process must reach its sockets."""
    need(redis_available(), "redis-server is not installed (apt-get install redis-server)")
    redis = RedisServer().start()
    server = None
    try:
        env = product_env(
            DATABASE_URL=database_url_of_tests(),
            REDIS_URL=redis.url(),
            # Sockets re-check only when told (access.revoked): a revocation test cannot pass
            # on the periodic re-check.
            SOCKET_RECHECK_SECONDS="600",
        )
        server, port = start_uvicorn(env)
        yield Served(port=port, redis_url=redis.url())
    finally:
        if server is not None:
            server.stop()
        redis.stop()
