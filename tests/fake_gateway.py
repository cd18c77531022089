"""A stand-in WhatsApp gateway, plain Python so that bench/ scripts can use it too."""

import contextlib
import http.server
import json
import threading
import time


class FakeGateway:
    """A real HTTP/1.1 server on 127.0.0.1 standing in for the WhatsApp gateway.

    It records every request and answers from a script: ``(status, json_body)`` tuples (or
    ``(status, json_body, headers)``, e.g. a ``Location``), ``"hang"`` to wait ``hang_seconds``
    before answering, or ``"trickle"`` to send its answer one byte every ``trickle_seconds``. Once
    the script is used up it answers 200. Connections are kept alive, as a real gateway's.

    With ``api_key`` set it checks the key first, as a Whaticket-style gateway does: a request that
    carries it in no header (alone or after ``Bearer ``) gets 401, and a POST of a JSON message
    without recipient gets 400, neither taking an answer from the script. ``host`` binds another
    loopback address (127.0.0.2...) to stand for another machine.
    """

    def __init__(self, keep_requests=True, host="127.0.0.1", api_key=None):
        self.requests = []
        self.count = 0
        self.connections = 0
        self.keep_requests = keep_requests
        self.script = []
        self.hang_seconds = 3
        self.trickle_seconds = 1.0
        self.api_key = api_key
        self.lock = threading.Lock()
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out as two writes: without this, Nagle's algorithm and the
            # client's delayed ACK add 40 ms to every answer on a kept-alive connection
            disable_nagle_algorithm = True

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with gateway.lock:
                    gateway.count += 1
                    gateway.requests.append(
                        {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                        if gateway.keep_requests
                        else body
                    )
                    answer = self._check(body) or (
                        gateway.script.pop(0) if gateway.script else (200, {"id": f"wamid.{len(gateway.requests)}"})
                    )
                if answer == "hang":
                    time.sleep(gateway.hang_seconds)
                    answer = (200, {})
                if answer == "trickle":
                    self._trickle()
                    return
                status, payload, *extra = answer
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (extra[0] if extra else {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _check(self, body):
                """The answer of a gateway that checks the key, then the message; None: go on."""
                if gateway.api_key is None:
                    return None
                if not {gateway.api_key, f"Bearer {gateway.api_key}"} & set(self.headers.values()):
                    return (401, {"error": "ERR_SESSION_EXPIRED"})
                if self.command == "POST" and "json" in (self.headers.get("Content-Type") or ""):
                    with contextlib.suppress(ValueError):
                        message = json.loads(body or b"{}")
                        if isinstance(message, dict) and not ({"number", "chatId"} & set(message)):
                            return (400, {"error": "ERR_INVALID_NUMBER"})
                return None

            def _trickle(self):
                data = (
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n"
                    b'{"id": "wamid.slow"}'
                )
                # the client gives up before the end: that is the point
                with contextlib.suppress(OSError):
                    for byte in data:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(gateway.trickle_seconds)
                self.close_connection = True

            do_GET = do_POST = _handle

            def log_message(self, *args):
                pass

            def setup(self):
                with gateway.lock:
                    gateway.connections += 1
                return super().setup()

            def handle(self):
                # a client that went away mid-request is no error of the gateway's
                with contextlib.suppress(ConnectionError, TimeoutError):
                    return super().handle()

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def json(self, index=-1):
        request = self.requests[index]
        return json.loads(request["body"] if isinstance(request, dict) else request)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
