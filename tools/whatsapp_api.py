"""WhatsApp gateway transports: one class per request shape, behind one small interface.

``qrapi.connector`` keeps the configuration (and *Test connection*); a transport turns "send this
text / this document to this number" into the gateway's HTTP request and its answer into a message
id or a typed ``DeliveryError``. Adding a gateway is adding a class to ``TRANSPORTS``.

One call is one attempt: retries belong to the send queue, which spaces them out instead of
sleeping while a worker waits. Every request has a total deadline (``http_deadline``).
"""

import base64
import http.client
import json
import mimetypes
import re
from dataclasses import dataclass

from urllib3.filepost import encode_multipart_formdata

from . import http_deadline
from .delivery_error import DeliveryError

MAX_TIMEOUT = 120
RETRIABLE_STATUSES = {408, 425, 429, 500, 502, 503, 504}
REPLY_ID_KEYS = ("id", "messageId", "message_id", "msgId")
DETAIL_CHARS = 300


@dataclass(frozen=True)
class GatewaySettings:
    """What a transport needs of a connector, read once (the key with it, never logged)."""

    name: str
    url: str
    api_key: str
    timeout: float
    instance: str = ""
    text_path: str = "/api/messages/send"
    status_path: str = "/api/messages/send"
    auth_header: str = "Authorization"
    auth_prefix: str = "Bearer "
    number_field: str = "number"
    text_field: str = "body"
    number_suffix: str = ""
    session_field: str = ""


class WhatsAppApi:
    """Whaticket-style gateways (the QRAPI default): JSON text, multipart documents.

    Every part of the request shape comes from the connector's advanced settings, so this class
    also serves the "Custom" preset.
    """

    preset = "qrapi"

    def __init__(self, env, settings):
        self.env = env
        self.settings = settings

    # ---------------------------------------------------------------- the interface

    def send_text(self, number, text):
        """Send ``text`` to ``number`` (E.164); return the gateway's message id."""
        payload = self._recipient(number) | {self.settings.text_field: text}
        return self._reply_id(self._post_json(self.settings.text_path, payload))

    def send_document(self, number, filename, content, caption=""):
        """Send a file (bytes) with a caption; return the gateway's message id."""
        fields = self._recipient(number) | {
            self.settings.text_field: caption,
            "medias": (filename, content, self._mimetype(filename)),
        }
        body, content_type = encode_multipart_formdata(fields)
        return self._reply_id(self._request("POST", self.settings.text_path, body, content_type))

    def check_status(self):
        """Ask the gateway with the key whether it is up; raise ``DeliveryError`` when not."""
        status, content = self._call("GET", self.settings.status_path, None, None)
        # the send path of Whaticket-style gateways only takes POST: 405 means "reached, key read"
        if status != 405:
            self._raise_for_status(status, content)

    # ---------------------------------------------------------------- request building

    def _recipient(self, number):
        digits = re.sub(r"\D", "", number or "")
        if not digits:
            raise DeliveryError(self.env._("The customer has no WhatsApp number."), "no_contact")
        payload = {self.settings.number_field: digits + (self.settings.number_suffix or "")}
        if self.settings.session_field:
            payload[self.settings.session_field] = self.settings.instance or "default"
        return payload

    def _path(self, path):
        return (path or "").replace("{instance}", self.settings.instance or "")

    @staticmethod
    def _mimetype(filename):
        return mimetypes.guess_type(filename)[0] or "application/octet-stream"

    @staticmethod
    def _base64(content):
        return base64.b64encode(content).decode()

    def _headers(self, content_type):
        headers = {self.settings.auth_header: f"{self.settings.auth_prefix or ''}{self.settings.api_key or ''}"}
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def _post_json(self, path, payload):
        return self._request("POST", path, json.dumps(payload).encode(), "application/json")

    def _request(self, method, path, body, content_type):
        status, content = self._call(method, path, body, content_type)
        self._raise_for_status(status, content)
        return content

    def _call(self, method, path, body, content_type):
        timeout = min(self.settings.timeout, MAX_TIMEOUT)
        try:
            return http_deadline.request(
                method, self.settings.url + self._path(path), body, self._headers(content_type), timeout
            )
        except TimeoutError as error:
            raise DeliveryError(
                self.env._("The WhatsApp gateway did not answer within %s seconds.", self.settings.timeout),
                "gateway_unreachable",
                retriable=True,
            ) from error
        except (OSError, http.client.HTTPException, ValueError) as error:
            raise DeliveryError(
                self.env._("The WhatsApp gateway cannot be reached: %s", self._redact(str(error) or repr(error))),
                "gateway_unreachable",
                retriable=True,
            ) from error

    # ---------------------------------------------------------------- answers

    def _raise_for_status(self, status, content):
        if 200 <= status < 300:
            return
        detail = self._redact(content.decode(errors="replace"))[:DETAIL_CHARS]
        if status in (401, 403):
            raise DeliveryError(
                self.env._(
                    "API key rejected by the WhatsApp gateway (HTTP %(status)s): %(detail)s",
                    status=status,
                    detail=detail,
                ),
                "key_rejected",
            )
        if status == 404:
            raise DeliveryError(
                self.env._(
                    "The WhatsApp gateway answered 404: check the client URL (%(url)s). %(detail)s",
                    url=self.settings.url,
                    detail=detail,
                ),
                "gateway_error",
            )
        raise DeliveryError(
            self.env._("The WhatsApp gateway answered HTTP %(status)s: %(detail)s", status=status, detail=detail),
            "gateway_error",
            retriable=status in RETRIABLE_STATUSES,
        )

    def _redact(self, text):
        """The key never appears in an error, even when the gateway echoes it (redacted before cutting)."""
        key = self.settings.api_key
        return text.replace(key, "***") if key else text

    @staticmethod
    def _reply_id(content):
        try:
            reply = json.loads(content or b"null")
        except ValueError:
            return ""
        if not isinstance(reply, dict):
            return ""
        for candidate in (reply, reply.get("key"), reply.get("message")):
            if isinstance(candidate, dict):
                for key in REPLY_ID_KEYS:
                    value = candidate.get(key)
                    if value:
                        return value.get("_serialized", "") if isinstance(value, dict) else str(value)
        return ""


class EvolutionApi(WhatsAppApi):
    """Evolution API: ``apikey`` header, instance in the path, base64 media."""

    preset = "evolution"

    def send_document(self, number, filename, content, caption=""):
        payload = self._recipient(number) | {
            "mediatype": "document",
            "mimetype": self._mimetype(filename),
            "fileName": filename,
            "caption": caption,
            "media": self._base64(content),
        }
        return self._reply_id(self._post_json("/message/sendMedia/{instance}", payload))

    def check_status(self):
        self._request("GET", self.settings.status_path, None, None)


class WahaApi(WhatsAppApi):
    """WAHA: ``X-Api-Key`` header, session in the body, chat ids ``<digits>@c.us``."""

    preset = "waha"

    def send_document(self, number, filename, content, caption=""):
        payload = self._recipient(number) | {
            "caption": caption,
            "file": {"mimetype": self._mimetype(filename), "filename": filename, "data": self._base64(content)},
        }
        return self._reply_id(self._post_json("/api/sendFile", payload))

    def check_status(self):
        self._request("GET", self.settings.status_path, None, None)


TRANSPORTS = {api.preset: api for api in (WhatsAppApi, EvolutionApi, WahaApi)} | {"custom": WhatsAppApi}
