from datetime import timedelta
from unittest.mock import patch

from freezegun import freeze_time

import odoo
from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import LocalGatewayMixin, PaymentDunningCase, start_smtp_sink


@tagged("post_install", "-at_install")
class TestNotify(LocalGatewayMixin, PaymentDunningCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.start_gateway()
        cls.sink, cls.mail_server = start_smtp_sink(cls)
        cls.connector = cls.env["qrapi.connector"].create(
            {"name": "Local gateway", "url": cls.gateway.url, "api_key": "secret-key", "rate_limit": 0, "retries": 2}
        )
        cls.company.email = "cobranzas@lima.example.com"
        cls.customer.collection_contact_name = "María"

    def setUp(self):
        super().setUp()
        self.gateway.requests.clear()
        self.gateway.script.clear()
        self.sink.messages.clear()
        # Odoo skips the SMTP conversation in test mode; these tests check what a real server receives.
        patcher = patch.object(odoo.modules.module, "current_test", None)
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_notify_sends_email_and_whatsapp_and_logs_them(self):
        order = self.create_order(250.0, due_date="2026-12-05", concept="Internet 300 Mbps")
        result = order.with_user(self.user).action_notify()
        self.assertEqual(result["params"]["type"], "success", result["params"]["message"])
        notifications = order.notification_ids
        self.assertEqual(sorted(notifications.mapped("channel")), ["email", "whatsapp"])
        self.assertEqual(set(notifications.mapped("state")), {"sent"})
        self.assertEqual(order.notification_count, 2)
        self.assertTrue(order.last_notification_date)
        # WhatsApp: the rendered text of the default template
        sent = self.gateway.json()
        self.assertEqual(sent["number"], "51995955955")
        self.assertIn("Hola Andina Telecom", sent["body"])
        self.assertIn("Plan *Internet 300 Mbps*", sent["body"])
        # Email: received by the SMTP server, to the collection email, with bold HTML
        self.assertEqual(len(self.sink.messages), 1)
        recipients, message = self.sink.messages[0]
        self.assertEqual(recipients, ["cobranzas@andina.example.com"])
        self.assertEqual(message["Subject"], f"Recordatorio de pago {order.name} - Cobranzas Lima")
        html = message.get_body(("html",)).get_content()
        self.assertIn("<b>Internet 300 Mbps</b>", html)
        self.assertIn("Hola Andina Telecom", html)
        # the customer's Communications button lists both
        action = self.customer.action_view_communications()
        self.assertEqual(self.env["payment.order.notification"].search(action["domain"]), notifications)
        # Chatter
        bodies = order.message_ids.mapped("body")
        self.assertTrue(any("WhatsApp reminder sent to +51995955955" in body for body in bodies))
        self.assertTrue(any("Email reminder sent to cobranzas@andina.example.com" in body for body in bodies))

    def test_rejected_key_fails_with_reason(self):
        self.env.ref("payment_dunning.dunning_template_default").channel_email = False
        order = self.create_order()
        self.gateway.script.append((401, {"error": "bad token secret-key"}))
        result = order.action_notify()
        self.assertEqual(result["params"]["type"], "danger")
        self.assertIn("API key rejected", result["params"]["message"])
        notification = order.notification_ids
        self.assertEqual(notification.state, "failed")
        self.assertIn("API key rejected", notification.error)
        self.assertNotIn("secret-key", notification.error)
        self.assertTrue(any("reminder failed" in body for body in order.message_ids.mapped("body")))
        self.assertFalse([body for body in order.message_ids.mapped("body") if "secret-key" in body])
        self.assertEqual(order.notification_count, 0)

    def test_gateway_down_is_retried_by_the_queue(self):
        self.env.ref("payment_dunning.dunning_template_default").channel_email = False
        order = self.create_order()
        with freeze_time("2026-11-22 10:00:00"):
            self.gateway.script.append((503, {"error": "maintenance"}))
            order.action_notify()
            notification = order.notification_ids
            self.assertEqual(notification.state, "queued")
            self.assertEqual(notification.attempts, 1)
            self.assertIn("503", notification.error)
            self.env["payment.order.notification"]._cron_send_queue()
            self.assertEqual(notification.state, "queued", "not due again yet")
            self.assertEqual(len(self.gateway.requests), 1)
        with freeze_time("2026-11-22 10:06:00"):
            self.env["payment.order.notification"]._cron_send_queue()
        self.assertEqual(notification.state, "sent")
        self.assertEqual(notification.attempts, 2)
        self.assertEqual(len(self.gateway.requests), 2)

    def test_retries_end_in_failure(self):
        self.env.ref("payment_dunning.dunning_template_default").channel_email = False
        order = self.create_order()
        self.gateway.script.extend([(500, {})] * 3)
        now = fields.Datetime.now()
        order.action_notify()
        notification = order.notification_ids
        for minutes in (6, 20):
            with freeze_time(now + timedelta(minutes=minutes)):
                self.env["payment.order.notification"]._cron_send_queue()
        self.assertEqual(notification.state, "failed")
        self.assertEqual(notification.attempts, 3, "the connector's retries + 1")

    def test_paid_order_is_not_sent(self):
        order = self.create_order()
        template = self.env.ref("payment_dunning.dunning_template_default")
        queued = self.env["payment.order.notification"]._queue(template, order)
        order.action_pay()
        self.env["payment.order.notification"]._cron_send_queue()
        self.assertEqual(set(queued.mapped("state")), {"cancelled"})
        self.assertFalse(self.gateway.requests)
        self.assertFalse(self.sink.messages)

    def test_closed_orders_cannot_be_notified(self):
        order = self.create_order()
        order.action_cancel()
        with self.assertRaisesRegex(UserError, "Only pending or overdue orders can be notified"):
            order.action_notify()

    def test_customer_without_contact_gets_a_clear_failure(self):
        order = self.create_order(partner=self.customer_2)
        result = order.action_notify()
        self.assertEqual(result["params"]["type"], "danger")
        errors = order.notification_ids.mapped("error")
        self.assertTrue(any("has no WhatsApp number" in error for error in errors))
        self.assertTrue(any("has neither a collection email nor an email address" in error for error in errors))
        self.assertEqual(set(order.notification_ids.mapped("state")), {"failed"})

    def test_no_gateway_configured(self):
        self.connector.active = False
        self.env.ref("payment_dunning.dunning_template_default").channel_email = False
        order = self.create_order()
        order.action_notify()
        self.assertIn("No WhatsApp gateway is configured", order.notification_ids.error)
