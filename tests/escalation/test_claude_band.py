""" "Local, and Claude when unsure": only a message whose local escalation probability falls inside
the assistant's band goes to Claude (the real anthropic client over an httpx2.MockTransport);
every other message never leaves the machine. No network."""

import json

import pytest

from crm.llm import override_transport
from escalation.detection import DetectorSettings, Turn, detect
from escalation.detection.claude import TOOL_NAME
from escalation.pipeline import detector_settings
from tests.factories import AssistantFactory

try:  # the HTTP library the installed anthropic SDK is built on (2.x: httpx2)
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older SDKs use httpx itself
    import httpx

TURNS = [
    Turn("customer", "My parcel 55120 still hasn't arrived"),
    Turn("assistant", "Parcels usually arrive within 3 days.", 0.5),
    Turn("customer", "hmm, is there someone who could check this?"),
]
CLAUDE_ANSWER = {
    "sentiment": {"score": -0.2, "intensity": 0.3, "labels": []},
    "intent": {"request_human": True, "confidence": 0.9},
    "complexity": {"topics": []},
    "loop": {"count": 0},
    "decision": {
        "escalate": True,
        "reason": "request",
        "priority": "high",
        "detail": "Asks for someone to check a late parcel",
    },
    "summary": "Parcel 55120 is late; the customer asks for a person to check.",
}


@pytest.fixture(autouse=True)
def claude_settings(settings):
    settings.ANTHROPIC_MODEL = "claude-test"
    settings.ANTHROPIC_TIMEOUT = 2.0
    settings.ANTHROPIC_MAX_RETRIES = 0


def hybrid(band) -> DetectorSettings:
    return DetectorSettings(backend="local_claude", claude_band=band)


def answered(request: httpx.Request) -> httpx.Response:
    body = {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [
            {"type": "tool_use", "id": "toolu_1", "name": TOOL_NAME, "input": CLAUDE_ANSWER}
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 10},
    }
    return httpx.Response(200, json=body)


def run(band, handler):
    requests = []

    def record(request):
        requests.append(request)
        return handler(request)

    with override_transport(httpx.MockTransport(record)):
        return detect(TURNS, hybrid(band)), requests


def local_probability() -> float:
    """What the local backend says for TURNS (no transport: Claude unavailable)."""
    return detect(TURNS, hybrid((0.0, 1.0))).signals["route"]["probability"]


def test_a_message_inside_the_band_is_decided_by_claude():
    result, requests = run((0.0, 1.0), answered)
    assert len(requests) == 1
    sent = json.loads(requests[0].content)
    assert "someone who could check" in json.dumps(sent)
    assert result.backend == "claude"
    assert result.decision.reason == "request"
    assert result.signals["route"]["to"] == "claude"
    assert 0.0 <= result.signals["route"]["probability"] <= 1.0


def test_a_message_outside_the_band_never_leaves_the_machine():
    p = local_probability()
    band = (p + 0.001, 1.0) if p < 0.99 else (0.0, p - 0.001)

    def refuse(request):
        raise AssertionError("an out-of-band message reached Claude")

    result, requests = run(band, refuse)
    assert requests == []
    assert result.backend == "local"
    assert result.signals["route"] == {"probability": p, "band": list(band), "to": "local"}


def test_a_claude_failure_inside_the_band_keeps_the_local_decision():
    local = detect(TURNS, DetectorSettings())
    result, requests = run((0.0, 1.0), lambda request: httpx.Response(529, json={}))
    assert len(requests) == 1
    assert result.backend == "local"
    assert result.decision == local.decision
    assert result.signals["route"]["to"] == "local"
    assert "error" in result.signals["route"]


@pytest.mark.django_db
def test_the_assistants_band_and_sensitivity_reach_the_detector():
    assistant = AssistantFactory(
        backend="local_claude", claude_band_low=0.3, claude_band_high=0.6, sensitivity=0.7
    )
    settings = detector_settings(assistant)
    assert (settings.backend, settings.claude_band, settings.sensitivity) == (
        "local_claude",
        (0.3, 0.6),
        0.7,
    )
