"""The client's address, which the rate limit per client address counts (and so do the
shares of requests in flight and connections, reservation/server/protocol.py): the socket peer's,
or the one a trusted reverse proxy wrote into RESERVATION_TRUSTED_PROXY_HEADER.

Only the header's right-most entry is read. A proxy appends the address it saw to the
X-Forwarded-For a client sent, so every entry before the last is the client's to invent; a
single-value header such as X-Real-IP is that one entry; RFC 7239's Forwarded gives the `for=`
of its last element. With several lines of the header, the last line's last entry. An entry
that is no IP address (no proxy wrote it, "unknown", an obfuscated name) is not used: the peer's
address counts instead, so garbage cannot make a client new. IPv6 addresses count per /64 (what
one subscriber is given, so rotating within it changes nothing); IPv4-mapped ones as IPv4.
Without the setting, such headers are ignored: anybody can send them.
"""

from __future__ import annotations

import ipaddress
import re

from starlette.requests import Request

UNKNOWN = "unknown"  # no peer address (a Unix socket): every such client shares one limit
IPV6_PREFIX = 64


SCOPE_KEY = "reservation.client_address"  # where a request keeps its address once found
IPV4 = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")


def client_address(request: Request, trusted_header: str | None) -> str:
    """The address the limit per client counts this request under (found once per request:
    the body budget and the rate limits both ask)."""
    scope = request.scope
    known: str | None = scope.get(SCOPE_KEY)
    if known is not None:
        return known
    client = scope.get("client")
    peer: str | None = client[0] if client else None
    address: str
    if not trusted_header and peer and IPV4.fullmatch(peer):
        # A socket's IPv4 peer is written canonically already: no parse needed.
        address = peer
    else:
        forwarded = None
        if trusted_header:
            lines = request.headers.getlist(trusted_header)
            forwarded = lines[-1] if lines else None
        address = address_of(peer, forwarded)
    scope[SCOPE_KEY] = address
    return address


def address_of(peer: str | None, forwarded: str | None) -> str:
    """The client address of a request from the socket peer `peer` whose trusted header's last
    line is `forwarded` (None: no such line, or no header trusted)."""
    if forwarded is not None:
        proxied = canonical(last_entry(forwarded))
        if proxied is not None:
            return proxied
    if not peer:
        return UNKNOWN
    return canonical(peer) or peer


def last_entry(value: str) -> str:
    """The right-most entry of a header value, as an address text: the `for=` parameter of a
    Forwarded element, without quotes, brackets or a port."""
    entry = value.rsplit(",", 1)[-1].strip()
    if "=" in entry:  # Forwarded: for=192.0.2.60;proto=https;by=203.0.113.43
        pairs = (part.partition("=") for part in entry.split(";"))
        entry = next((v for k, _, v in pairs if k.strip().lower() == "for"), "")
    entry = entry.strip().strip('"')
    if entry.startswith("["):  # [2001:db8::1]:4711
        return entry[1:].partition("]")[0]
    if entry.count(":") == 1:  # 192.0.2.60:4711
        return entry.partition(":")[0]
    return entry


def canonical(text: str) -> str | None:
    """One spelling per client: IPv4 as is, IPv6 as its /64; None when it is no address."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(address), IPV6_PREFIX), strict=False))
    return str(address)
