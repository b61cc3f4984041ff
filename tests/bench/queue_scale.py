"""The queue at scale: 10,000 and 100,000 queued escalations. For each size, the response time
and the number of SQL queries of the queue selector (first page), the queue API and the queue
screen. The query count must not grow with the queue.

The API (/api/v1/escalations/) and the screen (/crm/) are measured in-process with Django's test
client when their URLs resolve; a surface that does not resolve yet is reported as missing.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta

from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext
from django.urls import Resolver404, resolve
from django.utils import timezone

from .harness import latency_summary

PAGE = 50
API_PATH = "/api/v1/escalations/"
SCREEN_PATH = "/crm/"


def add_queued_escalations(count: int, *, channel, progress, done_before: int, total: int) -> None:
    """Insert ``count`` queued escalations (with their contact, conversation and ticket) in
    batches, waits spread over the last 8 hours, mixed priorities and reasons."""
    from crm.models import Contact, Conversation, new_token
    from escalation.models import Escalation, Priority, Reason
    from tickets.models import Ticket

    rng = random.Random(count)
    now = timezone.now()
    reasons = [r for r in Reason.values if r != "manual"]
    batch = 5000
    for start in range(0, count, batch):
        size = min(batch, count - start)
        contacts = Contact.objects.bulk_create(
            [Contact(name=f"Queued customer {start + i}") for i in range(size)], batch_size=batch
        )
        conversations = Conversation.objects.bulk_create(
            [
                Conversation(
                    contact=c,
                    channel=channel,
                    assistant=channel.assistant,
                    mode=Conversation.Mode.AWAITING_AGENT,
                    customer_token=new_token(),
                )
                for c in contacts
            ],
            batch_size=batch,
        )
        escalations = Escalation.objects.bulk_create(
            [
                Escalation(
                    conversation=conversation,
                    status=Escalation.Status.QUEUED,
                    reason=rng.choice(reasons),
                    detail="bench",
                    priority=rng.choice(list(Priority)),
                    summary="Customer asked for help (benchmark row).",
                    triggered_by=Escalation.Trigger.DETECTION,
                    escalated_at=now - timedelta(seconds=rng.randint(0, 8 * 3600)),
                )
                for conversation in conversations
            ],
            batch_size=batch,
        )
        Ticket.objects.bulk_create(
            [
                Ticket(
                    escalation=e,
                    conversation_id=e.conversation_id,
                    contact_id=e.conversation.contact_id,
                    subject="bench",
                    priority=e.priority,
                    reason=e.reason,
                )
                for e in escalations
            ],
            batch_size=batch,
        )
        progress.count(done_before + start + size, total, "rows inserted")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _timed(fn, repeats: int) -> tuple[dict, list[int], object]:
    samples, query_counts, result = [], [], None
    fn()  # warm caches (templates, plans)
    for _ in range(repeats):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            result = fn()
            samples.append((time.perf_counter() - started) * 1000)
        query_counts.append(len(queries.captured_queries))
        reset_queries()
    return latency_summary(samples), query_counts, result


def _resolves(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def measure_queue(*, user, repeats: int) -> dict:
    from django.test import Client

    from escalation.selectors import queued_escalations

    def selector_page():
        rows = list(queued_escalations()[:PAGE])
        shown = []
        # Touch what a queue row shows, so lazy loads would be counted.
        for e in rows:
            shown.append((e.conversation.contact.name, e.conversation.channel.kind, e.team))
            shown.append(e.claimed_by)
        return len(rows)

    out = {}
    timing, counts, rows = _timed(selector_page, repeats)
    out["selector"] = {"page_rows": rows, "time": timing, "queries": sorted(set(counts))}

    client = Client()
    client.force_login(user)
    for name, path in (("api", API_PATH), ("screen", SCREEN_PATH)):
        if not _resolves(path):
            out[name] = {"path": path, "missing": True}
            continue

        def get(path=path):
            return client.get(path, follow=True)

        timing, counts, response = _timed(get, repeats)
        out[name] = {
            "path": path,
            "status": response.status_code,
            "bytes": len(response.content),
            "time": timing,
            "queries": sorted(set(counts)),
        }
    return out


def run_queue_scale(*, sizes: list[int], repeats: int, progress) -> dict:
    from .world import make_agents, make_channel

    channel = make_channel(origin="http://127.0.0.1")
    user = make_agents(1)[0]
    results = {}
    present = 0
    total = max(sizes)
    for size in sorted(sizes):
        add_queued_escalations(
            size - present, channel=channel, progress=progress, done_before=present, total=total
        )
        present = size
        results[str(size)] = measure_queue(user=user, repeats=repeats)
    # Constant means: the same number of queries at every size, for every surface measured.
    constant = {}
    for surface in ("selector", "api", "screen"):
        counts = [
            tuple(results[str(s)][surface]["queries"])
            for s in sizes
            if not results[str(s)][surface].get("missing")
        ]
        constant[surface] = None if not counts else len(set(counts)) == 1
    connection.close()
    return {"sizes": results, "query_count_constant": constant, "page": PAGE}
