"""Fault tests start the services they break (see services.py). Without the binaries they need
they skip, and under CI=true that skip is a failure, like the markers in tests/conftest.py."""

import os

import pytest

from .services import postgres_bin, redis_available

ON_CI = os.environ.get("CI", "").lower() == "true"


def need(condition: bool, what: str) -> None:
    if condition:
        return
    if ON_CI:
        pytest.fail(f"CI=true must run the fault tests, but {what}")
    pytest.skip(what)


@pytest.fixture
def need_redis_server():
    need(redis_available(), "redis-server is not installed (apt-get install redis-server)")


@pytest.fixture
def need_postgres_server():
    need(postgres_bin() is not None, "PostgreSQL server binaries are not installed")
