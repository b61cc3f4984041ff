"""The agent's summary: what the customer wants, what the AI offered, the facts, why."""

from escalation.detection import Turn, summarize

JAMIE = [
    Turn("customer", "My subscription was charged twice this month."),
    Turn(
        "assistant",
        "I can see two charges of $49 on your card: one on June 1 and one on "
        "June 3. The June 3 charge looks like a duplicate.",
        0.86,
    ),
    Turn("customer", "Yes, can you refund the duplicate? I need this resolved today."),
    Turn("assistant", "This requires a human agent. Connecting you now…", 0.4),
]


def test_the_summary_states_the_problem_first_and_where_it_stands_now():
    summary = summarize(JAMIE, "complexity")
    assert summary.startswith("Customer: My subscription was charged twice this month.")
    assert "Latest: Yes, can you refund the duplicate?" in summary


def test_the_summary_quotes_what_the_ai_offered_not_its_handoff_line():
    summary = summarize(JAMIE, "complexity")
    assert "AI tried: I can see two charges of $49" in summary
    assert "Connecting you now" not in summary


def test_facts_the_ai_confirmed_are_kept():
    summary = summarize(JAMIE, "complexity")
    facts = summary.split("Facts: ")[1].split(" | ")[0]
    assert {"$49", "June 1", "June 3"} <= set(facts.split(", "))
    assert summary.endswith("Escalated because the topic needs a human's authority or judgement.")
