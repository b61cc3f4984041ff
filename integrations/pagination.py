from rest_framework.pagination import LimitOffsetPagination


class ApiPagination(LimitOffsetPagination):
    """``?limit=&offset=``; a page is ``{"count", "next", "previous", "results"}``."""

    default_limit = 50
    max_limit = 200
