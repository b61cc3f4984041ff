"""CRM data: who talks (contacts, agents, teams), where (channels), and what was said."""

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .visitors import visitor_label, visitor_name

COMPLEXITY_TOPICS = [
    ("refund", _("Refunds")),
    ("billing_dispute", _("Billing disputes")),
    ("account_security", _("Account security and takeover")),
    ("legal", _("Legal threats")),
    ("privacy", _("Privacy and data deletion")),
    ("contract", _("Contracts and compliance")),
]


DEFAULT_SENSITIVITY = 0.5


def default_always_human_topics() -> list[str]:
    return [code for code, _label in COMPLEXITY_TOPICS]


def new_token() -> str:
    return secrets.token_urlsafe(32)


def new_channel_key() -> str:
    return secrets.token_urlsafe(12)


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    target_wait_seconds = models.PositiveIntegerField(
        default=300,
        help_text=_("An escalation queued longer than this is reminded and raised one priority."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AgentProfile(models.Model):
    class Availability(models.TextChoices):
        ONLINE = "online", _("Online")
        AWAY = "away", _("Away")
        OFFLINE = "offline", _("Offline")

    class NotifyVia(models.TextChoices):
        IN_APP = "in_app", _("In-app")
        EMAIL = "email", _("Email")
        BOTH = "both", _("In-app and email")

    class Role(models.TextChoices):
        AGENT = "agent", _("Agent")
        MANAGER = "manager", _("Manager")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent_profile"
    )
    display_name = models.CharField(max_length=100)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.AGENT)
    teams = models.ManyToManyField(Team, blank=True, related_name="agents")
    availability = models.CharField(
        max_length=10, choices=Availability.choices, default=Availability.OFFLINE
    )
    notify_via = models.CharField(max_length=10, choices=NotifyVia.choices, default=NotifyVia.BOTH)
    capacity = models.PositiveSmallIntegerField(
        default=5, help_text=_("Conversations this agent can handle at once.")
    )

    class Meta:
        ordering = ["display_name"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def is_manager(self) -> bool:
        return self.role == self.Role.MANAGER

    @property
    def wants_in_app(self) -> bool:
        return self.notify_via in (self.NotifyVia.IN_APP, self.NotifyVia.BOTH)

    @property
    def wants_email(self) -> bool:
        return self.notify_via in (self.NotifyVia.EMAIL, self.NotifyVia.BOTH)


def agent_name(user) -> str:
    """The name customers and colleagues see for a staff user."""
    if user is None:
        return ""
    profile = getattr(user, "agent_profile", None)
    if profile is not None and profile.display_name:
        return profile.display_name
    return user.get_full_name() or user.get_username()


class Contact(models.Model):
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True, db_index=True)
    phone = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def is_visitor(self) -> bool:
        """Nothing known about them: an anonymous website visitor (named "Blue Fox 42")."""
        return not (self.name or self.email or self.phone)

    @property
    def visitor_name(self) -> str:
        return visitor_name(self.pk) if self.pk else ""

    @property
    def display_name(self) -> str:
        """The name every screen, alert, email and the API show for this contact."""
        if not self.is_visitor:
            return self.name or self.email or self.phone
        return visitor_label(self.pk) if self.pk else str(_("New visitor"))


class ChannelKind(models.TextChoices):
    WEBSITE = "website", _("Website")
    WHATSAPP = "whatsapp", _("WhatsApp")
    INSTAGRAM = "instagram", _("Instagram")
    MESSENGER = "messenger", _("Messenger")
    EMAIL = "email", _("Email")
    API = "api", _("API")


# Channels whose replies leave through a provider's API (``integrations.senders``), not a socket.
PROVIDER_CHANNELS = frozenset({ChannelKind.WHATSAPP, ChannelKind.INSTAGRAM})


class ContactIdentity(models.Model):
    """How a contact is known on one kind of channel (a phone number, an Instagram id...)."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="identities")
    channel_kind = models.CharField(max_length=20, choices=ChannelKind.choices)
    external_id = models.CharField(max_length=200)

    class Meta:
        verbose_name_plural = "contact identities"
        constraints = [
            models.UniqueConstraint(
                fields=["channel_kind", "external_id"], name="unique_identity_per_channel_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_kind_display()}: {self.external_id}"


class Assistant(models.Model):
    class Backend(models.TextChoices):
        LOCAL = "local", _("Local (offline)")
        LOCAL_THEN_CLAUDE = "local_claude", _("Local, and Claude when unsure")
        CLAUDE = "claude", _("Claude")

    name = models.CharField(max_length=100)
    instructions = models.TextField(blank=True)
    handoff_enabled = models.BooleanField(
        _("enable human handoff"),
        default=True,
        help_text=_("Agent Framework → Enable Human Handoff: the assistant may escalate."),
    )
    backend = models.CharField(max_length=20, choices=Backend.choices, default=Backend.LOCAL)
    sentiment_threshold = models.FloatField(
        default=0.6,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=_("How negative the customer must be before escalating (0–1)."),
    )
    confidence_threshold = models.FloatField(
        default=0.45,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=_("AI answers below this confidence count as low confidence (0–1)."),
    )
    loop_threshold = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text=_("Repeats before a loop escalates."),
    )
    sensitivity = models.FloatField(
        default=DEFAULT_SENSITIVITY,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=_(
            "How readily detection hands over (0–1): 0.5 uses the thresholds chosen on "
            "validation data, higher escalates more, lower less."
        ),
    )
    claude_band_low = models.FloatField(
        default=0.2,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=_("Local, and Claude when unsure: a local probability from here…"),
    )
    claude_band_high = models.FloatField(
        default=0.8,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=_("…to here is checked by Claude; the rest never leave the machine."),
    )
    always_human_topics = models.JSONField(
        default=default_always_human_topics,
        blank=True,
        help_text=_("Topic codes that always need a human: ")
        + ", ".join(code for code, _label in COMPLEXITY_TOPICS),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(claude_band_low__gte=0)
                & Q(claude_band_low__lt=models.F("claude_band_high"))
                & Q(claude_band_high__lte=1),
                name="assistant_claude_band_ordered",
                violation_error_message=_("The Claude band needs 0 ≤ from < to ≤ 1."),
            ),
            models.CheckConstraint(
                condition=Q(sensitivity__gte=0) & Q(sensitivity__lte=1),
                name="assistant_sensitivity_0_1",
                violation_error_message=_("Sensitivity must be between 0 and 1."),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Channel(models.Model):
    class PrechatForm(models.TextChoices):
        OFF = "off", _("Off")
        OPTIONAL = "optional", _("Optional (name and email, may be skipped)")
        REQUIRED = "required", _("Required (name and email)")

    kind = models.CharField(max_length=20, choices=ChannelKind.choices)
    name = models.CharField(max_length=100)
    key = models.SlugField(
        max_length=40,
        unique=True,
        default=new_channel_key,
        help_text=_("Public key: the widget's data-channel, or the API's channel field."),
    )
    assistant = models.ForeignKey(
        Assistant, on_delete=models.PROTECT, related_name="channels", null=True, blank=True
    )
    default_team = models.ForeignKey(
        Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="channels"
    )
    allowed_origins = models.JSONField(
        default=list,
        blank=True,
        help_text=_(
            "Website origins allowed to open the widget socket, e.g. https://shop.example."
        ),
    )
    webhook_secret = models.CharField(
        max_length=200, blank=True, help_text=_("App secret that signs inbound webhooks.")
    )
    verify_token = models.CharField(
        max_length=200, blank=True, help_text=_("Token echoed in the webhook verification.")
    )
    provider_account_id = models.CharField(
        max_length=100, blank=True, help_text=_("Phone number id or page id at the provider.")
    )
    access_token = models.CharField(
        max_length=500, blank=True, help_text=_("Token for sending replies through the provider.")
    )
    is_active = models.BooleanField(default=True)
    prechat_form = models.CharField(
        _("pre-chat form"),
        max_length=10,
        choices=PrechatForm.choices,
        default=PrechatForm.OFF,
        help_text=_("Website widget: ask for name and email before the first message."),
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Conversation(models.Model):
    class Mode(models.TextChoices):
        AI = "ai", _("AI")
        AWAITING_AGENT = "awaiting_agent", _("Awaiting agent")
        AGENT = "agent", _("Agent")
        CLOSED = "closed", _("Closed")

    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="conversations")
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="conversations")
    assistant = models.ForeignKey(
        Assistant, on_delete=models.SET_NULL, null=True, blank=True, related_name="conversations"
    )
    team = models.ForeignKey(
        Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="conversations"
    )
    mode = models.CharField(max_length=20, choices=Mode.choices, default=Mode.AI, db_index=True)
    assigned_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_conversations",
    )
    customer_token = models.CharField(max_length=64, unique=True, default=new_token)
    # The customer's id at the provider (a WhatsApp number, an Instagram id): replies go there,
    # even when the contact has several identities on that kind of channel.
    external_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # What the last agent who handed the conversation back told the assistant (its context).
    assistant_note = models.TextField(blank=True)
    # The notice posted by the last hand-back ("You're chatting with our assistant again"):
    # detection reads only the turns after it, so the weak answers and complaints an agent has
    # already dealt with don't hand the conversation straight back (escalation.selectors).
    ai_resumed_after_message_id = models.BigIntegerField(null=True, blank=True, editable=False)
    # What the customer's browser reported when the chat started (crm.visitors checks it):
    # context for the agent, never identity.
    page_url = models.CharField(max_length=2000, blank=True)
    referrer = models.CharField(max_length=2000, blank=True)
    browser_language = models.CharField(max_length=35, blank=True)
    time_zone = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Conversation #{self.pk}"

    @property
    def has_visitor_context(self) -> bool:
        return bool(self.page_url or self.referrer or self.browser_language or self.time_zone)


class Message(models.Model):
    class Sender(models.TextChoices):
        CUSTOMER = "customer", _("Customer")
        AI = "ai", _("AI")
        AGENT = "agent", _("Agent")
        SYSTEM = "system", _("System")

    class Delivery(models.TextChoices):
        NOT_NEEDED = "", _("Not needed")
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    # Copied from the conversation so provider ids can be unique per channel in the database.
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="messages")
    sender = models.CharField(max_length=10, choices=Sender.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="authored_messages",
    )
    text = models.TextField()
    is_private_note = models.BooleanField(
        default=False, help_text=_("Visible to staff only, never sent to the customer.")
    )
    confidence = models.FloatField(null=True, blank=True, help_text=_("The AI's confidence."))
    provider_message_id = models.CharField(max_length=200, null=True, blank=True)
    delivery_status = models.CharField(
        max_length=10, choices=Delivery.choices, default=Delivery.NOT_NEEDED, blank=True
    )
    delivery_error = models.TextField(blank=True)
    # An approved provider template this message was sent as (WhatsApp, outside the 24 h window).
    template = models.ForeignKey(
        "MessageTemplate", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "provider_message_id"],
                condition=Q(provider_message_id__isnull=False),
                name="unique_provider_message_id_per_channel",
            )
        ]
        indexes = [models.Index(fields=["conversation", "id"], name="message_conversation_id")]

    def __str__(self) -> str:
        return f"{self.sender}: {self.text[:50]}"


class CustomerText(models.Model):
    """A manager's wording of one customer-facing system text in one language, replacing the
    built-in default (``crm.customer_texts``). No row: the default is used."""

    kind = models.CharField(max_length=30)
    language = models.CharField(max_length=8)
    text = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["language", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "language"], name="one_text_per_kind_language")
        ]

    def __str__(self) -> str:
        return f"{self.kind} ({self.language})"


class KnowledgeArticle(models.Model):
    assistant = models.ForeignKey(
        Assistant,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="articles",
        help_text=_("Leave empty to share the article with every assistant."),
    )
    title = models.CharField(max_length=200)
    body = models.TextField()
    keywords = models.CharField(max_length=300, blank=True)
    is_published = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


# --- The agent's workspace: canned replies, provider templates, wait notices -------------------
CANNED_PLACEHOLDERS = ("contact.first_name", "agent.name", "ticket.reference")


class CannedReply(models.Model):
    """A saved answer an agent inserts with ``/shortcut``: a team's (shared) or one agent's."""

    team = models.ForeignKey(
        Team, on_delete=models.CASCADE, null=True, blank=True, related_name="canned_replies"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="canned_replies",
    )
    shortcut = models.SlugField(max_length=40, help_text=_("Typed after / in the reply box."))
    title = models.CharField(max_length=120)
    body = models.TextField(
        max_length=4000,
        help_text=_("Placeholders: {contact.first_name}, {agent.name}, {ticket.reference}."),
    )
    use_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["shortcut"]
        verbose_name_plural = "canned replies"
        constraints = [
            models.CheckConstraint(
                condition=Q(team__isnull=True, owner__isnull=False)
                | Q(team__isnull=False, owner__isnull=True),
                name="canned_reply_team_xor_owner",
            ),
            models.UniqueConstraint(
                fields=["team", "shortcut"],
                condition=Q(team__isnull=False),
                name="unique_canned_shortcut_per_team",
            ),
            models.UniqueConstraint(
                fields=["owner", "shortcut"],
                condition=Q(owner__isnull=False),
                name="unique_canned_shortcut_per_owner",
            ),
        ]

    def __str__(self) -> str:
        return f"/{self.shortcut} {self.title}"


class MessageTemplate(models.Model):
    """A message template the provider approved (WhatsApp): the only thing a business may send
    once the customer's 24-hour window has closed."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="templates")
    name = models.SlugField(max_length=100, help_text=_("The template's name at the provider."))
    language = models.CharField(max_length=15, default="en_US")
    body = models.TextField(help_text=_("The approved text, as the customer will read it."))
    is_approved = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "name", "language"], name="unique_template_per_channel"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"


class WaitNotice(models.Model):
    """The last queue estimate a provider-channel customer was told (one row per conversation),
    so updates go out only when the estimate moved enough, and not too often."""

    conversation = models.OneToOneField(
        Conversation, on_delete=models.CASCADE, related_name="wait_notice"
    )
    position = models.PositiveIntegerField()
    wait_minutes = models.PositiveIntegerField()
    sent_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Wait notice for conversation #{self.conversation_id}"
