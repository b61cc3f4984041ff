"""Login throttling (django-axes, attempts stored in the database so every process sees them):
after LOGIN_FAILURE_LIMIT wrong passwords for one username from one address, that pair is
refused — even with the right password — on the CRM and the admin login; other addresses and
other users are not. Wrong API tokens are throttled per address too."""

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client

from tests.api.conftest import token_client
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db

LOGINS = {"crm": "/accounts/login/", "admin": "/admin/login/"}


@pytest.fixture
def marina(db):
    user = AgentFactory(username="marina")
    user.set_password("right-password")
    user.save()
    return user


def log_in(path, password, *, address="203.0.113.7", username="marina"):
    client = Client(REMOTE_ADDR=address)
    return client.post(path, {"username": username, "password": password})


@pytest.mark.parametrize("login", LOGINS)
def test_wrong_passwords_lock_the_user_at_that_address(marina, login):
    path = LOGINS[login]
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(path, "wrong").status_code == 200  # the form again, with an error
    locked = log_in(path, "wrong")
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert log_in(path, "right-password").status_code == 429  # the right one no longer helps
    assert AccessAttempt.objects.filter(username="marina", ip_address="203.0.113.7").exists()

    assert log_in(path, "right-password", address="198.51.100.2").status_code == 302


def test_a_lockout_on_the_crm_login_holds_on_the_admin_login(marina):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(LOGINS["crm"], "wrong")
    assert log_in(LOGINS["admin"], "right-password").status_code == 429


def test_a_success_before_the_limit_resets_the_count(marina):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(LOGINS["crm"], "wrong")
    assert log_in(LOGINS["crm"], "right-password").status_code == 302
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(LOGINS["crm"], "wrong").status_code == 200


def test_wrong_api_tokens_are_throttled_per_address(marina):
    good = token_client(marina, "read")
    for _ in range(20):
        response = Client(REMOTE_ADDR="203.0.113.9").get(
            "/api/v1/escalations/", HTTP_AUTHORIZATION="Token not-a-real-token"
        )
        assert response.status_code == 401
    blocked = Client(REMOTE_ADDR="203.0.113.9").get(
        "/api/v1/escalations/", HTTP_AUTHORIZATION=f"Token {good.raw_token}"
    )
    assert blocked.status_code == 429
    assert blocked.json()["error"]["code"] == "throttled"
    elsewhere = Client(REMOTE_ADDR="198.51.100.3").get(
        "/api/v1/escalations/", HTTP_AUTHORIZATION=f"Token {good.raw_token}"
    )
    assert elsewhere.status_code == 200
