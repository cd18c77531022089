"""The WhatsApp gateways' webhooks (README, "WhatsApp both ways").

``POST /payment_dunning/webhook/<gateway id>/<secret>``: the secret is the gateway's own (shown
to administrators on the gateway form); a preset whose provider signs its requests (WAHA with an
HMAC key, the Cloud API always) must also carry a valid signature. Anything else answers 403 and
stores nothing. The endpoint only stores the events (once per provider event id) and answers; a
job processes them.

``GET`` on the same address answers Meta's subscription check (``hub.verify_token`` is the secret).
"""

import hmac
import json
import logging

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from odoo import http
from odoo.http import request
from odoo.tools import mute_logger

from ..tools.whatsapp_webhook import MAX_BODY_BYTES, PARSERS, WebhookRefused, parse_body

_logger = logging.getLogger(__name__)


def _answer(status, payload):
    return Response(json.dumps(payload), status=status, content_type="application/json")


class WhatsappWebhook(http.Controller):
    @http.route(
        "/payment_dunning/webhook/<int:gateway_id>/<string:secret>",
        type="http",
        auth="public",
        methods=["GET", "POST"],
        csrf=False,
        save_session=False,
    )
    def whatsapp_webhook(self, gateway_id, secret, **kwargs):
        gateway = self._gateway(gateway_id, secret)
        if request.httprequest.method == "GET":
            return self._verify_subscription(gateway, secret, kwargs)
        if not gateway:
            return _answer(403, {"error": "forbidden"})
        body = self._read_body()
        if body is None:
            return _answer(413, {"error": "too large"})
        parser = PARSERS[gateway.preset](gateway._webhook_mapping())
        try:
            parser.verify(request.httprequest.headers, body, gateway.webhook_signing_key)
        except WebhookRefused as refusal:
            _logger.warning("WhatsApp webhook of gateway %s refused: %s", gateway.id, refusal)
            return _answer(403, {"error": "forbidden"})
        payload = parse_body(body)
        if payload is None:
            return _answer(400, {"error": "not JSON"})
        # a second delivery of an event racing the first fails to serialize; Odoo replays the request,
        # which then finds the event stored: not an error worth a log line
        with mute_logger("odoo.sql_db"):
            stored = request.env["payment.dunning.whatsapp.event"].sudo()._store(gateway, parser.events(payload))
        return _answer(200, {"stored": stored})

    @staticmethod
    def _verify_subscription(gateway, secret, params):
        """Meta's subscription check: echo ``hub.challenge`` when ``hub.verify_token`` is the secret."""
        token = params.get("hub.verify_token") or ""
        if not gateway or params.get("hub.mode") != "subscribe" or not hmac.compare_digest(token, secret):
            return Response("forbidden", status=403, content_type="text/plain")
        return Response(params.get("hub.challenge") or "", status=200, content_type="text/plain")

    @staticmethod
    def _gateway(gateway_id, secret):
        """The active gateway whose webhook secret is ``secret`` (compared in constant time), or None.

        Read in one query (with its secret and keys, as superuser): this runs for every request."""
        gateways = request.env["qrapi.connector"].sudo()
        request.env.cr.execute(
            "SELECT webhook_secret FROM qrapi_connector WHERE id = %s AND active AND webhook_secret IS NOT NULL",
            (gateway_id,),
        )
        row = request.env.cr.fetchone()
        if not row or not hmac.compare_digest(row[0].encode(), secret.encode()):
            return None
        return gateways.browse(gateway_id)

    @staticmethod
    def _read_body():
        """The body, or None when it is larger than a webhook may be (read no further than that)."""
        httprequest = request.httprequest
        if httprequest.content_length is not None and httprequest.content_length > MAX_BODY_BYTES:
            return None
        httprequest.max_content_length = MAX_BODY_BYTES  # a chunked body is cut there too
        try:
            # cached: Odoo replays the request after a serialization failure (two deliveries of one event)
            return httprequest.get_data()
        except RequestEntityTooLarge:
            return None
