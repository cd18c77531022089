import json
import re
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from odoo import api, fields, models
from odoo.exceptions import AccessError, ValidationError
from odoo.tools import SQL

from ..tools import MAX_TIMEOUT, TRANSPORTS
from ..tools.http_deadline import Allowlist, ip_literal, is_hostname, is_public
from ..tools.whatsapp_api import GatewaySettings
from ..tools.whatsapp_webhook import WebhookParser

# hosts and networks (CIDR) that gateways may be reached at although they are not public; set by
# administrators in Settings (see http_deadline for the policy)
ALLOWLIST_PARAM = "payment_dunning.outbound_allowlist"
# an HTTP header name (RFC 9110 token)
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

# Request shapes of the WhatsApp gateways we know. QRAPI's API is not public: its default is the
# shape of Whaticket-style per-connection gateways, which have no status endpoint (Test connection
# then sends a real message to a number the user checks).
PRESETS = {
    "qrapi": {
        "text_path": "/api/messages/send",
        "status_path": "",
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
    # Meta's WhatsApp Cloud API: the phone number id is the instance, the permanent token the key
    "cloud": {
        "text_path": "/{instance}/messages",
        "status_path": "/{instance}",
        "auth_header": "Authorization",
        "auth_prefix": "Bearer ",
        "number_field": "to",
        "text_field": "text",
        "number_suffix": "",
        "session_field": "",
    },
}
CLOUD_API_URL = "https://graph.facebook.com/v21.0"
SHAPE_FIELDS = ("instance", *PRESETS["qrapi"])
# where the API key goes and what carries it: guarded like the key itself
KEY_ROUTE_FIELDS = ("url", "preset", "instance", "text_path", "status_path", "auth_header", "auth_prefix")


class QrapiConnector(models.Model):
    _name = "qrapi.connector"
    _description = "WhatsApp Gateway (QRAPI)"

    name = fields.Char(required=True, default="QRAPI")
    active = fields.Boolean(default=True)
    company_id = fields.Many2one("res.company", index=True, help="Empty: every company.")
    url = fields.Char(
        string="Client URL",
        required=True,
        help="Your gateway's address, e.g. https://cliente1.qrapi.com (without a trailing slash). A gateway on "
        "your own network must be in the outbound allowlist of Settings.",
    )
    api_key = fields.Char(
        string="API Key",
        groups="base.group_system",
        copy=False,
        help="Key of your connected WhatsApp number. Only administrators can read it.",
    )
    timeout = fields.Integer(
        default=15,
        help="Most seconds one request to the gateway may take in all (connecting, sending and reading "
        "the answer); at most 120.",
    )
    retries = fields.Integer(
        default=3,
        help="Further attempts of a message after a busy gateway, an error 5xx or a timeout; the send queue "
        "spaces them out (5, 10, 20... minutes).",
    )
    rate_limit = fields.Integer(
        string="Messages per Minute",
        default=60,
        help="At most this many messages a minute, counted over every Odoo worker; a message over the "
        "limit waits in the queue. 0 for no limit.",
    )
    preset = fields.Selection(
        [
            ("qrapi", "QRAPI / Whaticket"),
            ("evolution", "Evolution API"),
            ("waha", "WAHA"),
            ("cloud", "WhatsApp Cloud API (Meta)"),
            ("custom", "Custom"),
        ],
        default="qrapi",
        required=True,
        help="Fills in the request shape of the advanced section.",
    )
    instance = fields.Char(
        help="Instance (Evolution API) or session (WAHA) name, or phone number id (WhatsApp Cloud API), used as "
        "{instance}."
    )
    text_path = fields.Char(default=PRESETS["qrapi"]["text_path"], required=True)
    status_path = fields.Char(
        default=PRESETS["qrapi"]["status_path"],
        help="Read with the key by Test connection. Empty (or the send path): Test connection sends a real "
        "message to a number you check instead.",
    )
    auth_header = fields.Char(default=PRESETS["qrapi"]["auth_header"], required=True)
    auth_prefix = fields.Char(default=PRESETS["qrapi"]["auth_prefix"], help="Text before the key, e.g. 'Bearer '.")
    number_field = fields.Char(default=PRESETS["qrapi"]["number_field"], required=True)
    text_field = fields.Char(default=PRESETS["qrapi"]["text_field"], required=True)
    number_suffix = fields.Char(default="", help="Added after the digits of the number, e.g. @c.us for WAHA.")
    session_field = fields.Char(default="", help="JSON field that carries the instance name, e.g. session.")
    webhook_secret = fields.Char(
        groups="base.group_system",
        copy=False,
        default=lambda self: secrets.token_urlsafe(24),
        help="Part of the webhook address: a request without it is refused. Only administrators can read it.",
    )
    webhook_url = fields.Char(
        string="Webhook Address",
        compute="_compute_webhook_url",
        groups="base.group_system",
        help="Give this address to the gateway as its webhook (for the Cloud API, the secret is also the "
        "verify token).",
    )
    webhook_signing_key = fields.Char(
        string="Webhook Signing Key",
        groups="base.group_system",
        copy=False,
        help="The key the provider signs its webhooks with: the app secret of the Cloud API (required), the HMAC "
        "key of WAHA (when set, unsigned requests are refused). Only administrators can read it.",
    )
    webhook_mapping = fields.Text(
        help="QRAPI and Custom gateways: where their webhook JSON carries each value, as JSON of dotted paths "
        '(README, "WhatsApp both ways"). Empty: the Whaticket-style default.'
    )

    @api.onchange("preset")
    def _onchange_preset(self):
        if self.preset in PRESETS:
            self.update(PRESETS[self.preset])
        if self.preset == "cloud" and not self.url:
            self.url = CLOUD_API_URL

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._prepare_vals(vals)
        return super().create(vals_list)

    def write(self, vals):
        self._prepare_vals(vals)
        self._check_key_route_change(vals)
        return super().write(vals)

    def _check_key_route_change(self, vals):
        """Only an administrator (who may read the key) may change where an existing key is sent."""
        if self.env.su or self.env.user._is_system():
            return
        changed = [
            name
            for name in KEY_ROUTE_FIELDS
            if name in vals and any((connector[name] or "") != (vals[name] or "") for connector in self)
        ]
        if changed:
            raise AccessError(
                self.env._(
                    "Only an administrator can change where the gateway's API key is sent (%s).",
                    ", ".join(self._fields[name].get_description(self.env)["string"] for name in changed),
                )
            )

    @api.depends("webhook_secret")
    def _compute_webhook_url(self):
        base = self.env["ir.config_parameter"].sudo().get_param("web.base.url", "")
        for connector in self:
            connector.webhook_url = (
                f"{base}/payment_dunning/webhook/{connector.id}/{connector.webhook_secret}"
                if connector.id and connector.webhook_secret
                else False
            )

    def action_new_webhook_secret(self):
        """A new secret: the old webhook address stops working (give the gateway the new one)."""
        if not self.env.user._is_system():
            raise AccessError(self.env._("Only an administrator can change the webhook secret."))
        for connector in self:
            connector.sudo().webhook_secret = secrets.token_urlsafe(24)
        return True

    def _webhook_mapping(self):
        """The dotted paths the QRAPI / Custom webhook JSON is read with (the default completed)."""
        self.ensure_one()
        try:
            mapping = json.loads(self.webhook_mapping or "{}")
        except ValueError:
            return {}
        return mapping if isinstance(mapping, dict) else {}

    @api.constrains("webhook_mapping")
    def _check_webhook_mapping(self):
        for connector in self:
            if not connector.webhook_mapping:
                continue
            try:
                mapping = json.loads(connector.webhook_mapping)
            except ValueError:
                mapping = None
            if not isinstance(mapping, dict) or not set(mapping) <= set(WebhookParser.DEFAULT_MAPPING):
                raise ValidationError(
                    self.env._(
                        "The webhook mapping must be a JSON object whose keys are among: %s.",
                        ", ".join(WebhookParser.DEFAULT_MAPPING),
                    )
                )

    @api.model
    def _prepare_vals(self, vals):
        if vals.get("preset") == "cloud":
            vals.setdefault("url", CLOUD_API_URL)
        if vals.get("preset") in PRESETS:
            for key, value in PRESETS[vals["preset"]].items():
                vals.setdefault(key, value)
        if vals.get("url"):
            vals["url"] = vals["url"].strip().rstrip("/")
        if vals.get("api_key"):
            vals["api_key"] = vals["api_key"].strip()

    @api.model
    def _outbound_allowlist(self):
        """The allowlist of the outbound policy (its invalid entries, set by hand, allow nothing)."""
        return Allowlist.parse(self.env["ir.config_parameter"].sudo().get_param(ALLOWLIST_PARAM, ""), strict=False)

    @api.constrains("url")
    def _check_url(self):
        """What the URL alone tells: a web address, https or an allowed host, no user name or password.

        Where a host name leads is checked when a request goes out (``http_deadline``).
        """
        allowlist = self._outbound_allowlist()
        for connector in self:
            url = connector.url or ""
            try:
                parts = urlsplit(url)
                valid_port = parts.port != 0  # parts.port raises ValueError when out of range
            except ValueError:
                parts, valid_port = None, False
            host = parts and parts.hostname
            if (
                not valid_port
                or parts.scheme not in ("http", "https")
                or not host
                or parts.query
                or parts.fragment
                or re.search(r"[\s\x00-\x1f\x7f]", url)
                or not (is_hostname(host) or ip_literal(host))
            ):
                raise ValidationError(
                    self.env._("The client URL %s is not a web address such as https://cliente1.qrapi.com.", url)
                )
            if "@" in parts.netloc:
                raise ValidationError(
                    self.env._("The client URL cannot carry a user name or password: the API key has its own field.")
                )
            if parts.scheme == "http" and not allowlist.allows_host(host):
                raise ValidationError(
                    self.env._(
                        "The client URL must use https (the API key travels with every message); plain http is "
                        "only for hosts in the outbound allowlist (Settings > Collections)."
                    )
                )
            address = ip_literal(host)
            if address is not None and not is_public(address) and not allowlist.allows_address(address):
                raise ValidationError(
                    self.env._(
                        "The client URL points to %s, which is not a public address: an administrator must add it "
                        "to the outbound allowlist (Settings > Collections) first.",
                        address,
                    )
                )

    @api.constrains("auth_header", "auth_prefix", "api_key")
    def _check_auth_header(self):
        for connector in self.sudo():
            if not HEADER_NAME.match(connector.auth_header or "") or re.search(
                r"[\x00-\x1f\x7f]", (connector.auth_prefix or "") + (connector.api_key or "")
            ):
                raise ValidationError(
                    self.env._(
                        "The authentication header must be a header name such as Authorization, and the API key "
                        "and its prefix cannot contain line breaks."
                    )
                )

    @api.constrains("timeout", "retries", "rate_limit")
    def _check_numbers(self):
        for connector in self:
            if not 0 < connector.timeout <= MAX_TIMEOUT or connector.retries < 0 or connector.rate_limit < 0:
                raise ValidationError(
                    self.env._(
                        "The timeout is between 1 and %s seconds; retries and messages per minute cannot be "
                        "negative.",
                        MAX_TIMEOUT,
                    )
                )

    # ------------------------------------------------------------------ sending

    def _api(self):
        """The transport of this gateway's preset, with its settings (the key read as superuser)."""
        self.ensure_one()
        connector = self.sudo()
        settings = GatewaySettings(
            name=connector.name,
            url=connector.url,
            api_key=connector.api_key or "",
            timeout=connector.timeout,
            allowlist=self._outbound_allowlist(),
            **{name: connector[name] or "" for name in SHAPE_FIELDS},
        )
        return TRANSPORTS[connector.preset](self.env, settings)

    def send_text(self, number, text):
        """Send ``text`` to ``number`` (E.164) in one attempt; return the gateway's message id."""
        return self._api().send_text(number, text)

    def send_document(self, number, filename, content, caption=""):
        """Send a file (bytes) with a caption in one attempt; return the gateway's message id."""
        return self._api().send_document(number, filename, content, caption)

    def _in_service_window(self, number):
        """Whether ``number`` wrote to this gateway in the last 24 hours (WhatsApp's customer service
        window, inside which free text may be sent)."""
        self.ensure_one()
        self.env.cr.execute(
            SQL(
                "SELECT 1 FROM payment_dunning_whatsapp_event WHERE gateway_id = %s AND number = %s "
                "AND kind = 'message' AND create_date > %s LIMIT 1",
                self.id,
                number,
                fields.Datetime.now() - timedelta(hours=24),
            )
        )
        return bool(self.env.cr.fetchone())

    def _rate_wait(self, now, rate_limit):
        """Seconds until this gateway may take one more message (0: now), counted over every worker.

        The rate is read from the communication log (attempts of the last minute), so two Odoo
        processes share one limit; the caller holds this gateway's advisory lock while it counts.
        """
        self.ensure_one()
        if not rate_limit:
            return 0
        self.env.cr.execute(
            SQL(
                """
                SELECT count(*), min(attempted_at) FROM (
                    SELECT attempted_at FROM payment_order_notification
                     WHERE gateway_id = %s AND attempted_at > %s
                     ORDER BY attempted_at DESC LIMIT %s) recent
                """,
                self.id,
                now - timedelta(seconds=60),
                rate_limit,
            )
        )
        count, oldest = self.env.cr.fetchone()
        if count < rate_limit:
            return 0
        return max((oldest + timedelta(seconds=60) - now).total_seconds(), 0.1)

    def action_test_connection(self):
        """Prove that the gateway takes the API key: its status endpoint read with the key when the
        preset has one, else a real message to a number the user checks (a wizard).

        Nothing short of that proves the key: an empty message may be refused before the key is read.
        """
        self.ensure_one()
        self.check_access("write")
        api = self._api()
        if not api.has_status_endpoint():
            return self.env["qrapi.connector.test"]._open_for(self)
        state = api.check_status()
        proof = self.env._(
            "Proof: the status endpoint %(path)s of %(url)s answered with the API key.",
            path=api.status_path(),
            url=self.url,
        )
        if state:
            proof += " " + self.env._("The gateway reports the WhatsApp number as: %s.", state)
        return result_notification("success", self.env._("Connection OK"), proof)


def result_notification(kind, title, message, sticky=False):
    return {
        "type": "ir.actions.client",
        "tag": "display_notification",
        "params": {"type": kind, "title": title, "message": message, "sticky": sticky},
    }
