"""The Claude backend, driven through the real `anthropic` client over an httpx.MockTransport:
the request it sends, how it reads the tool call, and the fallback to the local backend on a
malformed answer, a timeout, a rate limit or a server error. No network."""

import json

import pytest

from crm.llm import override_transport
from escalation.detection import DetectorSettings, Turn, detect
from escalation.detection.claude import TOOL_NAME

try:  # the HTTP library the installed anthropic SDK is built on (2.x: httpx2)
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older SDKs use httpx itself
    import httpx

CLAUDE = DetectorSettings(backend="claude")
TURNS = [
    Turn("customer", "My order 55120 never arrived and I paid $80"),
    Turn("assistant", "It should arrive within 3 days.", 0.4),
    Turn("customer", "that's what you said last week. I want a person"),
]


def analysis(**overrides) -> dict:
    data = {
        "sentiment": {"score": -0.6, "intensity": 0.7, "labels": ["frustration"]},
        "intent": {"request_human": True, "confidence": 0.95},
        "complexity": {"topics": []},
        "loop": {"count": 1},
        "decision": {
            "escalate": True,
            "reason": "request",
            "priority": "high",
            "detail": "Asked for a person after a missed delivery",
        },
        "summary": "The customer's order 55120 ($80) never arrived. They asked for a person.",
    }
    data.update(overrides)
    return data


def message(content: list) -> dict:
    return {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": content,
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 120, "output_tokens": 80},
    }


def tool_call(data) -> dict:
    return message([{"type": "tool_use", "id": "toolu_1", "name": TOOL_NAME, "input": data}])


@pytest.fixture(autouse=True)
def claude_settings(settings):
    settings.ANTHROPIC_MODEL = "claude-test"
    settings.ANTHROPIC_TIMEOUT = 2.0
    settings.ANTHROPIC_MAX_RETRIES = 0
    return settings


def run_with(handler, turns=TURNS, detector_settings=CLAUDE):
    requests = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return handler(request)

    with override_transport(httpx.MockTransport(record)):
        return detect(turns, detector_settings), requests


def test_one_messages_call_with_the_signals_tool_forced():
    result, requests = run_with(lambda r: httpx.Response(200, json=tool_call(analysis())))
    assert len(requests) == 1
    request = requests[0]
    assert request.method == "POST" and request.url.path == "/v1/messages"
    body = json.loads(request.content)
    assert body["model"] == "claude-test"
    assert body["tool_choice"] == {"type": "tool", "name": TOOL_NAME}
    [tool] = body["tools"]
    assert tool["name"] == TOOL_NAME
    schema = tool["input_schema"]
    assert set(schema["required"]) == {
        "sentiment",
        "intent",
        "complexity",
        "loop",
        "decision",
        "summary",
    }
    assert schema["properties"]["decision"]["properties"]["reason"]["enum"][:5] == [
        "request",
        "sentiment",
        "complexity",
        "loop",
        "low_confidence",
    ]
    [user] = body["messages"]
    assert user["role"] == "user"
    assert "[customer] My order 55120" in user["content"]
    assert "[assistant, confidence 0.40]" in user["content"]
    assert "0.60" in body["system"]  # the assistant's sentiment threshold travels with it


def test_the_tool_input_becomes_the_result():
    result, _ = run_with(lambda r: httpx.Response(200, json=tool_call(analysis())))
    assert result.backend == "claude"
    assert result.decision.escalate and result.decision.reason == "request"
    assert result.decision.priority == "high"
    assert result.decision.detail == "Asked for a person after a missed delivery"
    assert result.summary.startswith("The customer's order 55120")
    assert result.signals["intent"]["source"] == "claude"
    assert result.signals["sentiment"]["labels"] == ["frustration"]
    assert result.signals["confidence"]["last"] == 0.4  # read from the turns, not guessed
    assert result.duration_ms > 0
    json.dumps(result.signals)


def test_the_assistants_settings_rule_over_claudes_decision():
    low_request = analysis(
        decision={"escalate": True, "reason": "request", "priority": "low", "detail": "x"}
    )
    result, _ = run_with(lambda r: httpx.Response(200, json=tool_call(low_request)))
    assert result.decision.priority == "high"  # an explicit request is at least high

    result, _ = run_with(
        lambda r: httpx.Response(200, json=tool_call(analysis())),
        detector_settings=DetectorSettings(backend="claude", handoff_enabled=False),
    )
    assert result.backend == "claude"
    assert result.decision.escalate is False and result.would_escalate is True

    refund = analysis(
        intent={"request_human": False, "confidence": 0.1},
        sentiment={"score": 0.0, "intensity": 0.1, "labels": []},
        complexity={"topics": ["refund"]},
        loop={"count": 0},
        decision={"escalate": True, "reason": "complexity", "priority": "normal", "detail": "x"},
    )
    result, _ = run_with(
        lambda r: httpx.Response(200, json=tool_call(refund)),
        turns=[Turn("customer", "I want a refund")],
        detector_settings=DetectorSettings(backend="claude", always_human_topics=("legal",)),
    )
    assert result.decision.escalate is False  # refund isn't one this assistant hands off


@pytest.mark.parametrize(
    "body",
    [
        tool_call(
            analysis(
                decision={"escalate": True, "reason": "vibes", "priority": "high", "detail": "x"}
            )
        ),
        tool_call(analysis(sentiment={"score": -3, "intensity": 0.5, "labels": []})),
        tool_call({"summary": "only a summary"}),
        tool_call(
            analysis(decision={"escalate": True, "reason": None, "priority": None, "detail": "x"})
        ),
        message([{"type": "text", "text": "I think you should escalate."}]),
    ],
    ids=[
        "unknown-reason",
        "score-out-of-range",
        "missing-fields",
        "escalate-without-reason",
        "no-tool-call",
    ],
)
def test_malformed_output_falls_back_to_local(body):
    result, requests = run_with(lambda r: httpx.Response(200, json=body))
    assert len(requests) == 1
    assert result.backend == "local"
    assert result.decision.reason == "request"  # the local backend still hears the request
    assert result.signals["fallback"]["from"] == "claude"


def test_timeout_falls_back_to_local():
    def slow(request):
        raise httpx.ReadTimeout("timed out", request=request)

    result, _ = run_with(slow)
    assert result.backend == "local"
    assert result.decision.escalate and result.decision.reason == "request"
    assert "Timeout" in result.signals["fallback"]["error"]


@pytest.mark.parametrize("status", [429, 500, 529])
def test_rate_limit_and_server_errors_fall_back_to_local(status):
    error = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    result, requests = run_with(lambda r: httpx.Response(status, json=error))
    assert len(requests) == 1  # retries are 0 in these tests
    assert result.backend == "local"
    assert result.decision.reason == "request"


def test_retries_from_settings_then_answers(claude_settings):
    claude_settings.ANTHROPIC_MAX_RETRIES = 1
    responses = iter(
        [
            httpx.Response(429, headers={"retry-after-ms": "1"}, json={"type": "error"}),
            httpx.Response(200, json=tool_call(analysis())),
        ]
    )
    result, requests = run_with(lambda r: next(responses))
    assert len(requests) == 2
    assert result.backend == "claude"


def test_without_claude_available_the_local_backend_answers(settings):
    settings.ANTHROPIC_API_KEY = ""
    result = detect(TURNS, CLAUDE)
    assert result.backend == "local"
    assert "fallback" not in result.signals
