"""A stand-in WhatsApp gateway, plain Python so that bench/ scripts can use it too."""

import http.server
import json
import threading
import time


class FakeGateway:
    """A real HTTP server on 127.0.0.1 standing in for the WhatsApp gateway.

    It records every request and answers from a script: ``(status, json_body)`` tuples, or
    ``"hang"`` to wait past the client's timeout. Once the script is used up it answers 200.
    """

    def __init__(self):
        self.requests = []
        self.script = []
        self.hang_seconds = 3
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                gateway.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                answer = gateway.script.pop(0) if gateway.script else (200, {"id": f"wamid.{len(gateway.requests)}"})
                if answer == "hang":
                    time.sleep(gateway.hang_seconds)
                    answer = (200, {})
                status, payload = answer
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def json(self, index=-1):
        return json.loads(self.requests[index]["body"])

    def close(self):
        self.server.shutdown()
        self.server.server_close()
