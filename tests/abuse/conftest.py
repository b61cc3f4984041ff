"""Abuse tests: each reproduces a finding of the open-internet review (issue 15) against the
product running as in production (uvicorn subprocesses on loopback, the test database, Redis)
and shows it fixed. Like tests/faults, `make faults` runs them and under CI=true `make test`
collects them; a plain `make test` on a developer's machine leaves them out."""

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

ON_CI = os.environ.get("CI", "").lower() == "true"
ABUSE_DIR = Path(__file__).resolve().parent


def _abuse_requested(config) -> bool:
    if ON_CI:
        return True
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if path == ABUSE_DIR or ABUSE_DIR in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path, config):
    if collection_path.name.startswith("test_") and not _abuse_requested(config):
        return True
    return None


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
    from tests.faults.services import (
        RedisServer,
        database_url_of_tests,
        product_env,
        redis_available,
        start_uvicorn,
    )

    if not redis_available():
        if ON_CI:
            pytest.fail("CI=true must run the abuse tests, but redis-server is not installed")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
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
