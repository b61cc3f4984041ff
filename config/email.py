"""Email without an SMTP server (the embedded default): one line per email on the console —
who it is for and its subject — instead of the whole MIME message, so `make run`'s console stays
readable while reminders and alerts go out."""

import sys
import threading

from django.core.mail.backends.base import BaseEmailBackend


class ConsoleSummaryBackend(BaseEmailBackend):
    def __init__(self, *args, stream=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def send_messages(self, email_messages):
        with self._lock:
            for message in email_messages:
                recipients = ", ".join(message.recipients())
                self.stream.write(f"[email, no EMAIL_HOST] to {recipients}: {message.subject}\n")
            self.stream.flush()
        return len(email_messages)
