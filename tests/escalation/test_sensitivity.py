"""Sensitivity moves every head's threshold (request, each topic, upset) alike on the log-odds
scale, and can be re-applied to stored signals, which carry each head's threshold."""

from escalation.detection import TOPICS, DetectorSettings
from escalation.detection.model import intensity_of
from escalation.detection.policy import (
    adjusted_threshold,
    detected_topics,
    escalation_probability,
    sentiment_cutoff,
    would_decide,
)

HEAD_KINDS = ("request", "refund", "upset")


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


def test_stored_signals_carry_every_heads_threshold():
    """The Settings preview and replay move thresholds on stored signals: every head's
    threshold must be stored beside its score, topics included."""
    from escalation.detection import Turn, detect
    from escalation.detection.model import load_model

    model = load_model()
    result = detect([Turn("customer", "what is your refund policy for shoes?")])
    stored = result.signals
    assert stored["intent"]["threshold"] == round(model.heads["request"].threshold, 4)
    assert stored["sentiment"]["threshold"] == round(model.heads["upset"].threshold, 4)
    assert stored["complexity"]["thresholds"] == {
        topic: round(model.heads[topic].threshold, 4) for topic in TOPICS
    }
    assert set(stored["complexity"]["scores"]) == set(TOPICS)
    # Re-applied at each sensitivity, a topic is found exactly when its score reaches its
    # moved threshold (and at 0.5 the reading is the stored one).
    scores, thresholds = stored["complexity"]["scores"], stored["complexity"]["thresholds"]
    for sensitivity in (0.0, 0.3, 0.5, 0.7, 1.0):
        found = set(detected_topics(stored["complexity"], sensitivity))
        moved = {t: adjusted_threshold(thresholds[t], sensitivity) for t in TOPICS}
        assert found == {t for t in TOPICS if scores[t] >= moved[t]}
    assert detected_topics(stored["complexity"], 1.0) != detected_topics(stored["complexity"], 0.0)


def at(probability: float, threshold: float, sensitivity: float, head: str) -> bool:
    """Does one head, alone, at ``probability`` with its own ``threshold``, hand over?"""
    s = signals()
    if head == "request":
        s["intent"].update(
            confidence=probability, threshold=threshold, request_human=probability >= threshold
        )
    elif head == "refund":
        s["complexity"].update(
            scores={"refund": probability},
            thresholds={"refund": threshold},
            topics=["refund"] if probability >= threshold else [],
        )
    else:
        s["sentiment"].update(
            upset_probability=probability,
            threshold=threshold,
            intensity=intensity_of(probability, threshold),
        )
    return would_decide(s, DetectorSettings(sensitivity=sensitivity)).escalate


def test_sensitivity_moves_the_request_topic_and_upset_heads_alike():
    """A head whose probability stands the same distance (in log-odds) from its own threshold
    flips at the same sensitivity, whichever head it is and wherever its threshold lies."""
    for threshold in (0.22, 0.43, 0.57):
        for probability in (0.1, threshold - 0.05, threshold + 0.05, 0.8):
            for sensitivity in (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0):
                moved = adjusted_threshold(threshold, sensitivity)
                expected = probability >= moved
                readings = {h: at(probability, threshold, sensitivity, h) for h in HEAD_KINDS}
                assert readings == dict.fromkeys(HEAD_KINDS, expected), (
                    threshold,
                    probability,
                    sensitivity,
                )


def test_the_sentiment_setting_still_counts_on_the_intensity_scale():
    s = signals()
    s["sentiment"].update(upset_probability=0.45, threshold=0.5, intensity=intensity_of(0.45, 0.5))
    assert not would_decide(s, DetectorSettings()).escalate
    assert would_decide(s, DetectorSettings(sentiment_threshold=0.5)).reason == "sentiment"
    # the manager's lower setting and a higher sensitivity add up
    assert sentiment_cutoff(s["sentiment"], 0.5, 0.8) < sentiment_cutoff(s["sentiment"], 0.5, 0.5)
    assert sentiment_cutoff(s["sentiment"], 0.6, 0.5) == 0.6
