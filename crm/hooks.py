"""How the crm core tells the layers above it what happened, without importing them.

A lower layer announces; the apps above connect a listener in their ``AppConfig.ready``
(``escalation`` queues the analysis of a customer's message, ``integrations`` emits the
outbound webhook event and queues provider delivery). Listeners run inside the announcing
service's transaction, in the order they connected, and put their side effects on
``transaction.on_commit`` themselves.
"""

from collections.abc import Callable


class Hook:
    def __init__(self, name: str):
        self.name = name
        self._listeners: list[Callable[..., None]] = []

    def connect(self, listener: Callable[..., None]) -> None:
        """Idempotent: ``ready()`` may run more than once in tests."""
        if listener not in self._listeners:
            self._listeners.append(listener)

    def announce(self, **facts) -> None:
        for listener in self._listeners:
            listener(**facts)

    def __repr__(self) -> str:
        return f"<Hook {self.name}: {len(self._listeners)} listeners>"


# A message of any sender was stored (``message=``), private notes included.
message_stored = Hook("message_stored")

# An agent's reply to the customer was stored (``message=``); not the takeover greeting, not notes.
agent_replied = Hook("agent_replied")

# An agent's availability changed (``profile=``, with the new value).
agent_availability_changed = Hook("agent_availability_changed")

# The queue changed (``kind=`` added, updated, claimed, removed; ``escalation_id=``): announced
# with the queue event, inside the changing transaction.
queue_changed = Hook("queue_changed")
