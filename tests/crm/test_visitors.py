"""Who an anonymous customer is: a friendly visitor name, the pre-chat form and the visit's
context, from the widget's start request to the agent's contact panel and the API."""

import json

import pytest

from crm.models import Channel, Contact, Conversation
from crm.visitors import InvalidVisitorContext, clean_visitor_context, visitor_name

from ..factories import AgentFactory, ChannelFactory, ContactFactory, ConversationFactory

START = "/widget/conversations/"
SITE = "http://testserver"
CONTEXT = {
    "page_url": "https://shop.example/checkout?step=2",
    "referrer": "https://www.google.com/",
    "language": "pt-BR",
    "time_zone": "America/Sao_Paulo",
}


def start(client, body, *, origin=SITE, ip="127.0.0.1"):
    extra = {"HTTP_ORIGIN": origin, "REMOTE_ADDR": ip} if origin else {"REMOTE_ADDR": ip}
    return client.post(START, data=json.dumps(body), content_type="application/json", **extra)


# --- the visitor name ---------------------------------------------------------------------------
def test_visitor_names_are_stable_friendly_and_never_shared():
    assert visitor_name(8) == visitor_name(8)
    adjective, animal, number = visitor_name(8).split()
    assert adjective.isalpha() and animal.isalpha() and 1 <= int(number) <= 100
    names = [visitor_name(i) for i in range(1, 120_000)]  # past one full cycle of 102,400
    assert len(set(names)) == len(names)
    assert visitor_name(7).split()[:2] != visitor_name(8).split()[:2]  # neighbours look unlike


def test_an_anonymous_contact_is_shown_as_a_marked_visitor_everywhere(db):
    anonymous = Contact.objects.create()
    assert anonymous.is_visitor
    assert str(anonymous) == anonymous.display_name == f"{visitor_name(anonymous.pk)} (visitor)"
    assert "Contact #" not in str(anonymous)
    named = ContactFactory(name="Jamie Patel")
    assert not named.is_visitor and str(named) == "Jamie Patel"
    by_email = Contact.objects.create(email="sam@example.com")
    assert str(by_email) == "sam@example.com" and not by_email.is_visitor


# --- the context's checks -----------------------------------------------------------------------
def test_the_visit_context_is_kept_when_well_formed():
    context = clean_visitor_context(CONTEXT)
    assert context.as_dict() == CONTEXT
    assert clean_visitor_context({}).as_dict() == dict.fromkeys(CONTEXT, "")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("page_url", "javascript:alert(1)"),
        ("page_url", "file:///etc/passwd"),
        ("page_url", "https://shop.example/" + "a" * 2000),
        ("page_url", "https://shop.example/a b"),
        ("referrer", 42),
        ("referrer", "not a url"),
        ("language", "english please"),
        ("language", "x" * 36),
        ("time_zone", "Mars/Olympus_Mons"),
        ("time_zone", ["Europe/Paris"]),
    ],
)
def test_a_malformed_context_value_is_refused_naming_its_field(field, value):
    with pytest.raises(InvalidVisitorContext) as refused:
        clean_visitor_context({**CONTEXT, field: value})
    assert refused.value.field == field and refused.value.status == 400


# --- the widget: pre-chat form and context -------------------------------------------------------
@pytest.fixture
def required_channel(db):
    return ChannelFactory(key="required", prechat_form=Channel.PrechatForm.REQUIRED)


def test_the_widget_config_says_which_pre_chat_form_the_channel_wants(client, db):
    ChannelFactory(key="plain")
    ChannelFactory(key="maybe", prechat_form=Channel.PrechatForm.OPTIONAL)
    plain = client.get("/widget/config/?channel=plain", HTTP_ORIGIN=SITE)
    assert plain.status_code == 200 and plain.json() == {"prechat": {"mode": "off", "fields": []}}
    assert plain["Access-Control-Allow-Origin"] == SITE
    maybe = client.get("/widget/config/?channel=maybe").json()
    assert maybe == {"prechat": {"mode": "optional", "fields": ["name", "email"]}}


def test_the_widget_config_refuses_unknown_channels_and_foreign_sites(client, db):
    ChannelFactory(key="shop", allowed_origins=["https://shop.example"])
    assert client.get("/widget/config/?channel=nope").status_code == 404
    assert client.get("/widget/config/").status_code == 400
    assert client.get("/widget/config/?channel=" + "k" * 41).status_code == 400
    foreign = client.get("/widget/config/?channel=shop", HTTP_ORIGIN="https://evil.example")
    assert foreign.status_code == 403 and "Access-Control-Allow-Origin" not in foreign
    allowed = client.get("/widget/config/?channel=shop", HTTP_ORIGIN="https://shop.example")
    assert allowed.status_code == 200
    assert client.post("/widget/config/?channel=shop").status_code == 405


@pytest.mark.parametrize(
    ("body", "field"),
    [({"email": "jamie@example.com"}, "name"), ({"name": "Jamie"}, "email"), ({}, "name")],
)
def test_a_required_pre_chat_form_refuses_a_start_without_its_fields(
    client, required_channel, body, field
):
    response = start(client, {"channel": "required", "text": "Hello", **body})
    assert response.status_code == 400
    assert response.json()["code"] == "prechat_required" and response.json()["field"] == field
    assert not Contact.objects.exists() and not Conversation.objects.exists()


def test_a_bad_email_is_a_clear_400_on_the_email_field(client, required_channel):
    response = start(client, {"channel": "required", "name": "Jamie", "email": "jamie@nowhere"})
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "email" and "email address" in body["message"]
    assert not Contact.objects.exists()


def test_the_form_starts_the_chat_with_who_and_where_before_any_message(client, required_channel):
    response = start(
        client,
        {"channel": "required", "name": "Jamie Patel", "email": "jamie@example.com", **CONTEXT},
    )
    assert response.status_code == 201, response.content
    conversation = Conversation.objects.select_related("contact").get(pk=response.json()["id"])
    assert conversation.contact.name == "Jamie Patel" and not conversation.contact.is_visitor
    assert conversation.messages.count() == 0
    assert (conversation.page_url, conversation.referrer) == (
        CONTEXT["page_url"],
        CONTEXT["referrer"],
    )
    assert (conversation.browser_language, conversation.time_zone) == ("pt-BR", "America/Sao_Paulo")


def check(client, body, *, origin=SITE, ip="127.0.0.1"):
    extra = {"HTTP_ORIGIN": origin, "REMOTE_ADDR": ip} if origin else {"REMOTE_ADDR": ip}
    return client.post(
        "/widget/prechat/", data=json.dumps(body), content_type="application/json", **extra
    )


def test_the_widget_checks_the_form_without_storing_anything(client, required_channel):
    """The widget asks the server about the form, then starts the conversation with the first
    message: a form filled in and left behind leaves no empty conversation (and no contact)."""
    ChannelFactory(key="shop", allowed_origins=["https://shop.example"])
    fine = {"channel": "required", "name": "Jamie Patel", "email": "jamie@example.com"}
    response = check(client, fine)
    assert response.status_code == 204 and response["Access-Control-Allow-Origin"] == SITE
    refused = [
        ({**fine, "email": "jamie@nowhere"}, "invalid_field", "email"),
        ({**fine, "email": ""}, "prechat_required", "email"),
        ({**fine, "name": " "}, "prechat_required", "name"),
        ({**fine, "name": "x" * 201}, "invalid_field", "name"),
        ({**fine, "channel": "nope"}, "channel_not_found", "channel"),
    ]
    for body, code, field in refused:
        response = check(client, body)
        assert response.status_code == 400, body
        assert (response.json()["code"], response.json()["field"]) == (code, field)
    assert check(client, {"channel": "shop"}).status_code == 204  # no form: nothing required
    foreign = check(client, {"channel": "shop"}, origin="https://evil.example")
    assert foreign.status_code == 403 and "Access-Control-Allow-Origin" not in foreign
    assert client.get("/widget/prechat/").status_code == 405
    bad_json = client.post("/widget/prechat/", data="[", content_type="application/json")
    assert bad_json.status_code == 400 and bad_json.json()["code"] == "bad_json"
    deep = client.post("/widget/prechat/", data="[" * 99 + "]" * 99, content_type="text/plain")
    assert deep.status_code == 400 and deep.json()["code"] == "too_deep"
    assert not Contact.objects.exists() and not Conversation.objects.exists()


def test_the_form_check_is_limited_per_address_apart_from_the_starts(
    client, required_channel, settings
):
    """An anonymous endpoint that reads the database: a script hammering it gets a 429 (the
    allowed origin may read it), other addresses and the starts keep their own counts."""
    settings.LIVE_ESCALATION = {**settings.LIVE_ESCALATION, "WIDGET_PRECHAT_RATE_LIMIT": 3}
    fine = {"channel": "required", "name": "Jamie Patel", "email": "jamie@example.com"}
    for _ in range(3):
        assert check(client, fine, ip="10.0.0.7").status_code == 204
    over = check(client, fine, ip="10.0.0.7")
    assert over.status_code == 429 and over["Retry-After"] == "60"
    assert over["Access-Control-Allow-Origin"] == SITE
    assert over.json()["code"] == "rate_limited"
    assert over.json()["message"] == "Too many pre-chat form checks; try again soon."
    assert check(client, fine, ip="10.0.0.8").status_code == 204
    started = start(client, {**fine, "text": "Hello"}, ip="10.0.0.7")
    assert started.status_code == 201
    assert Conversation.objects.count() == 1


def test_a_malformed_context_is_refused_and_nothing_is_stored(client, db):
    ChannelFactory(key="shop")
    response = start(client, {"channel": "shop", "text": "Hi", "page_url": "javascript:alert(1)"})
    assert response.status_code == 400 and response.json()["field"] == "page_url"
    assert not Conversation.objects.exists()


def test_an_anonymous_start_gets_a_visitor(client, db):
    ChannelFactory(key="shop")
    response = start(client, {"channel": "shop", "text": "Hi", **CONTEXT})
    assert response.status_code == 201
    contact = Conversation.objects.get().contact
    assert contact.is_visitor and str(contact).endswith("(visitor)")


# --- where the agent sees it --------------------------------------------------------------------
@pytest.fixture
def visiting(db):
    return ConversationFactory(
        contact=Contact.objects.create(),
        page_url=CONTEXT["page_url"],
        referrer=CONTEXT["referrer"],
        browser_language="pt-BR",
        time_zone="America/Sao_Paulo",
    )


def test_the_contact_panel_shows_the_visitor_name_and_the_visit(client, visiting):
    client.force_login(AgentFactory())
    html = client.get(f"/crm/conversations/{visiting.pk}/").content.decode()
    name = visitor_name(visiting.contact_id)
    assert f">{name}</a>" in html and 'id="visitor-pill"' in html
    assert 'id="visit-info"' in html
    for value in ("https://shop.example/checkout?step=2", "pt-BR", "America/Sao_Paulo"):
        assert value in html
    assert 'rel="noopener noreferrer nofollow"' in html


def test_the_api_adds_the_display_name_and_the_visit_without_renaming(client, visiting):
    from integrations import services as integration_services

    _token, raw = integration_services.create_api_token(
        owner=AgentFactory(), name="test", scopes="read"
    )
    response = client.get(
        f"/api/v1/conversations/{visiting.pk}/", HTTP_AUTHORIZATION=f"Token {raw}"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    contact = body["contact"]
    assert {"id", "name", "email", "phone"} <= set(contact)
    assert contact["is_visitor"] is True and contact["display_name"].endswith("(visitor)")
    assert body["visitor"] == CONTEXT
