"""Which hosts a URL taken from untrusted data (a manifest's image column) may reach.

A manifest can name any URL. Without a policy, `http://169.254.169.254/latest/meta-data/` (a
cloud's metadata service, which hands out credentials), `http://10.0.0.7:8080/admin` or
`http://localhost:6379/` would be fetched from inside the worker's network. So the host of every
such URL is resolved first, and *every* address it resolves to must be a public unicast address;
the connection then goes to that checked address (never a second lookup, which a rebinding DNS
server could answer differently). Refused classes, by the resolved address:

- loopback (127.0.0.0/8, ::1), unspecified (0.0.0.0, ::);
- private networks (10/8, 172.16/12, 192.168/16, fc00::/7), shared address space (100.64/10,
  carrier-grade NAT: Alibaba's metadata service lives there), link-local (169.254/16, fe80::/10:
  AWS, GCP and Azure metadata), other special-purpose ranges Python's `ipaddress` knows as not
  global (documentation, benchmarking, 192.0.0/24 with Oracle's metadata address, reserved);
- multicast and broadcast;
- IPv6 forms that carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, 6to4 `2002::/16`, Teredo,
  NAT64 `64:ff9b::/96`): judged by the IPv4 address inside.

Numeric spellings (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`) resolve like the system
resolver reads them, so they are judged by what they are. `images.allowed_hosts` lets named
hosts, addresses or networks through (`images.internal`, `10.1.2.3`, `10.0.0.0/8`), for a
deliberate internal image server.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from claimdiff.errors import ConfigError, HostRefusedError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Named here too: `ipaddress` calls parts of these global, depending on the Python release.
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_IETF = ipaddress.ip_network("192.0.0.0/24")


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (numeric spellings included)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise HostRefusedError(f"host {host!r} does not resolve: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))


def embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo client, NAT64)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_class(address: Address) -> str | None:
    """Why `address` is refused ("loopback", "link-local", ...), or None for a public one."""
    inner = embedded_ipv4(address)
    if inner is not None:
        reason = address_class(inner)
        return f"{reason} (as an IPv4 address inside an IPv6 one)" if reason else None
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local (where cloud metadata services live)"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "shared address space (carrier-grade NAT)"
    if isinstance(address, ipaddress.IPv4Address) and address in _IETF:
        return "IETF protocol assignment (Oracle's metadata service is 192.0.0.192)"
    if address.is_private:
        return "private"
    if address.is_reserved or not address.is_global:
        return "reserved or special-purpose"
    return None


@dataclass(frozen=True)
class HostPolicy:
    """Hosts a fetch may reach: public addresses, plus whatever `allowed` names."""

    allowed: tuple[str, ...] = ()
    resolver: Resolver = system_resolver
    setting: str = "images.allowed_hosts"
    _networks: tuple[Network, ...] = field(init=False, repr=False)
    _names: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        networks: list[Network] = []
        names: set[str] = set()
        for entry in self.allowed:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                if not entry.strip() or "/" in entry:
                    raise ConfigError(
                        f"{self.setting}: {entry!r} is neither a host name, an address nor "
                        "a network") from None
                names.add(entry.strip().lower().rstrip("."))
        object.__setattr__(self, "_networks", tuple(networks))
        object.__setattr__(self, "_names", frozenset(names))

    @classmethod
    def of(cls, allowed: Sequence[str], resolver: Resolver | None = None,
           setting: str = "images.allowed_hosts") -> HostPolicy:
        return cls(tuple(allowed), resolver or system_resolver, setting)

    def _allows(self, address: Address) -> bool:
        return any(address in network for network in self._networks if
                   network.version == address.version)

    def vet(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for `host`, every one of them allowed; or
        `HostRefusedError` naming the address, its class and the setting that could allow it."""
        if not host:
            raise HostRefusedError("the URL has no host")
        name = host.lower().rstrip(".")
        addresses = self.resolver(name, port)
        if not addresses:
            raise HostRefusedError(f"host {host!r} resolves to no address")
        if name in self._names:
            return addresses
        for text in addresses:
            address = ipaddress.ip_address(text)
            reason = address_class(address)
            if reason is not None and not self._allows(address):
                where = host if text == host else f"{host} resolves to {text}, which"
                raise HostRefusedError(
                    f"refused by the host policy: {where} is a {reason} address (add the host "
                    f"or its network to {self.setting} to allow it)")
        return addresses


def is_loopback(host: str) -> bool:
    """Whether a host name or literal address is this machine's loopback (no lookup: a name
    other than `localhost` is not assumed to be)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
