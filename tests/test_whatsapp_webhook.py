import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta

from freezegun import freeze_time

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import HttpCase, new_test_user, tagged

from .common import LocalGatewayMixin, PaymentDunningCase
from .test_dunning_run import MORNING

# the demo data's customers use the spec's number (+51 995 955 955)
CUSTOMER_JID = "51955501234@s.whatsapp.net"
CUSTOMER_NUMBER = "+51955501234"
NOW = "2026-11-20 15:00:00"


class WebhookCase(LocalGatewayMixin, PaymentDunningCase, HttpCase):
    """Real HTTP POSTs to the running test server, as each gateway sends them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.start_gateway()
        cls.params = cls.env["ir.config_parameter"].sudo()
        connectors = cls.env["qrapi.connector"]
        cls.evolution = connectors.create(
            {
                "name": "Evolution",
                "preset": "evolution",
                "instance": "cobranza",
                "url": cls.gateway.url,
                "api_key": "k1",
            }
        )
        cls.waha = connectors.create(
            {"name": "WAHA", "preset": "waha", "instance": "default", "url": cls.gateway.url, "api_key": "k2"}
        )
        cls.waha.sudo().webhook_signing_key = "waha-hmac-key"
        cls.cloud = connectors.create(
            {"name": "Cloud", "preset": "cloud", "instance": "1234567890", "url": cls.gateway.url, "api_key": "tok"}
        )
        cls.cloud.sudo().webhook_signing_key = "meta-app-secret"
        cls.qrapi = connectors.create({"name": "QRAPI", "url": cls.gateway.url, "api_key": "k3"})
        for connector in connectors.search([]) - (cls.evolution | cls.waha | cls.cloud | cls.qrapi):
            connector.active = False
        cls.template = cls.env.ref("payment_dunning.dunning_template_default")
        cls.queue = cls.env["payment.order.notification"]
        cls.events = cls.env["payment.dunning.whatsapp.event"]
        cls.customer.collection_whatsapp = CUSTOMER_NUMBER
        # the collectors here may edit customers (Odoo's "Contact Creation"): the opt-out rule is ours
        cls.user.groups_id += cls.env.ref("base.group_partner_manager")

    def setUp(self):
        super().setUp()
        self.gateway.requests.clear()
        self.gateway.script.clear()

    def webhook_path(self, connector, secret=None):
        return f"/payment_dunning/webhook/{connector.id}/{secret or connector.sudo().webhook_secret}"

    def post(self, connector, payload, headers=None, secret=None, body=None):
        body = body if body is not None else json.dumps(payload).encode()
        self.env.flush_all()  # the server reads the gateway from the database
        return self.url_open(
            self.webhook_path(connector, secret),
            data=body,
            headers={"Content-Type": "application/json", **(headers or {})},
        )

    def process(self):
        return self.events._cron_process_events()

    def sent_line(self, connector, message_id="wamid.OURS", order=None):
        """A WhatsApp reminder really sent through ``connector`` (the gateway answers ``message_id``)."""
        self.params.set_param("payment_dunning.connector_id", connector.id)
        order = order or self.create_order(due_date="2026-11-10")
        rule = self.template.copy(
            {"attach_statement": False, "whatsapp_template_name": "recordatorio", "is_default": False}
        )
        line = self.queue._queue(rule, order, channels=["whatsapp"])
        self.gateway.script.append((200, {"key": {"id": message_id}, "messages": [{"id": message_id}]}))
        line._send_now()
        self.assertEqual((line.state, line.provider_message_id), ("sent", message_id))
        return line

    def chatter_texts(self, record):
        return [message.body for message in record.message_ids]


@tagged("post_install", "-at_install")
class TestWebhookPresets(WebhookCase):
    @freeze_time(NOW)
    def test_evolution_statuses_move_the_line_forward_once(self):
        line = self.sent_line(self.evolution, "BAE5EVO1")
        delivered = {
            "event": "messages.update",
            "instance": "cobranza",
            "data": {"keyId": "BAE5EVO1", "status": "DELIVERY_ACK"},
        }
        read = {"event": "messages.update", "instance": "cobranza", "data": {"keyId": "BAE5EVO1", "status": "READ"}}
        self.assertEqual(self.post(self.evolution, delivered).json(), {"stored": 1})
        self.assertEqual(self.post(self.evolution, delivered).json(), {"stored": 0}, "the same event is stored once")
        self.process()
        self.assertEqual(line.delivery_status, "delivered")
        self.post(self.evolution, read)
        self.process()
        self.assertEqual(line.delivery_status, "read")
        self.assertTrue(line.read_at and line.delivered_at)
        # a late "delivered" (v1 numbering) after "read" does not move it back
        self.post(
            self.evolution, {"event": "MESSAGES_UPDATE", "data": {"key": {"id": "BAE5EVO1"}, "update": {"status": 3}}}
        )
        self.process()
        self.assertEqual(line.delivery_status, "read")
        self.assertEqual(
            self.events.search_count([("gateway_id", "=", self.evolution.id)]),
            2,
            "the same status in v1 numbering is the same event",
        )

    def test_statuses_of_one_batch_and_a_status_before_its_line(self):
        with freeze_time(NOW):
            first = self.sent_line(self.evolution, "BATCH1")
            second = self.sent_line(self.evolution, "BATCH2")
            for key_id, status in (("BATCH1", "READ"), ("BATCH1", "DELIVERY_ACK"), ("BATCH2", "DELIVERY_ACK")):
                self.post(self.evolution, {"event": "messages.update", "data": {"keyId": key_id, "status": status}})
            # the gateway's status may come before its answer to our send is recorded
            self.post(self.evolution, {"event": "messages.update", "data": {"keyId": "LATER", "status": "READ"}})
            self.assertEqual(self.process(), 4)
        self.assertEqual((first.delivery_status, second.delivery_status), ("read", "delivered"))
        self.assertTrue(first.delivered_at)
        early = self.events.search([("provider_message_id", "=", "LATER")])
        self.assertEqual(early.state, "new", "it waits for its line")
        with freeze_time("2026-11-20 15:02:00"):
            late = self.sent_line(self.evolution, "LATER")
            self.process()
        self.assertEqual((early.state, late.delivery_status), ("done", "read"))
        with freeze_time(NOW):
            self.post(self.evolution, {"event": "messages.update", "data": {"keyId": "NEVER", "status": "READ"}})
        never = self.events.search([("provider_message_id", "=", "NEVER")])
        with freeze_time("2026-11-20 15:11:00"):
            self.process()
        self.assertEqual(never.state, "ignored")

    @freeze_time(NOW)
    def test_evolution_reply_reaches_the_chatter_with_its_image_and_one_activity(self):
        order = self.create_order(due_date="2026-11-10")
        photo = b"\x89PNG voucher bytes"
        self.post(
            self.evolution,
            {
                "event": "messages.upsert",
                "data": {
                    "key": {"remoteJid": CUSTOMER_JID, "fromMe": False, "id": "IN1"},
                    "pushName": "Andina",
                    "message": {"conversation": "Ya pagué ayer"},
                    "messageTimestamp": 1763650800,
                },
            },
        )
        self.post(
            self.evolution,
            {
                "event": "messages.upsert",
                "data": {
                    "key": {"remoteJid": CUSTOMER_JID, "fromMe": False, "id": "IN2"},
                    "message": {
                        "imageMessage": {"caption": "el voucher", "mimetype": "image/png"},
                        "base64": base64.b64encode(photo).decode(),
                    },
                },
            },
        )
        # our own message echoed back is not a reply
        self.post(
            self.evolution,
            {"event": "messages.upsert", "data": {"key": {"remoteJid": CUSTOMER_JID, "fromMe": True, "id": "OUT"}}},
        )
        self.assertEqual(self.process(), 2)
        for record in (self.customer, order):
            bodies = " ".join(self.chatter_texts(record))
            self.assertIn("Ya pagué ayer", bodies)
            self.assertIn("el voucher", bodies)
        image_message = self.customer.message_ids.filtered(lambda m: "el voucher" in m.body)
        self.assertEqual(image_message.attachment_ids.raw, photo)
        self.assertEqual(image_message.author_id, self.customer)
        activities = self.customer.activity_ids.filtered(
            lambda a: a.activity_type_id == self.env.ref("payment_dunning.mail_activity_whatsapp_reply")
        )
        self.assertEqual(len(activities), 1, "one reply to review per customer, however many messages")

    @freeze_time(NOW)
    def test_waha_signed_events_only(self):
        line = self.sent_line(self.waha, "true_51955501234@c.us_AAA")
        body = json.dumps(
            {
                "id": "evt_1",
                "event": "message.ack",
                "session": "default",
                "payload": {"id": "true_51955501234@c.us_AAA", "ack": 3, "ackName": "READ"},
            }
        ).encode()
        signature = hmac.new(b"waha-hmac-key", body, hashlib.sha512).hexdigest()
        self.assertEqual(self.post(self.waha, None, body=body, headers={"X-Webhook-Hmac": "0" * 128}).status_code, 403)
        self.assertEqual(self.post(self.waha, None, body=body).status_code, 403, "unsigned")
        self.assertFalse(self.events.search([("gateway_id", "=", self.waha.id)]), "nothing stored when refused")
        self.assertEqual(self.post(self.waha, None, body=body, headers={"X-Webhook-Hmac": signature}).status_code, 200)
        self.process()
        self.assertEqual(line.delivery_status, "read")

    @freeze_time(NOW)
    def test_waha_media_is_downloaded_from_the_gateway_with_its_key(self):
        body = json.dumps(
            {
                "id": "evt_2",
                "event": "message",
                "session": "default",
                "payload": {
                    "id": "false_51955501234@c.us_BBB",
                    "from": "51955501234@c.us",
                    "fromMe": False,
                    "body": "",
                    "hasMedia": True,
                    "media": {"url": f"{self.gateway.url}/api/files/voucher.jpeg", "mimetype": "image/jpeg"},
                },
            }
        ).encode()
        signature = hmac.new(b"waha-hmac-key", body, hashlib.sha512).hexdigest()
        self.post(self.waha, None, body=body, headers={"X-Webhook-Hmac": signature})
        self.gateway.script.append((200, {"jpeg": "bytes"}))
        self.process()
        download = self.gateway.requests[-1]
        self.assertEqual((download["method"], download["path"]), ("GET", "/api/files/voucher.jpeg"))
        self.assertEqual(download["headers"].get("X-Api-Key"), "k2")
        event = self.events.search([("event_key", "=", "evt_2")])
        self.assertEqual(event.attachment_ids.raw, json.dumps({"jpeg": "bytes"}).encode())
        self.assertEqual(event.partner_ids, self.customer)

    def cloud_post(self, value, secret="meta-app-secret"):
        body = json.dumps(
            {
                "object": "whatsapp_business_account",
                "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": value}]}],
            }
        ).encode()
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return self.post(self.cloud, None, body=body, headers={"X-Hub-Signature-256": signature})

    def test_cloud_subscription_check(self):
        secret = self.cloud.sudo().webhook_secret
        path = self.webhook_path(self.cloud)
        answer = self.url_open(f"{path}?hub.mode=subscribe&hub.verify_token={secret}&hub.challenge=1158201444")
        self.assertEqual((answer.status_code, answer.text), (200, "1158201444"))
        self.assertEqual(
            self.url_open(f"{path}?hub.mode=subscribe&hub.verify_token=no&hub.challenge=1").status_code, 403
        )

    @freeze_time(NOW)
    def test_cloud_failed_status_fails_the_line_with_meta_reason(self):
        line = self.sent_line(self.cloud, "wamid.CLOUD1")
        self.assertEqual(
            self.cloud_post({"statuses": [{"id": "wamid.CLOUD1", "status": "failed"}]}, "wrong").status_code, 403
        )
        self.cloud_post(
            {
                "messaging_product": "whatsapp",
                "statuses": [
                    {
                        "id": "wamid.CLOUD1",
                        "status": "failed",
                        "timestamp": "1763650800",
                        "recipient_id": "51955501234",
                        "errors": [
                            {
                                "code": 131026,
                                "title": "Message undeliverable",
                                "error_data": {"details": "Receiver is incapable of receiving this message"},
                            }
                        ],
                    }
                ],
            }
        )
        self.process()
        self.assertEqual((line.state, line.failure_type), ("failed", "not_delivered"))
        self.assertIn("131026 Receiver is incapable", line.error)
        self.assertIn("131026", " ".join(self.chatter_texts(line.order_ids)))

    def test_cloud_sends_text_inside_the_24_hours_and_the_approved_template_outside(self):
        self.params.set_param("payment_dunning.connector_id", self.cloud.id)
        rule = self.template.copy(
            {
                "is_default": False,
                "attach_statement": False,
                "whatsapp_template_name": "recordatorio_pago",
                "whatsapp_template_lang": "es_PE",
                "whatsapp_template_params": "@variable_nombre, @variable_saldo",
            }
        )
        order = self.create_order(250.0, due_date="2026-11-10")
        with freeze_time("2026-11-20 10:00:00"):
            self.cloud_post(
                {
                    "contacts": [{"wa_id": "51955501234", "profile": {"name": "Andina"}}],
                    "messages": [
                        {
                            "from": "51955501234",
                            "id": "wamid.IN",
                            "type": "image",
                            "image": {"id": "MEDIA1", "mime_type": "image/jpeg"},
                        }
                    ],
                }
            )
            self.gateway.script += [(200, {"url": f"{self.gateway.url}/media/MEDIA1.jpg"}), (200, {"image": 1})]
            self.process()
            event = self.events.search([("event_key", "=", "message:wamid.IN")])
            self.assertEqual(event.attachment_ids.raw, b'{"image": 1}')
            self.assertEqual([r["path"] for r in self.gateway.requests[-2:]], ["/MEDIA1", "/media/MEDIA1.jpg"])
        with freeze_time("2026-11-20 20:00:00"):
            self.queue._queue(rule, order, channels=["whatsapp"])._send_now()
            inside = json.loads(self.gateway.requests[-1]["body"])
        self.assertEqual((inside["type"], inside["to"]), ("text", "51955501234"))
        with freeze_time("2026-11-21 11:00:00"):
            self.queue._queue(rule, order, channels=["whatsapp"])._send_now()
            outside = json.loads(self.gateway.requests[-1]["body"])
        self.assertEqual(self.gateway.requests[-1]["path"], "/1234567890/messages")
        self.assertEqual(outside["type"], "template")
        self.assertEqual(outside["template"]["name"], "recordatorio_pago")
        self.assertEqual(outside["template"]["language"], {"code": "es_PE"})
        parameters = [p["text"] for p in outside["template"]["components"][0]["parameters"]]
        self.assertEqual(parameters[0], "Andina Telecom")
        self.assertIn("250", parameters[1])
        with freeze_time("2026-11-21 11:00:00"):
            line = self.queue._queue(self.template, order, channels=["whatsapp"])
            line._send_now()
        self.assertEqual(line.state, "failed")
        self.assertIn("approved template", line.error)

    @freeze_time(NOW)
    def test_qrapi_default_and_custom_mapping(self):
        line = self.sent_line(self.qrapi, "QR-1")
        self.post(self.qrapi, {"event": "ack", "data": {"id": "QR-1", "fromMe": True, "ack": 3}})
        self.post(self.qrapi, {"data": {"id": "QR-IN", "fromMe": False, "number": "51955501234", "body": "STOP"}})
        self.process()
        self.assertEqual(line.delivery_status, "read")
        self.assertTrue(self.customer.dunning_excluded)
        self.qrapi.webhook_mapping = json.dumps(
            {
                "message_id": "msg.uid",
                "from": "msg.sender",
                "text": "msg.text",
                "from_me": "msg.mine",
                "status": "msg.state",
            }
        )
        self.post(self.qrapi, {"msg": {"uid": "QR-IN-2", "sender": "+51 955 501 234", "text": "hola", "mine": False}})
        self.process()
        self.assertIn("hola", " ".join(self.chatter_texts(self.customer)))
        with self.assertRaises(ValidationError):
            self.qrapi.webhook_mapping = '{"unknown_key": "x"}'


@tagged("post_install", "-at_install")
class TestWebhookRefusals(WebhookCase):
    def test_wrong_secret_unknown_gateway_or_archived_gateway_is_403(self):
        event = {"event": "messages.update", "data": {"keyId": "X", "status": "READ"}}
        self.assertEqual(self.post(self.evolution, event, secret="not-the-secret").status_code, 403)
        self.assertEqual(self.url_open("/payment_dunning/webhook/999999/abc", data=b"{}").status_code, 403)
        archived = self.evolution.copy({"name": "Old"})
        archived.active = False
        self.assertEqual(self.post(archived, event).status_code, 403)
        self.assertFalse(self.events.search([]))

    def test_signing_key_decides_for_waha_and_is_required_for_the_cloud_api(self):
        ack = {"id": "evt_u", "event": "message.ack", "payload": {"id": "true_x", "ack": 3, "ackName": "READ"}}
        unsigned_waha = self.waha.copy({"name": "WAHA without key"})
        self.assertFalse(unsigned_waha.sudo().webhook_signing_key)
        self.assertEqual(self.post(unsigned_waha, ack).status_code, 200, "the secret address alone")
        self.assertEqual(self.post(self.waha, ack).status_code, 403, "a key set: signed requests only")
        cloud = self.cloud.copy({"name": "Cloud without app secret"})
        self.assertEqual(self.post(cloud, {"entry": []}).status_code, 403)

    def test_too_large_or_not_json(self):
        self.assertEqual(self.post(self.evolution, None, body=b"x" * (16 * 1024 * 1024 + 1)).status_code, 413)
        self.assertEqual(self.post(self.evolution, None, body=b"not json").status_code, 400)
        self.assertFalse(self.events.search([]))

    def test_secret_is_for_administrators_only(self):
        connector = self.evolution.with_user(self.manager)
        with self.assertRaises(AccessError):
            connector.read(["webhook_secret"])
        with self.assertRaises(AccessError):
            connector.action_new_webhook_secret()
        old = self.evolution.sudo().webhook_secret
        self.evolution.action_new_webhook_secret()
        self.assertNotEqual(self.evolution.sudo().webhook_secret, old)
        event = {"event": "messages.update", "data": {"keyId": "X", "status": "READ"}}
        self.assertEqual(self.post(self.evolution, event, secret=old).status_code, 403)

    def test_reply_by_whatsapp_stays_in_the_users_companies(self):
        self.create_order(due_date="2026-11-10")
        wizard = (
            self.env["payment.dunning.whatsapp.reply"]
            .with_user(self.user_company_2)
            .with_context(allowed_company_ids=self.company_2.ids)
            .create({"partner_id": self.customer.id, "body": "hola"})
        )
        with self.assertRaises(UserError):
            wizard.action_send()
        self.assertFalse(self.queue.search([("is_reply", "=", True)]), "nothing queued for another company")
        plain = self.env["payment.dunning.whatsapp.reply"].with_user(self.internal_user)
        with self.assertRaises(AccessError):
            plain.create({"partner_id": self.customer.id, "body": "hola"})

    def test_users_cannot_write_what_the_gateway_said(self):
        self.post(
            self.evolution,
            {
                "event": "messages.upsert",
                "data": {
                    "key": {"remoteJid": "51911111111@s.whatsapp.net", "id": "U1"},
                    "message": {"conversation": "?"},
                },
            },
        )
        event = self.events.search([])
        with self.assertRaises(UserError):
            event.with_user(self.user).write({"text": "forged"})
        event.with_user(self.user).write({"review_partner_id": self.customer_2.id})


@tagged("post_install", "-at_install")
class TestRepliesAndOptOut(WebhookCase):
    def reply(self, text, jid=CUSTOMER_JID, message_id="R1"):
        self.post(
            self.evolution,
            {
                "event": "messages.upsert",
                "data": {
                    "key": {"remoteJid": jid, "fromMe": False, "id": message_id},
                    "message": {"conversation": text},
                },
            },
        )
        self.process()
        return self.events.search([("event_key", "=", f"message:{message_id}")])

    def test_unknown_number_waits_for_review_and_links_to_a_customer(self):
        event = self.reply("Hola, soy el contador de Colegio San Martín", jid="51911111111@s.whatsapp.net")
        self.assertEqual((event.review_state, event.partner_ids.ids), ("to_review", []))
        inbox = (
            self.env["payment.dunning.whatsapp.event"].with_user(self.user).search([("review_state", "=", "to_review")])
        )
        self.assertEqual(inbox, event)
        with self.assertRaises(UserError):
            event.with_user(self.user).action_link_customer()
        event.with_user(self.user).review_partner_id = self.customer_2
        event.with_user(self.user).action_link_customer()
        self.assertEqual(event.review_state, "reviewed")
        self.assertIn("contador", " ".join(self.chatter_texts(self.customer_2)))

    def test_opt_out_keyword_excludes_the_customer_until_a_manager_allows_again(self):
        order = self.create_order(due_date="2026-11-10")
        with freeze_time("2026-11-20 15:00:00"):
            automatic = self.queue.create(
                {
                    "order_ids": [(6, 0, order.ids)],
                    "partner_id": self.customer.id,
                    "company_id": self.company.id,
                    "template_id": self.template.id,
                    "channel": "whatsapp",
                    "dedupe_key": "dunning:1:2026-11-20:whatsapp:o1",
                }
            )
            manual = self.queue._queue(self.template, order, channels=["email"])
            self.reply("  ¡Baja!  ")
        self.assertTrue(self.customer.dunning_excluded)
        self.assertEqual(self.customer.dunning_opt_out_date, datetime(2026, 11, 20, 15, 0))
        self.assertEqual(self.customer.dunning_opt_out_message, "  ¡Baja!  ")
        self.assertEqual(automatic.state, "cancelled", "queued automatic reminders are cancelled")
        self.assertEqual(manual.state, "queued", "a clerk's own message is not")
        self.assertIn("Opted out", " ".join(self.chatter_texts(self.customer)))
        self.assertFalse(self.reply("no me des de baja todavía", message_id="R2").opt_out, "only the keyword itself")
        with self.assertRaises(UserError):
            self.customer.with_user(self.user).dunning_excluded = False
        with self.assertRaises(UserError):
            self.customer.with_user(self.user).action_collection_opt_in()
        self.customer.with_user(self.manager).action_collection_opt_in()
        self.assertFalse(self.customer.dunning_excluded or self.customer.dunning_opt_out_date)


@tagged("post_install", "-at_install")
class TestWeeklyCap(LocalGatewayMixin, PaymentDunningCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.start_local_channels()
        cls.params = cls.env["ir.config_parameter"].sudo()
        cls.env.ref("payment_dunning.dunning_template_before_due").active = False
        cls.company.write({"dunning_window_start": 0.0, "dunning_window_end": 24.0, "dunning_send_sun": True})
        cls.rule = cls.env["dunning.template"].create(
            {
                "name": "Mora diaria",
                "auto_send": True,
                "days_from": 1,
                "open_end": True,
                "interval_days": 1,
                "channel_email": False,
                "channel_whatsapp": True,
                "send_mode": "order",
                "attach_statement": False,
                "body": "Debe @variable_saldo (@variable_orden)",
                "company_id": cls.company.id,
            }
        )
        cls.queue = cls.env["payment.order.notification"]

    def run_on(self, day):
        with freeze_time(f"{day} {MORNING}"):
            return self.env["dunning.template"]._dunning_run()

    def test_dunning_run_queues_at_most_the_weekly_cap_per_customer(self):
        for _index in range(5):
            self.create_order(due_date="2026-11-01")
        self.create_order(due_date="2026-11-01", partner=self.customer_2)
        self.customer_2.collection_whatsapp = "+51911111111"
        with freeze_time(f"2026-11-20 {MORNING}"):
            title = self.rule.action_preview_run()["name"]
        self.assertIn("2 held by the weekly cap", title)
        self.assertEqual(self.run_on("2026-11-20"), 4, "3 of the first customer's 5 orders, 1 of the second's")
        self.assertEqual(self.run_on("2026-11-21"), 1, "the first customer's week is full, the second's is not")
        self.params.set_param("payment_dunning.weekly_cap", 0)
        self.assertEqual(self.run_on("2026-11-22"), 6, "no cap")

    def test_send_queue_holds_a_message_over_the_cap(self):
        self.params.set_param("payment_dunning.weekly_cap", 2)
        orders = [self.create_order(due_date="2026-11-01") for _index in range(3)]
        self.run_on("2026-11-16")
        with freeze_time("2026-11-16 16:00:00"):
            self.queue._cron_send_queue()
        self.assertEqual(len(self.whatsapp_texts()), 2)
        # the cap lowered to 1 after a run queued within the old one: the queue still keeps to it
        self.params.set_param("payment_dunning.weekly_cap", 3)
        self.assertEqual(self.run_on("2026-11-17"), 1)
        self.params.set_param("payment_dunning.weekly_cap", 2)
        with freeze_time("2026-11-17 16:00:00"):
            self.queue._cron_send_queue()
        held = self.queue.search([("state", "=", "queued"), ("order_ids", "in", [o.id for o in orders])])
        self.assertEqual(len(held), 1)
        self.assertEqual(len(self.whatsapp_texts()), 2, "nothing more went out")
        self.assertEqual(held.next_attempt_at, datetime(2026, 11, 16, 16, 0) + timedelta(days=7))
        self.assertIn("Weekly cap", held.error)
        with freeze_time("2026-11-23 16:00:01"):
            self.queue._cron_send_queue()
        self.assertEqual(held.state, "sent")


@tagged("post_install", "-at_install")
class TestWhatsappReplyTour(WebhookCase):
    def test_collector_sees_the_reply_in_the_chatter_and_answers_it(self):
        new_test_user(
            self.env,
            "replier",
            groups="base.group_user,payment_dunning.group_payment_dunning_user",
            company_id=self.company.id,
            company_ids=[(6, 0, self.company.ids)],
        )
        self.params.set_param("payment_dunning.connector_id", self.evolution.id)
        order = self.create_order(due_date="2026-11-10")
        self.post(
            self.evolution,
            {
                "event": "messages.upsert",
                "data": {
                    "key": {"remoteJid": CUSTOMER_JID, "fromMe": False, "id": "TOUR1"},
                    "message": {"conversation": "Ya pagué, le mando el voucher"},
                },
            },
        )
        self.process()
        self.gateway.requests.clear()
        self.start_tour(
            f"/odoo/action-payment_dunning.action_payment_order/{order.id}",
            "payment_dunning_whatsapp_reply_tour",
            login="replier",
        )
        sent = [json.loads(request["body"]) for request in self.gateway.requests]
        self.assertEqual(sent, [{"number": CUSTOMER_NUMBER[1:], "text": "Gracias, lo revisamos hoy mismo."}])
        line = order.notification_ids.filtered("is_reply")
        self.assertEqual(
            (line.state, line.channel, line.body), ("sent", "whatsapp", "Gracias, lo revisamos hoy mismo.")
        )
        review = self.env.ref("payment_dunning.mail_activity_whatsapp_reply")
        self.assertFalse(self.customer.activity_ids.filtered(lambda a: a.activity_type_id == review), "answered")
