from django.contrib import admin, messages

from crm.errors import DomainError
from crm.models import Team

from . import services
from .models import (
    AgentRoutingState,
    Escalation,
    EscalationEvent,
    HandoffVerdict,
    MessageAnalysis,
    ReplayJob,
    RoutingRule,
    RoutingSettings,
    TeamRouting,
)
from .routing import services as routing_services
from .routing.validation import DELETED_TEAM_CHOICE


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
        "offered_to",
        "sla_due_at",
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


@admin.register(HandoffVerdict)
class HandoffVerdictAdmin(admin.ModelAdmin):
    """Read-only: verdicts are given on the conversation page, once."""

    list_display = ["escalation", "reason", "needed", "given_by", "given_at"]
    list_filter = ["reason", "needed"]
    readonly_fields = [f.name for f in HandoffVerdict._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ReplayJob)
class ReplayJobAdmin(admin.ModelAdmin):
    """Read-only: replays are started from Settings or ``replay_detection``."""

    list_display = ["id", "assistant", "status", "done", "total", "since", "created_at"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in ReplayJob._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# --- Routing: every save goes through the routing services (one write path, the same checks
# as the Settings screen and the API; a bad value is a form error on its field).


class NamesADeletedTeam:
    """A team choice no longer in the list (deleted while the form was open) says so."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.related_model is Team:
            field.error_messages["invalid_choice"] = DELETED_TEAM_CHOICE
        return field


@admin.register(TeamRouting)
class TeamRoutingAdmin(NamesADeletedTeam, admin.ModelAdmin):
    list_display = [
        "team",
        "mode",
        "strategy",
        "offer_first",
        "accept_timeout_seconds",
        "max_missed_offers",
        "time_zone",
    ]
    list_filter = ["mode", "strategy"]
    list_select_related = ["team"]

    def save_model(self, request, obj, form, change):
        routing_services.update_team_routing(
            team=obj.team, **{name: getattr(obj, name) for name in routing_services.TEAM_FIELDS}
        )


@admin.register(RoutingRule)
class RoutingRuleAdmin(NamesADeletedTeam, admin.ModelAdmin):
    list_display = ["position", "name", "team", "is_active", "reasons", "topics", "channel_kinds"]
    list_display_links = ["name"]
    list_editable = ["position", "is_active"]
    list_filter = ["is_active", "team"]
    list_select_related = ["team"]
    ordering = ["position", "id"]

    def save_model(self, request, obj, form, change):
        routing_services.save_rule(rule=obj)


@admin.register(RoutingSettings)
class RoutingSettingsAdmin(NamesADeletedTeam, admin.ModelAdmin):
    list_display = ["__str__", "default_team"]

    def has_add_permission(self, request):
        return not RoutingSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        routing_services.update_routing_settings(
            default_team=obj.default_team,
            sla_targets=obj.sla_targets,
            ageing_seconds=obj.ageing_seconds,
            sentiment_raise_step=obj.sentiment_raise_step,
        )


@admin.register(AgentRoutingState)
class AgentRoutingStateAdmin(admin.ModelAdmin):
    list_display = ["user", "last_routed_at", "missed_offers"]
    readonly_fields = ["user", "last_routed_at", "missed_offers"]

    def has_add_permission(self, request):
        return False
