"""`make serve`'s first step (`python -m config.preflight`): every setting the stack reads is
checked before anything starts, so a bad value is one line naming it and exit code 2, not a
traceback from whichever process reads it first (or, for `WEB_CONCURRENCY=0`, a silent single
process).

The Procfile's own knobs are checked here because uvicorn and Celery name their flag, not the
variable, and honcho then stops the rest of the stack. The database must answer: `migrate` runs
next. Redis is not required to start; `/readyz` says while it is unreachable.
"""

from __future__ import annotations

import os
import sys

from django.core.exceptions import ImproperlyConfigured

from .env import env_number, env_str

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# honcho sends SIGKILL 5 s after SIGTERM: a longer grace would be cut short.
HONCHO_KILL_WAIT = 5


def check_procfile_settings() -> None:
    env_number("WEB_CONCURRENCY", 2, minimum=1, maximum=64)
    env_number("CELERY_CONCURRENCY", 2, minimum=1, maximum=64)
    env_number("SERVE_GRACE", 4, minimum=0, maximum=HONCHO_KILL_WAIT - 1)
    env_number("PORT", 8000, minimum=1, maximum=65535)
    level = env_str("CELERY_LOG_LEVEL", "INFO")
    if level.upper() not in LOG_LEVELS:
        raise ImproperlyConfigured(
            f"CELERY_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {level!r}."
        )


def check_database() -> None:
    from django.db import DatabaseError, connection

    try:
        connection.ensure_connection()
    except DatabaseError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ImproperlyConfigured(
            f"the database (DATABASE_URL) does not answer: {type(error).__name__}: {first_line}"
        ) from None
    finally:
        connection.close()


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    try:
        check_procfile_settings()
        import django

        django.setup()  # reads and checks every other setting (config/settings.py)
        check_database()
    except ImproperlyConfigured as error:
        print(f"make serve: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
