"""Serializers every API edge shares: people, contacts, audit trails, priorities.

They live here, below the edges, so that the crm, escalation and tickets APIs need not import
one another.
"""

from rest_framework import serializers

from crm.codes import Priority
from crm.models import agent_name


class StrictBooleanField(serializers.BooleanField):
    """A JSON true or false, as the schema says; DRF's form-friendly 0, 1, "yes", "on" are 400s
    in a JSON body."""

    def to_internal_value(self, data):
        if data is True or data is False:
            return data
        self.fail("invalid", input=data)


class PersonSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()

    def to_representation(self, user):
        return {"id": user.pk, "name": agent_name(user)}


class AuditEventSerializer(serializers.Serializer):
    """One row of an audit trail (escalation or ticket events); subclasses set ``kind``."""

    kind = serializers.CharField()
    actor = PersonSerializer(allow_null=True)
    old_value = serializers.CharField()
    new_value = serializers.CharField()
    note = serializers.CharField()
    created_at = serializers.DateTimeField()


class ContactSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.CharField()
    phone = serializers.CharField()
    display_name = serializers.CharField(
        help_text="The name every screen shows: the name, email or phone, else a friendly "
        "visitor name derived from the id ('Blue Fox 42 (visitor)')."
    )
    is_visitor = serializers.BooleanField(
        help_text="Nothing is known about the contact (no name, email or phone)."
    )


class PriorityField(serializers.ChoiceField):
    """Stored as a number, spoken as a code: urgent, high, normal, low."""

    def __init__(self, **kwargs):
        super().__init__(choices=[(code, code) for code in reversed(Priority.codes())], **kwargs)

    def to_internal_value(self, data):
        return Priority.parse(super().to_internal_value(data))

    def to_representation(self, value):
        return Priority.parse(value).code


class QueuePlaceSerializer(serializers.Serializer):
    position = serializers.IntegerField(help_text="1 is next in the team's queue.")
    wait_minutes = serializers.IntegerField(
        help_text="The estimated wait in whole minutes, at least 1: from now until an agent "
        "probably picks up, the team's closed hours counted in (while it is closed, at least "
        "the time to its reopening)."
    )
    text = serializers.CharField(
        help_text="What the website widget tells the customer, in their language: 'You are "
        "number 3 in the queue — about 4 minutes.', or the reopening while the wait runs over "
        "the team's closed hours."
    )


def queue_place_data(place, context: dict) -> dict | None:
    """A waiting customer's ``escalation.selectors.QueuePlace`` as the API shows it (None: not
    waiting); each language's wording read once per ``context`` (a page's serializer context)."""
    if place is None:
        return None
    return place.shown(wordings=context.setdefault("queue_wordings", {}))
