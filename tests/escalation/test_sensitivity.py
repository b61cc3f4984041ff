"""Sensitivity moves the request, topic and sentiment thresholds on the log-odds scale, and can be
re-applied to stored signals."""

from escalation.detection import DetectorSettings
from escalation.detection.policy import adjusted_threshold, escalation_probability, would_decide


def signals(*, request=0.1, declined=False, upset=0.05, intensity=0.05, topic_score=0.0):
    return {
        "sentiment": {"intensity": intensity, "upset_probability": upset, "labels": []},
        "intent": {
            "request_human": request >= 0.5 and not declined,
            "confidence": request,
            "threshold": 0.5,
            "source": "declined" if declined else "model",
        },
        "complexity": {
            "topics": ["refund"] if topic_score >= 0.6 else [],
            "scores": {"refund": topic_score},
            "thresholds": {"refund": 0.6},
        },
        "loop": {"count": 0, "customer_repeats": 0, "assistant_repeats": 0, "already_told": False},
        "confidence": {"last": None, "recent_low": 0, "recent": []},
        "closing": False,
    }


def test_neutral_sensitivity_keeps_the_trained_thresholds_and_the_scale_is_monotone():
    assert adjusted_threshold(0.37, 0.5) == 0.37
    moved = [adjusted_threshold(0.5, s) for s in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert moved == sorted(moved, reverse=True)
    assert 0.1 < moved[-1] < 0.15 and 0.85 < moved[0] < 0.9


def test_higher_sensitivity_hands_over_a_weaker_request_and_lower_sensitivity_does_not():
    weak = signals(request=0.4)
    assert not would_decide(weak, DetectorSettings()).escalate
    assert would_decide(weak, DetectorSettings(sensitivity=0.8)).reason == "request"
    strong = signals(request=0.6)
    assert would_decide(strong, DetectorSettings()).escalate
    assert not would_decide(strong, DetectorSettings(sensitivity=0.2)).escalate


def test_a_declined_request_never_escalates_whatever_the_sensitivity():
    declined = signals(request=0.9, declined=True)
    assert not would_decide(declined, DetectorSettings(sensitivity=1.0)).escalate


def test_topics_and_sentiment_follow_the_sensitivity_too():
    near_topic = signals(topic_score=0.45)
    assert not would_decide(near_topic, DetectorSettings()).escalate
    assert would_decide(near_topic, DetectorSettings(sensitivity=0.8)).reason == "complexity"
    assert not would_decide(
        near_topic, DetectorSettings(sensitivity=0.8, always_human_topics=())
    ).escalate
    near_upset = signals(intensity=0.5)
    assert not would_decide(near_upset, DetectorSettings()).escalate
    assert would_decide(near_upset, DetectorSettings(sensitivity=0.8)).reason == "sentiment"


def test_signals_without_stored_thresholds_keep_their_reading():
    old = signals(request=0.4)
    del old["intent"]["threshold"]
    del old["complexity"]["thresholds"]
    assert not would_decide(old, DetectorSettings(sensitivity=1.0)).escalate


def test_the_escalation_probability_is_the_strongest_deciding_head():
    assert escalation_probability(signals(request=0.4, upset=0.7), DetectorSettings()) == 0.7
    topical = signals(request=0.1, upset=0.1, topic_score=0.55)
    assert escalation_probability(topical, DetectorSettings()) == 0.55
    assert escalation_probability(topical, DetectorSettings(always_human_topics=())) == 0.1
    assert escalation_probability(signals(request=0.4, upset=0.7), DetectorSettings()) == 0.7
