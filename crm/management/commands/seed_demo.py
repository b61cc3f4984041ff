"""Seed the demo world: agents, teams, an assistant, articles, conversations in every mode."""

import logging
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import color
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import override_settings
from django.utils import timezone

from crm import demo_data
from crm import services as crm_services
from crm.management import demo_history
from crm.models import (
    AgentProfile,
    Assistant,
    Channel,
    Contact,
    Conversation,
    KnowledgeArticle,
    Message,
    Team,
)
from crm.visitors import VisitorContext, clean_visitor_context
from escalation import services as escalation_services
from escalation.models import Escalation, Priority
from escalation.pipeline import analyze_and_act

JAMIE_CONVERSATION_ID = 4821


@contextmanager
def quiet_side_effects():
    """While seeding, alert emails go to a held-back outbox instead of the console (the demo's
    alerts are about its own history) and task and library chatter (a log line per task) is
    not printed; errors still are. Yields the outbox."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    had_outbox = hasattr(mail, "outbox")
    saved_outbox = getattr(mail, "outbox", None)
    mail.outbox = []
    try:
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            yield mail.outbox
    finally:
        root.setLevel(level)
        if had_outbox:
            mail.outbox = saved_outbox
        else:
            del mail.outbox


class Command(BaseCommand):
    help = "Create the demo data (idempotent). Demo logins are only created with DEBUG on."

    def add_arguments(self, parser):
        parser.add_argument(
            "--if-empty", action="store_true", help="Do nothing when the demo was seeded before."
        )
        parser.add_argument(
            "--allow-demo-logins",
            action="store_true",
            help="Create the demo logins even with DEBUG off (never in production).",
        )

    def handle(self, *args, if_empty=False, allow_demo_logins=False, **options):
        if not (settings.DEBUG or allow_demo_logins):
            raise CommandError(
                "seed_demo creates logins with the password 'demo'; run it with DEBUG=1 "
                "(or --allow-demo-logins on a throwaway database)."
            )
        if if_empty and Conversation.objects.filter(pk=JAMIE_CONVERSATION_ID).exists():
            self.stdout.write("Demo data already present.")
            return
        steps = [
            ("teams and agents", self.seed_people),
            ("assistant and channels", self.seed_channels),
            ("knowledge base", self.seed_articles),
            ("conversations", self.seed_conversations),
            (f"{demo_history.DAYS} days of history", self.seed_history),
            ("Jamie Patel's escalation (#4821)", self.seed_jamie),
        ]
        self.started = timezone.now()
        with quiet_side_effects() as held_back:
            for number, (label, step) in enumerate(steps, start=1):
                self.step_label = f"[{number}/{len(steps)}] {label}"
                self.stdout.write(self.step_label)
                with transaction.atomic():
                    step()
            self.reset_sequences()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo ready: {Conversation.objects.count()} conversations, "
                f"{Escalation.objects.filter(status='queued').count()} queued escalations, "
                f"{KnowledgeArticle.objects.count()} articles; "
                f"{len(held_back)} alert emails held back while seeding."
            )
        )

    def seed_people(self):
        User = get_user_model()
        self.billing, _ = Team.objects.get_or_create(
            name="Billing", defaults={"target_wait_seconds": 300}
        )
        self.support, _ = Team.objects.get_or_create(
            name="Support", defaults={"target_wait_seconds": 300}
        )
        people = [
            ("marina", "Marina", "Kovac", AgentProfile.Role.AGENT, [self.billing], True),
            ("alex", "Alex", "Reed", AgentProfile.Role.AGENT, [self.support], True),
            (
                "manager",
                "Morgan",
                "Lee",
                AgentProfile.Role.MANAGER,
                [self.billing, self.support],
                True,
            ),
            # Colleagues who appear in the history (and its per-agent figures); no demo login.
            ("priya", "Priya", "Shah", AgentProfile.Role.AGENT, [self.billing], False),
            ("tom", "Tom", "Berg", AgentProfile.Role.AGENT, [self.support], False),
        ]
        self.users = {}
        for username, first, last, role, teams, online in people:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "is_staff": True,
                    "email": f"{username}@example.com",
                },
            )
            if created and not online:
                user.set_unusable_password()
                user.save()
            elif created:
                user.set_password("demo")
                user.is_superuser = role == AgentProfile.Role.MANAGER
                user.save()
            profile, _ = AgentProfile.objects.get_or_create(
                user=user,
                defaults={
                    "display_name": first,
                    "role": role,
                    "availability": AgentProfile.Availability.ONLINE
                    if online
                    else AgentProfile.Availability.OFFLINE,
                },
            )
            profile.teams.add(*teams)
            self.users[username] = user

    def seed_channels(self):
        self.assistant, _ = Assistant.objects.get_or_create(
            name="Support assistant",
            defaults={
                "instructions": "Answer from the help articles. Be brief and kind.",
                "handoff_enabled": True,
            },
        )
        self.channels = {}
        for kind, name, key, team in [
            ("website", "Website chat", "website-demo", self.billing),
            ("whatsapp", "WhatsApp", "whatsapp-demo", self.support),
            ("instagram", "Instagram", "instagram-demo", self.support),
            ("api", "API", "api-demo", self.support),
        ]:
            channel, _ = Channel.objects.get_or_create(
                key=key,
                defaults={
                    "kind": kind,
                    "name": name,
                    "assistant": self.assistant,
                    "default_team": team,
                    # The demo widget asks for name and email first; "Skip" stays anonymous.
                    "prechat_form": Channel.PrechatForm.OPTIONAL
                    if kind == "website"
                    else Channel.PrechatForm.OFF,
                },
            )
            self.channels[kind] = channel

    def seed_articles(self):
        for title, keywords, body in demo_data.KNOWLEDGE_BASE:
            KnowledgeArticle.objects.get_or_create(
                title=title, defaults={"keywords": keywords, "body": body}
            )

    def _conversation(
        self,
        *,
        name,
        email,
        kind,
        messages,
        pk=None,
        minutes_ago=0,
        visit: VisitorContext | None = None,
    ):
        if email:
            contact, _ = Contact.objects.get_or_create(email=email, defaults={"name": name})
        else:
            contact = Contact.objects.create()  # an anonymous visitor
        channel = self.channels[kind]
        conversation = Conversation.objects.filter(pk=pk).first() if pk else None
        if conversation is None:
            visit = visit or VisitorContext()
            conversation = Conversation.objects.create(
                pk=pk,
                contact=contact,
                channel=channel,
                assistant=channel.assistant,
                team=channel.default_team,
                page_url=visit.page_url,
                referrer=visit.referrer,
                browser_language=visit.language,
                time_zone=visit.time_zone,
            )
        for sender, text, confidence in messages:
            message = Message.objects.create(
                conversation=conversation,
                channel=channel,
                sender=sender,
                text=text,
                confidence=confidence,
            )
            if sender == Message.Sender.CUSTOMER:
                # Record what the detector reads (the sentiment chart), without acting on it.
                analyze_and_act(message_id=message.pk, act=False)
        when = timezone.now() - timedelta(minutes=minutes_ago)
        Conversation.objects.filter(pk=conversation.pk).update(
            created_at=when, last_message_at=when
        )
        return conversation

    def _escalate(self, conversation, reason, priority, detail, minutes_ago):
        escalation, _ = escalation_services.escalate_conversation(
            conversation=conversation,
            reason=reason,
            priority=Priority.from_code(priority),
            triggered_by=Escalation.Trigger.DETECTION,
            detail=detail,
        )
        Escalation.objects.filter(pk=escalation.pk).update(
            escalated_at=timezone.now() - timedelta(minutes=minutes_ago)
        )
        return escalation

    def seed_conversations(self):
        visitors = [
            ("", "", "website", mode, messages, escalation, clean_visitor_context(visit))
            for visit, mode, messages, escalation in demo_data.VISITORS
        ]
        named = [(*row, None) for row in demo_data.CONVERSATIONS]
        for name, email, kind, mode, messages, escalation, visit in named + visitors:
            if email and Contact.objects.filter(email=email, conversations__isnull=False).exists():
                continue
            if visit and Conversation.objects.filter(page_url=visit.page_url).exists():
                continue
            minutes = escalation[3] if escalation else 90
            conversation = self._conversation(
                name=name,
                email=email,
                kind=kind,
                messages=messages,
                minutes_ago=minutes + 1,
                visit=visit,
            )
            if escalation:
                self._play_escalation(conversation, mode, *escalation)
            self._backdate(conversation, minutes)

    def _backdate(self, conversation, minutes: int) -> None:
        """The messages stored just now, moved to when they happened: "waiting for 27:34"
        beside a message sent a moment ago would not add up."""
        Message.objects.filter(conversation=conversation, created_at__gte=self.started).update(
            created_at=F("created_at") - timedelta(minutes=minutes)
        )

    def _play_escalation(self, conversation, mode, reason, priority, detail, minutes_ago):
        esc = self._escalate(conversation, reason, priority, detail, minutes_ago)
        agent = self.users["alex"]
        if mode in ("agent", "closed"):
            escalation_services.take_over_escalation(escalation_id=esc.pk, agent=agent)
        if mode == "closed":
            escalation_services.resolve_escalation(escalation_id=esc.pk, agent=agent)
            escalation_services.close_escalation(escalation_id=esc.pk, agent=agent)
        if mode in ("agent", "closed"):
            # History as it would have happened: picked up in two minutes, solved in ten
            # (these times feed the wait estimate and the analytics).
            picked_up = timezone.now() - timedelta(minutes=minutes_ago - 2)
            Escalation.objects.filter(pk=esc.pk).update(
                claimed_at=picked_up,
                resolved_at=picked_up + timedelta(minutes=8) if mode == "closed" else None,
            )

    def seed_history(self):
        if demo_history.is_seeded():
            return

        def progress(done: int, total: int) -> None:
            bar = "#" * (20 * done // total)
            self.stdout.write(f"\r{self.step_label} [{bar:<20}] {done}/{total}", ending="")
            self.stdout.flush()

        history = demo_history.seed_history(
            channels=self.channels,
            teams={"billing": self.billing, "support": self.support},
            agents=[
                (self.users["marina"], "billing"),
                (self.users["priya"], "billing"),
                (self.users["alex"], "support"),
                (self.users["tom"], "support"),
            ],
            progress=progress if self.stdout.isatty() else lambda done, total: None,
        )
        if self.stdout.isatty():
            self.stdout.write("")
        self.stdout.write(
            f"      {history.conversations} conversations, {history.escalations} escalations "
            f"({', '.join(f'{n} {status}' for status, n in sorted(history.by_status.items()))}), "
            f"{history.messages} messages, {history.ratings} customer ratings"
        )

    def seed_jamie(self):
        if Conversation.objects.filter(pk=JAMIE_CONVERSATION_ID).exists():
            return
        jamie, _ = Contact.objects.get_or_create(
            email="jamie.patel@example.com", defaults={"name": "Jamie Patel"}
        )
        # Jamie's two earlier chats, both answered by the assistant.
        for question, answer in [
            ("How do I update my card?", demo_data.KNOWLEDGE_BASE[2][2]),
            ("When will I be charged each month?", demo_data.KNOWLEDGE_BASE[3][2]),
        ]:
            old = self._conversation(
                name="Jamie Patel",
                email=jamie.email,
                kind="website",
                messages=[("customer", question, None), ("ai", answer, 0.9)],
                minutes_ago=60 * 24 * 20,
            )
            crm_services.close_conversation_now(old)
            self._backdate(old, 60 * 24 * 20)
        conversation = self._conversation(
            name="Jamie Patel",
            email=jamie.email,
            kind="website",
            messages=demo_data.JAMIE_MESSAGES,
            pk=JAMIE_CONVERSATION_ID,
            minutes_ago=3,
        )
        self._escalate(
            conversation,
            "complexity",
            "high",
            "Refund of a duplicate $49 charge, needed today",
            minutes_ago=2,
        )
        self._backdate(conversation, 2)

    def reset_sequences(self):
        """Explicit ids (#4821) don't advance PostgreSQL sequences; move them past the data."""
        statements = connection.ops.sequence_reset_sql(color.no_style(), [Conversation])
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
