from django import forms
from django.contrib import admin

from escalation.routing import services as routing_services
from escalation.routing.validation import agent_capacity_errors

from . import customer_texts, services
from .errors import InvalidMessage
from .models import (
    COMPLEXITY_TOPICS,
    AgentProfile,
    Assistant,
    CannedReply,
    Channel,
    Contact,
    ContactIdentity,
    Conversation,
    CustomerText,
    KnowledgeArticle,
    Message,
    MessageTemplate,
    Team,
)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "target_wait_seconds", "created_at"]
    search_fields = ["name"]


class AgentProfileForm(forms.ModelForm):
    class Meta:
        model = AgentProfile
        fields = [
            "user",
            "display_name",
            "role",
            "teams",
            "availability",
            "notify_via",
            "capacity",
        ]

    def clean(self):
        cleaned = super().clean()
        teams = cleaned.get("teams")
        errors = agent_capacity_errors(
            capacity=cleaned.get("capacity") or 0,
            team_ids=[team.pk for team in teams] if teams is not None else [],
        )
        for field, messages in errors.items():
            self.add_error(field, messages)
        return cleaned


@admin.register(AgentProfile)
class AgentProfileAdmin(admin.ModelAdmin):
    form = AgentProfileForm
    list_display = ["display_name", "user", "role", "availability", "notify_via", "capacity"]
    list_filter = ["role", "availability", "notify_via", "teams"]
    search_fields = ["display_name", "user__username", "user__email"]
    filter_horizontal = ["teams"]
    list_select_related = ["user"]

    # Availability is changed by the routing service once the teams are saved (save_related),
    # as from the API: the availability hook runs, and an agent coming online or given more
    # room gets the waiting work of their automatic teams.
    def save_model(self, request, obj, form, change):
        if change and "availability" in form.changed_data:
            obj.availability = form.initial["availability"]
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        routing_services.update_agent_routing(
            profile=form.instance, availability=form.cleaned_data["availability"]
        )


class ContactIdentityInline(admin.TabularInline):
    model = ContactIdentity
    extra = 0


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "phone", "created_at"]
    search_fields = ["name", "email", "phone", "identities__external_id"]
    inlines = [ContactIdentityInline]


class AssistantForm(forms.ModelForm):
    class Meta:
        model = Assistant
        fields = [
            "name",
            "instructions",
            "backend",
            "handoff_enabled",
            "sensitivity",
            "claude_band_low",
            "claude_band_high",
            "sentiment_threshold",
            "confidence_threshold",
            "loop_threshold",
            "always_human_topics",
        ]

    def clean_always_human_topics(self):
        topics = self.cleaned_data["always_human_topics"] or []
        known = {code for code, _label in COMPLEXITY_TOPICS}
        if not isinstance(topics, list) or set(topics) - known:
            raise forms.ValidationError(
                "A list of topic codes from: " + ", ".join(sorted(known)) + "."
            )
        return topics


@admin.register(Assistant)
class AssistantAdmin(admin.ModelAdmin):
    form = AssistantForm
    list_display = [
        "name",
        "handoff_enabled",
        "backend",
        "sentiment_threshold",
        "confidence_threshold",
    ]
    list_filter = ["handoff_enabled", "backend"]
    search_fields = ["name"]
    fieldsets = [
        (None, {"fields": ["name", "instructions"]}),
        (
            "Agent Framework",
            {
                "fields": [
                    "handoff_enabled",
                    "sensitivity",
                    "backend",
                    ("claude_band_low", "claude_band_high"),
                ]
            },
        ),
        (
            "Detection",
            {
                "fields": [
                    "sentiment_threshold",
                    "confidence_threshold",
                    "loop_threshold",
                    "always_human_topics",
                ]
            },
        ),
    ]


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "key", "assistant", "default_team", "prechat_form", "is_active"]
    list_filter = ["kind", "is_active", "default_team", "prechat_form"]
    search_fields = ["name", "key", "provider_account_id"]


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = [
        "created_at",
        "sender",
        "author",
        "text",
        "confidence",
        "is_private_note",
        "delivery_status",
    ]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "contact",
        "channel",
        "mode",
        "assigned_agent",
        "team",
        "created_at",
        "last_message_at",
    ]
    list_filter = ["mode", "channel__kind", "team", "created_at"]
    search_fields = ["id", "contact__name", "contact__email"]
    list_select_related = ["contact", "channel", "assigned_agent", "team"]
    # Read-only: who drives a conversation changes only through the handoff services.
    readonly_fields = [f.name for f in Conversation._meta.fields]
    inlines = [MessageInline]

    def has_add_permission(self, request):
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "conversation",
        "sender",
        "short_text",
        "confidence",
        "delivery_status",
        "created_at",
    ]
    list_filter = ["sender", "delivery_status", "channel__kind", "is_private_note"]
    search_fields = ["text", "provider_message_id"]
    list_select_related = ["conversation"]
    # Read-only: a message is what was said; editing one (or unticking "private note") would
    # rewrite history and could show a staff note to the customer.
    readonly_fields = [f.name for f in Message._meta.fields]

    def has_add_permission(self, request):
        return False

    @admin.display(description="text")
    def short_text(self, obj):
        return obj.text[:80]


class CustomerTextForm(forms.ModelForm):
    kind = forms.ChoiceField(choices=[(k.code, k.label) for k in customer_texts.KINDS])
    language = forms.ChoiceField(choices=list(customer_texts.LANGUAGE_NAMES.items()))

    class Meta:
        model = CustomerText
        fields = ["kind", "language", "text"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind"):
            try:
                cleaned["text"] = customer_texts.validate(cleaned["kind"], cleaned.get("text", ""))
            except InvalidMessage as error:
                self.add_error("text", error.message)
        return cleaned


@admin.register(CustomerText)
class CustomerTextAdmin(admin.ModelAdmin):
    """The same overrides Settings edits, saved through the same service."""

    form = CustomerTextForm
    list_display = ["kind", "language", "text", "updated_at"]
    list_filter = ["language", "kind"]

    def save_model(self, request, obj, form, change):
        if change and {"kind", "language"} & set(form.changed_data):
            services.update_customer_texts(
                language=form.initial["language"], texts={form.initial["kind"]: ""}
            )
        services.update_customer_texts(language=obj.language, texts={obj.kind: obj.text})


@admin.register(KnowledgeArticle)
class KnowledgeArticleAdmin(admin.ModelAdmin):
    list_display = ["title", "assistant", "is_published", "updated_at"]
    list_filter = ["is_published", "assistant"]
    search_fields = ["title", "body", "keywords"]


class CannedReplyForm(forms.ModelForm):
    class Meta:
        model = CannedReply
        fields = ["team", "owner", "shortcut", "title", "body"]

    def clean(self):
        cleaned = super().clean()
        if bool(cleaned.get("team")) == bool(cleaned.get("owner")):
            raise forms.ValidationError("Choose a team (shared) or an owner (personal), not both.")
        try:
            cleaned.update(
                services.validate_canned_reply_fields(
                    shortcut=cleaned.get("shortcut", ""),
                    title=cleaned.get("title", ""),
                    body=cleaned.get("body", ""),
                )
            )
        except InvalidMessage as error:
            raise forms.ValidationError(error.message) from None
        return cleaned


@admin.register(CannedReply)
class CannedReplyAdmin(admin.ModelAdmin):
    form = CannedReplyForm
    list_display = ["shortcut", "title", "team", "owner", "use_count", "updated_at"]
    list_filter = ["team"]
    search_fields = ["shortcut", "title", "body"]
    readonly_fields = ["use_count"]


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "language", "channel", "is_approved"]
    list_filter = ["channel", "is_approved"]
