"""Who an anonymous customer is to the agents: a friendly visitor name, and the context the
widget reports when a chat starts (page, referrer, browser language, time zone).

The context comes from the customer's browser: it helps the agent, it is never identity. It is
checked and bounded here, at the edge, so nothing unbounded or malformed is stored.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import asdict, dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from django.utils.translation import gettext as _

from .errors import DomainError

# 32 × 32 names × 100 numbers: one cycle of 102,400 visitors with no repeat; later cycles
# continue the number (Blue Fox 142), so two contacts never share a name.
ADJECTIVES = (
    "Amber", "Azure", "Blue", "Bold", "Brave", "Bright", "Calm", "Clever",
    "Coral", "Crimson", "Gentle", "Golden", "Green", "Happy", "Indigo", "Jade",
    "Keen", "Lively", "Lucky", "Mellow", "Misty", "Noble", "Olive", "Quiet",
    "Rapid", "Ruby", "Silver", "Sunny", "Swift", "Teal", "Violet", "Witty",
)  # fmt: skip
ANIMALS = (
    "Badger", "Bear", "Beaver", "Crane", "Deer", "Dolphin", "Eagle", "Falcon",
    "Fox", "Gecko", "Hare", "Heron", "Ibis", "Koala", "Lark", "Lynx",
    "Marten", "Moose", "Otter", "Owl", "Panda", "Puffin", "Quail", "Raven",
    "Robin", "Seal", "Sparrow", "Swan", "Tiger", "Walrus", "Wolf", "Wren",
)  # fmt: skip
_CYCLE = len(ADJECTIVES) * len(ANIMALS) * 100
# A multiplier coprime with the cycle scatters consecutive ids (contacts 7 and 8 look unlike).
_SCATTER = 40503


def visitor_name(contact_id: int) -> str:
    """ "Blue Fox 42": deterministic from the contact id, different for every id."""
    cycle, rest = divmod(max(int(contact_id), 0), _CYCLE)
    index = (rest * _SCATTER + 7919) % _CYCLE
    adjective = ADJECTIVES[index % len(ADJECTIVES)]
    animal = ANIMALS[(index // len(ADJECTIVES)) % len(ANIMALS)]
    number = index // (len(ADJECTIVES) * len(ANIMALS)) + 1 + 100 * cycle
    return f"{adjective} {animal} {number}"


def visitor_label(contact_id: int) -> str:
    """The visitor name marked as such, wherever a contact's name shows as text."""
    return _("%(name)s (visitor)") % {"name": visitor_name(contact_id)}


# --- the context the widget reports -------------------------------------------------------------
URL_MAX = 2000
LANGUAGE_MAX = 35
TIME_ZONE_MAX = 64
# BCP 47 as browsers report it (navigator.language): "en", "pt-BR", "zh-Hant-TW".
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,4}")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
CONTEXT_FIELDS = ("page_url", "referrer", "language", "time_zone")


class InvalidVisitorContext(DomainError):
    code = "invalid_field"

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class VisitorContext:
    page_url: str = ""
    referrer: str = ""
    language: str = ""
    time_zone: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _text(raw: dict, field: str, limit: int) -> str:
    value = raw.get(field)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidVisitorContext(
            field,
            _("%(field)s must be text of at most %(limit)d characters.")
            % {"field": field, "limit": limit},
        )
    return value.strip()


def _web_address(raw: dict, field: str) -> str:
    value = _text(raw, field, URL_MAX)
    if not value:
        return ""
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidVisitorContext(
            field, _("%(field)s must be an http(s) address.") % {"field": field}
        )
    if _CONTROL.search(value):
        raise InvalidVisitorContext(
            field, _("%(field)s must not contain spaces or control characters.") % {"field": field}
        )
    return value


def clean_visitor_context(raw: dict) -> VisitorContext:
    """The page address, referrer, browser language and time zone from a widget's start
    request, each optional; a value of the wrong shape raises ``InvalidVisitorContext`` naming
    the field (the widget then starts without it)."""
    language = _text(raw, "language", LANGUAGE_MAX)
    if language and not _LANGUAGE.fullmatch(language):
        raise InvalidVisitorContext(
            "language", _("language must be a language tag such as en or pt-BR.")
        )
    time_zone = _text(raw, "time_zone", TIME_ZONE_MAX)
    if time_zone and time_zone not in _time_zones():
        raise InvalidVisitorContext(
            "time_zone", _("time_zone must be an IANA time zone such as Europe/Paris.")
        )
    return VisitorContext(
        page_url=_web_address(raw, "page_url"),
        referrer=_web_address(raw, "referrer"),
        language=language,
        time_zone=time_zone,
    )
