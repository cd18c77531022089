"""What WhatsApp gateways push to us: their webhook signatures and JSON shapes, one class per preset.

The controller checks a request with ``verify`` and turns its JSON into ``events``: plain dicts
that the event store keeps and a job processes. The shape of a dict:

``key``
    unique per gateway: the provider's event id, or what makes this event itself (the message id
    and the status it reports), so that an event delivered twice is stored once.
``kind``
    ``"status"`` (a message we sent was delivered, read or failed) or ``"message"`` (a customer
    wrote to us). Anything else a gateway sends (connection updates, our own messages echoed) is
    left out.
``message_id``
    the provider's id of the message (ours for a status; theirs for an inbound message).
``status``, ``reason``
    ``"delivered"``, ``"read"`` or ``"failed"`` and, when failed, the provider's reason.
``number``, ``name``, ``text``, ``media``
    of an inbound message: the sender in E.164, the name they gave WhatsApp, the text (or a
    media's caption) and the media (``{"data": base64 | "url": ... | "id": ..., "mimetype",
    "filename"}``) when there is one.
``at``
    the provider's Unix time of the event, when it gives one.
"""

import hashlib
import hmac
import json
import re

# what a webhook may carry at most: an image or a voucher in base64 with its envelope
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_EVENTS_PER_REQUEST = 500
KEY_CHARS = 255
TEXT_CHARS = 4096
REASON_CHARS = 500
STATUS_RANK = {"sent": 0, "delivered": 1, "read": 2}
DELIVERY_STATUSES = ("delivered", "read", "failed")


class WebhookRefused(Exception):
    """The request is not from the gateway (bad or missing signature): answer 403, store nothing."""


def _get(data, path):
    """``data`` followed along a dotted path (``"data.key.id"``); None where it stops."""
    for part in path.split(".") if path else ():
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def _text(value, limit=TEXT_CHARS):
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)[:limit]


def _number(jid):
    """``+<digits>`` of a WhatsApp id (``51995955955@s.whatsapp.net``, ``51995955955@c.us``, digits)."""
    text = _text(jid)
    if "@" in text and not text.endswith(("@s.whatsapp.net", "@c.us")):
        return ""  # a group, a broadcast list or a hidden (lid) id: no customer's number
    digits = re.sub(r"\D", "", text.split("@")[0])
    return f"+{digits}" if 6 <= len(digits) <= 15 else ""


def _timestamp(value):
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _signature_matches(expected_hex, key, body, digest):
    if not key or not expected_hex:
        return False
    computed = hmac.new(key.encode(), body, digest).hexdigest()
    return hmac.compare_digest(computed, expected_hex.strip().lower())


class WebhookParser:
    """A gateway without a signature of its own (QRAPI / Whaticket-style, Custom): the secret in
    the URL authenticates it, and a mapping of dotted paths reads its JSON.

    ``mapping`` keys: ``events`` (path of a list of events, empty: the body is one event),
    ``event_id``, ``message_id``, ``status``, ``from_me``, ``from``, ``name``, ``text``,
    ``media_url``, ``media_mimetype``, ``media_filename``, ``timestamp`` (paths inside an event)
    and ``statuses`` (our status -> the values the gateway uses for it).
    """

    preset = "qrapi"
    signature_header = ""
    signature_required = False
    # Whaticket-style gateways post one message with its acknowledgement number
    DEFAULT_MAPPING = {
        "events": "",
        "event_id": "",
        "message_id": "data.id",
        "status": "data.ack",
        "from_me": "data.fromMe",
        "from": "data.number",
        "name": "data.contact.name",
        "text": "data.body",
        "media_url": "data.mediaUrl",
        "media_mimetype": "data.mediaType",
        "media_filename": "",
        "timestamp": "data.timestamp",
        "statuses": {
            "delivered": ["2", "delivered", "DELIVERY_ACK"],
            "read": ["3", "4", "read", "READ"],
            "failed": ["-1", "error", "ERROR"],
        },
    }

    def __init__(self, mapping=None):
        self.mapping = dict(self.DEFAULT_MAPPING, **(mapping or {}))

    def verify(self, headers, body, signing_key):
        """Raise ``WebhookRefused`` unless the request is signed with ``signing_key``: always for a
        provider that always signs, once a key is set for one that signs on request."""
        if not self.signature_header or not (signing_key or self.signature_required):
            return
        if not signing_key:
            raise WebhookRefused("no signing key")
        if not self._signed(headers, body, signing_key):
            raise WebhookRefused("bad signature")

    def _signed(self, headers, body, signing_key):
        return False

    def events(self, payload):
        """The events of a webhook's JSON (at most ``MAX_EVENTS_PER_REQUEST``)."""
        items = _get(payload, self.mapping["events"]) if self.mapping["events"] else [payload]
        if not isinstance(items, list):
            items = [items]
        events = []
        for item in items:
            if isinstance(item, dict):
                event = self._event(item)
                if event:
                    events.append(event)
        return events[:MAX_EVENTS_PER_REQUEST]

    def _event(self, item):
        get = lambda name: _get(item, self.mapping[name]) if self.mapping.get(name) else None  # noqa: E731
        message_id = _text(get("message_id"), KEY_CHARS)
        if not message_id:
            return None
        event_id = _text(get("event_id"), KEY_CHARS)
        if str(get("from_me")).lower() in ("true", "1"):
            status = self._status(get("status"))
            if not status:
                return None
            key = event_id or f"status:{message_id}:{status}"
            return self._status_event(key, message_id, status, at=get("timestamp"))
        media_url = _text(get("media_url"), 2048)
        media = media_url and {
            "url": media_url,
            "mimetype": _text(get("media_mimetype"), 128),
            "filename": _text(get("media_filename"), 255),
        }
        key = event_id or f"message:{message_id}"
        return self._message_event(key, message_id, get("from"), get("name"), get("text"), media, get("timestamp"))

    def _status(self, value):
        value = _text(value).strip()
        for status, values in self.mapping["statuses"].items():
            if status in DELIVERY_STATUSES and value in [str(v) for v in values]:
                return status
        return ""

    @staticmethod
    def _status_event(key, message_id, status, reason="", at=None):
        return {
            "key": key[:KEY_CHARS],
            "kind": "status",
            "message_id": message_id[:KEY_CHARS],
            "status": status,
            "reason": _text(reason, REASON_CHARS),
            "at": _timestamp(at),
        }

    @staticmethod
    def _message_event(key, message_id, sender, name, text, media=None, at=None):
        number = _number(sender)
        if not number:
            return None
        return {
            "key": key[:KEY_CHARS],
            "kind": "message",
            "message_id": message_id[:KEY_CHARS],
            "number": number,
            "name": _text(name, 128),
            "text": _text(text),
            "media": media or None,
            "at": _timestamp(at),
        }


class EvolutionWebhook(WebhookParser):
    """Evolution API (v1 and v2): ``messages.upsert`` (inbound messages, with ``base64`` when the
    instance's webhook sends media in base64) and ``messages.update`` (delivery acknowledgements).

    Evolution signs nothing: the secret in the URL authenticates it.
    """

    preset = "evolution"
    # v2 names the status; v1 numbers it (0 error, 1 pending, 2 server, 3 delivered, 4 read, 5 played)
    STATUSES = {
        "DELIVERY_ACK": "delivered",
        "READ": "read",
        "PLAYED": "read",
        "ERROR": "failed",
        "3": "delivered",
        "4": "read",
        "5": "read",
        "0": "failed",
    }
    MEDIA_KINDS = ("imageMessage", "documentMessage", "audioMessage", "videoMessage", "stickerMessage")

    def events(self, payload):
        if not isinstance(payload, dict):
            return []
        name = _text(payload.get("event")).lower().replace("_", ".")
        items = payload.get("data")
        items = items if isinstance(items, list) else [items]
        events = []
        for item in items:
            if not isinstance(item, dict):
                continue
            if name == "messages.update":
                event = self._update(item)
            elif name == "messages.upsert":
                event = self._upsert(item)
            else:
                event = None
            if event:
                events.append(event)
        return events[:MAX_EVENTS_PER_REQUEST]

    def _update(self, item):
        message_id = _text(item.get("keyId") or _get(item, "key.id"), KEY_CHARS)
        raw = item.get("status", _get(item, "update.status"))
        status = self.STATUSES.get(_text(raw).upper())
        if not message_id or not status:
            return None
        return self._status_event(f"status:{message_id}:{status}", message_id, status, at=item.get("date_time"))

    def _upsert(self, item):
        key = item.get("key") or {}
        message_id = _text(key.get("id"), KEY_CHARS)
        if not message_id or key.get("fromMe"):
            return None  # our own messages come back as upserts too
        message = item.get("message") or {}
        text = message.get("conversation") or _get(message, "extendedTextMessage.text")
        media = None
        for kind in self.MEDIA_KINDS:
            part = message.get(kind)
            if isinstance(part, dict):
                text = text or part.get("caption")
                data = message.get("base64") or item.get("base64")
                media = {
                    "data": data if isinstance(data, str) else "",
                    "mimetype": _text(part.get("mimetype"), 128),
                    "filename": _text(part.get("fileName"), 255),
                }
                break
        return self._message_event(
            f"message:{message_id}",
            message_id,
            key.get("remoteJid"),
            item.get("pushName"),
            text,
            media,
            item.get("messageTimestamp"),
        )


class WahaWebhook(WebhookParser):
    """WAHA: ``message`` (inbound, media as a URL on the WAHA server) and ``message.ack``.

    WAHA signs its webhooks when given an HMAC key: ``X-Webhook-Hmac`` is the hex HMAC-SHA512
    of the body.
    """

    preset = "waha"
    signature_header = "X-Webhook-Hmac"
    ACKS = {"2": "delivered", "3": "read", "4": "read", "-1": "failed"}
    ACK_NAMES = {"DEVICE": "delivered", "READ": "read", "PLAYED": "read", "ERROR": "failed"}

    def _signed(self, headers, body, signing_key):
        return _signature_matches(headers.get("X-Webhook-Hmac"), signing_key, body, hashlib.sha512)

    def events(self, payload):
        if not isinstance(payload, dict) or not isinstance(payload.get("payload"), dict):
            return []
        name, item = _text(payload.get("event")), payload["payload"]
        event_id = _text(payload.get("id"), KEY_CHARS)
        message_id = _text(_get(item, "id._serialized") or item.get("id"), KEY_CHARS)
        if not message_id:
            return []
        if name == "message.ack":
            status = self.ACK_NAMES.get(_text(item.get("ackName")).upper()) or self.ACKS.get(_text(item.get("ack")))
            if not status:
                return []
            key = event_id or f"status:{message_id}:{status}"
            return [self._status_event(key, message_id, status, at=item.get("timestamp"))]
        if name != "message" or item.get("fromMe"):
            return []
        media = None
        if item.get("hasMedia") and isinstance(item.get("media"), dict):
            media = {
                "url": _text(item["media"].get("url"), 2048),
                "mimetype": _text(item["media"].get("mimetype"), 128),
                "filename": _text(item["media"].get("filename"), 255),
            }
        event = self._message_event(
            event_id or f"message:{message_id}",
            message_id,
            item.get("from"),
            _get(item, "_data.notifyName"),
            item.get("body"),
            media,
            item.get("timestamp"),
        )
        return [event] if event else []


class CloudWebhook(WebhookParser):
    """Meta's WhatsApp Cloud API: ``entry[].changes[].value`` carries ``messages`` (inbound, media
    by id) and ``statuses``; every POST is signed: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256
    of the body with the app secret>``.
    """

    preset = "cloud"
    signature_header = "X-Hub-Signature-256"
    signature_required = True
    MEDIA_KINDS = ("image", "document", "audio", "video", "sticker")

    def _signed(self, headers, body, signing_key):
        header = headers.get("X-Hub-Signature-256") or ""
        return header.startswith("sha256=") and _signature_matches(header[7:], signing_key, body, hashlib.sha256)

    def events(self, payload):
        events = []
        for entry in _get(payload, "entry") or []:
            for change in _get(entry, "changes") or []:
                value = _get(change, "value")
                if isinstance(value, dict):
                    events += self._value_events(value)
        return [event for event in events if event][:MAX_EVENTS_PER_REQUEST]

    def _value_events(self, value):
        names = {
            _text(contact.get("wa_id")): _text(_get(contact, "profile.name"), 128)
            for contact in value.get("contacts") or []
            if isinstance(contact, dict)
        }
        events = [self._status(status) for status in value.get("statuses") or [] if isinstance(status, dict)]
        for message in value.get("messages") or []:
            if isinstance(message, dict):
                events.append(self._message(message, names))
        return events

    def _status(self, status):
        message_id, name = _text(status.get("id"), KEY_CHARS), _text(status.get("status"))
        if not message_id or name not in DELIVERY_STATUSES:
            return None
        reason = ""
        for error in status.get("errors") or []:
            if isinstance(error, dict):
                detail = _get(error, "error_data.details") or error.get("message") or error.get("title")
                reason = f"{error.get('code', '')} {_text(detail)}".strip()
                break
        return self._status_event(f"status:{message_id}:{name}", message_id, name, reason, status.get("timestamp"))

    def _message(self, message, names):
        message_id = _text(message.get("id"), KEY_CHARS)
        if not message_id:
            return None
        kind = message.get("type")
        text = (
            _get(message, "text.body")
            or _get(message, "button.text")
            or _get(message, "interactive.button_reply.title")
        )
        media = None
        if kind in self.MEDIA_KINDS and isinstance(message.get(kind), dict):
            part = message[kind]
            text = text or part.get("caption")
            media = {
                "id": _text(part.get("id"), 128),
                "mimetype": _text(part.get("mime_type"), 128),
                "filename": _text(part.get("filename"), 255),
            }
        sender = _text(message.get("from"))
        return self._message_event(
            f"message:{message_id}", message_id, sender, names.get(sender), text, media, message.get("timestamp")
        )


PARSERS = {
    "qrapi": WebhookParser,
    "custom": WebhookParser,
    "evolution": EvolutionWebhook,
    "waha": WahaWebhook,
    "cloud": CloudWebhook,
}


def parse_body(body):
    """The JSON of a webhook's body, or None when it is not JSON."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
