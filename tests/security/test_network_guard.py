"""The suite reaches loopback only: a connection to, or even a lookup of, anything else fails."""

import socket

import pytest
from pytest_socket import SocketConnectBlockedError

from tests.conftest import OutsideNameResolved


def test_resolving_an_outside_name_fails():
    with pytest.raises(OutsideNameResolved):
        socket.getaddrinfo("example.com", 443)


def test_connecting_to_an_outside_address_fails():
    # 192.0.2.1 is TEST-NET-1: never routed, and the guard refuses before any packet is sent.
    with pytest.raises(SocketConnectBlockedError), socket.socket() as sock:
        sock.connect(("192.0.2.1", 443))


def test_loopback_still_works():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=2):
            pass
    assert socket.getaddrinfo("localhost", 80)
