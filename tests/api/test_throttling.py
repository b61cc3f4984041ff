"""What customers can reach is rate limited; a limit answers 429 with Retry-After."""

import pytest

from tests.api.conftest import error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def tight_limits(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            "api": "1000/min",
            "conversation_start": "2/min",
            "customer_message": "2/min",
            "webhook": "2/min",
        },
    }


def test_customer_messages_are_limited_per_conversation(anonymous, conversation, tight_limits):
    anonymous.credentials(HTTP_X_CUSTOMER_TOKEN=conversation.customer_token)
    url = f"/api/v1/conversations/{conversation.pk}/messages/"
    codes = [anonymous.post(url, {"text": f"m{i}"}, format="json").status_code for i in range(3)]
    assert codes == [201, 201, 429]
    limited = anonymous.post(url, {"text": "again"}, format="json")
    assert error_of(limited)["code"] == "throttled"
    assert int(limited["Retry-After"]) > 0
    assert anonymous.get(url).status_code == 200  # reading is not what the limit is for


def test_conversation_starts_are_limited_per_caller(api, api_channel, tight_limits):
    body = {"channel": "api", "contact": {"name": "A"}, "text": "hi"}
    codes = [api.post("/api/v1/conversations/", body, format="json").status_code for _ in range(3)]
    assert codes == [201, 201, 429]


def test_webhooks_are_limited(anonymous, tight_limits):
    from tests.factories import ChannelFactory

    ChannelFactory(kind="whatsapp", key="wa", webhook_secret="s")
    codes = [
        anonymous.post(
            "/api/webhooks/whatsapp/wa/", b"{}", content_type="application/json"
        ).status_code
        for _ in range(3)
    ]
    assert codes == [401, 401, 429]
