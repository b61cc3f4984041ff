"""OpenAPI: the auth schemes, the error shape, and the error responses every operation can
give (added here once so no endpoint forgets to document them)."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text=_("Stable machine-readable code, e.g. already_claimed."))
    message = serializers.CharField(help_text=_("Human-readable explanation."))
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text=_("Per-field messages for invalid input (dotted paths for nested fields)."),
    )
    agent = serializers.CharField(
        required=False, help_text=_("For already_claimed: who has the escalation.")
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


ERROR_DESCRIPTIONS = {
    "400": _("Invalid input: `error.fields` says which fields and why."),
    "401": _("No credentials, or an invalid, expired or revoked token."),
    "403": _("The credentials lack the scope this call needs, or a customer token was used."),
    "404": _("Not found, or outside the caller's reach."),
    "409": _("The object is in a state that does not allow this (see `error.code`)."),
    "413": _("The request body is too large."),
    "429": _("Too many requests: wait for `Retry-After` seconds."),
}


def error_response(code: str, description: str | None = None) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description or ERROR_DESCRIPTIONS[code])


class ApiAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        codes = ["400"] if self.method != "DELETE" else []
        if getattr(self.view, "authentication_classes", None):
            codes += ["401", "403"]
        if "{" in self.path:
            codes.append("404")
        codes.append("429")
        for code in codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(error_response(code), code)
        return responses


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "integrations.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": str(
                _(
                    "`Token <token>`. Managers create tokens in the admin (or with "
                    "`manage.py api_token create`); scopes: read, write, manage."
                )
            ),
        }


class CustomerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "integrations.authentication.CustomerTokenAuthentication"
    name = "customerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Customer-Token",
            "description": str(
                _("The customer_token returned when the conversation started: that one only.")
            ),
        }


class WebhookURLFieldSchema(OpenApiSerializerFieldExtension):
    """What a webhook URL must be, as the server checks it (services.check_webhook_url): https
    (http too while DEBUG is on, for a local receiver), a host of at most 253 characters."""

    target_class = "integrations.api.WebhookURLField"

    def map_serializer_field(self, auto_schema, direction):
        from .services import webhook_url_pattern

        return {"type": "string", "maxLength": 500, "pattern": webhook_url_pattern()}
