"""Responses carrying CRM or customer data must never be kept by a browser or a shared cache."""

from django.utils.cache import patch_cache_control


class NoStoreByDefaultMiddleware:
    """``Cache-Control: no-store, private`` on every dynamic response that does not choose its
    own caching (``widget.js`` does; static files are served by WhiteNoise before this runs)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not response.has_header("Cache-Control"):
            patch_cache_control(response, no_store=True, private=True)
        return response
