from django.contrib import admin, messages

from crm.errors import DomainError

from . import services
from .models import Escalation, EscalationEvent, MessageAnalysis


class EscalationEventInline(admin.TabularInline):
    model = EscalationEvent
    extra = 0
    fields = ["created_at", "kind", "actor", "old_value", "new_value", "note"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Escalation)
class EscalationAdmin(admin.ModelAdmin):
    """Read-mostly: state changes go through the services (the actions below)."""

    list_display = [
        "id",
        "contact",
        "channel",
        "reason",
        "priority",
        "status",
        "team",
        "claimed_by",
        "escalated_at",
        "claimed_at",
        "resolved_at",
    ]
    list_filter = [
        "status",
        "reason",
        "priority",
        "team",
        "triggered_by",
        "conversation__channel__kind",
        "escalated_at",
    ]
    search_fields = [
        "id",
        "conversation__contact__name",
        "conversation__contact__email",
        "detail",
        "summary",
    ]
    list_select_related = ["conversation__contact", "conversation__channel", "team", "claimed_by"]
    readonly_fields = [f.name for f in Escalation._meta.fields]
    inlines = [EscalationEventInline]
    actions = ["take_over", "back_to_queue"]
    date_hierarchy = "escalated_at"

    def has_add_permission(self, request):
        return False

    @admin.display(ordering="conversation__contact__name")
    def contact(self, obj):
        return obj.conversation.contact

    @admin.display(ordering="conversation__channel__kind")
    def channel(self, obj):
        return obj.conversation.channel

    def _each(self, request, queryset, action, done):
        for escalation in queryset:
            try:
                action(escalation)
            except DomainError as error:
                self.message_user(request, f"#{escalation.pk}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, f"#{escalation.pk}: {done}", messages.SUCCESS)

    @admin.action(description="Take over (as me)")
    def take_over(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda e: services.take_over_escalation(escalation_id=e.pk, agent=request.user),
            "taken over",
        )

    @admin.action(description="Send back to the queue")
    def back_to_queue(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda e: services.reassign_escalation(escalation_id=e.pk, actor=request.user),
            "back in the queue",
        )


@admin.register(MessageAnalysis)
class MessageAnalysisAdmin(admin.ModelAdmin):
    list_display = [
        "message",
        "backend",
        "should_escalate",
        "would_escalate",
        "reason",
        "priority",
        "duration_ms",
        "created_at",
    ]
    list_filter = ["backend", "should_escalate", "would_escalate", "reason"]
    search_fields = ["message__text", "detail"]
    readonly_fields = [f.name for f in MessageAnalysis._meta.fields]
    list_select_related = ["message"]

    def has_add_permission(self, request):
        return False
