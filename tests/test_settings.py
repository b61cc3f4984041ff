"""Start-up settings: safe defaults, clear errors, and a production configuration that passes
Django's deployment checks."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _manage(*args, **env):
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "HTTPS_ONLY", "DATABASE_URL", "REDIS_URL"}
    }
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_secret_key_with_debug_off_is_a_clear_startup_error():
    result = _manage("check")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_a_malformed_boolean_setting_names_the_variable():
    result = _manage("check", DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def test_production_settings_pass_the_deploy_check():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY="k" * 20 + "-production-secret-with-enough-entropy-0123456789abcdef",
        ALLOWED_HOSTS="support.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_debug_without_secret_key_starts_for_local_use():
    result = _manage("check", DEBUG="1")
    assert result.returncode == 0, result.stderr


def test_the_embedded_beat_keeps_routine_task_lines_out_of_the_console():
    show = (
        "from django.conf import settings; "
        "print(settings.LOGGING['loggers'].get('celery.app.trace'))"
    )
    embedded = _manage("shell", "--no-imports", "-c", show, DEBUG="1")
    assert embedded.stdout.strip() == "{'level': 'WARNING'}", embedded.stderr
    with_broker = _manage(
        "shell", "--no-imports", "-c", show, DEBUG="1", REDIS_URL="redis://127.0.0.1:6379/9"
    )
    assert with_broker.stdout.strip() == "None", with_broker.stderr
