"""Fault tests start the services they break (see services.py). Without the binaries they need
they skip, and under CI=true that skip is a failure, like the markers in tests/conftest.py."""

from pathlib import Path

import pytest

from .services import folder_requested, need, postgres_bin, redis_available

FAULTS_DIR = Path(__file__).resolve().parent


@pytest.fixture
def need_redis_server():
    need(redis_available(), "redis-server is not installed (apt-get install redis-server)")


@pytest.fixture
def need_postgres_server():
    need(postgres_bin() is not None, "PostgreSQL server binaries are not installed")


def pytest_ignore_collect(collection_path, config):
    """Each fault test starts and breaks real services (10-25 s each): a plain `make test` on a
    developer's machine leaves them to `make faults`; CI=true and explicit paths run them."""
    if collection_path.name.startswith("test_") and not folder_requested(config, FAULTS_DIR):
        return True
    return None
