"""Routing and workload: which team an escalation goes to (rules), when the team is open
(business hours), how fast it must be picked up (SLA), how its priority ages while it waits,
and, for automatic teams, which agent gets it (offers and assignments within capacity).

``docs/routing.md`` says how routing decides; ``services`` holds every state change,
``selectors`` the reads, ``tasks`` the periodic sweeps Celery beat runs.
"""
