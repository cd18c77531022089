"""WhatsApp gateway transports: one class per request shape, behind one small interface.

``qrapi.connector`` keeps the configuration (and *Test connection*); a transport turns "send this
text / this document to this number" into the gateway's HTTP request and its answer into a message
id or a typed ``DeliveryError``. Adding a gateway is adding a class to ``TRANSPORTS``.

One call is one attempt: retries belong to the send queue, which spaces them out instead of
sleeping while a worker waits. Every request has a total deadline and goes only where the outbound
policy lets it (``http_deadline``); redirects are never followed. What a gateway answers is shown
only as a short excerpt with the key redacted (before the excerpt is cut).
"""

import base64
import http.client
import json
import mimetypes
import re
import urllib.parse
from dataclasses import dataclass

from urllib3.filepost import encode_multipart_formdata

from . import http_deadline
from .delivery_error import DeliveryError

MAX_TIMEOUT = 120
RETRIABLE_STATUSES = {408, 425, 429, 500, 502, 503, 504}
REPLY_ID_KEYS = ("id", "messageId", "message_id", "msgId")
# the most of a gateway's answer shown in an error, a log or Test connection (the key redacted first)
DETAIL_CHARS = 120
REPLY_ID_CHARS = 255
# where a status endpoint tells whether the WhatsApp number is connected (Evolution API, WAHA)
STATE_KEYS = ("state", "status", "connectionStatus")


@dataclass(frozen=True)
class GatewaySettings:
    """What a transport needs of a connector, read once (the key with it, never logged)."""

    name: str
    url: str
    api_key: str
    timeout: float
    instance: str = ""
    text_path: str = "/api/messages/send"
    status_path: str = ""
    auth_header: str = "Authorization"
    auth_prefix: str = "Bearer "
    number_field: str = "number"
    text_field: str = "body"
    number_suffix: str = ""
    session_field: str = ""
    allowlist: http_deadline.Allowlist = http_deadline.NO_ALLOWLIST


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

    def download_media(self, media, max_bytes):
        """The bytes of an inbound message's media (``{"url": ...}``), at most ``max_bytes``.

        The key goes along only to the gateway's own address: a media elsewhere is fetched without it.
        """
        url = media.get("url") or ""
        if not url:
            raise DeliveryError(self.env._("The gateway sent no address for the media."), "gateway_error")
        own = url.startswith(self.settings.url + "/")
        return self._fetch(url, self._headers(None) if own else {}, max_bytes)

    def _fetch(self, url, headers, max_bytes):
        try:
            status, content = http_deadline.request(
                "GET",
                url,
                None,
                headers,
                min(self.settings.timeout, MAX_TIMEOUT),
                allowlist=self.settings.allowlist,
                max_bytes=max_bytes + 1,
            )
        except http_deadline.OutboundRefused as error:
            raise self._refused(error) from error
        except (OSError, http.client.HTTPException, ValueError) as error:
            raise DeliveryError(
                self.env._("The media cannot be downloaded: %s", self._excerpt(str(error) or repr(error))),
                "gateway_unreachable",
            ) from error
        self._raise_for_status(status, content)
        if len(content) > max_bytes:
            raise DeliveryError(
                self.env._("The media is larger than %s MB.", max_bytes // (1024 * 1024)), "gateway_error"
            )
        return content

    def has_status_endpoint(self):
        """Whether the gateway has a status path of its own, read with the key (Test connection).

        Without one (Whaticket-style gateways, QRAPI) only a real message proves the key: an empty
        or invalid message may be refused before the key is even read, or accepted whatever the key.
        """
        path = self.settings.status_path
        return bool(path) and path != self.settings.text_path

    def check_status(self):
        """GET the status path with the key; return the state the gateway reports ("" if none).

        Only a 2xx answer is a success: 401/403 is a rejected key; 404, 405, a redirect or 5xx a
        failure (``DeliveryError``), never a success.
        """
        if not self.has_status_endpoint():
            raise DeliveryError(self.env._("This gateway has no status path to check."), "gateway_error")
        return self._state(self._request("GET", self.settings.status_path, None, None))

    def status_path(self):
        return self._path(self.settings.status_path)

    def _state(self, content):
        """What a status answer says of the connection (e.g. "open", "WORKING"), redacted and short."""
        try:
            reply = json.loads(content or b"null")
        except ValueError:
            return ""
        for candidate in (reply, isinstance(reply, dict) and reply.get("instance")):
            if not isinstance(candidate, dict):
                continue
            for key in STATE_KEYS:
                value = candidate.get(key)
                if isinstance(value, str) and value:
                    return self._excerpt(value)
        return ""

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
                method,
                self.settings.url + self._path(path),
                body,
                self._headers(content_type),
                timeout,
                allowlist=self.settings.allowlist,
            )
        except http_deadline.OutboundRefused as error:
            raise self._refused(error) from error
        except TimeoutError as error:
            raise DeliveryError(
                self.env._("The WhatsApp gateway did not answer within %s seconds.", self.settings.timeout),
                "gateway_unreachable",
                retriable=True,
            ) from error
        except (OSError, http.client.HTTPException, ValueError) as error:
            raise DeliveryError(
                self.env._("The WhatsApp gateway cannot be reached: %s", self._excerpt(str(error) or repr(error))),
                "gateway_unreachable",
                retriable=True,
            ) from error

    def _refused(self, error):
        """The ``DeliveryError`` of a request the outbound policy refused (final: nothing was sent)."""
        if error.reason == "address":
            message = self.env._(
                "The WhatsApp gateway %(host)s resolves to %(address)s, which is not a public address: nothing "
                "is sent there unless an administrator adds the host or its network to the outbound allowlist "
                "(Settings > Collections).",
                host=error.host,
                address=error.address,
            )
        elif error.reason == "plain_http":
            message = self.env._(
                "The client URL must use https (the API key travels with every message); plain http is only "
                "for hosts in the outbound allowlist (Settings > Collections)."
            )
        elif error.reason == "userinfo":
            message = self.env._("The client URL cannot carry a user name or password: the API key has its own field.")
        else:
            message = self.env._(
                "The client URL %s is not a web address such as https://cliente1.qrapi.com.", self.settings.url
            )
        return DeliveryError(message, "destination_refused")

    # ---------------------------------------------------------------- answers

    def _raise_for_status(self, status, content):
        if 200 <= status < 300:
            return
        detail = self._excerpt(content)
        if 300 <= status < 400:
            raise DeliveryError(
                self.env._(
                    "The WhatsApp gateway answered HTTP %(status)s, a redirect, which is never followed: check "
                    "the client URL (%(url)s). %(detail)s",
                    status=status,
                    url=self.settings.url,
                    detail=detail,
                ),
                "gateway_error",
            )
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
        """The key never appears in an error, even when the gateway echoes it (redacted before cutting).

        Also the key as JSON, a URL or Python would escape it.
        """
        key = self.settings.api_key
        if not key:
            return text
        variants = {
            key,
            json.dumps(key)[1:-1],
            urllib.parse.quote(key, safe=""),
            urllib.parse.quote_plus(key),
            repr(key)[1:-1],
        }
        for variant in sorted(variants, key=len, reverse=True):
            text = text.replace(variant, "***")
        return text

    def _excerpt(self, content):
        """At most ``DETAIL_CHARS`` of a gateway's answer on one line, the key redacted before the cut."""
        text = content.decode(errors="replace") if isinstance(content, bytes) else str(content)
        text = self._redact(text)
        text = " ".join("".join(char if char.isprintable() else " " for char in text).split())
        text = self._redact(text)  # what collapsing the whitespace may have formed
        if len(text) > DETAIL_CHARS:
            text = text[: DETAIL_CHARS - 1] + "…"
        return text

    def _reply_id(self, content):
        """The gateway's message id in its answer (redacted and bounded, as it is shown to users)."""
        reply_id = self._parse_reply_id(content)
        return self._redact(reply_id)[:REPLY_ID_CHARS] if reply_id else reply_id

    @staticmethod
    def _parse_reply_id(content):
        try:
            reply = json.loads(content or b"null")
        except ValueError:
            return ""
        if not isinstance(reply, dict):
            return ""
        messages = reply.get("messages")
        first = messages[0] if isinstance(messages, list) and messages else None
        for candidate in (reply, reply.get("key"), reply.get("message"), first):
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


class WahaApi(WhatsAppApi):
    """WAHA: ``X-Api-Key`` header, session in the body, chat ids ``<digits>@c.us``."""

    preset = "waha"

    def send_document(self, number, filename, content, caption=""):
        payload = self._recipient(number) | {
            "caption": caption,
            "file": {"mimetype": self._mimetype(filename), "filename": filename, "data": self._base64(content)},
        }
        return self._reply_id(self._post_json("/api/sendFile", payload))


class CloudApi(WhatsAppApi):
    """Meta's WhatsApp Cloud API: ``Bearer`` token, the phone number id as the instance.

    Free text reaches a customer only within 24 hours of their last message; outside that window
    Meta takes approved templates only (``send_template``). Documents are uploaded first, then sent
    by their media id.
    """

    preset = "cloud"

    def _message(self, number, kind, content):
        digits = self._recipient(number)[self.settings.number_field]
        payload = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": digits, "type": kind}
        return self._reply_id(self._post_json("/{instance}/messages", payload | {kind: content}))

    def send_text(self, number, text):
        return self._message(number, "text", {"preview_url": False, "body": text})

    def send_template(self, number, name, language, parameters):
        """Send the approved template ``name`` in ``language`` with its body ``parameters`` (texts)."""
        content = {"name": name, "language": {"code": language}}
        if parameters:
            content["components"] = [
                {"type": "body", "parameters": [{"type": "text", "text": value} for value in parameters]}
            ]
        return self._message(number, "template", content)

    def send_document(self, number, filename, content, caption=""):
        body, content_type = encode_multipart_formdata(
            {
                "messaging_product": "whatsapp",
                "type": self._mimetype(filename),
                "file": (filename, content, self._mimetype(filename)),
            }
        )
        media_id = self._parse_reply_id(self._request("POST", "/{instance}/media", body, content_type))
        if not media_id:
            raise DeliveryError(self.env._("The WhatsApp Cloud API returned no media id."), "gateway_error")
        return self._message(number, "document", {"id": media_id, "filename": filename, "caption": caption})

    def download_media(self, media, max_bytes):
        """A media of the Cloud API is read in two steps: its id gives a short-lived address, which
        is read with the token."""
        if not media.get("id"):
            return super().download_media(media, max_bytes)
        try:
            info = json.loads(self._request("GET", "/" + urllib.parse.quote(media["id"], safe=""), None, None))
        except ValueError as error:
            raise DeliveryError(
                self.env._("The WhatsApp Cloud API answered no media address."), "gateway_error"
            ) from error
        url = info.get("url") if isinstance(info, dict) else None
        if not url:
            raise DeliveryError(self.env._("The WhatsApp Cloud API answered no media address."), "gateway_error")
        return self._fetch(url, self._headers(None), max_bytes)


TRANSPORTS = {api.preset: api for api in (WhatsAppApi, EvolutionApi, WahaApi, CloudApi)} | {"custom": WhatsAppApi}
