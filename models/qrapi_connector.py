import base64
import collections
import logging
import mimetypes
import re
import threading
import time

import requests

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

_logger = logging.getLogger(__name__)

LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")

# Request shapes of the WhatsApp gateways we know. QRAPI's API is not public: its default is the
# shape of Whaticket-style per-connection gateways.
PRESETS = {
    "qrapi": {
        "text_path": "/api/messages/send",
        "status_path": "/api/messages/send",
        "auth_header": "Authorization",
        "auth_prefix": "Bearer ",
        "number_field": "number",
        "text_field": "body",
        "number_suffix": "",
        "session_field": "",
    },
    "evolution": {
        "text_path": "/message/sendText/{instance}",
        "status_path": "/instance/connectionState/{instance}",
        "auth_header": "apikey",
        "auth_prefix": "",
        "number_field": "number",
        "text_field": "text",
        "number_suffix": "",
        "session_field": "",
    },
    "waha": {
        "text_path": "/api/sendText",
        "status_path": "/api/sessions/{instance}",
        "auth_header": "X-Api-Key",
        "auth_prefix": "",
        "number_field": "chatId",
        "text_field": "text",
        "number_suffix": "@c.us",
        "session_field": "session",
    },
}
RETRIABLE_STATUSES = {429, 500, 502, 503, 504}
REPLY_ID_KEYS = ("id", "messageId", "message_id", "msgId")


class QrapiError(UserError):
    """A gateway failure; ``retriable`` tells whether a later attempt may succeed."""

    def __init__(self, message, retriable=False):
        super().__init__(message)
        self.retriable = retriable


class QrapiConnector(models.Model):
    _name = "qrapi.connector"
    _description = "WhatsApp Gateway (QRAPI)"

    # sending times per connector, for the per-minute rate limit of this process
    _sent_times = collections.defaultdict(collections.deque)
    _rate_lock = threading.Lock()

    name = fields.Char(required=True, default="QRAPI")
    active = fields.Boolean(default=True)
    company_id = fields.Many2one("res.company", index=True, help="Empty: every company.")
    url = fields.Char(
        string="Client URL",
        required=True,
        help="Your gateway's address, e.g. https://cliente1.qrapi.com (without a trailing slash).",
    )
    api_key = fields.Char(
        string="API Key",
        groups="base.group_system",
        copy=False,
        help="Key of your connected WhatsApp number. Only administrators can read it.",
    )
    timeout = fields.Integer(default=15, help="Seconds to wait for the gateway.")
    retries = fields.Integer(default=3, help="Further attempts after a busy gateway, an error 5xx or a timeout.")
    rate_limit = fields.Integer(
        string="Messages per Minute", default=60, help="At most this many messages a minute; 0 for no limit."
    )
    preset = fields.Selection(
        [
            ("qrapi", "QRAPI / Whaticket"),
            ("evolution", "Evolution API"),
            ("waha", "WAHA"),
            ("custom", "Custom"),
        ],
        default="qrapi",
        required=True,
        help="Fills in the request shape of the advanced section.",
    )
    instance = fields.Char(help="Instance (Evolution API) or session (WAHA) name, used as {instance}.")
    text_path = fields.Char(default=PRESETS["qrapi"]["text_path"], required=True)
    status_path = fields.Char(default=PRESETS["qrapi"]["status_path"], help="Checked by Test connection.")
    auth_header = fields.Char(default=PRESETS["qrapi"]["auth_header"], required=True)
    auth_prefix = fields.Char(default=PRESETS["qrapi"]["auth_prefix"], help="Text before the key, e.g. 'Bearer '.")
    number_field = fields.Char(default=PRESETS["qrapi"]["number_field"], required=True)
    text_field = fields.Char(default=PRESETS["qrapi"]["text_field"], required=True)
    number_suffix = fields.Char(default="", help="Added after the digits of the number, e.g. @c.us for WAHA.")
    session_field = fields.Char(default="", help="JSON field that carries the instance name, e.g. session.")

    @api.onchange("preset")
    def _onchange_preset(self):
        if self.preset in PRESETS:
            self.update(PRESETS[self.preset])

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._prepare_vals(vals)
        return super().create(vals_list)

    def write(self, vals):
        self._prepare_vals(vals)
        return super().write(vals)

    @api.model
    def _prepare_vals(self, vals):
        if vals.get("preset") in PRESETS:
            for key, value in PRESETS[vals["preset"]].items():
                vals.setdefault(key, value)
        if vals.get("url"):
            vals["url"] = vals["url"].strip().rstrip("/")

    @api.constrains("url")
    def _check_url(self):
        for connector in self:
            match = re.match(r"^(https?)://([^/:]+|\[::1\])(:\d+)?(/.*)?$", connector.url or "")
            if not match:
                raise ValidationError(
                    self.env._(
                        "The client URL %s is not a web address such as https://cliente1.qrapi.com.",
                        connector.url,
                    )
                )
            if match.group(1) == "http" and match.group(2) not in LOCAL_HOSTS:
                raise ValidationError(
                    self.env._("The client URL must use https (the API key travels with every message).")
                )

    @api.constrains("timeout", "retries", "rate_limit")
    def _check_numbers(self):
        for connector in self:
            if connector.timeout <= 0 or connector.retries < 0 or connector.rate_limit < 0:
                raise ValidationError(
                    self.env._("Timeout must be positive; retries and messages per minute cannot be negative.")
                )

    # ------------------------------------------------------------------ sending

    def send_text(self, number, text):
        """Send ``text`` to ``number`` (E.164); return the gateway's message id."""
        self.ensure_one()
        payload = self._recipient_payload(number)
        payload[self.text_field] = text
        return self._send(self._path(self.text_path), json_payload=payload)

    def send_document(self, number, filename, content, caption=""):
        """Send a file (bytes) with a caption; return the gateway's message id."""
        self.ensure_one()
        mimetype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        if self.preset == "evolution":
            payload = self._recipient_payload(number) | {
                "mediatype": "document",
                "mimetype": mimetype,
                "fileName": filename,
                "caption": caption,
                "media": base64.b64encode(content).decode(),
            }
            return self._send(self._path("/message/sendMedia/{instance}"), json_payload=payload)
        if self.preset == "waha":
            payload = self._recipient_payload(number) | {
                "caption": caption,
                "file": {
                    "mimetype": mimetype,
                    "filename": filename,
                    "data": base64.b64encode(content).decode(),
                },
            }
            return self._send(self._path("/api/sendFile"), json_payload=payload)
        data = self._recipient_payload(number)
        data[self.text_field] = caption
        files = {"medias": (filename, content, mimetype)}
        return self._send(self._path(self.text_path), data=data, files=files)

    def _recipient_payload(self, number):
        digits = re.sub(r"\D", "", number or "")
        if not digits:
            raise QrapiError(self.env._("The customer has no WhatsApp number."))
        payload = {self.number_field: digits + (self.number_suffix or "")}
        if self.session_field:
            payload[self.session_field] = self.instance or "default"
        return payload

    def _path(self, path):
        return (path or "").replace("{instance}", self.instance or "")

    def _headers(self):
        key = self.sudo().api_key or ""
        return {self.auth_header: f"{self.auth_prefix or ''}{key}"}

    def _send(self, path, json_payload=None, data=None, files=None):
        """POST with retries and back-off; only the reason, never the key, goes in errors and logs."""
        attempts = 1 if self.env.context.get("qrapi_single_attempt") else self.retries + 1
        for attempt in range(1, attempts + 1):
            self._wait_for_rate_limit()
            try:
                return self._post_once(path, json_payload, data, files)
            except QrapiError as error:
                if not error.retriable or attempt == attempts:
                    raise
                delay = min(2 ** (attempt - 1), 30) * self.env.context.get("qrapi_backoff_factor", 1.0)
                _logger.info(
                    "WhatsApp gateway %s busy (%s); retry %d in %.2fs",
                    self.name,
                    error.args[0],
                    attempt,
                    delay,
                )
                time.sleep(delay)
        return ""  # not reached: the last attempt returns or raises

    def _post_once(self, path, json_payload, data, files):
        try:
            response = requests.post(
                self.url + path,
                json=json_payload,
                data=data,
                files=files,
                headers=self._headers(),
                timeout=self.timeout,
            )
        except requests.Timeout as error:
            raise QrapiError(
                self.env._("The WhatsApp gateway did not answer within %s seconds.", self.timeout),
                retriable=True,
            ) from error
        except requests.RequestException as error:
            raise QrapiError(
                self.env._("The WhatsApp gateway cannot be reached: %s", self._redact(str(error))),
                retriable=True,
            ) from error
        self._raise_for_status(response)
        return self._reply_id(response)

    def _raise_for_status(self, response):
        status = response.status_code
        if 200 <= status < 300:
            return
        detail = self._redact(response.text[:300])
        if status in (401, 403):
            raise QrapiError(
                self.env._(
                    "API key rejected by the WhatsApp gateway (HTTP %(status)s): %(detail)s",
                    status=status,
                    detail=detail,
                )
            )
        if status == 404:
            raise QrapiError(
                self.env._(
                    "The WhatsApp gateway answered 404: check the client URL (%(url)s). %(detail)s",
                    url=self.url,
                    detail=detail,
                )
            )
        raise QrapiError(
            self.env._("The WhatsApp gateway answered HTTP %(status)s: %(detail)s", status=status, detail=detail),
            retriable=status in RETRIABLE_STATUSES,
        )

    def _redact(self, text):
        key = self.sudo().api_key
        return text.replace(key, "***") if key else text

    @api.model
    def _reply_id(self, response):
        try:
            reply = response.json()
        except ValueError:
            return ""
        for candidate in (
            reply,
            reply.get("key") if isinstance(reply, dict) else None,
            reply.get("message") if isinstance(reply, dict) else None,
        ):
            if isinstance(candidate, dict):
                for key in REPLY_ID_KEYS:
                    if candidate.get(key):
                        value = candidate[key]
                        return value.get("_serialized", "") if isinstance(value, dict) else str(value)
        return ""

    def _wait_for_rate_limit(self):
        if not self.rate_limit:
            return
        with self._rate_lock:
            sent = self._sent_times[self.id]
            now = time.monotonic()
            while sent and now - sent[0] >= 60:
                sent.popleft()
            if len(sent) >= self.rate_limit:
                wait = 60 - (now - sent[0])
                time.sleep(max(wait, 0))
                sent.popleft()
            sent.append(time.monotonic())

    def action_test_connection(self):
        """Ask the gateway for its status with the key; report success or the exact reason."""
        self.ensure_one()
        try:
            response = requests.get(
                self.url + self._path(self.status_path), headers=self._headers(), timeout=self.timeout
            )
        except requests.RequestException as error:
            raise UserError(
                self.env._("The WhatsApp gateway cannot be reached: %s", self._redact(str(error)))
            ) from error
        if response.status_code != 405:  # the send path of Whaticket-style gateways only takes POST
            self._raise_for_status(response)
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "title": self.env._("Connection OK"),
                "message": self.env._("The WhatsApp gateway %s accepted the API key.", self.url),
                "sticky": False,
            },
        }
