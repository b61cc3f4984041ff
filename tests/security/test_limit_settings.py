"""The fair-use limits are settings read at start-up: a value out of range or not a number stops
the process with the setting's name, before it serves anything."""

import os
import subprocess
import sys

import pytest

from tests.faults.services import REPO


def start_with(**env: str) -> subprocess.CompletedProcess:
    """Load the settings as a starting process does."""
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=REPO,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("FRAME_QUEUE_MAX", "0", "FRAME_QUEUE_MAX must be between 1 and 1000, got 0"),
        ("FRAME_QUEUE_MAX", "ten", "FRAME_QUEUE_MAX must be an integer, got 'ten'"),
        ("SOCKETS_PER_CONVERSATION", "0", "SOCKETS_PER_CONVERSATION must be between 1"),
    ],
)
def test_a_bad_limit_stops_the_process_at_start_up(name, value, says):
    started = start_with(**{name: value})
    assert started.returncode != 0
    assert "ImproperlyConfigured" in started.stderr and says in started.stderr


def test_a_valid_limit_is_taken():
    started = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.LIVE_ESCALATION['FRAME_QUEUE_MAX'])",
        ],
        cwd=REPO,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "FRAME_QUEUE_MAX": "3"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == "3"
