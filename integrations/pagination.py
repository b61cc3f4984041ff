from django.utils.translation import gettext as _
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination

MAX_OFFSET = 2**31 - 1


def single_value(request, name: str) -> str | None:
    """The one value of query parameter ``name`` (None when absent); given twice is a 400."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise serializers.ValidationError({name: [_("Give this parameter once.")]})
    return values[0] if values else None


class ApiPagination(LimitOffsetPagination):
    """``?limit=&offset=``; a page is ``{"count", "next", "previous", "results"}``. A limit
    outside 1–200, a negative offset or anything but digits is a 400 (never silently replaced
    by the default), and the schema says so."""

    default_limit = 50
    max_limit = 200

    def _number(self, request, name: str, *, default: int, minimum: int, maximum: int) -> int:
        raw = single_value(request, name)
        if raw is None:
            return default
        if not raw.isdigit() or not minimum <= int(raw) <= maximum:
            raise serializers.ValidationError(
                {
                    name: [
                        _("Must be a whole number from %(min)d to %(max)d.")
                        % {"min": minimum, "max": maximum}
                    ]
                }
            )
        return int(raw)

    def get_limit(self, request):
        return self._number(
            request,
            self.limit_query_param,
            default=self.default_limit,
            minimum=1,
            maximum=self.max_limit,
        )

    def get_offset(self, request):
        return self._number(
            request, self.offset_query_param, default=0, minimum=0, maximum=MAX_OFFSET
        )

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.limit_query_param: {
                "minimum": 1,
                "maximum": self.max_limit,
                "default": self.default_limit,
            },
            self.offset_query_param: {"minimum": 0, "maximum": MAX_OFFSET, "default": 0},
        }
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        return parameters
