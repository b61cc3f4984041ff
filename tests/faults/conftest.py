"""Fault tests start the services they break (see services.py). Without the binaries they need
they skip, and under CI=true that skip is a failure, like the markers in tests/conftest.py."""

import os
from pathlib import Path

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


FAULTS_DIR = Path(__file__).resolve().parent


def _faults_requested(config) -> bool:
    """`make faults` (pytest tests/faults[/...]) asks for them; CI runs them in `make test` too."""
    if ON_CI:
        return True
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if path == FAULTS_DIR or FAULTS_DIR in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path, config):
    """Each fault test starts and breaks real services (10-25 s each): a plain `make test` on a
    developer's machine leaves them to `make faults`; CI=true and explicit paths run them."""
    if collection_path.name.startswith("test_") and not _faults_requested(config):
        return True
    return None
