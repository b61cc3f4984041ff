"""What every /api/v1/ view shares: authentication, scopes, throttles, pagination helpers."""

from rest_framework import serializers
from rest_framework.views import APIView

from .pagination import ApiPagination


class ApiView(APIView):
    """Defaults come from settings.REST_FRAMEWORK (token + session auth, HasScope, throttles).

    List views set ``pagination_class`` (the schema then shows the page envelope) and answer
    with :meth:`paginate`."""

    def paginate(self, queryset, serializer_class, **serializer_kwargs):
        paginator = (getattr(self, "pagination_class", None) or ApiPagination)()
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        data = serializer_class(page, many=True, **serializer_kwargs).data
        return paginator.get_paginated_response(data)

    def query(self, serializer_class):
        """Validated query parameters (400 with field messages when they are wrong)."""
        serializer = serializer_class(data=self.request.query_params)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def body(self, serializer_class, **kwargs):
        serializer = serializer_class(data=self.request.data, **kwargs)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


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
