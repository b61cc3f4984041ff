"""Fixtures shared with the socket and webhook tests of tests/crm and tests/api."""

from tests.api.test_channel_webhooks import graph_api, whatsapp  # noqa: F401
from tests.crm.test_customer_socket import shop_conversation, slow_store  # noqa: F401
