"""Managers create API tokens here (the token is shown once) and manage outbound webhooks."""

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from . import services
from .errors import InvalidScopes, InvalidSubscription, InvalidTokenOwner
from .models import ApiToken, Scope, WebhookDelivery, WebhookEvent, WebhookSubscription


class ApiTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices, widget=forms.CheckboxSelectMultiple, initial=[Scope.READ]
    )

    class Meta:
        model = ApiToken
        fields = ["name", "owner", "scopes", "expires_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Only active staff users can own a token (authenticate_api_token refuses the rest).
        self.fields["owner"].queryset = self.fields["owner"].queryset.filter(
            is_active=True, is_staff=True
        )


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = [
        "name",
        "key_prefix",
        "owner",
        "scopes",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = ["revoked_at"]
    search_fields = ["name", "key_prefix", "owner__username"]
    list_select_related = ["owner"]
    readonly_fields = ["key_prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None:
            kwargs["form"] = forms.ModelForm  # only name and expiry stay editable
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:  # a token's owner and scopes are fixed: make a new one instead
            return [*self.readonly_fields, "owner", "scopes_display"]
        return self.readonly_fields

    def get_fields(self, request, obj=None):
        if obj is not None:
            return [
                "name",
                "key_prefix",
                "owner",
                "scopes_display",
                "expires_at",
                "created_by",
                "created_at",
                "last_used_at",
                "revoked_at",
            ]
        return ["name", "owner", "scopes", "expires_at"]

    @admin.display(description=_("scopes"))
    def scopes_display(self, obj):
        return ", ".join(obj.scopes)

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name", "expires_at"])
            return
        try:
            token, raw = services.create_api_token(
                owner=form.cleaned_data["owner"],
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_at=form.cleaned_data.get("expires_at"),
                created_by=request.user,
            )
        except (InvalidScopes, InvalidTokenOwner) as exc:
            raise forms.ValidationError(exc.message) from exc
        obj.pk = token.pk
        obj.refresh_from_db()
        messages.warning(
            request,
            _("Copy the token now, it is not shown again: %(token)s") % {"token": raw},
        )

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request, queryset):
        for token in queryset:
            services.revoke_api_token(token=token)
        self.message_user(request, _("Revoked %(n)d tokens.") % {"n": queryset.count()})


class WebhookSubscriptionForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(
        choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookSubscription
        fields = ["url", "events", "description", "secret", "is_active"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            services.check_webhook_url(url)
        except InvalidSubscription as exc:
            raise forms.ValidationError(exc.message) from exc
        return url


class WebhookDeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    extra = 0
    can_delete = False
    fields = [
        "event",
        "status",
        "attempts",
        "response_status",
        "last_error",
        "created_at",
        "delivered_at",
    ]
    readonly_fields = fields
    ordering = ["-id"]
    max_num = 0
    show_change_link = True


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    form = WebhookSubscriptionForm
    list_display = ["url", "events", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["url", "description"]
    inlines = [WebhookDeliveryInline]

    def save_model(self, request, obj, form, change):
        data = {k: form.cleaned_data[k] for k in ("url", "events", "description", "is_active")}
        if change:
            services.update_webhook_subscription(
                subscription=obj, secret=form.cleaned_data["secret"], **data
            )
        else:
            created = services.create_webhook_subscription(
                url=data["url"],
                events=data["events"],
                description=data["description"],
                secret=form.cleaned_data["secret"],
                created_by=request.user,
                is_active=data["is_active"],
            )
            obj.pk = created.pk
        obj.refresh_from_db()


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "event",
        "subscription",
        "status",
        "attempts",
        "response_status",
        "created_at",
        "delivered_at",
    ]
    list_filter = ["status", "event"]
    list_select_related = ["subscription"]
    readonly_fields = [
        "subscription",
        "event",
        "event_id",
        "payload",
        "status",
        "attempts",
        "response_status",
        "last_error",
        "created_at",
        "last_attempt_at",
        "delivered_at",
    ]
    actions = ["redeliver"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Send the selected deliveries again"))
    def redeliver(self, request, queryset):
        for delivery in queryset:
            services.redeliver_webhook(delivery=delivery)
        self.message_user(request, _("Queued %(n)d deliveries.") % {"n": queryset.count()})
