"""`make serve`'s preflight (`python -m config.preflight`): a bad setting is one line naming it
and exit code 2, before any process starts; good settings pass silently."""

import subprocess
import sys

import pytest

from tests.faults.services import REPO, free_port, product_env


def preflight(tmp_path, **env) -> subprocess.CompletedProcess:
    # The embedded SQLite file in a temp folder unless a case names its own DATABASE_URL.
    base = {"DATABASE_URL": None, "REDIS_URL": None, "SQLITE_PATH": str(tmp_path / "db.sqlite3")}
    return subprocess.run(
        [sys.executable, "-m", "config.preflight"],
        cwd=REPO,
        env=product_env(**{**base, **env}),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_good_settings_pass_silently(tmp_path):
    checked = preflight(tmp_path, WEB_CONCURRENCY="3", SERVE_GRACE="4", CELERY_LOG_LEVEL="info")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == ""


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        # uvicorn would run one process without a word
        ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY must be between 1 and 64, got 0."),
        ({"WEB_CONCURRENCY": "two"}, "WEB_CONCURRENCY must be an integer, got 'two'."),
        ({"CELERY_CONCURRENCY": "x"}, "CELERY_CONCURRENCY must be an integer, got 'x'."),
        # honcho sends SIGKILL 5 s after SIGTERM
        ({"SERVE_GRACE": "30"}, "SERVE_GRACE must be between 0 and 4, got 30."),
        ({"PORT": "70000"}, "PORT must be between 1 and 65535, got 70000."),
        ({"CELERY_LOG_LEVEL": "loud"}, "CELERY_LOG_LEVEL must be one of DEBUG, INFO"),
        ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL"),
        ({"SECRET_KEY": None, "DEBUG": "0"}, "SECRET_KEY is not set."),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must start with redis://"),
        ({"CACHE_URL": "memcached://127.0.0.1"}, "CACHE_URL must start with redis://"),
        ({"DATABASE_URL": "postgres//typo"}, "DATABASE_URL must be a PostgreSQL URL"),
        ({"DATABASE_URL": "mysql://u@127.0.0.1/x"}, "DATABASE_URL must be a PostgreSQL URL"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(tmp_path, setting, says):
    checked = preflight(tmp_path, **setting)
    assert checked.returncode == 2, checked.stderr
    assert checked.stderr.startswith("make serve: " + says), checked.stderr
    assert "Traceback" not in checked.stderr
    assert len(checked.stderr.strip().splitlines()) == 1, checked.stderr


def test_a_database_that_does_not_answer_is_named_without_a_traceback(tmp_path):
    closed = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"
    checked = preflight(tmp_path, DATABASE_URL=closed)
    assert checked.returncode == 2
    assert checked.stderr.startswith("make serve: the database (DATABASE_URL) does not answer:")
    assert "Connection refused" in checked.stderr or "connection failed" in checked.stderr
    assert "Traceback" not in checked.stderr
