"""The product's Celery app with faults injected for tests/faults (``celery -A
tests.faults.fault_worker_app worker``). Without the variables below it is the product's app.

- FAULT_DETECT_DELAY=<seconds>: detection sleeps this long first, after writing its process id to
  FAULT_MARKER, so a test can kill the worker while an analysis is in flight.
- FAULT_VISIBILITY_TIMEOUT=<seconds>: how long Redis keeps an unacknowledged task before another
  worker may take it (the product uses 300 s; a test shortens it to see the redelivery).
"""

import os
import time
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from config.celery import app  # noqa: E402

_delay = float(os.environ.get("FAULT_DETECT_DELAY") or 0)
if _delay:
    from escalation import pipeline

    _real_detect = pipeline.detect

    def _slow_detect(*args, **kwargs):
        Path(os.environ["FAULT_MARKER"]).write_text(str(os.getpid()))
        time.sleep(_delay)
        return _real_detect(*args, **kwargs)

    pipeline.detect = _slow_detect

if os.environ.get("FAULT_VISIBILITY_TIMEOUT"):
    app.conf.broker_transport_options = {
        **(app.conf.broker_transport_options or {}),
        "visibility_timeout": float(os.environ["FAULT_VISIBILITY_TIMEOUT"]),
        # Look for expired unacknowledged tasks every second (default: about every 100 s).
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }

__all__ = ["app"]
