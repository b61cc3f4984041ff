"""Real races for the tests: threads on their own database connections, released at once."""

import threading

from django.db import connection


def race(work, workers: int, *, timeout: float = 120) -> list:
    """Run ``work(i)`` in ``workers`` threads released together; return what each returned or
    raised, in worker order. Each thread closes its connection when done."""
    barrier = threading.Barrier(workers)
    outcomes: list = [None] * workers

    def run(i):
        try:
            barrier.wait(timeout=30)
            outcomes[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    return outcomes
