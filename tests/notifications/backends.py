"""Email backends for tests: one that refuses like a server that is down, one that is slow."""

import threading
import time

from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend


class RefusingBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise ConnectionRefusedError(111, "Connection refused")


class SlowBackend(LocmemBackend):
    """locmem, but each send takes a while, so concurrent senders overlap."""

    lock = threading.Lock()

    def send_messages(self, messages):
        time.sleep(0.3)
        with self.lock:
            return super().send_messages(messages)
