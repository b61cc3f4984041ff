"""Abuse tests: each reproduces a finding of the open-internet review (issue 15) against the
product running as in production (uvicorn subprocesses on loopback, the test database, Redis)
and shows it fixed. Like tests/faults, `make faults` runs them and under CI=true `make test`
collects them; a plain `make test` on a developer's machine leaves them out."""

import os
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


@pytest.fixture
def product(db):
    """uvicorn serving the product from this test's database, with its own throwaway Redis
    (channel layer, broker and the shared limits); yields the port."""
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
        env = product_env(DATABASE_URL=database_url_of_tests(), REDIS_URL=redis.url())
        server, port = start_uvicorn(env)
        yield port
    finally:
        if server is not None:
            server.stop()
        redis.stop()
