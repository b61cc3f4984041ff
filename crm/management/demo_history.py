"""Thirty days of support history for the demo, so every chart in Analytics says something.

Deterministic: one fixed random seed draws the same world each time (times are relative to the
moment of seeding). Busy weekdays and quiet weekends, office hours, channels, topics and
escalation reasons in realistic shares, and waits and resolution times drawn from log-normal
spreads (most quick, a long tail). Written with bulk_create, a few statements per table, so it
takes seconds on SQLite and PostgreSQL alike; the finished escalations carry their audit rows.
"""

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from crm.models import Contact, Conversation, Message
from escalation.detection import Turn
from escalation.detection.summary import build_handoff_card
from escalation.models import Escalation, EscalationEvent, Priority, SatisfactionRating
from tickets.models import Ticket, TicketEvent

SEED = 4821
DAYS = 30
MARKER = "demo-history:"  # Conversation.external_id of every history conversation

FIRST_NAMES = (  # fmt: skip
    "Ava",
    "Ben",
    "Chloe",
    "Diego",
    "Elif",
    "Farah",
    "Gabriel",
    "Hana",
    "Ivan",
    "Julia",
    "Kenji",
    "Lena",
    "Mateo",
    "Nadia",
    "Omar",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tara",
    "Umar",
    "Vera",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zoe",
    "Aleksander",
    "Bianca",
    "Camille",
    "Dmitri",
)
LAST_NAMES = (  # fmt: skip
    "Adams",
    "Brandt",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jansen",
    "Kowalski",
    "Lopez",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Usman",
    "Varga",
    "Weber",
    "Yilmaz",
    "Zhang",
)

# (channel kind, share of conversations)
CHANNEL_SHARES = (("website", 0.5), ("whatsapp", 0.3), ("instagram", 0.15), ("api", 0.05))
# (reason, share of escalations, priorities to draw from, detail)
REASONS = (
    ("request", 0.34, ("normal", "normal", "high"), "Asked for a person"),
    ("complexity", 0.26, ("normal", "high", "high"), "More than the articles cover"),
    ("sentiment", 0.2, ("high", "high", "urgent"), "Upset customer"),
    ("low_confidence", 0.12, ("low", "normal"), "The assistant was unsure"),
    ("loop", 0.08, ("normal", "high"), "Asked the same thing again"),
)


@dataclass(frozen=True)
class Topic:
    team: str  # "billing" or "support"
    question: str
    answer: str
    escalation_line: str


TOPICS = (
    Topic(
        "billing",
        "I was charged twice this month.",
        "Duplicate charges are usually a pending authorisation that drops off within two days.",
        "It is not pending, both charges went through. I need the money back.",
    ),
    Topic(
        "billing",
        "How do I get a refund for my annual plan?",
        "Refunds for annual plans are pro-rated; Billing → Plan shows what is refundable.",
        "That page shows nothing. Can someone just refund it?",
    ),
    Topic(
        "billing",
        "My invoice has the wrong company name.",
        "Billing → Invoices → Details lets you edit the name for future invoices.",
        "I need last month's invoice corrected for my accountant.",
    ),
    Topic(
        "billing",
        "Why did my price go up?",
        "Prices change at renewal when a promotion ends; the email before renewal says so.",
        "I never got that email. I want to speak to someone about this.",
    ),
    Topic(
        "billing",
        "My card was declined but I have funds.",
        "Declines come from the bank; try again or add another card in Billing.",
        "I tried three times. Please check what is wrong on your side.",
    ),
    Topic(
        "support",
        "I can't log in, the reset link doesn't work.",
        "Reset links work for 30 minutes; request a new one from Sign in → Forgot password.",
        "I did that five times. Nothing arrives. This is really frustrating.",
    ),
    Topic(
        "support",
        "The app crashes when I open settings.",
        "Updating to the latest version fixes most crashes; reinstalling keeps your data.",
        "I am on the latest version already and it still crashes.",
    ),
    Topic(
        "support",
        "How do I export my data?",
        "Account → Privacy → Export sends a download link by email within an hour.",
        "The export is missing half my projects.",
    ),
    Topic(
        "support",
        "My order hasn't arrived yet.",
        "Orders ship within two working days; the tracking link is in your confirmation email.",
        "The tracking has not moved for a week. Where is my order?",
    ),
    Topic(
        "support",
        "Can I change the email on my account?",
        "Open Account → Profile, edit Email and confirm from the message sent to the new address.",
        "The confirmation goes to my old address, which I cannot access any more.",
    ),
    Topic(
        "support",
        "Two-factor codes are not accepted.",
        "Check that your phone's clock is set automatically; codes depend on the time.",
        "It is set automatically. I am locked out, please help.",
    ),
)

AGENT_CLOSINGS = (
    "Done: I've sorted it out on our side. Anything else I can help with?",
    "I've fixed it and sent you a confirmation by email.",
    "All set now. Sorry for the trouble!",
    "I've escalated it to our specialists and you'll hear back within a day.",
)


@dataclass
class History:
    conversations: int = 0
    escalations: int = 0
    messages: int = 0
    ratings: int = 0
    by_status: dict = field(default_factory=dict)


def _lognormal_seconds(rng: random.Random, *, median: float, spread: float, cap: float) -> float:
    return min(cap, rng.lognormvariate(math.log(median), spread))


def _pick(rng: random.Random, shares):
    return rng.choices(shares, weights=[share[1] for share in shares])[0]


def _start_times(rng: random.Random, now: datetime) -> list[datetime]:
    """When conversations started: ~22 a weekday and ~8 a weekend day, mostly in office hours."""
    local_now = timezone.localtime(now)
    starts = []
    for days_ago in range(DAYS, 0, -1):
        day = (local_now - timedelta(days=days_ago)).replace(hour=0, minute=0, second=0)
        weekend = day.weekday() >= 5
        for _ in range(max(0, round(rng.gauss(8 if weekend else 22, 3)))):
            hour = min(23.9, max(0.0, rng.gauss(13.5, 3.2)))
            starts.append(day + timedelta(hours=hour, seconds=rng.randrange(60)))
    return sorted(starts)


# Score weights (5, 4, 3, 2, 1) by how long the customer waited for a person: most customers
# picked up quickly are happy; a long wait pulls the scores down.
RATING_WEIGHTS = (
    (120, (58, 28, 8, 4, 2)),
    (600, (34, 34, 18, 9, 5)),
    (float("inf"), (12, 22, 28, 23, 15)),
)
# Agents differ a little: a per-agent nudge of the drawn score (deterministic by position).
AGENT_NUDGE = (0.0, -0.35, 0.2, -0.15, 0.1)
RATING_COMMENTS = {
    5: ("Quick and friendly, thank you!", "Solved in minutes.", "Great help."),
    4: ("Good, thanks.", "Helpful, a bit of a wait."),
    3: ("OK in the end.", "Took a while."),
    2: ("Too long to get an answer.", "Had to explain twice."),
    1: ("Nobody answered for ages.", "Still not solved."),
}


def _seed_ratings(rng: random.Random, escalations: list) -> int:
    """About 40% of the escalations a person handled get a rating, a minute or two after the
    close (drawn from ``rng`` after everything else, so the history itself stays the same)."""
    agents = sorted({e.claimed_by_id for e in escalations if e.claimed_by_id})
    ratings, events = [], []
    for escalation in escalations:
        if escalation.claimed_at is None or rng.random() >= 0.4:
            continue
        wait = (escalation.claimed_at - escalation.escalated_at).total_seconds()
        weights = next(w for limit, w in RATING_WEIGHTS if wait < limit)
        score = rng.choices((5, 4, 3, 2, 1), weights=weights)[0]
        nudge = AGENT_NUDGE[agents.index(escalation.claimed_by_id) % len(AGENT_NUDGE)]
        score = max(1, min(5, round(score + nudge + rng.uniform(-0.3, 0.3))))
        comment = rng.choice(RATING_COMMENTS[score]) if rng.random() < 0.3 else ""
        at = escalation.closed_at + timedelta(seconds=rng.randint(20, 240))
        ratings.append(
            SatisfactionRating(escalation=escalation, score=score, comment=comment, created_at=at)
        )
        events.append(
            (
                at,
                EscalationEvent(
                    escalation=escalation, kind="rated", new_value=str(score), note=comment
                ),
            )
        )
    SatisfactionRating.objects.bulk_create(ratings, batch_size=500)
    EscalationEvent.objects.bulk_create([event for _when, event in events], batch_size=500)
    for when, event in events:
        event.created_at = when
    EscalationEvent.objects.bulk_update([e for _w, e in events], ["created_at"], batch_size=500)
    return len(ratings)


# Where anonymous website visitors came from: (page, referrer, language, time zone).
VISITS = (
    ("https://shop.example/pricing", "https://www.google.com/", "en-US", "America/New_York"),
    ("https://shop.example/checkout", "https://shop.example/cart", "de-DE", "Europe/Berlin"),
    ("https://shop.example/help/returns", "", "fr-FR", "Europe/Paris"),
    ("https://shop.example/orders", "https://mail.example.com/", "es-ES", "Europe/Madrid"),
    ("https://shop.example/account/security", "", "pt-BR", "America/Sao_Paulo"),
    ("https://shop.example/", "https://www.bing.com/", "en-GB", "Europe/London"),
)


def _make_some_website_visitors_anonymous(plans: list[dict]) -> None:
    """About a third of the website chats come from visitors who gave no name: a contact of
    their own, and the visit their browser reported. Drawn from a second generator, so the
    rest of the history is the same as without them."""
    rng = random.Random(SEED + 1)
    chosen = [plan for plan in plans if plan["channel"].kind == "website" and rng.random() < 0.35]
    anonymous = Contact.objects.bulk_create(Contact() for _plan in chosen)
    for plan, contact in zip(chosen, anonymous, strict=True):
        page, referrer, language, time_zone = rng.choice(VISITS)
        plan["contact"] = contact
        plan["visit"] = {
            "page_url": page,
            "referrer": referrer,
            "browser_language": language,
            "time_zone": time_zone,
        }


# The customer's mood over a history conversation, by why it escalated (the history stores no
# analyses to read it from).
HISTORY_MOODS = {
    "sentiment": ["calm", "frustrated"],
    "loop": ["confused", "frustrated"],
    "low_confidence": ["confused"],
}


def _handoff_card(plan: dict, reason: str):
    """The card an agent would have seen, from the history's own three turns."""
    topic, contact = plan["topic"], plan["contact"]
    turns = [
        Turn("customer", topic.question),
        Turn("assistant", topic.answer, 0.6),
        Turn("customer", topic.escalation_line),
    ]
    return build_handoff_card(
        turns,
        reason,
        moods=HISTORY_MOODS.get(reason, ["calm"]),
        known={"name": contact.name, "email": contact.email},
    )


def is_seeded() -> bool:
    return Conversation.objects.filter(external_id__startswith=MARKER).exists()


def seed_history(*, channels: dict, teams: dict, agents: list, progress) -> History:
    """Create the history; ``channels`` by kind, ``teams`` by "billing"/"support", ``agents``
    as (user, team key). ``progress(done, total)`` is called as the tables are written."""
    rng = random.Random(SEED)
    now = timezone.now()
    history = History()
    starts = _start_times(rng, now)
    steps = 6
    progress(0, steps)

    contacts = Contact.objects.bulk_create(
        Contact(
            name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
            email=f"customer{number:04d}@example.net",
        )
        for number in range(len(starts) * 2 // 3)
    )
    plans = []
    for number, started in enumerate(starts):
        kind = _pick(rng, CHANNEL_SHARES)[0]
        topic = rng.choice(TOPICS)
        escalated = rng.random() < 0.3
        plans.append(
            {
                "number": number,
                "started": started,
                "channel": channels[kind],
                "team": teams[topic.team],
                "topic": topic,
                "contact": rng.choice(contacts),
                "escalated": escalated,
                "reason": _pick(rng, REASONS) if escalated else None,
            }
        )
    progress(1, steps)

    _make_some_website_visitors_anonymous(plans)
    conversations = Conversation.objects.bulk_create(
        Conversation(
            contact=plan["contact"],
            channel=plan["channel"],
            assistant=plan["channel"].assistant,
            team=plan["team"],
            mode=Conversation.Mode.CLOSED,
            external_id=f"{MARKER}{plan['number']}",
            **plan.get("visit", {}),
        )
        for plan in plans
    )
    for plan, conversation in zip(plans, conversations, strict=True):
        plan["conversation"] = conversation
    progress(2, steps)

    escalations, events = [], []
    for plan in plans:
        if not plan["escalated"]:
            continue
        reason, _share, priorities, detail = plan["reason"]
        escalated_at = plan["started"] + timedelta(seconds=rng.randint(40, 240))
        team_agents = [user for user, team in agents if team == plan["topic"].team]
        card = _handoff_card(plan, reason)
        escalation = Escalation(
            conversation=plan["conversation"],
            reason=reason,
            detail=detail,
            priority=Priority.from_code(rng.choice(priorities)),
            summary=card.as_text(),
            card=card.as_dict(),
            team=plan["team"],
            triggered_by=Escalation.Trigger.DETECTION,
            escalated_at=escalated_at,
        )
        if rng.random() < 0.06:  # the customer left before anyone picked up
            left = escalated_at + timedelta(
                seconds=_lognormal_seconds(rng, median=420, spread=0.5, cap=3600)
            )
            escalation.status = Escalation.Status.CANCELLED
            escalation.closed_at = left
            escalation.close_reason = "Customer left before pickup."
        else:
            wait = _lognormal_seconds(rng, median=95, spread=0.85, cap=4 * 3600)
            work = _lognormal_seconds(rng, median=11 * 60, spread=0.75, cap=8 * 3600)
            escalation.status = Escalation.Status.CLOSED
            escalation.claimed_by = rng.choice(team_agents)
            escalation.claimed_at = escalated_at + timedelta(seconds=wait)
            escalation.resolved_at = escalation.claimed_at + timedelta(seconds=work)
            escalation.closed_at = escalation.resolved_at + timedelta(seconds=rng.randint(30, 600))
            escalation.rating_requested_at = escalation.resolved_at  # the closing message
        plan["escalation"] = escalation
        escalations.append(escalation)
    Escalation.objects.bulk_create(escalations)
    progress(3, steps)

    messages, conversation_times = [], []
    for plan in plans:
        conversation, topic = plan["conversation"], plan["topic"]
        at = plan["started"]

        def say(sender, text, *, when, plan=plan, author=None, confidence=None):
            messages.append(
                (
                    when,
                    Message(
                        conversation=plan["conversation"],
                        channel=plan["channel"],
                        sender=sender,
                        author=author,
                        text=text,
                        confidence=confidence,
                    ),
                )
            )

        say("customer", topic.question, when=at)
        say("ai", topic.answer, when=at + timedelta(seconds=4), confidence=rng.uniform(0.55, 0.95))
        escalation = plan.get("escalation")
        last = at + timedelta(seconds=4)
        if escalation is not None:
            say("customer", topic.escalation_line, when=escalation.escalated_at)
            last = escalation.escalated_at
            if escalation.claimed_at:
                say("system", "Now speaking with an agent", when=escalation.claimed_at)
                say(
                    "agent",
                    rng.choice(AGENT_CLOSINGS),
                    when=escalation.resolved_at,
                    author=escalation.claimed_by,
                )
                say("customer", "Thank you!", when=escalation.resolved_at + timedelta(seconds=20))
                last = escalation.resolved_at + timedelta(seconds=20)
        else:
            say("customer", "Thanks, that helped.", when=at + timedelta(seconds=70))
            last = at + timedelta(seconds=70)
        conversation_times.append((conversation, plan["started"], last))
    Message.objects.bulk_create([message for _when, message in messages], batch_size=500)
    progress(4, steps)

    # auto_now_add stamped "now" on insert; put every row at its moment in the history.
    for when, message in messages:
        message.created_at = when
    Message.objects.bulk_update([m for _w, m in messages], ["created_at"], batch_size=500)
    for conversation, started, last in conversation_times:
        conversation.created_at = started
        conversation.last_message_at = last
        conversation.closed_at = last + timedelta(minutes=5)
    Conversation.objects.bulk_update(
        conversations, ["created_at", "last_message_at", "closed_at"], batch_size=500
    )
    progress(5, steps)

    tickets, ticket_times = [], []
    for escalation in escalations:
        events.append(
            (escalation.escalated_at, EscalationEvent(escalation=escalation, kind="escalated"))
        )
        if escalation.claimed_at:
            events += [
                (
                    escalation.claimed_at,
                    EscalationEvent(
                        escalation=escalation,
                        kind="claimed",
                        actor=escalation.claimed_by,
                        old_value="queued",
                        new_value="claimed",
                    ),
                ),
                (
                    escalation.resolved_at,
                    EscalationEvent(
                        escalation=escalation,
                        kind="resolved",
                        actor=escalation.claimed_by,
                        old_value="claimed",
                        new_value="resolved",
                    ),
                ),
            ]
        events.append(
            (
                escalation.closed_at,
                EscalationEvent(
                    escalation=escalation,
                    kind="closed" if escalation.claimed_at else "cancelled",
                    actor=escalation.claimed_by,
                    new_value=escalation.status,
                    note=escalation.close_reason,
                ),
            )
        )
        ticket = Ticket(
            escalation=escalation,
            conversation=escalation.conversation,
            contact=escalation.conversation.contact,
            subject=escalation.handoff_card.problem[:200],
            status=Ticket.Status.CLOSED,
            priority=escalation.priority,
            reason=escalation.reason,
            assignee=escalation.claimed_by,
            resolved_at=escalation.resolved_at,
        )
        tickets.append(ticket)
        ticket_times.append((ticket, escalation.escalated_at, escalation.closed_at))
    EscalationEvent.objects.bulk_create([event for _when, event in events], batch_size=500)
    for when, event in events:
        event.created_at = when
    EscalationEvent.objects.bulk_update([e for _w, e in events], ["created_at"], batch_size=500)
    Ticket.objects.bulk_create(tickets)
    for ticket, opened, closed in ticket_times:
        ticket.created_at, ticket.updated_at = opened, closed
    Ticket.objects.bulk_update(tickets, ["created_at", "updated_at"], batch_size=500)
    ticket_events = []
    for ticket, opened, closed in ticket_times:
        ticket_events += [
            (opened, TicketEvent(ticket=ticket, kind="opened", new_value="open")),
            (
                closed,
                TicketEvent(ticket=ticket, kind="status", old_value="open", new_value="closed"),
            ),
        ]
    TicketEvent.objects.bulk_create([event for _when, event in ticket_events], batch_size=500)
    for when, event in ticket_events:
        event.created_at = when
    TicketEvent.objects.bulk_update([e for _w, e in ticket_events], ["created_at"], batch_size=500)
    history.ratings = _seed_ratings(rng, escalations)
    progress(6, steps)

    history.conversations = len(conversations)
    history.escalations = len(escalations)
    history.messages = len(messages)
    for escalation in escalations:
        history.by_status[escalation.status] = history.by_status.get(escalation.status, 0) + 1
    return history
