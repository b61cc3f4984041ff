"""Fixtures shared with the socket tests of tests/crm."""

from tests.crm.test_customer_socket import shop_conversation, slow_store  # noqa: F401
