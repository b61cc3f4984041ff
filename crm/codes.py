"""The codes every app speaks: why a conversation was escalated, and how urgent it is.

They live in the crm core, the lowest layer, because tickets, notifications and the outbound
webhooks name them as well as escalation does.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Reason(models.TextChoices):
    REQUEST = "request", _("Asked for a person")
    SENTIMENT = "sentiment", _("Frustration")
    COMPLEXITY = "complexity", _("Complex issue")
    LOOP = "loop", _("Unresolved loop")
    LOW_CONFIDENCE = "low_confidence", _("Low AI confidence")
    MANUAL = "manual", _("Escalated by hand")


class Priority(models.IntegerChoices):
    """Stored as a number so the queue orders by it through an index; codes are the names."""

    LOW = 1, _("Low")
    NORMAL = 2, _("Normal")
    HIGH = 3, _("High")
    URGENT = 4, _("Urgent")

    @property
    def code(self) -> str:
        return self.name.lower()

    @classmethod
    def from_code(cls, code: str) -> "Priority":
        try:
            return cls[code.upper()]
        except KeyError:
            raise ValueError(f"Unknown priority {code!r}") from None

    @classmethod
    def parse(cls, value) -> "Priority":
        """The one way in for a priority: a member, its number (an int or a digit string) or
        its code ("high", any case). Anything else raises ValueError naming the value."""
        if isinstance(value, cls):
            return value
        try:
            if isinstance(value, str):
                text = value.strip()
                return cls(int(text)) if text.isdigit() else cls[text.upper()]
            if isinstance(value, int) and not isinstance(value, bool):
                return cls(value)
        except (KeyError, ValueError):
            pass
        raise ValueError(f"Unknown priority {value!r} (one of: {', '.join(cls.codes())})")

    @classmethod
    def codes(cls) -> list[str]:
        return [member.name.lower() for member in cls]

    def raised(self) -> "Priority":
        return Priority(min(self.value + 1, Priority.URGENT))
