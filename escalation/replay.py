"""What detection would do with an assistant's settings, on conversations already stored.

Two readings, both read-only:

- ``replay_conversation`` runs the detector again (the local backend, never Claude: a replay must
  not send history out or cost money) over each customer message in turn, up to the first that
  would hand over or the first human reply. This is what ``replay_detection`` and the Settings
  replay job run; it costs one detection per customer message.
- ``predicted_rates`` re-applies the policy to the signals already stored in ``MessageAnalysis``
  (no encoder, no model): fast enough for the sensitivity preview as a manager moves the slider.

Both count a conversation once, with the reason of its first handover, and report the rate by
reason and by channel.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import Assistant, Conversation, Message

from .detection import DetectorSettings, detect
from .detection.policy import would_decide
from .models import Escalation, MessageAnalysis
from .selectors import conversation_turns

SAMPLE_LIMIT = 5
SAMPLE_CHARS = 200
PREVIEW_ANALYSES = 20_000  # the newest analyses the preview reads; older ones are left out
_SINCE = re.compile(r"^\s*(\d{1,4})\s*([dhw])\s*$", re.IGNORECASE)
_UNIT_DAYS = {"d": 1, "w": 7, "h": 1 / 24}
MAX_SINCE_DAYS = 366


class ReplayInputError(ValueError):
    """Bad replay input (a ``--since`` that is not a duration, an unknown assistant)."""


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``30d``, ``12h`` or ``2w`` → the moment that long ago (at most a year)."""
    match = _SINCE.match(text or "")
    if not match:
        raise ReplayInputError(
            _("--since must be a number of days, hours or weeks, like 30d, 12h or 2w; got %(v)r.")
            % {"v": text}
        )
    days = int(match.group(1)) * _UNIT_DAYS[match.group(2).lower()]
    if days <= 0:
        raise ReplayInputError(_("--since must be more than zero."))
    if days > MAX_SINCE_DAYS:
        raise ReplayInputError(_("--since may reach back at most a year (366d)."))
    return (now or timezone.now()) - timedelta(days=days)


def find_assistant(name_or_id: str) -> Assistant:
    """An assistant by id or exact name (case-insensitive); a clear error otherwise."""
    value = (name_or_id or "").strip()
    found = Assistant.objects.filter(pk=int(value)) if value.isdigit() else None
    if not found:
        found = Assistant.objects.filter(name__iexact=value)
    assistants = list(found[:2])
    if len(assistants) == 1:
        return assistants[0]
    names = ", ".join(f"{a.pk}: {a.name}" for a in Assistant.objects.order_by("pk")[:20])
    if not assistants:
        raise ReplayInputError(
            _("No assistant %(v)r. Known: %(names)s.") % {"v": value, "names": names or "none"}
        )
    raise ReplayInputError(_("Several assistants are named %(v)r; use the id.") % {"v": value})


def replay_settings(assistant: Assistant, **overrides) -> DetectorSettings:
    """The assistant's current detection settings, with handoff on (the question is what it
    *would* do) and the local backend."""
    from .pipeline import detector_settings

    return dataclasses.replace(
        detector_settings(assistant), handoff_enabled=True, backend="local", **overrides
    )


def conversations_to_replay(assistant: Assistant, since: datetime):
    return (
        Conversation.objects.filter(assistant=assistant, created_at__gte=since)
        .filter(messages__sender=Message.Sender.CUSTOMER)
        .distinct()
        .order_by("id")
    )


@dataclass(frozen=True)
class Outcome:
    conversation_id: int
    channel: str
    escalates: bool
    reason: str = ""
    detail: str = ""
    text: str = ""


def replay_conversation(conversation: Conversation, settings: DetectorSettings) -> Outcome:
    """Detection over the conversation's customer messages in order, until one would hand over
    or a person has replied (after that, detection was not the assistant's to make)."""
    channel = conversation.channel.kind
    rows = (
        Message.objects.filter(conversation_id=conversation.pk, is_private_note=False)
        .exclude(sender=Message.Sender.SYSTEM)
        .order_by("id")
        .values_list("id", "sender", "text")
    )
    for message_id, sender, text in rows:
        if sender == Message.Sender.AGENT:
            break
        if sender != Message.Sender.CUSTOMER:
            continue
        turns = conversation_turns(conversation.pk, up_to_message_id=message_id)
        decision = detect(turns, settings).decision
        if decision.escalate:
            return Outcome(
                conversation.pk, channel, True, decision.reason or "", decision.detail, text
            )
    return Outcome(conversation.pk, channel, False)


def empty_tally() -> dict:
    return {"conversations": 0, "escalated": 0, "by_reason": {}, "by_channel": {}, "samples": []}


def add_outcome(tally: dict, outcome: Outcome) -> dict:
    """Fold one outcome into a JSON-serialisable tally (stored on the job between chunks)."""
    tally["conversations"] += 1
    channel = tally["by_channel"].setdefault(outcome.channel, {"conversations": 0, "escalated": 0})
    channel["conversations"] += 1
    if outcome.escalates:
        tally["escalated"] += 1
        channel["escalated"] += 1
        tally["by_reason"][outcome.reason] = tally["by_reason"].get(outcome.reason, 0) + 1
        if len(tally["samples"]) < SAMPLE_LIMIT:
            tally["samples"].append(
                {
                    "conversation_id": outcome.conversation_id,
                    "channel": outcome.channel,
                    "reason": outcome.reason,
                    "detail": outcome.detail,
                    "text": outcome.text[:SAMPLE_CHARS],
                }
            )
    return tally


def rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def actual_escalations(assistant: Assistant, since: datetime) -> int:
    """Conversations of the window that detection or the assistant really handed over."""
    return (
        Escalation.objects.filter(
            conversation__assistant=assistant,
            conversation__created_at__gte=since,
            triggered_by__in=[Escalation.Trigger.DETECTION, Escalation.Trigger.ASSISTANT],
        )
        .values("conversation_id")
        .distinct()
        .count()
    )


def predicted_rates(*, assistant: Assistant, settings: DetectorSettings, since: datetime) -> dict:
    """The escalation rate the policy gives with ``settings`` on the signals stored for the
    assistant's conversations since ``since`` (the newest PREVIEW_ANALYSES analyses). Signals
    stored by an older detector that lack a field are counted as skipped."""
    rows = (
        MessageAnalysis.objects.filter(
            message__conversation__assistant=assistant, message__created_at__gte=since
        )
        .order_by("-message_id")
        .values_list("message__conversation_id", "signals")[:PREVIEW_ANALYSES]
    )
    conversations: set[int] = set()
    first_reason: dict[int, str] = {}
    skipped = 0
    for conversation_id, signals in reversed(list(rows)):
        conversations.add(conversation_id)
        if conversation_id in first_reason:
            continue
        try:
            decision = would_decide(signals, settings)
        except (KeyError, TypeError, AttributeError):
            skipped += 1
            continue
        if decision.escalate:
            first_reason[conversation_id] = decision.reason or ""
    return {
        "conversations": len(conversations),
        "escalated": len(first_reason),
        "rate": rate(len(first_reason), len(conversations)),
        "by_reason": dict(Counter(first_reason.values())),
        "skipped": skipped,
    }
