"""The website widget over HTTP: its script, a demo page, starting a conversation, and reading
messages when the socket is degraded.

The widget runs on other sites, so these endpoints are CSRF-exempt (no cookies are used: the
customer token is the credential) and answer CORS only for origins the channel allows — the
site's own hosts (ALLOWED_HOSTS) plus ``Channel.allowed_origins``.
"""

import time
from urllib.parse import urlparse

from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from . import realtime, selectors
from . import services as crm_services
from .consumers import parse_after
from .errors import DomainError, PrechatRequired
from .limits import JsonTooDeep, load_client_json
from .models import Channel, ChannelKind, Conversation, agent_name
from .visitors import InvalidVisitorContext, clean_visitor_context

START_RATE_WINDOW_SECONDS = 60
MESSAGES_PAGE = 200
PREFLIGHT_MAX_AGE = 600


def site_origin_patterns() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]  # Django's own DEBUG default
    return hosts


def origin_allowed(origin: str | None, channel: Channel) -> bool:
    """True for the site's own hosts and the channel's ``allowed_origins``; False if absent."""
    if not origin:
        return False
    try:
        parsed = urlparse(origin)
    except ValueError:
        return False
    extra = [o for o in (channel.allowed_origins or []) if isinstance(o, str) and o]
    return OriginValidator(None, site_origin_patterns() + extra).validate_origin(parsed)


def origin_known(origin: str | None) -> bool:
    """True when some active website channel (or the site itself) allows ``origin``: an error
    answered before the channel is known is readable there, never by any other origin."""
    if not origin:
        return False
    try:
        parsed = urlparse(origin)
    except ValueError:
        return False
    patterns = site_origin_patterns() + selectors.website_channel_origins()
    return OriginValidator(None, patterns).validate_origin(parsed)


def refusal(origin: str | None, status: int, code: str, message: str, **extra) -> HttpResponse:
    """An error of the start endpoint before the channel is known: CORS for known origins."""
    response = error(status, code, message, **extra)
    return with_cors(response, origin if origin_known(origin) else None)


def error(status: int, code: str, message: str, **extra) -> JsonResponse:
    return JsonResponse({"code": code, "message": message, **extra}, status=status)


def with_cors(response: HttpResponse, origin: str | None) -> HttpResponse:
    if origin:
        response["Access-Control-Allow-Origin"] = origin
    response["Vary"] = "Origin"
    return response


def preflight(request) -> HttpResponse:
    """Answer the browser's preflight; the real request is checked against the channel."""
    response = HttpResponse(status=204)
    response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = "Content-Type, X-Customer-Token"
    response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
    return with_cors(response, request.headers.get("Origin"))


def customer_conversation(request, conversation_id: int, method: str):
    """What a customer's request to their conversation may use: ``(conversation, origin,
    None)``, or ``(None, None, the answer)`` for a preflight, another method, a wrong token or
    a website the channel does not allow."""
    if request.method == "OPTIONS":
        return None, None, preflight(request)
    if request.method != method:
        return (
            None,
            None,
            error(405, "method_not_allowed", _("Use %(method)s.") % {"method": method}),
        )
    origin = request.headers.get("Origin")
    conversation = selectors.conversation_for_customer_token(
        conversation_id, request.headers.get("X-Customer-Token", "")
    )
    if conversation is None:
        return None, None, error(403, "forbidden", _("Unknown conversation or wrong token."))
    if origin is not None and not origin_allowed(origin, conversation.channel):
        return (
            None,
            None,
            error(403, "origin_not_allowed", _("This website may not open chats on this channel.")),
        )
    return conversation, origin, None


def client_ip(request) -> str:
    # REMOTE_ADDR only: a forwarded header is the client's to forge unless a proxy we trust
    # rewrites it (set that up in the proxy, which then owns the limit).
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def start_rate_limited(request) -> bool:
    """Fixed window per IP in the default cache; True when this request is over the limit."""
    return _over_limit(request, "widget-start", settings.LIVE_ESCALATION["WIDGET_START_RATE_LIMIT"])


def prechat_rate_limited(request) -> bool:
    """``start_rate_limited`` for the pre-chat check, with its own count: a visitor correcting
    the form does not spend the starts."""
    return _over_limit(
        request, "widget-prechat", settings.LIVE_ESCALATION["WIDGET_PRECHAT_RATE_LIMIT"]
    )


def _over_limit(request, name: str, limit: int) -> bool:
    window = int(time.time() // START_RATE_WINDOW_SECONDS)
    key = f"{name}:{client_ip(request)}:{window}"
    cache.add(key, 0, START_RATE_WINDOW_SECONDS + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, START_RATE_WINDOW_SECONDS + 5)
        count = 1
    return count > limit


def socket_url(request, conversation: Conversation) -> str:
    scheme = "wss" if request.is_secure() else "ws"
    path = f"/ws/conversations/{conversation.pk}/"
    return f"{scheme}://{request.get_host()}{path}?token={conversation.customer_token}"


@require_GET
def widget_script(request):
    path = finders.find("widget.js")
    if not path:
        raise Http404("widget.js")
    with open(path, "rb") as script:
        response = HttpResponse(script.read(), content_type="application/javascript")
    response["Cache-Control"] = "public, max-age=300"
    response["Access-Control-Allow-Origin"] = "*"
    return response


@require_GET
def widget_demo(request):
    key = request.GET.get("channel", "")
    channels = Channel.objects.filter(kind=ChannelKind.WEBSITE, is_active=True)
    channel = channels.filter(key=key).first() if key else channels.order_by("pk").first()
    return render(
        request,
        "widget/demo.html",
        {"channel": channel, "script_url": reverse("widget-script")},
    )


def _website_channel(
    key: str, origin: str | None, *, missing_status: int = 400
) -> tuple[Channel | None, HttpResponse | None]:
    """The active website channel of ``key`` that ``origin`` may use, or the refusal (a
    missing channel is ``missing_status``: a 400 in a body, a 404 in a query)."""
    try:
        channel = crm_services.find_channel(key)
    except DomainError as exc:
        return None, refusal(origin, missing_status, exc.code, exc.message, field="channel")
    if channel.kind != ChannelKind.WEBSITE:
        return None, refusal(
            origin,
            missing_status,
            "channel_not_found",
            _("Channel %(key)r is not a website channel.") % {"key": key},
            field="channel",
        )
    if origin is not None and not origin_allowed(origin, channel):
        return None, error(
            403, "origin_not_allowed", _("This website may not open chats on this channel.")
        )
    return channel, None


@csrf_exempt
def widget_config(request):
    """``GET /widget/config/?channel=<key>`` → {"prechat": {"mode", "fields"}}: what the widget
    asks before the first message (the channel's pre-chat form: off, optional or required)."""
    if request.method == "OPTIONS":
        return preflight(request)
    if request.method != "GET":
        return error(405, "method_not_allowed", _("Use GET."))
    origin = request.headers.get("Origin")
    key = request.GET.get("channel", "")
    if not key or len(key) > 40:
        return refusal(
            origin,
            400,
            "invalid_field",
            _("channel must be a channel key of at most 40 characters."),
            field="channel",
        )
    channel, refused = _website_channel(key, origin, missing_status=404)
    if refused is not None:
        return refused
    mode = channel.prechat_form
    fields = [] if mode == Channel.PrechatForm.OFF else ["name", "email"]
    return with_cors(JsonResponse({"prechat": {"mode": mode, "fields": fields}}), origin)


class Refused(Exception):
    """A refusal found while reading a request: the view answers ``response``."""

    def __init__(self, response: HttpResponse):
        super().__init__(response.status_code)
        self.response = response


def _visitor_body(request, origin: str | None) -> tuple[dict, dict]:
    """The JSON body of a start or a pre-chat check, and its ``channel``, ``name`` and
    ``email`` bounded and stripped, the email's shape checked; else ``Refused``."""

    def refuse(code: str, message: str, **extra):
        raise Refused(refusal(origin, 400, code, message, **extra))

    try:
        body = load_client_json(request.body or b"")
    except JsonTooDeep as too_deep:
        refuse(
            "too_deep",
            _("The body nests deeper than %(limit)d levels.") % {"limit": too_deep.limit},
        )
    except ValueError:
        refuse("bad_json", _("The body must be a JSON object."))
    if not isinstance(body, dict):
        refuse("bad_json", _("The body must be a JSON object."))
    fields = {}
    for name, limit in (("channel", 40), ("name", 200), ("email", 254)):
        value = body.get(name, "")
        if value is None:
            value = ""
        if not isinstance(value, str) or len(value) > limit:
            refuse(
                "invalid_field",
                _("%(field)s must be text of at most %(limit)d characters.")
                % {"field": name, "limit": limit},
                field=name,
            )
        fields[name] = value.strip()
    if not fields["channel"]:
        refuse("invalid_field", _("channel is required."), field="channel")
    if fields["email"]:
        try:
            validate_email(fields["email"])
        except ValidationError:
            refuse(
                "invalid_field",
                _("Please check your email address: it does not look valid."),
                field="email",
            )
    return body, fields


def _rate_limited(origin: str | None, message: str) -> HttpResponse:
    response = refusal(origin, 429, "rate_limited", message)
    response["Retry-After"] = str(START_RATE_WINDOW_SECONDS)
    return response


@csrf_exempt
def check_prechat(request):
    """``POST /widget/prechat/`` {"channel", "name"?, "email"?} → 204 when a start would take
    them; else the start's 400s (``invalid_field``, ``prechat_required``, naming the field).
    Stores nothing: the widget sends the fields with the first message, so a form filled in
    and left without writing leaves no empty conversation behind."""
    if request.method == "OPTIONS":
        return preflight(request)
    if request.method != "POST":
        return error(405, "method_not_allowed", _("Use POST."))
    origin = request.headers.get("Origin")
    if prechat_rate_limited(request):
        return _rate_limited(origin, _("Too many pre-chat form checks; try again soon."))
    try:
        _body, fields = _visitor_body(request, origin)
    except Refused as refused:
        return refused.response
    channel, refused = _website_channel(fields["channel"], origin)
    if refused is not None:
        return refused
    try:
        crm_services.check_prechat(channel=channel, name=fields["name"], email=fields["email"])
    except PrechatRequired as exc:
        return with_cors(error(400, exc.code, exc.message, field=exc.field), origin)
    return with_cors(HttpResponse(status=204), origin)


@csrf_exempt
def start_widget_conversation(request):
    """``POST /widget/conversations/`` {"channel", "name"?, "email"?, "text"?, "page_url"?,
    "referrer"?, "language"?, "time_zone"?} → 201 {"id", "customer_token", "mode",
    "socket_url"}. A refused field is a 400 naming it (``field``)."""
    if request.method == "OPTIONS":
        return preflight(request)
    if request.method != "POST":
        return error(405, "method_not_allowed", _("Use POST."))
    origin = request.headers.get("Origin")
    if start_rate_limited(request):
        return _rate_limited(origin, _("Too many new conversations; try again soon."))
    try:
        body, fields = _visitor_body(request, origin)
    except Refused as refused:
        return refused.response
    try:
        context = clean_visitor_context(body)
    except InvalidVisitorContext as exc:
        return refusal(origin, 400, exc.code, exc.message, field=exc.field)
    text = body.get("text")
    channel, refused = _website_channel(fields["channel"], origin)
    if refused is not None:
        return refused
    try:
        conversation = crm_services.start_widget_conversation(
            channel=channel,
            name=fields["name"],
            email=fields["email"],
            text=text,
            context=context,
        )
    except PrechatRequired as exc:
        return with_cors(error(400, exc.code, exc.message, field=exc.field), origin)
    except DomainError as exc:
        return with_cors(error(400, exc.code, exc.message, field="text"), origin)
    conversation.refresh_from_db(fields=["mode"])
    response = JsonResponse(
        {
            "id": conversation.pk,
            "customer_token": conversation.customer_token,
            "mode": conversation.mode,
            "socket_url": socket_url(request, conversation),
        },
        status=201,
    )
    return with_cors(response, origin)


@csrf_exempt
def widget_messages(request, conversation_id: int):
    """``GET /widget/conversations/<id>/messages/?after=<id>`` with ``X-Customer-Token``: the
    polling fallback. Oldest first, at most 200 per page (``has_more`` says to ask again)."""
    conversation, origin, refused = customer_conversation(request, conversation_id, "GET")
    if refused is not None:
        return refused
    try:
        after = parse_after(request.GET.get("after")) or 0
    except ValueError:
        return with_cors(
            error(
                400,
                "invalid_after",
                _("after must be a message id: at most 18 digits 0-9."),
                field="after",
            ),
            origin,
        )
    rows = selectors.customer_messages_after(conversation.pk, after, MESSAGES_PAGE + 1)
    from escalation.satisfaction import pending_rating_request
    from escalation.selectors import customer_view

    name = ""
    if conversation.mode == Conversation.Mode.AGENT and conversation.assigned_agent_id:
        name = agent_name(conversation.assigned_agent)
    place = None
    if conversation.mode == Conversation.Mode.AWAITING_AGENT:
        from escalation.selectors import queue_place

        place = queue_place(conversation.pk)
    resolved, language = customer_view(conversation)
    mode = realtime.mode_event(
        conversation, agent_display_name=name, resolved=resolved, language=language
    )
    response = JsonResponse(
        {
            "messages": [realtime.customer_message_payload(m) for m in rows[:MESSAGES_PAGE]],
            "has_more": len(rows) > MESSAGES_PAGE,
            "mode": conversation.mode,
            "agent_name": name,
            "resolved": mode["resolved"],
            "status": mode["status"],
            "rating": pending_rating_request(conversation.pk),
            "queue": place.shown() if place else None,
        }
    )
    return with_cors(response, origin)


@csrf_exempt
def rate_conversation(request, conversation_id: int):
    """``POST /widget/conversations/<id>/rating/`` with ``X-Customer-Token`` and
    ``{"escalation": <id>, "score": 1..5, "comment"?: text}`` → 201 ``{"escalation", "score"}``;
    400 invalid_rating / bad_json, 403 for a wrong token, 404 for an escalation of another
    conversation, 409 before the end or for a second rating."""
    from escalation.satisfaction import rate_escalation

    conversation, origin, refused = customer_conversation(request, conversation_id, "POST")
    if refused is not None:
        return refused
    try:
        body = load_client_json(request.body or b"")
    except (JsonTooDeep, ValueError):
        body = None
    if not isinstance(body, dict):
        return with_cors(error(400, "bad_json", _("The body must be a JSON object.")), origin)
    try:
        rating = rate_escalation(
            conversation_id=conversation.pk,
            escalation_id=body.get("escalation"),
            score=body.get("score"),
            comment=body.get("comment"),
        )
    except DomainError as exc:
        return with_cors(error(exc.status, exc.code, exc.message), origin)
    return with_cors(
        JsonResponse({"escalation": rating.escalation_id, "score": rating.score}, status=201),
        origin,
    )
