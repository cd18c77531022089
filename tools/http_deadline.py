"""HTTP requests with one total deadline and kept-alive connections.

``requests`` applies its ``timeout`` to each socket operation: a server that trickles one byte a
second holds a request for as long as it likes. Here every operation of a request (connect, TLS
handshake, sending, each read) gets what is left of one deadline, so a request never outlives it.
Connections are kept alive per thread and host, so a batch of messages to one gateway pays the TCP
(and TLS) set-up once. Redirects are never followed: a gateway answers, it does not send us on, and
its headers (the API key's among them) never go anywhere else.

Outbound policy: a request goes to public internet addresses only. The host is resolved once, every
address it resolves to is checked, and the connection goes to a checked address (never to a second
resolution, which DNS rebinding could point elsewhere). Private, loopback, link-local, multicast,
reserved, unspecified and shared (CGNAT, 100.64.0.0/10) addresses, and IPv6 addresses that embed one
of those (IPv4-mapped, IPv4-compatible, 6to4, NAT64), are refused unless an ``Allowlist`` names the
host or holds the address's network. Plain ``http://`` goes only to a host the allowlist names (or a
literal IP address of an allowed network): the key never crosses the internet in clear. URLs with a
user name or password, and schemes other than http(s), are refused. Nothing is sent when a request
is refused (``OutboundRefused``).
"""

import http.client
import io
import ipaddress
import logging
import re
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

_logger = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 1024 * 1024
_connections = threading.local()

# the widest networks an allowlist takes: wider ones would switch the policy off
MIN_PREFIX = {4: 8, 6: 7}
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
# a numeric last label is no name: "127.1" or "2130706433" are IPv4 addresses in disguise
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$)(?:{_LABEL}\.)*(?![0-9]+$)(?!0x[0-9a-f]*$){_LABEL}$")


class DeadlineExceeded(TimeoutError):
    """The request's total time ran out."""


class OutboundRefused(Exception):
    """The outbound policy does not let this request out; nothing was sent.

    ``reason`` is ``"scheme"`` (not http or https), ``"userinfo"`` (a user name or password in the
    URL), ``"plain_http"`` (http to a host the allowlist does not name) or ``"address"`` (the host
    resolves to ``address``, which is not public and not allowed).
    """

    def __init__(self, reason, host, address=""):
        super().__init__(f"outbound request refused ({reason}): {host} {address}".strip())
        self.reason = reason
        self.host = host
        self.address = address


class AllowlistError(ValueError):
    """An allowlist entry that is not a host name, an IP address or a network.

    ``problem`` is ``"syntax"``, ``"host_bits"`` (``suggestion`` holds the network meant) or
    ``"too_wide"``.
    """

    def __init__(self, entry, problem, suggestion=""):
        super().__init__(f"{entry}: {problem}")
        self.entry = entry
        self.problem = problem
        self.suggestion = suggestion


def _embedded_ipv4(address):
    """The IPv4 address an IPv6 address carries (IPv4-mapped, 6to4, NAT64), or None."""
    if address.version != 6:
        return None
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address):
    """True for an address of the public internet (``ipaddress`` object)."""
    if address.version == 6:
        if address in _IPV4_COMPATIBLE:  # deprecated IPv4-compatible addresses, :: and ::1 among them
            return False
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public(embedded)
        if address.is_site_local:
            return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address in _SHARED
    )


def ip_literal(host):
    """The ``ipaddress`` object of a host written as an IP address (``[::1]`` too), else None."""
    host = (host or "").strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if "%" in host:  # a zone: not an address anyone types into a URL or an allowlist
        return None
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def normalize_host(host):
    return (host or "").strip().lower().rstrip(".")


def is_hostname(host):
    return bool(_HOSTNAME.match(normalize_host(host)))


def _parse_entry(entry):
    """``("host", name)`` or ``("network", ip_network)`` of one allowlist entry; ``AllowlistError`` else."""
    text = entry.strip().lower()
    if "/" in text:
        try:
            network = ipaddress.ip_network(text, strict=True)
        except ValueError:
            try:
                meant = ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise AllowlistError(entry, "syntax") from None
            raise AllowlistError(entry, "host_bits", str(meant)) from None
        if network.prefixlen < MIN_PREFIX[network.version]:
            raise AllowlistError(entry, "too_wide")
        return "network", network
    address = ip_literal(text)
    if address is not None:
        return "network", ipaddress.ip_network(address)
    if not is_hostname(text):
        raise AllowlistError(entry, "syntax")
    return "host", normalize_host(text)


@dataclass(frozen=True)
class Allowlist:
    """Hosts and networks an administrator lets requests go to although they are not public."""

    hosts: frozenset = frozenset()
    networks: tuple = ()

    @classmethod
    def parse(cls, text, strict=True):
        """The allowlist written in ``text``: entries separated by commas, semicolons or whitespace.

        ``strict``: an invalid entry raises ``AllowlistError``; otherwise it is logged and allows
        nothing.
        """
        hosts, networks = set(), []
        for entry in re.split(r"[\s,;]+", text or ""):
            if not entry:
                continue
            try:
                kind, value = _parse_entry(entry)
            except AllowlistError:
                if strict:
                    raise
                _logger.warning("Outbound allowlist: ignored invalid entry %r", entry)
                continue
            if kind == "host":
                hosts.add(value)
            elif value not in networks:
                networks.append(value)
        return cls(frozenset(hosts), tuple(networks))

    def __str__(self):
        return ", ".join([*sorted(self.hosts), *(str(network) for network in self.networks)])

    def allows_address(self, address):
        candidates = [address]
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            candidates.append(embedded)
        return any(
            candidate in network
            for candidate in candidates
            for network in self.networks
            if network.version == candidate.version
        )

    def allows_host(self, host):
        """True when the allowlist names ``host``, or ``host`` is an IP address of an allowed network."""
        address = ip_literal(host)
        if address is not None:
            return self.allows_address(address)
        return normalize_host(host) in self.hosts


NO_ALLOWLIST = Allowlist()


def check_destination(scheme, host, allowlist):
    """Refuse before resolving what the URL alone says is refused (plain http to an unlisted host)."""
    if scheme == "http" and not allowlist.allows_host(host):
        raise OutboundRefused("plain_http", host)


def resolve(host, port, allowlist):
    """The addresses ``(family, sockaddr)`` to connect to, each checked; ``OutboundRefused`` else.

    A host the allowlist names may resolve to anything. Otherwise every address must be public or in
    an allowed network: one refused address refuses the request.
    """
    host_allowed = allowlist.allows_host(host)
    targets = []
    for family, _type, _proto, _name, sockaddr in socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    ):
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if not (host_allowed or is_public(address) or allowlist.allows_address(address)):
            shown = f"::ffff:{address.ipv4_mapped}" if address.version == 6 and address.ipv4_mapped else str(address)
            _logger.warning("Outbound request to %s refused: it resolves to %s", host, shown)
            raise OutboundRefused("address", host, shown)
        if (family, sockaddr) not in targets:
            targets.append((family, sockaddr))
    if not targets:
        raise OSError(f"{host} has no IPv4 or IPv6 address")
    return targets


class _DeadlineSocket:
    """A connected socket whose every operation ends by the deadline its connection holds."""

    def __init__(self, sock, connection):
        self._sock = sock
        self._connection = connection

    def _arm(self):
        remaining = self._connection.deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded()
        self._sock.settimeout(remaining)

    def sendall(self, data):
        self._arm()
        return self._sock.sendall(data)

    def recv_into(self, buffer, nbytes=0):
        self._arm()
        return self._sock.recv_into(buffer, nbytes)

    def makefile(self, mode="rb", buffering=None):
        return io.BufferedReader(_DeadlineReader(self))

    def dropped(self):
        """True when the peer closed the idle connection (or sent something unasked)."""
        try:
            readable, _writable, _errors = select.select([self._sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self):
        self._sock.close()


class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock):
        super().__init__()
        self._sock = sock

    def readable(self):
        return True

    def readinto(self, buffer):
        return self._sock.recv_into(buffer)


class _Connection(http.client.HTTPConnection):
    """An HTTP(S) connection that connects, and later reads and writes, within ``deadline``.

    It connects to an address ``resolve`` checked against ``allowlist``; TLS still verifies the
    certificate against the host name.
    """

    def __init__(self, host, port, tls, allowlist):
        super().__init__(host, port)
        self.tls = tls
        self.allowlist = allowlist
        self.deadline = time.monotonic()

    def connect(self):
        if self.deadline - time.monotonic() <= 0:
            raise DeadlineExceeded()
        sock = self._connect_checked(resolve(self.host, self.port, self.allowlist))
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls:
                # the whole handshake is bounded by the socket's timeout
                sock.settimeout(max(self.deadline - time.monotonic(), 0.001))
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.sock = _DeadlineSocket(sock, self)

    def _connect_checked(self, targets):
        """A socket connected to the first of ``targets`` that answers within the deadline."""
        error = None
        for family, sockaddr in targets:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceeded()
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(remaining)
                sock.connect(sockaddr)
            except OSError as failure:
                sock.close()
                error = failure
                continue
            return sock
        raise error


def _connection(scheme, host, port, allowlist):
    pool = getattr(_connections, "pool", None)
    if pool is None:
        pool = _connections.pool = {}
    key = (scheme, host, port, allowlist)
    for other in [other for other in pool if other[:3] == key[:3] and other != key]:
        # the allowlist changed: a connection it allowed is not reused
        pool.pop(other).close()
    connection = pool.get(key)
    if connection is not None and connection.sock is not None and connection.sock.dropped():
        connection.close()
    if connection is None:
        connection = pool[key] = _Connection(host, port, tls=scheme == "https", allowlist=allowlist)
    return connection


def request(method, url, body=None, headers=None, timeout=15.0, allowlist=NO_ALLOWLIST, max_bytes=MAX_ANSWER_BYTES):
    """Send one request; return ``(status, body bytes)`` or raise ``OSError``/``HTTPException``.

    ``timeout`` is the total time the request may take, from connecting to the last byte read.
    ``allowlist`` is what the outbound policy lets through besides public addresses: a request it
    refuses raises ``OutboundRefused`` before anything is sent. Redirects are returned, not followed.
    At most ``max_bytes`` of the answer are read.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise OutboundRefused("scheme", parts.hostname or "")
    if "@" in parts.netloc:
        raise OutboundRefused("userinfo", parts.hostname)
    host = parts.hostname
    check_destination(scheme, host, allowlist)
    port = parts.port or (443 if scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection = _connection(scheme, host, port, allowlist)
    connection.deadline = time.monotonic() + timeout
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        content = response.read(max_bytes)
        if not response.isclosed():
            # an answer larger than we read: the connection cannot be reused
            connection.close()
        return response.status, content
    except BaseException:
        connection.close()
        raise


def close_connections():
    """Close this thread's kept-alive connections."""
    for connection in getattr(_connections, "pool", {}).values():
        connection.close()
    _connections.pool = {}
