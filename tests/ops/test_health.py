"""/healthz and /readyz: answered before host checks and the HTTPS redirect; readiness fails,
named, against a real closed port and a real database without its migrations."""

import json
import sqlite3
import urllib.error
import urllib.request

import pytest
from django.db import connection
from django.test import override_settings

from config import ops
from tests.faults.services import free_port, product_env, start_uvicorn

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    return free_port()  # bound and released: nothing listens there


def test_healthz_answers_whatever_the_host_and_without_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/healthz", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    # the same host elsewhere is refused, so the probe did skip host validation
    assert client.get("/crm/", HTTP_HOST="10.1.2.3:8000").status_code == 400


def test_readyz_is_ready_on_this_runs_services(client, settings):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready" and body["failed"] == []
    assert body["checks"]["database"] == "ok"
    expected = "ok" if settings.REDIS_URL else "not used"
    assert body["checks"]["redis"] == expected


def test_ops_paths_accept_only_get(client):
    assert client.post("/readyz").status_code == 405


def test_readyz_names_redis_and_the_broker_when_their_port_is_closed(client, caplog):
    url = f"redis://127.0.0.1:{closed_port()}/0"
    with override_settings(REDIS_URL=url, CELERY_BROKER_URL=url, CELERY_TASK_ALWAYS_EAGER=False):
        response = client.get("/readyz")
    assert response.status_code == 503
    # one WARNING line per failing probe, naming what failed; no ERROR from Django besides it
    said = [
        (r.name, r.levelname) for r in caplog.records if r.name in ("config.ops", "django.request")
    ]
    assert said == [("config.ops", "WARNING")], said
    body = response.json()
    assert body["failed"] == ["redis", "broker"]
    assert body["checks"]["database"] == "ok"
    assert "refused" in body["checks"]["redis"].lower()


@pytest.mark.postgres
def test_a_database_on_a_closed_port_is_not_ready():
    wrapper = connection.copy(alias="closed")
    wrapper.settings_dict = {**connection.settings_dict, "PORT": str(closed_port())}
    try:
        outcome = ops.readiness(database=wrapper, redis_url="", eager=True)
    finally:
        wrapper.close()
    assert outcome["database"].startswith("OperationalError"), outcome


@pytest.mark.postgres
def test_a_postgres_database_without_migrations_is_not_ready():
    name = f"{connection.settings_dict['NAME']}_unmigrated"
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    raw = connection.connection.__class__.connect(
        **{**connection.get_connection_params(), "dbname": "postgres"}, autocommit=True
    )
    try:
        raw.execute(f'DROP DATABASE IF EXISTS "{name}"')
        raw.execute(f'CREATE DATABASE "{name}"')
        wrapper = connection.copy(alias="unmigrated")
        wrapper.settings_dict = {**connection.settings_dict, "NAME": name}
        try:
            outcome = ops.readiness(database=wrapper, redis_url="", eager=True)
        finally:
            wrapper.close()
    finally:
        raw.execute(f'DROP DATABASE IF EXISTS "{name}"')
        raw.close()
    assert "migration(s) not applied" in outcome["database"], outcome


def test_a_sqlite_database_without_migrations_is_not_ready(tmp_path):
    path = tmp_path / "empty.sqlite3"
    sqlite3.connect(path).close()
    from django.db.backends.sqlite3.base import DatabaseWrapper

    wrapper = DatabaseWrapper(
        {**connection.settings_dict, "ENGINE": "django.db.backends.sqlite3", "NAME": str(path)},
        alias="unmigrated",
    )
    try:
        outcome = ops.readiness(database=wrapper, redis_url="", eager=True)
    finally:
        wrapper.close()
    assert "migration(s) not applied" in outcome["database"], outcome


def test_a_server_whose_services_are_down_answers_readyz_503_naming_each():
    """The real endpoint of a real uvicorn process, its database and Redis on closed ports."""
    port = closed_port()
    server, http_port = start_uvicorn(
        product_env(
            DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/nothing",
            REDIS_URL=f"redis://127.0.0.1:{port}/0",
        )
    )
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=10) as live:
            assert live.status == 200
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=20)
        assert answer.value.code == 503
        body = json.loads(answer.value.read())
    finally:
        server.stop()
    assert body["status"] == "unavailable"
    assert body["failed"] == ["database", "redis", "broker"], body
