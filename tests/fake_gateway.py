"""A stand-in WhatsApp gateway, plain Python so that bench/ scripts can use it too."""

import contextlib
import http.server
import json
import threading
import time


class FakeGateway:
    """A real HTTP/1.1 server on 127.0.0.1 standing in for the WhatsApp gateway.

    It records every request and answers from a script: ``(status, json_body)`` tuples,
    ``"hang"`` to wait ``hang_seconds`` before answering, or ``"trickle"`` to send its answer one
    byte every ``trickle_seconds``. Once the script is used up it answers 200. Connections are
    kept alive, as a real gateway's.
    """

    def __init__(self, keep_requests=True):
        self.requests = []
        self.count = 0
        self.connections = 0
        self.keep_requests = keep_requests
        self.script = []
        self.hang_seconds = 3
        self.trickle_seconds = 1.0
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
                    answer = (
                        gateway.script.pop(0) if gateway.script else (200, {"id": f"wamid.{len(gateway.requests)}"})
                    )
                if answer == "hang":
                    time.sleep(gateway.hang_seconds)
                    answer = (200, {})
                if answer == "trickle":
                    self._trickle()
                    return
                status, payload = answer
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

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

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def json(self, index=-1):
        request = self.requests[index]
        return json.loads(request["body"] if isinstance(request, dict) else request)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
