"""Which address a connection comes from, behind trusted reverse proxies.

Pure: the caller passes the TCP peer's address and the request's
``X-Forwarded-For`` header values. The header is read only when the TCP
peer is one of ``trusted_proxies``; then the hops are walked from the right
(the one the nearest proxy appended) and the first address that is not a
trusted proxy is the client. Everything left of it was written by that
client and may be forged, so it is never used.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


__all__ = ["Networks", "client_address", "is_trusted", "parse_networks"]

Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def parse_networks(text: str) -> Networks:
    """Parse ``"10.0.0.1, 192.168.0.0/16, ::1"`` into networks.

    Raises:
        ValueError: an entry is neither an address nor a network.
    """
    networks = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(
                f"trusted_proxies must be addresses or networks, not {item!r}"
            ) from None
    return tuple(networks)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    # "[2001:db8::1]:443" and "192.0.2.1:443" are seen in the wild.
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_trusted(address: str, trusted: Networks) -> bool:
    """True when ``address`` is one of the trusted proxies."""
    ip = _ip(address)
    return ip is not None and any(ip in net for net in trusted)


def client_address(peer: str, forwarded_for: Iterable[str], trusted: Networks) -> str:
    """The client's address: ``peer``, or the right-most untrusted X-Forwarded-For hop.

    Args:
        peer: the TCP peer's address.
        forwarded_for: every ``X-Forwarded-For`` header value, in order.
        trusted: the proxies whose header is believed.

    A hop that does not parse ends the walk at the proxy that passed it on,
    so garbage never becomes an address and never hides the proxy.
    """
    if not trusted or not is_trusted(peer, trusted):
        return peer
    hops = [h for value in forwarded_for for h in value.split(",") if h.strip()]
    current = peer
    for hop in reversed(hops):
        ip = _ip(hop)
        if ip is None:
            return current
        current = str(ip)
        if not any(ip in net for net in trusted):
            return current
    # Every hop is a proxy of ours: the left-most is as close to the client as we know.
    return current
