"""What every /api/v1/ view shares: authentication, scopes, throttles, pagination helpers."""

from django.utils.translation import gettext as _
from rest_framework import serializers
from rest_framework.views import APIView

from .pagination import ApiPagination, single_value
from .parsers import BoundedJSONParser


class ApiView(APIView):
    """Defaults come from settings.REST_FRAMEWORK (token + session auth, HasScope, throttles).

    List views set ``pagination_class`` (the schema then shows the page envelope) and answer
    with :meth:`paginate`. Bodies are JSON only (the schema documents no other encoding)."""

    parser_classes = [BoundedJSONParser]  # the depth-checked JSON parser of settings

    def paginate(self, queryset, serializer_class, **serializer_kwargs):
        paginator = (getattr(self, "pagination_class", None) or ApiPagination)()
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        data = serializer_class(page, many=True, **serializer_kwargs).data
        return paginator.get_paginated_response(data)

    def query(self, serializer_class):
        """Validated query parameters (400 with field messages when they are wrong, or when one
        is given more than once)."""
        serializer = serializer_class(data=self.request.query_params)
        for name in self.request.query_params:
            value = single_value(self.request, name)
            field = serializer.fields.get(name)
            if value == "" and field is not None and not getattr(field, "allow_blank", False):
                # DRF reads an empty form value as "not given"; here it is a mistake to say so.
                raise serializers.ValidationError({name: [_("Give a value or leave it out.")]})
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def body(self, serializer_class, **kwargs):
        """The validated JSON body: 400 with field messages, also for a value of another JSON
        type than the schema's (DRF would turn 0 into "0" or "1" into 1)."""
        serializer = serializer_class(data=self.request.data, **kwargs)
        refuse_other_json_types(serializer.fields, self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


def _json_type_error(field, value) -> str:
    if isinstance(field, serializers.BooleanField):
        return "" if isinstance(value, bool) else _("Must be true or false.")
    if isinstance(field, (serializers.CharField, serializers.ChoiceField)):
        return "" if isinstance(value, str) else _("Must be a string.")
    if isinstance(field, serializers.IntegerField):
        return (
            ""
            if isinstance(value, int) and not isinstance(value, bool)
            else _("Must be an integer.")
        )
    return ""


def refuse_other_json_types(fields, data) -> None:
    """400 for a JSON value whose type is not the one its field (and the schema) names: a
    number for a string, a string for an integer or a boolean. Nested objects and lists too."""
    if not isinstance(data, dict):
        return
    errors = {}
    for name, value in data.items():
        field = fields.get(name)
        if field is None or value is None:
            continue
        if isinstance(field, serializers.Serializer):
            try:
                refuse_other_json_types(field.fields, value)
            except serializers.ValidationError as exc:
                errors[name] = exc.detail
            continue
        if isinstance(field, serializers.ListField) and isinstance(value, list):
            problems = [_json_type_error(field.child, item) for item in value]
            message = next((problem for problem in problems if problem), "")
        else:
            message = _json_type_error(field, value)
        if message:
            errors[name] = [message]
    if errors:
        raise serializers.ValidationError(errors)


MAX_ID = 2**63 - 1  # BigAutoField
MAX_USER_ID = 2**31 - 1  # django.contrib.auth keeps a 32-bit AutoField


class IdField(serializers.IntegerField):
    """An object id: a positive integer the database can hold (larger is a 400, never a 500)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


class IdConverter:
    """``<api_id:pk>`` in URLs: digits the database can hold; anything else falls through to the
    JSON 404."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(int(value))
