"""One JSON shape for every API error: ``{"error": {"code", "message", "fields"?}}``.

Domain errors (``crm.errors.DomainError`` and its subclasses in every app) carry their own
``code`` and HTTP ``status``; DRF's own errors keep their status; anything unexpected is logged
and answered as a 500 in the same shape.
"""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from crm.errors import DomainError

logger = logging.getLogger(__name__)


def error_body(code: str, message: str, fields: dict | None = None, **extra) -> dict:
    error = {"code": code, "message": message, **extra}
    if fields:
        error["fields"] = fields
    return {"error": error}


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """``{"contact": {"email": [...]}}`` → ``{"contact.email": [...]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, name))
    elif isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        for index, value in enumerate(detail):
            out.update(_flatten(value, f"{prefix}.{index}" if prefix else str(index)))
    elif isinstance(detail, list):
        out[prefix or "non_field_errors"] = [str(item) for item in detail]
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def _validation_response(detail) -> Response:
    fields = _flatten(detail)
    non_field = fields.pop("non_field_errors", None)
    message = " ".join(non_field) if non_field else _("Some fields are invalid.")
    return Response(error_body("invalid", message, fields or None), status=400)


def api_exception_handler(exc, context):
    if isinstance(exc, DomainError):
        set_rollback()
        extra = {}
        if getattr(exc, "agent_name", None):
            extra["agent"] = exc.agent_name
        return Response(error_body(exc.code, exc.message, **extra), status=exc.status)
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("too_large", _("The request body is too large.")), status=413)
    if isinstance(exc, SuspiciousOperation):
        return Response(error_body("bad_request", _("The request was refused.")), status=400)
    if isinstance(exc, Http404):
        # Only an edge's own "no such object" (get_object_or_404, typed not-found domain errors
        # above): a stray ObjectDoesNotExist from deeper down is a bug and is logged as a 500.
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        set_rollback()
        detail = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        return _validation_response(detail)

    if isinstance(exc, exceptions.ValidationError):
        set_rollback()
        return _validation_response(exc.detail)
    if isinstance(exc, exceptions.APIException):
        set_rollback()
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        detail = exc.detail
        code = detail.code if hasattr(detail, "code") and detail.code else exc.default_code
        return Response(error_body(str(code), str(detail)), status=exc.status_code, headers=headers)

    logger.exception("unhandled API error", exc_info=exc)
    set_rollback()
    return Response(
        error_body("server_error", _("Something went wrong on our side; it has been logged.")),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


@csrf_exempt  # a JSON 404 for every method; nothing here reads or changes state
def api_not_found(request, *args, **kwargs):
    """The last /api/ route: unknown paths answer in the API's error shape."""
    return JsonResponse(
        error_body("not_found", _("No API endpoint or object at this address.")), status=404
    )
