"""Every endpoint with an id answers a missing (or malformed) one with the JSON 404."""

import pytest

from tests.api.conftest import error_of

pytestmark = pytest.mark.django_db

MISSING = [
    ("get", "/api/v1/conversations/{id}/"),
    ("get", "/api/v1/conversations/{id}/messages/"),
    ("post", "/api/v1/conversations/{id}/messages/"),
    ("post", "/api/v1/conversations/{id}/agent-messages/"),
    ("post", "/api/v1/conversations/{id}/escalate/"),
    ("get", "/api/v1/escalations/{id}/"),
    ("post", "/api/v1/escalations/{id}/take-over/"),
    ("post", "/api/v1/escalations/{id}/reassign/"),
    ("post", "/api/v1/escalations/{id}/resolve/"),
    ("post", "/api/v1/escalations/{id}/close/"),
    ("get", "/api/v1/tickets/{id}/"),
    ("patch", "/api/v1/tickets/{id}/"),
    ("get", "/api/v1/webhooks/{id}/"),
    ("patch", "/api/v1/webhooks/{id}/"),
    ("delete", "/api/v1/webhooks/{id}/"),
    ("get", "/api/v1/webhooks/{id}/deliveries/"),
    ("post", "/api/v1/webhooks/deliveries/{id}/redeliver/"),
]


@pytest.mark.parametrize(("method", "path"), MISSING)
@pytest.mark.parametrize("bad_id", ["987654", "99999999999999999999999"])
def test_missing_or_malformed_ids_are_json_404(manager, method, path, bad_id):
    response = getattr(manager, method)(path.format(id=bad_id), {"text": "x"}, format="json")
    assert response.status_code == 404, (method, path, response.status_code)
    assert error_of(response)["code"] == "not_found"


@pytest.mark.parametrize(
    "path", ["/api/v1/nothing-here/", "/api/v1/tickets/abc/", "/api/v1/escalations/-1/take-over/"]
)
def test_unknown_api_paths_are_a_json_404(manager, path):
    response = manager.post(path)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_webhook_subscription_changes_are_validated(manager):
    created = manager.post(
        "/api/v1/webhooks/",
        {"url": "https://x.example.com/h", "events": ["ticket.created"]},
        format="json",
    ).json()
    response = manager.patch(
        f"/api/v1/webhooks/{created['id']}/", {"events": ["nope"]}, format="json"
    )
    assert response.status_code == 400
    assert "events.0" in error_of(response)["fields"] or "events" in error_of(response)["fields"]
    rotated = manager.patch(
        f"/api/v1/webhooks/{created['id']}/",
        {"secret": "whsec_rotated_secret_value"},
        format="json",
    )
    assert rotated.status_code == 200 and rotated.json()["secret"] == "whsec_rotated_secret_value"
