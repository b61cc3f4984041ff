"""The one place outbound HTTP clients are made (provider sends, webhook deliveries).

Tests swap the transport for an ``httpx.MockTransport`` with :func:`use_transport`, so nothing
reaches the network and the real client code (headers, JSON, status handling) still runs, and
swap the resolver with :func:`use_resolver`, so no name is looked up outside the machine.

Webhook receivers are URLs our customers choose, so :func:`post_to_public_host` resolves the
host at delivery time, refuses it if any address it resolves to is loopback, private,
link-local, reserved or multicast, and connects to the address it checked (the host name stays
in the ``Host`` header and the TLS server name, so certificates are verified as usual): a name
that answers a public address to the check and a private one to the connection gets nowhere.
"""

import ipaddress
import socket
from contextlib import contextmanager

import httpx
from django.conf import settings

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
_transport: httpx.BaseTransport | None = None
_resolver = socket.getaddrinfo


def client() -> httpx.Client:
    return httpx.Client(
        timeout=TIMEOUT,
        transport=_transport,
        follow_redirects=False,
        headers={"User-Agent": "LiveEscalation/1.0"},
    )


class UnsafeDestination(httpx.ConnectError):
    """The receiver's host cannot be resolved, or resolves to an address we never call."""


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to now (an IP literal resolves to itself)."""
    try:
        infos = _resolver(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise UnsafeDestination(f"Cannot resolve {host}: {error}") from None
    return list(dict.fromkeys(info[4][0] for info in infos))


def post_to_public_host(url: str, *, content: bytes, headers: dict) -> httpx.Response:
    """POST to ``url`` on the address its host resolves to now, if every address it resolves
    to is public (any address when DEBUG is on, for a receiver on a developer's machine)."""
    target = httpx.URL(url)
    host = target.host
    port = target.port or (443 if target.scheme == "https" else 80)
    addresses = resolve(host, port)
    if not addresses:
        raise UnsafeDestination(f"{host} resolves to no address.")
    refused = [address for address in addresses if not is_public_address(address)]
    if refused and not settings.DEBUG:
        raise UnsafeDestination(f"{host} resolves to a non-public address ({refused[0]}).")
    pinned = target.copy_with(host=addresses[0].split("%")[0])
    with client() as http:
        return http.post(
            pinned,
            content=content,
            headers={**headers, "Host": target.netloc.decode("ascii")},
            extensions={"sni_hostname": host},
        )


@contextmanager
def use_transport(transport: httpx.BaseTransport):
    global _transport
    previous, _transport = _transport, transport
    try:
        yield transport
    finally:
        _transport = previous


@contextmanager
def use_resolver(resolver):
    """Swap ``socket.getaddrinfo`` for the deliveries (tests: no lookup leaves the machine)."""
    global _resolver
    previous, _resolver = _resolver, resolver
    try:
        yield resolver
    finally:
        _resolver = previous


def static_resolver(names: dict[str, str]):
    """A resolver answering ``names`` (host → address) and failing for any other name."""

    def resolve_name(host, port, *args, **kwargs):
        try:
            address = names.get(host) or str(ipaddress.ip_address(host))
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} is not known here") from None
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    return resolve_name
