from django.contrib import admin

from .models import Ticket, TicketEvent


class TicketEventInline(admin.TabularInline):
    model = TicketEvent
    extra = 0
    fields = ["created_at", "kind", "actor", "old_value", "new_value", "note"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    """Read-only here: status and assignee change through the CRM screens and the API."""

    list_display = [
        "reference",
        "subject",
        "contact",
        "status",
        "priority",
        "reason",
        "assignee",
        "created_at",
        "resolved_at",
    ]
    list_filter = ["status", "priority", "reason", "assignee", "created_at"]
    search_fields = ["id", "subject", "contact__name", "contact__email"]
    list_select_related = ["contact", "assignee"]
    readonly_fields = [f.name for f in Ticket._meta.fields]
    inlines = [TicketEventInline]

    def has_add_permission(self, request):
        return False
