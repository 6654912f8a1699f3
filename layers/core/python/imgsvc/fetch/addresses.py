"""Which addresses a fetch may reach: public ones only (``ALLOW_PRIVATE_URLS`` for local work)."""

from __future__ import annotations

import ipaddress

_SHARED_V4 = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, not global
_V4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d
_V4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT ::ffff:0:a.b.c.d
# Instance metadata services at private (not link-local) IPv6 addresses: AWS's IMDS (and its
# DNS resolver and time server next to it). Refused even where private addresses are allowed.
_METADATA_V6 = ipaddress.ip_network("fd00:ec2::/32")
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")  # embeds a v4 in the low 32 bits
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # local-use NAT64, site specific
_TEREDO = ipaddress.ip_network("2001::/32")  # client address is obfuscated: refuse


def blocked_reason(address: str, *, allow_private: bool = False) -> str | None:
    """Why ``address`` must not be fetched from (e.g. ``"loopback"``), or None if it may be.

    ``ipaddress.is_global`` alone is not enough on 3.11 (multicast, site-local, 6to4 and
    NAT64 forms count as global there), so the dangerous ranges are checked explicitly and
    IPv6 forms that embed an IPv4 address are judged by that IPv4 address.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unrecognised"
    return _reason(ip, allow_private)


def _reason(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_private: bool) -> str | None:
    # No TCP server lives at these, even in local development.
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded: ipaddress.IPv4Address | None = ip.ipv4_mapped
        if embedded is None and ip in _NAT64_WELL_KNOWN:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is None:
            embedded = ip.sixtofour
        if embedded is not None:
            inner = _reason(embedded, allow_private)
            return f"{inner} (IPv4 inside IPv6)" if inner else None
    # Link-local holds cloud metadata services (169.254.169.254), and so does fd00:ec2::254:
    # refused even where private addresses are allowed for local development.
    if ip.is_link_local:
        return "link-local"
    if isinstance(ip, ipaddress.IPv6Address) and ip in _METADATA_V6:
        return "instance metadata"
    if allow_private:
        return None
    if ip.is_loopback:
        return "loopback"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED_V4:
        return "shared (carrier-grade NAT)"
    if ip.is_private:
        return "private"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local:
            return "site-local"
        if ip in _V4_COMPATIBLE or ip in _V4_TRANSLATED or ip in _NAT64_LOCAL:
            return "IPv4-translation"
        if ip in _TEREDO:
            return "Teredo"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "non-public"
    return None
