"""Rate limits on what customers can reach (conversation start, customer messages, inbound
webhooks) and a generous one per caller on everything. Rates come from
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], read on each request so settings overrides apply."""

import hashlib

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

DEFAULT_RATES = {
    "api": "1200/min",
    "conversation_start": "120/min",
    "customer_message": "30/min",
    "webhook": "1200/min",
    "token_failure": "20/min",
}


class _Throttle(SimpleRateThrottle):
    def get_rate(self):
        rates = api_settings.DEFAULT_THROTTLE_RATES or {}
        return rates.get(self.scope, DEFAULT_RATES[self.scope])

    def __init__(self):
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def key_for(self, ident: str) -> str:
        """A cache key from an ident that may hold anything a client sent (URL parts)."""
        digest = hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return self.cache_format % {"scope": self.scope, "ident": digest}


class ApiCallerThrottle(_Throttle):
    """Per token, staff user or (anonymous) address."""

    scope = "api"

    def get_cache_key(self, request, view):
        auth = request.auth
        if getattr(auth, "pk", None) is not None:
            ident = f"token:{auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ConversationStartThrottle(ApiCallerThrottle):
    scope = "conversation_start"

    def allow_request(self, request, view):
        if request.method != "POST":
            return True
        return super().allow_request(request, view)


class CustomerMessageThrottle(_Throttle):
    """Per conversation and address: one noisy customer cannot flood the AI or the agents."""

    scope = "customer_message"

    def allow_request(self, request, view):
        if request.method != "POST":
            return True
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        conversation = view.kwargs.get("pk", "")
        return self.key_for(f"{conversation}:{self.get_ident(request)}")


class WebhookThrottle(_Throttle):
    """Per channel key: providers retry, a flood from one source is refused with 429."""

    scope = "webhook"

    def get_cache_key(self, request, view):
        return self.key_for(f"{view.kwargs.get('channel_key', '')}:{self.get_ident(request)}")


class TokenFailureThrottle(_Throttle):
    """Wrong API tokens per address: past the rate, every token from that address is refused
    with 429 before it is checked, so tokens cannot be guessed at speed."""

    scope = "token_failure"

    def wait_if_blocked(self, request) -> float | None:
        """Seconds to wait when this address has used up its failures, else None."""
        self.key = self.key_for(self.get_ident(request) or "unknown")
        self.now = self.timer()
        self.history = [t for t in self.cache.get(self.key, []) if t > self.now - self.duration]
        if len(self.history) >= self.num_requests:
            return self.wait()
        return None

    def record_failure(self) -> None:
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)
