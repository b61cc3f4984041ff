"""No template syntax ever reaches a page: every CRM page and fragment, the widget page and the
login pages are requested as an agent and as a manager (plain and as htmx) against conversations
in every state, every action is posted, and each answer is searched for ``{{ }}``, ``{% %}`` and
``{# #}``. The sweep must reach every URL of /crm/ and /widget/ and render every template under
templates/, so a new page or template cannot slip past it."""

from pathlib import Path

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from crm import services as crm_services
from crm.models import AgentProfile, Assistant, CannedReply, Conversation
from escalation import services as escalation_services
from escalation.models import Escalation, Priority, ReplayJob
from notifications.emails import build_notification_email
from notifications.models import Notification
from tests.factories import AgentFactory, ChannelFactory, ConversationFactory, TeamFactory
from tests.template_syntax import assert_no_template_syntax

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"
HTMX = {"HTTP_HX_REQUEST": "true"}
HTMX_PANEL = {**HTMX, "HTTP_HX_TARGET": "conversation-panel"}


def _named_routes() -> set[str]:
    """Every named URL of the CRM screens and the customer-facing pages."""
    names = set()

    def walk(patterns, namespace=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace in ("crm",) or pattern.urlconf_name == "crm.urls":
                    walk(pattern.url_patterns, pattern.namespace or "")
            elif isinstance(pattern, URLPattern) and pattern.name and namespace == "crm":
                names.add(f"crm:{pattern.name}")

    walk(get_resolver().url_patterns)
    from crm import urls as customer_urls

    names |= {p.name for p in customer_urls.urlpatterns if p.name}
    return names


def _escalated(conversation, *, reason="request", text="I want to speak to a person"):
    crm_services.receive_customer_message(conversation=conversation, text=text)
    return escalation_services.escalate_conversation(
        conversation=conversation,
        reason=reason,
        priority=Priority.HIGH,
        triggered_by=Escalation.Trigger.DETECTION,
        detail="Refund of a duplicate $49 charge",
        summary="Customer wants a refund of a duplicate charge.",
    )[0]


@pytest.fixture
def world(db):
    billing = TeamFactory(name="Billing")
    channel = ChannelFactory(
        kind="website", key="website-demo", name="Website chat", default_team=billing
    )
    marina = AgentFactory(display_name="Marina", username="marina", teams=[billing])
    alex = AgentFactory(display_name="Alex", username="alex", teams=[billing])
    manager = AgentFactory(
        display_name="Morgan", username="morgan", role=AgentProfile.Role.MANAGER, teams=[billing]
    )
    AgentProfile.objects.filter(user=marina).update(notify_via=AgentProfile.NotifyVia.BOTH)

    def conversation(name):
        return ConversationFactory(channel=channel, contact__name=name)

    ai = conversation("Ada AI")
    crm_services.receive_customer_message(conversation=ai, text="How do I update my card?")
    queued = _escalated(conversation("Quinn Queued"))
    claimed = _escalated(conversation("Cleo Claimed"), reason="sentiment")
    escalation_services.take_over_escalation(escalation_id=claimed.pk, agent=marina)
    crm_services.send_agent_message(
        conversation=claimed.conversation, agent=marina, text="Hi, I'm on it.", private_note=False
    )
    crm_services.send_agent_message(
        conversation=claimed.conversation, agent=marina, text="Card ends 4242", private_note=True
    )
    resolved = _escalated(conversation("Rory Resolved"), reason="complexity")
    escalation_services.take_over_escalation(escalation_id=resolved.pk, agent=marina)
    escalation_services.resolve_escalation(escalation_id=resolved.pk, agent=marina)
    closed = _escalated(conversation("Cass Closed"), reason="loop")
    escalation_services.close_escalation(escalation_id=closed.pk, agent=manager, reason="Spam")
    escalation_services.remind_overdue_escalation(escalation_id=queued.pk)
    return {
        "marina": marina,
        "alex": alex,
        "manager": manager,
        "team": billing,
        "channel": channel,
        "ai": ai.pk,
        "escalations": {
            "queued": queued,
            "claimed": claimed,
            "resolved": resolved,
            "closed": closed,
        },
    }


class Sweep:
    """A signed-in client that checks every answer and remembers what it reached."""

    def __init__(self, user=None):
        self.client = Client()
        if user is not None:
            self.client.force_login(user)
        self.routes: set[str] = set()
        self.templates: set[str] = set()

    def request(self, method: str, route: str, path: str, data=None, **headers):
        self.routes.add(route)
        response = getattr(self.client, method)(path, data or {}, **headers)
        assert response.status_code < 500, (method, path, response.status_code)
        self.templates |= {t.name for t in response.templates if t.name}
        kind = response.get("Content-Type", "")
        if "html" in kind and not response.streaming:
            assert_no_template_syntax(response.content.decode(), f"{method.upper()} {path}")
        return response

    def get(self, route, path, **headers):
        self.request("get", route, path, **headers)
        return self.request("get", route, path, **HTMX)

    def post(self, route, path, data=None, *, panel=False):
        """Post as htmx (the way the screens do) and plainly; the plain redirect is followed."""
        self.request("post", route, path, data, **(HTMX_PANEL if panel else HTMX))
        response = self.request("post", route, path, data)
        if response.status_code in (301, 302) and response["Location"].startswith("/"):
            self.request("get", route, response["Location"])
        return response


def ids_of(world) -> list[int]:
    return [world["ai"]] + [e.conversation_id for e in world["escalations"].values()]


def _read_conversations(sweep: Sweep, world) -> None:
    for conversation_id in ids_of(world):
        base = f"/crm/conversations/{conversation_id}/"
        sweep.get("crm:conversation", base)
        sweep.get("crm:conversation-messages", base + "messages/?after=0")
        sweep.get("crm:conversation-panel", base + "panel/")
        sweep.get("crm:conversation-sentiment", base + "sentiment/")
    for escalation in world["escalations"].values():
        sweep.get("crm:ticket", f"/crm/tickets/{escalation.ticket.pk}/")


def _read_everything(sweep: Sweep, world) -> None:
    _read_conversations(sweep, world)
    sweep.get("crm:home", "/crm/")
    for query in ("", "?priority=high", "?reason=request&wait=over_5", "?channel=nope"):
        sweep.get("crm:queue", "/crm/live-escalation/" + query)
    for query in ("", "?mode=closed", "?mode=agent"):
        sweep.get("crm:conversations", "/crm/conversations/" + query)
    for query in ("", "?status=resolved", "?status=bogus"):
        sweep.get("crm:tickets", "/crm/tickets/" + query)
    for query in ("", "?period=30d", "?period=custom&start=2026-01-01&end=2025-01-01"):
        sweep.get("crm:analytics", "/crm/analytics/" + query)
    sweep.get("crm:settings", "/crm/settings/")
    sweep.get("crm:preferences", "/crm/preferences/")
    sweep.get("crm:notifications", "/crm/notifications/")
    sweep.get("crm:notification-badge", "/crm/notifications/badge/")
    # The agent's workspace: inbox, canned replies, search and contacts.
    for name in ("queued", "mine", "closed", "nonsense"):
        sweep.get("crm:inbox", f"/crm/inbox/?list={name}")
        sweep.get("crm:inbox-lists", f"/crm/inbox/lists/?list={name}")
    for conversation_id in ids_of(world):
        sweep.get("crm:inbox-conversation", f"/crm/inbox/conversations/{conversation_id}/")
    sweep.get("crm:canned", "/crm/canned-replies/")
    for query in ("", "refund", "%"):
        sweep.get("crm:canned-search", f"/crm/canned-replies/search/?q={query}")
    for query in ("", "Quinn", "<b>"):
        sweep.get("crm:search", f"/crm/search/?q={query}")
    contact = Conversation.objects.get(pk=world["ai"]).contact_id
    sweep.get("crm:contact", f"/crm/contacts/{contact}/")


def _act_on_everything(sweep: Sweep, world, user) -> None:
    escalations = world["escalations"]
    queued, claimed = escalations["queued"], escalations["claimed"]
    sweep.post("crm:availability", "/crm/me/availability/", {"availability": "away"})
    sweep.post("crm:availability", "/crm/me/availability/", {"availability": "nonsense"})
    sweep.post("crm:availability", "/crm/me/availability/", {"availability": "online"})
    sweep.post("crm:preferences", "/crm/preferences/", {"notify_via": "nonsense"})
    sweep.post("crm:preferences", "/crm/preferences/", {"notify_via": "both"})
    # Someone else's claim, then a take-over of a queued one (won, then lost).
    sweep.post("crm:resolve", f"/crm/escalations/{claimed.pk}/resolve/", panel=True)
    sweep.post("crm:take-over", f"/crm/escalations/{queued.pk}/take-over/", panel=True)
    conversation = f"/crm/conversations/{queued.conversation_id}/"
    sweep.post("crm:conversation-reply", conversation + "reply/", {"text": "On it."})
    sweep.post("crm:conversation-reply", conversation + "reply/", {"text": ""})
    sweep.post("crm:conversation-reply", conversation + "reply/", {"text": "n", "private": "1"})
    sweep.post(
        "crm:reassign",
        f"/crm/escalations/{queued.pk}/reassign/",
        {"target": "team:999999"},
        panel=True,
    )
    sweep.post(
        "crm:reassign",
        f"/crm/escalations/{queued.pk}/reassign/",
        {"target": f"agent:{world['alex'].pk}", "note": "Billing question"},
        panel=True,
    )
    sweep.post("crm:close", f"/crm/escalations/{queued.pk}/close/", {"reason": ""}, panel=True)
    sweep.post("crm:hand-back", f"/crm/escalations/{queued.pk}/hand-back/", panel=True)
    ticket = escalations["closed"].ticket
    sweep.post("crm:ticket-status", f"/crm/tickets/{ticket.pk}/status/", {"status": "bogus"})
    sweep.post("crm:ticket-status", f"/crm/tickets/{ticket.pk}/status/", {"status": "open"})
    sweep.post("crm:ticket-assign", f"/crm/tickets/{ticket.pk}/assign/", {"assignee": ""})
    sweep.post("crm:ticket-assign", f"/crm/tickets/{ticket.pk}/assign/", {"assignee": str(user.pk)})
    notification = Notification.objects.filter(recipient=user).first()
    if notification is not None:
        sweep.post("crm:notification-read", f"/crm/notifications/{notification.pk}/read/")
    sweep.post("crm:notifications-read-all", "/crm/notifications/read-all/")
    # Routing (issue 16): its settings and the offer actions, with bad input too.
    sweep.get("crm:routing-settings", "/crm/settings/routing/")
    team_id = world["team"].pk
    sweep.post("crm:routing-team", f"/crm/settings/routing/teams/{team_id}/", {"mode": "?"})
    sweep.post("crm:routing-rule-add", "/crm/settings/routing/rules/", {"reason": "?"})
    sweep.post("crm:routing-rule", "/crm/settings/routing/rules/999999/", {})
    sweep.post("crm:routing-defaults", "/crm/settings/routing/defaults/", {"x": "?"})
    sweep.post("crm:accept-offer", f"/crm/escalations/{queued.pk}/accept/", panel=True)
    sweep.post("crm:decline-offer", f"/crm/escalations/{queued.pk}/decline/", panel=True)
    sweep.post("crm:canned-create", "/crm/canned-replies/new/", {"shortcut": "bad slug!"})
    sweep.post(
        "crm:canned-create",
        "/crm/canned-replies/new/",
        {"shortcut": f"thanks-{user.pk}", "title": "Thanks", "body": "Thanks {{first_name}}!"},
    )
    reply = CannedReply.objects.filter(shortcut=f"thanks-{user.pk}").first()
    reply_id = reply.pk if reply else 999999
    sweep.post(
        "crm:canned-update",
        f"/crm/canned-replies/{reply_id}/",
        {"shortcut": f"thanks-{user.pk}", "title": "Thanks", "body": "Thank you!"},
    )
    conversation = f"/crm/conversations/{queued.conversation_id}/"
    sweep.post("crm:canned-use", conversation + "canned/", {"reply": str(reply_id)})
    sweep.post("crm:canned-use", conversation + "canned/", {"reply": "x"})
    sweep.post("crm:conversation-template", conversation + "template/", {"template": "x"})
    sweep.post("crm:canned-delete", f"/crm/canned-replies/{reply_id}/delete/")
    assistant = Assistant.objects.get()
    messages = {"language": "de", "handoff": "Warten Sie {wait}", "takeover": "Hallo"}
    sweep.post("crm:settings-preview", "/crm/settings/messages/preview/", messages)
    sweep.post(
        "crm:settings-messages",
        "/crm/settings/messages/",
        {"language": "de", "handoff": "Warten {minutes}"},
    )
    sweep.post("crm:settings-messages", "/crm/settings/messages/", {"language": "xx"})
    sweep.post("crm:settings-messages", "/crm/settings/messages/", messages)
    sweep.post(
        "crm:settings-assistant",
        f"/crm/settings/assistants/{assistant.pk}/",
        {f"assistant-{assistant.pk}-loop_threshold": "99"},
    )
    # Agent Framework (issue 13): the sensitivity preview, a replay job and its result, and the
    # verdict on a resolved handover, with bad input too.
    framework = f"/crm/settings/assistants/{assistant.pk}/"
    prefix = f"assistant-{assistant.pk}-"
    sweep.post(
        "crm:settings-assistant-preview", framework + "preview/", {prefix + "sensitivity": "?"}
    )
    valid = {
        prefix + "sensitivity": "0.7",
        prefix + "backend": "local",
        prefix + "claude_band_low": "0.2",
        prefix + "claude_band_high": "0.8",
        prefix + "sentiment_threshold": "0.6",
        prefix + "confidence_threshold": "0.45",
        prefix + "loop_threshold": "2",
    }
    sweep.post("crm:settings-assistant-preview", framework + "preview/", valid)
    sweep.post("crm:settings-replay", framework + "replay/")
    job = ReplayJob.objects.filter(assistant=assistant).first()
    if job is not None:
        if job.status == ReplayJob.Status.QUEUED:
            escalation_services.run_replay_job(job_id=job.pk)
        sweep.get("crm:settings-replay-job", f"/crm/settings/replays/{job.pk}/")
    resolved = escalations["resolved"]
    verdict = f"/crm/escalations/{resolved.pk}/verdict/"
    sweep.post("crm:handoff-verdict", verdict, {"needed": "maybe"})
    sweep.post("crm:handoff-verdict", verdict, {"needed": "no"})
    profile = AgentProfile.objects.get(user=world["alex"])
    sweep.post("crm:settings-agent", f"/crm/settings/agents/{profile.pk}/", {"notify_via": "?"})
    sweep.post(
        "crm:settings-agent", f"/crm/settings/agents/{profile.pk}/", {"notify_via": "in_app"}
    )


def _customer_pages(sweep: Sweep, world) -> None:
    sweep.get("widget-demo", "/widget/demo/")
    sweep.get("api-docs", "/api/docs/")  # the public Swagger UI page (templates/api/)
    sweep.get("widget-script", "/widget.js")
    sweep.get("widget-config", "/widget/config/?channel=website-demo")
    sweep.request(
        "post",
        "widget-prechat",
        "/widget/prechat/",
        '{"channel": "website-demo", "name": "Jamie", "email": "jamie@example.com"}',
        content_type="application/json",
    )
    start = sweep.request(
        "post",
        "widget-start-conversation",
        "/widget/conversations/",
        '{"channel": "website-demo", "text": "Hello"}',
        content_type="application/json",
    )
    body = start.json()
    sweep.get(
        "widget-messages",
        f"/widget/conversations/{body['id']}/messages/?token={body['customer_token']}",
    )
    sweep.request(
        "post",
        "widget-rating",
        f"/widget/conversations/{body['id']}/rating/",
        '{"escalation": 1, "score": 4}',
        content_type="application/json",
        HTTP_X_CUSTOMER_TOKEN=body["customer_token"],
    )
    sweep.get("login", "/accounts/login/")
    from django.conf import settings

    for _attempt in range(settings.AXES_FAILURE_LIMIT + 1):  # then the lockout page
        sweep.request("post", "login", "/accounts/login/", {"username": "alex", "password": "x"})


def test_no_page_fragment_or_action_shows_template_syntax(world):
    agent, manager = Sweep(world["marina"]), Sweep(world["manager"])
    for sweep in (agent, manager):
        _read_everything(sweep, world)
    _act_on_everything(agent, world, world["marina"])
    _act_on_everything(manager, world, world["manager"])
    _read_conversations(manager, world)  # every state the actions left behind
    visitor = Sweep()
    _customer_pages(visitor, world)
    visitor.request("post", "logout", "/accounts/logout/")
    agent.request("post", "logout", "/accounts/logout/")

    # Alert emails are rendered from templates too.
    emails = Sweep()
    notification = Notification.objects.exclude(escalation=None).first()
    message = build_notification_email(notification)
    assert_no_template_syntax(message.body, "the alert email's text")
    assert_no_template_syntax(message.alternatives[0][0], "the alert email's HTML")
    emails.templates |= {
        "notifications/email/notification.txt",
        "notifications/email/notification.html",
    }

    sweeps = (agent, manager, visitor, emails)
    reached_routes = set().union(*(s.routes for s in sweeps))
    assert _named_routes() - reached_routes == set(), "add the new URL to this sweep"
    rendered = set().union(*(s.templates for s in sweeps))
    every_template = {str(p.relative_to(TEMPLATES)) for p in TEMPLATES.rglob("*.*")}
    assert every_template - rendered == set(), "add a request that renders these templates"
