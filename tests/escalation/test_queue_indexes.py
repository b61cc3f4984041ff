"""The wait estimate runs inside every handoff's transaction: its reads must be served by an
index, not a scan that grows with every escalation ever made."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from escalation import selectors

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _plan(sql: str) -> str:
    with connection.cursor() as cursor:
        # A small test table would be scanned whatever the indexes; forbid it to see whether
        # an index can serve the query at all.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def test_the_recent_pickups_are_read_through_their_index():
    with CaptureQueriesContext(connection) as queries:
        selectors.recent_pickup_seconds()
    (query,) = queries.captured_queries
    assert "escalation_recent_pickups" in _plan(query["sql"])
