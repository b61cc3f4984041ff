"""API tokens (hashed, scoped, revocable, expiring), the management command, the admin, and
the one error shape."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from integrations import services
from integrations.models import ApiToken, hash_token
from tests.api.conftest import error_of
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def client_with(raw):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    return client


def test_only_the_hash_is_stored(agent):
    token, raw = services.create_api_token(owner=agent, name="crm sync", scopes="read")
    stored = ApiToken.objects.get(pk=token.pk)
    assert raw not in {stored.key_hash, stored.key_prefix}
    assert stored.key_hash == hash_token(raw) and raw.startswith(stored.key_prefix)


def test_a_token_works_and_records_its_last_use(agent):
    token, raw = services.create_api_token(owner=agent, name="x", scopes=["read"])
    assert client_with(raw).get("/api/v1/escalations/").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_revoked_expired_and_unknown_tokens_are_401(agent):
    revoked, raw_revoked = services.create_api_token(owner=agent, name="a", scopes="read")
    services.revoke_api_token(token=revoked)
    _expired, raw_expired = services.create_api_token(
        owner=agent, name="b", scopes="read", expires_at=timezone.now() - timedelta(seconds=1)
    )
    for raw in (raw_revoked, raw_expired, "le_not-a-real-token"):
        response = client_with(raw).get("/api/v1/escalations/")
        assert response.status_code == 401
        assert error_of(response)["code"] == "authentication_failed"
        assert response["WWW-Authenticate"] == "Token"


def test_an_inactive_owner_cannot_use_their_token(agent):
    _token, raw = services.create_api_token(owner=agent, name="a", scopes="read")
    agent.is_active = False
    agent.save()
    assert client_with(raw).get("/api/v1/escalations/").status_code == 401


def test_a_token_needs_an_active_staff_owner(agent, client):
    _token, raw = services.create_api_token(owner=agent, name="a", scopes="read")
    agent.is_staff = False
    agent.save()
    assert client_with(raw).get("/api/v1/escalations/").status_code == 401
    customer = UserFactory(username="customer", is_staff=False)
    with pytest.raises(services.InvalidTokenOwner):
        services.create_api_token(owner=customer, name="x", scopes="read")
    with pytest.raises(CommandError, match="active staff user"):
        call_command("api_token", "create", "--user", "customer", stdout=StringIO())
    client.force_login(UserFactory(username="boss", is_superuser=True))
    response = client.post(
        "/admin/integrations/apitoken/add/",
        {"name": "sneaky", "owner": customer.pk, "scopes": ["read"]},
    )
    assert response.status_code == 200 and response.context["adminform"].form.errors["owner"]
    assert not ApiToken.objects.filter(owner=customer).exists()


def test_no_credentials_is_401_with_the_scheme(anonymous):
    response = anonymous.get("/api/v1/escalations/")
    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Token"


def test_a_malformed_authorization_header_is_401(anonymous):
    anonymous.credentials(HTTP_AUTHORIZATION="Token two parts")
    assert anonymous.get("/api/v1/escalations/").status_code == 401


@pytest.mark.parametrize("scopes", ["", "read,admin", "everything"])
def test_unknown_or_missing_scopes_are_refused(agent, scopes):
    with pytest.raises(services.InvalidScopes):
        services.create_api_token(owner=agent, name="x", scopes=scopes)


def test_manage_scope_is_needed_for_webhooks(api, manager):
    assert api.get("/api/v1/webhooks/").status_code == 403
    assert manager.get("/api/v1/webhooks/").status_code == 200


def test_command_prints_a_working_token_last(agent):
    out = StringIO()
    call_command("api_token", "create", "--user", "marina", "--scopes", "read,write", stdout=out)
    raw = out.getvalue().strip().splitlines()[-1]
    token = ApiToken.objects.get(key_hash=hash_token(raw))
    assert token.owner == agent and token.scopes == ["read", "write"]
    assert client_with(raw).post("/api/v1/escalations/1/take-over/").status_code == 404


def test_command_refuses_unknown_users_and_scopes(agent):
    with pytest.raises(CommandError, match="No user"):
        call_command("api_token", "create", "--user", "nobody", stdout=StringIO())
    with pytest.raises(CommandError, match="Unknown scopes"):
        call_command(
            "api_token", "create", "--user", "marina", "--scopes", "root", stdout=StringIO()
        )


def test_command_lists_and_revokes(agent):
    token, _raw = services.create_api_token(owner=agent, name="old", scopes="read")
    out = StringIO()
    call_command("api_token", "list", stdout=out)
    assert token.key_prefix in out.getvalue()
    call_command("api_token", "revoke", token.key_prefix, stdout=StringIO())
    token.refresh_from_db()
    assert token.is_revoked


def test_admin_creates_a_token_and_shows_it_once(client):
    admin_user = UserFactory(username="boss", is_superuser=True)
    owner = UserFactory(username="sync-bot")
    client.force_login(admin_user)
    response = client.post(
        "/admin/integrations/apitoken/add/",
        {"name": "ERP sync", "owner": owner.pk, "scopes": ["read", "write"]},
        follow=True,
    )
    assert response.status_code == 200
    token = ApiToken.objects.get(name="ERP sync")
    shown = [str(m) for m in response.context["messages"]]
    raw = next(m.rsplit(" ", 1)[-1] for m in shown if "Copy the token" in m)
    assert hash_token(raw) == token.key_hash and token.scopes == ["read", "write"]
    change = client.get(f"/admin/integrations/apitoken/{token.pk}/change/")
    assert change.status_code == 200 and raw.encode() not in change.content


# --- The error shape ------------------------------------------------------------------------


def test_malformed_json_is_a_400_in_the_error_shape(api):
    response = api.generic(
        "POST", "/api/v1/conversations/", "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "parse_error"


def test_a_json_list_instead_of_an_object_is_a_400(api):
    response = api.post("/api/v1/conversations/", [1, 2], format="json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid"


def test_wrong_method_is_405_in_the_error_shape(api):
    response = api.delete("/api/v1/escalations/")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


def test_unsupported_media_type_is_415(api):
    response = api.generic("POST", "/api/v1/conversations/", "a=b", content_type="text/csv")
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


def test_unexpected_errors_are_500_in_the_same_shape(api, monkeypatch):
    from escalation import selectors

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(selectors, "queued_escalations", explode)
    response = api.get("/api/v1/escalations/")
    assert response.status_code == 500
    assert error_of(response)["code"] == "server_error"
    assert "boom" not in response.content.decode()


def test_a_stray_does_not_exist_is_a_logged_500_not_a_404(api, monkeypatch, caplog):
    """A missing row deep inside a service is a bug, not "no such object at this address"."""
    from crm.models import Contact
    from escalation import selectors

    def explode(*args, **kwargs):
        raise Contact.DoesNotExist("Contact matching query does not exist.")

    monkeypatch.setattr(selectors, "queued_escalations", explode)
    response = api.get("/api/v1/escalations/")
    assert response.status_code == 500
    assert error_of(response)["code"] == "server_error"
    assert "unhandled API error" in caplog.text
