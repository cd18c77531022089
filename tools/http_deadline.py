"""HTTP requests with one total deadline and kept-alive connections.

``requests`` applies its ``timeout`` to each socket operation: a server that trickles one byte a
second holds a request for as long as it likes. Here every operation of a request (connect, TLS
handshake, sending, each read) gets what is left of one deadline, so a request never outlives it.
Connections are kept alive per thread and host, so a batch of messages to one gateway pays the TCP
(and TLS) set-up once. Redirects are never followed: a gateway answers, it does not send us on.
"""

import http.client
import io
import select
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

MAX_ANSWER_BYTES = 1024 * 1024
_connections = threading.local()


class DeadlineExceeded(TimeoutError):
    """The request's total time ran out."""


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
    """An HTTP(S) connection that connects, and later reads and writes, within ``deadline``."""

    def __init__(self, host, port, tls):
        super().__init__(host, port)
        self.tls = tls
        self.deadline = time.monotonic()

    def connect(self):
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded()
        sock = socket.create_connection((self.host, self.port), timeout=remaining)
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


def _connection(scheme, host, port):
    pool = getattr(_connections, "pool", None)
    if pool is None:
        pool = _connections.pool = {}
    key = (scheme, host, port)
    connection = pool.get(key)
    if connection is not None and connection.sock is not None and connection.sock.dropped():
        connection.close()
    if connection is None:
        connection = pool[key] = _Connection(host, port, tls=scheme == "https")
    return connection


def request(method, url, body=None, headers=None, timeout=15.0):
    """Send one request; return ``(status, body bytes)`` or raise ``OSError``/``HTTPException``.

    ``timeout`` is the total time the request may take, from connecting to the last byte read.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url}")
    port = parts.port or (443 if scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection = _connection(scheme, parts.hostname, port)
    connection.deadline = time.monotonic() + timeout
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        content = response.read(MAX_ANSWER_BYTES)
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
