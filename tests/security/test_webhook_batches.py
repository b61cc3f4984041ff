"""A signed webhook batch with one bad item stores the rest and answers 200 (the item is counted
as skipped and logged), instead of a 500 that lost the later messages; a body nested past
MAX_JSON_DEPTH is a 400 without a traceback."""

import json
import logging

import pytest

from crm.models import Message
from tests.api.test_channel_webhooks import WA_URL, signed, wa_payload

pytestmark = pytest.mark.django_db(transaction=True)


def batch(*items):
    """One WhatsApp delivery holding several messages: (sender, message id, text) each."""
    payload = wa_payload()
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"] = [
        {"from": sender, "id": mid, "type": "text", "text": {"body": text}}
        for sender, mid, text in items
    ]
    return payload


def post(client, payload):
    body = json.dumps(payload).encode()
    return client.generic("POST", WA_URL, body, content_type="application/json", **signed(body))


@pytest.mark.parametrize(
    "bad",
    [
        ("4915", "wamid." + "x" * 300, "a 300-character message id"),
        ("4" * 300, "wamid.BAD", "a 300-character sender"),
        ("4915", "wamid.\x00", "a NUL in the id"),
    ],
    ids=["long message id", "long sender", "NUL"],
)
def test_a_bad_item_is_skipped_and_the_rest_of_the_batch_stored(
    client, whatsapp, graph_api, bad, caplog
):
    payload = batch(("4915", "wamid.A", "first"), bad, ("4916", "wamid.C", "after the bad one"))
    with caplog.at_level(logging.WARNING):
        response = post(client, payload)
    assert response.status_code == 200
    assert response.json() == {"received": 3, "stored": 2, "skipped": 1}
    customer_texts = Message.objects.filter(sender="customer").values_list("text", flat=True)
    assert sorted(customer_texts) == [
        "after the bad one",
        "first",
    ]
    assert any("skipped message" in record.getMessage() for record in caplog.records)


def test_a_deeply_nested_body_is_400_without_a_traceback(client, whatsapp, caplog):
    body = ('{"entry": ' + "[" * 1000 + "]" * 1000 + "}").encode()
    with caplog.at_level(logging.WARNING):
        response = client.generic(
            "POST", WA_URL, body, content_type="application/json", **signed(body)
        )
    assert response.status_code == 400
    assert "deeper than" in response.json()["error"]["message"]
    assert not [record for record in caplog.records if record.exc_info]
