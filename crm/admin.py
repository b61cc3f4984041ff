from django.contrib import admin

from .models import (
    AgentProfile,
    Assistant,
    Channel,
    Contact,
    ContactIdentity,
    Conversation,
    CRMSettings,
    KnowledgeArticle,
    Message,
    Team,
)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "target_wait_seconds", "created_at"]
    search_fields = ["name"]


@admin.register(AgentProfile)
class AgentProfileAdmin(admin.ModelAdmin):
    list_display = ["display_name", "user", "role", "availability", "notify_via", "capacity"]
    list_filter = ["role", "availability", "notify_via", "teams"]
    search_fields = ["display_name", "user__username", "user__email"]
    filter_horizontal = ["teams"]
    list_select_related = ["user"]


class ContactIdentityInline(admin.TabularInline):
    model = ContactIdentity
    extra = 0


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "phone", "created_at"]
    search_fields = ["name", "email", "phone", "identities__external_id"]
    inlines = [ContactIdentityInline]


@admin.register(Assistant)
class AssistantAdmin(admin.ModelAdmin):
    list_display = ["name", "handoff_enabled", "backend", "sentiment_threshold",
                    "confidence_threshold"]
    list_filter = ["handoff_enabled", "backend"]
    search_fields = ["name"]
    fieldsets = [
        (None, {"fields": ["name", "instructions", "backend"]}),
        ("Agent Framework", {"fields": ["handoff_enabled"]}),
        ("Detection", {"fields": ["sentiment_threshold", "confidence_threshold",
                                  "loop_threshold", "always_human_topics"]}),
    ]


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "key", "assistant", "default_team", "is_active"]
    list_filter = ["kind", "is_active", "default_team"]
    search_fields = ["name", "key", "provider_account_id"]


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ["created_at", "sender", "author", "text", "confidence", "is_private_note",
              "delivery_status"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "contact", "channel", "mode", "assigned_agent", "team", "created_at",
                    "last_message_at"]
    list_filter = ["mode", "channel__kind", "team", "created_at"]
    search_fields = ["id", "contact__name", "contact__email"]
    list_select_related = ["contact", "channel", "assigned_agent", "team"]
    raw_id_fields = ["contact", "assigned_agent"]
    readonly_fields = ["customer_token", "created_at", "updated_at", "mode"]
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "conversation", "sender", "short_text", "confidence", "delivery_status",
                    "created_at"]
    list_filter = ["sender", "delivery_status", "channel__kind", "is_private_note"]
    search_fields = ["text", "provider_message_id"]
    raw_id_fields = ["conversation", "author"]
    list_select_related = ["conversation"]

    @admin.display(description="text")
    def short_text(self, obj):
        return obj.text[:80]


@admin.register(CRMSettings)
class CRMSettingsAdmin(admin.ModelAdmin):
    list_display = ["__str__", "handoff_message", "takeover_message"]

    def has_add_permission(self, request):
        return not CRMSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(KnowledgeArticle)
class KnowledgeArticleAdmin(admin.ModelAdmin):
    list_display = ["title", "assistant", "is_published", "updated_at"]
    list_filter = ["is_published", "assistant"]
    search_fields = ["title", "body", "keywords"]
