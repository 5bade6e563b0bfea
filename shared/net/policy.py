"""Which addresses outbound calls may reach.

Everything that is not a public unicast address is refused — loopback, RFC 1918, link-local (cloud
metadata at 169.254.169.254), CGNAT, ULA, multicast, reserved, unspecified — and IPv6 forms that
embed an IPv4 address (mapped ``::ffff:a.b.c.d``, NAT64, 6to4, Teredo) are judged by what they embed
as well as by themselves. Python 3.11 calls some non-global ranges global, so they are refused here by
network: IPv4-compatible ``::/96`` (deprecated; ``::7f00:1`` is 127.0.0.1 to some stacks), site-local
``fec0::/10`` (deprecated, still routed inside some networks) and the local-use NAT64 prefix
``64:ff9b:1::/48`` (RFC 8215, translates to whatever the operator's network holds). A network listed in the allowlist is permitted anyway (local tests list
loopback; production lists nothing).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from shared.net.errors import UpstreamUnavailable, UrlRefused

__all__ = ["METADATA_HOSTS", "AddressPolicy", "IpAddress", "Resolver", "system_resolver"]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

# Names that resolve to instance metadata on some cloud, refused by name before any lookup.
METADATA_HOSTS = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"}
)
_METADATA_IPS = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Not global, though ``is_global`` says so on the Pythons this runs on (see the module docstring).
_NOT_GLOBAL_V6 = (
    (ipaddress.IPv6Network("::/96"), "IPv4-compatible IPv6 address"),
    (ipaddress.IPv6Network("fec0::/10"), "site-local IPv6 address"),
    (ipaddress.IPv6Network("64:ff9b:1::/48"), "local-use NAT64 address"),
)


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (``getaddrinfo`` also reads decimal, octal and hex IPv4)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UpstreamUnavailable(f"cannot resolve host: {type(exc).__name__}") from None
    return [str(info[4][0]) for info in infos]


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class AddressPolicy:
    allow: tuple[IpNetwork, ...] = field(default_factory=tuple)

    @classmethod
    def from_networks(cls, networks: Iterable[str | IpNetwork]) -> AddressPolicy:
        return cls(tuple(ipaddress.ip_network(n, strict=False) if isinstance(n, str) else n for n in networks))

    def allowed_by_list(self, ip: IpAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.allow)

    def refusal(self, ip: IpAddress) -> str | None:
        """Why ``ip`` may not be reached, or None if it may."""
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        if self.allowed_by_list(ip):
            return None
        if ip in _METADATA_IPS:
            return "cloud metadata address"
        if isinstance(ip, ipaddress.IPv6Address):
            inner = _embedded_ipv4(ip)
            if inner is not None:
                inner_reason = self.refusal(inner)
                return f"IPv6 address embedding {inner_reason or 'an IPv4 address'}"
        if ip.is_loopback:
            return "loopback address"
        if ip.is_link_local:
            return "link-local address"
        if ip.is_multicast:
            return "multicast address"
        if ip.is_unspecified:
            return "unspecified address"
        if isinstance(ip, ipaddress.IPv6Address):
            for network, why in _NOT_GLOBAL_V6:
                if ip in network:
                    return why
        if not ip.is_global:
            return "private or reserved address"
        return None

    def check_host(self, host: str, port: int, resolver: Resolver = system_resolver) -> list[IpAddress]:
        """Resolve ``host`` and check every address it has; the caller connects to one of these.

        All addresses must pass: a name with one public and one internal address is refused, so
        which one a later connection would pick cannot matter.
        """
        name = host.strip("[]").rstrip(".").lower()
        if name in METADATA_HOSTS:
            raise UrlRefused("host is a cloud metadata name")
        try:
            literal: IpAddress | None = ipaddress.ip_address(name)
        except ValueError:
            literal = None
        addresses = (
            [literal]
            if literal is not None
            else [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolver(name, port)]
        )
        if not addresses:
            raise UpstreamUnavailable("host has no addresses")
        for ip in addresses:
            reason = self.refusal(ip)
            if reason:
                raise UrlRefused(f"destination refused: {reason}")
        return list(dict.fromkeys(addresses))
