from django.contrib import admin

from .models import Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = [
        "recipient",
        "kind",
        "text",
        "created_at",
        "read_at",
        "emailed_at",
        "email_attempts",
    ]
    list_filter = ["kind", "read_at", "email_requested", "is_fallback", "emailed_at", "created_at"]
    search_fields = ["text", "recipient__username"]
    list_select_related = ["recipient"]
    readonly_fields = [f.name for f in Notification._meta.fields]

    def has_add_permission(self, request):
        return False
