import socket
import time
from datetime import timedelta
from unittest.mock import patch

from freezegun import freeze_time
from markupsafe import Markup

import odoo
from odoo import Command, fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import LocalGatewayMixin, PaymentDunningCase, start_smtp_sink, stored_values


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
        # these tests send at any hour: the sending window (tests/test_sending_window.py) open all week
        cls.company.write({"dunning_window_start": 0.0, "dunning_window_end": 24.0, "dunning_send_sun": True})
        cls.customer.collection_contact_name = "María"
        cls.customer_3 = cls.env["res.partner"].create(
            {"name": "Bodega Lucía", "country_id": cls.country_pe.id, "collection_whatsapp": "996111222"}
        )

    def setUp(self):
        super().setUp()
        self.gateway.requests.clear()
        self.gateway.script.clear()
        self.sink.messages.clear()
        self.sink.refuse.clear()
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
        self.assertEqual(notification.failure_type, "key_rejected")
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
            result = order.action_notify()
            notification = order.notification_ids
            self.assertEqual(notification.state, "queued")
            self.assertEqual(notification.failure_type, "gateway_error")
            self.assertEqual(notification.attempts, 1)
            self.assertIn("503", notification.error)
            # the automatic tasks are off: the user is told to retry (or when the queue retries)
            self.assertRegex(result["params"]["message"], "Use Retry|retried at|next attempt at")
            self.env["payment.order.notification"]._cron_send_queue()
            self.assertEqual(notification.state, "queued", "not due again yet")
            self.assertEqual(len(self.gateway.requests), 1)
        with freeze_time("2026-11-22 10:06:00"):
            self.env["payment.order.notification"]._cron_send_queue()
        self.assertEqual(notification.state, "sent")
        self.assertFalse(notification.failure_type)
        self.assertEqual(notification.attempts, 2)
        self.assertEqual(len(self.gateway.requests), 2)
        self.assertEqual(order.notification_count, 1)

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
        self.assertEqual(notification.failure_type, "gateway_error")
        self.assertEqual(notification.attempts, 3, "the connector's retries + 1")

    def test_a_poison_message_fails_alone(self):
        """Any error while preparing one message fails that message; the others go out once each."""
        self.env.ref("payment_dunning.dunning_template_default").channel_email = False
        template = self.env["dunning.template"].create(
            {
                "name": "Regla borrada",
                "body": "Hola @variable_nombre",
                "channel_email": False,
                "company_id": self.company.id,
            }
        )
        good = self.create_order(100.0) | self.create_order(200.0, partner=self.customer_3)
        poison = self.create_order(300.0)
        queue = self.env["payment.order.notification"]
        good_lines = queue._queue(self.env.ref("payment_dunning.dunning_template_default"), good[0])
        poison_line = queue._queue(template, poison)
        good_lines |= queue._queue(self.env.ref("payment_dunning.dunning_template_default"), good[1])
        # the rule is deleted and no template is the default any more
        template.unlink()
        self.env.ref("payment_dunning.dunning_template_default").is_default = False
        self.assertFalse(poison_line.template_id)
        self.env.ref("payment_dunning.dunning_template_default").is_default = True
        render = type(template)._render_body

        def render_or_break(template_self, orders, payment=None):
            if orders == good[1]:
                raise ZeroDivisionError("a broken variable")
            return render(template_self, orders, payment)

        self.env.ref("payment_dunning.dunning_template_default").is_default = False
        with patch.object(type(template), "_render_body", render_or_break):
            self.env["payment.order.notification"]._cron_send_queue()
        self.assertEqual(poison_line.state, "failed")
        self.assertEqual(poison_line.failure_type, "render")
        self.assertIn("no dunning template", poison_line.error)
        self.assertEqual(good_lines[0].state, "sent")
        self.assertEqual(good_lines[1].state, "failed")
        self.assertEqual(good_lines[1].failure_type, "render")
        self.assertIn("a broken variable", good_lines[1].error)
        self.assertEqual(len(self.gateway.requests), 1)
        # nothing is sent again on the next runs
        self.env["payment.order.notification"]._cron_send_queue()
        self.assertEqual(len(self.gateway.requests), 1)

    def test_interrupted_send_is_never_sent_again(self):
        self.env.ref("payment_dunning.dunning_template_default").channel_email = False
        order = self.create_order()
        template = self.env.ref("payment_dunning.dunning_template_default")
        line = self.env["payment.order.notification"]._queue(template, order)
        # what a worker killed between "sending" and its outcome leaves behind
        line.write({"state": "sending", "attempts": 1, "attempted_at": fields.Datetime.now()})
        self.env["payment.order.notification"]._cron_send_queue()
        self.assertEqual(line.state, "failed")
        self.assertEqual(line.failure_type, "unknown")
        self.assertIn("Check with the customer before Retry", line.error)
        self.assertFalse(self.gateway.requests)
        self.assertTrue(any("Outcome unknown" in body for body in order.message_ids.mapped("body")))

    def test_claimed_but_never_attempted_goes_back_to_the_queue(self):
        self.env.ref("payment_dunning.dunning_template_default").channel_email = False
        order = self.create_order()
        line = self.env["payment.order.notification"]._queue(
            self.env.ref("payment_dunning.dunning_template_default"), order
        )
        # a worker that claimed a chunk and stopped before this line's turn
        line.write({"state": "sending", "attempted_at": False})
        self.env["payment.order.notification"]._cron_send_queue()
        self.assertEqual(line.state, "sent", "it never left: it is sent, once")
        self.assertEqual(len(self.gateway.requests), 1)

    def test_chatter_notes_match_a_logged_note(self):
        """The notes the queue inserts in bulk are what Odoo's own log stores."""
        order = self.create_order()
        body = Markup("<p>%s</p>") % "WhatsApp reminder sent to +51995955955 <script>"
        self.env["payment.order.notification"]._log_notes(order, {order.id: [body]})
        order.sudo()._message_log_batch({order.id: body})
        notes = self.env["mail.message"].search(
            [("model", "=", "payment.order"), ("res_id", "=", order.id)], order="id desc", limit=2
        )
        skip = {"message_id", "date", "create_date", "write_date", "preview", "notification_ids", "tracking_value_ids"}
        self.assertEqual(stored_values(notes[1], skip), stored_values(notes[0], skip))
        self.assertIn("&lt;script&gt;", notes[1].body)

    def test_rate_limit_leaves_the_rest_queued_for_the_next_call(self):
        self.env.ref("payment_dunning.dunning_template_default").channel_email = False
        self.connector.rate_limit = 2
        template = self.env.ref("payment_dunning.dunning_template_default")
        orders = self.create_order(100.0) | self.create_order(110.0) | self.create_order(120.0)
        lines = self.env["payment.order.notification"]._queue(template, orders[0])
        lines |= self.env["payment.order.notification"]._queue(template, orders[1])
        lines |= self.env["payment.order.notification"]._queue(template, orders[2])
        cron = self.env.ref("payment_dunning.cron_payment_order_send_queue")
        with freeze_time("2026-11-22 10:00:00"):
            started = time.monotonic()
            sent = self.env["payment.order.notification"]._cron_send_queue()
            self.assertLess(time.monotonic() - started, 5, "no sleeping for the rate limit")
            self.assertEqual(sent, 2)
            self.assertEqual(lines.mapped("state"), ["sent", "sent", "queued"])
            trigger = self.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)], order="id desc", limit=1)
            self.assertEqual(trigger.call_at, fields.Datetime.to_datetime("2026-11-22 10:01:00"))
        with freeze_time("2026-11-22 10:01:01"):
            self.env["payment.order.notification"]._cron_send_queue()
        self.assertEqual(lines.mapped("state"), ["sent", "sent", "sent"])
        self.assertEqual(len(self.gateway.requests), 3)

    def test_two_messages_of_one_order_are_counted_from_the_log(self):
        order = self.create_order()
        order.action_notify()
        order.action_notify()
        self.assertEqual(order.notification_count, 4)
        self.assertEqual(order.last_notification_date, max(order.notification_ids.mapped("sent_at")))
        self.assertIn(order, self.env["payment.order"].search([("notification_count", ">=", 4)]))
        never = self.create_order()
        never_notified = self.env["payment.order"].search([("notification_count", "=", 0)])
        self.assertIn(never, never_notified)
        self.assertNotIn(order, never_notified)

    def test_bulk_retry_sends_now_whatever_the_automatic_tasks(self):
        self.env.ref("payment_dunning.dunning_template_default").channel_email = False
        self.connector.retries = 0
        orders = self.create_order(100.0) | self.create_order(200.0)
        self.gateway.script.extend([(503, {}), (503, {})])
        orders[0].action_notify()
        orders[1].action_notify()
        lines = orders.notification_ids
        self.assertEqual(set(lines.mapped("state")), {"failed"})
        self.assertEqual(set(lines.mapped("failure_type")), {"gateway_error"})
        failed_because_down = self.env["payment.order.notification"].search(
            [("failure_type", "=", "gateway_error"), ("id", "in", lines.ids)]
        )
        self.assertFalse(self.env.ref("payment_dunning.cron_payment_order_send_queue").active)
        result = failed_because_down.with_user(self.manager).action_retry()
        self.assertEqual(result["params"]["type"], "success", result["params"]["message"])
        self.assertEqual(set(lines.mapped("state")), {"sent"})
        self.assertEqual(len(self.gateway.requests), 4, "two failures, then each message once")

    def test_the_log_is_written_by_the_addon_only(self):
        """A user who could set a sent line back to queued would have it sent again."""
        order = self.create_order()
        order.with_user(self.user).action_notify()
        line = order.notification_ids[:1]
        self.assertEqual(line.state, "sent")
        for user in (self.user, self.manager):
            with self.assertRaises(AccessError):
                line.with_user(user).write({"state": "queued"})
            with self.assertRaises(AccessError):
                line.with_user(user).unlink()
            with self.assertRaises(AccessError):
                self.env["payment.order.notification"].with_user(user).create(
                    {
                        "order_ids": [Command.set(order.ids)],
                        "partner_id": self.customer.id,
                        "company_id": self.company.id,
                        "channel": "whatsapp",
                    }
                )
        with self.assertRaisesRegex(UserError, "Only failed messages"):
            line.with_user(self.user).action_retry()
        self.assertEqual(len(self.gateway.requests), 1)

    def test_smtp_refused_then_accepted_sends_the_email_once(self):
        self.env.ref("payment_dunning.dunning_template_default").channel_whatsapp = False
        port = self.mail_server.smtp_port
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed_port = probe.getsockname()[1]
        self.mail_server.smtp_port = closed_port
        order = self.create_order()
        now = fields.Datetime.now()
        with mute_logger("odoo.addons.payment_dunning.models.payment_order_notification"):
            order.action_notify()
        line = order.notification_ids
        self.assertEqual((line.state, line.failure_type), ("queued", "smtp_unreachable"))
        self.assertTrue(line.next_attempt_at)
        mail = line.mail_id
        self.assertEqual(mail.state, "exception")
        self.mail_server.smtp_port = port
        with freeze_time(now + timedelta(minutes=6)):
            self.env["payment.order.notification"]._cron_send_queue()
        self.assertEqual(line.state, "sent")
        self.assertEqual(line.mail_id, mail, "one mail.mail per message, whatever the attempts")
        self.assertEqual(mail.state, "sent")
        self.assertEqual(len(self.sink.messages), 1)

    def test_silent_smtp_server_is_a_retriable_failure_in_bounded_time(self):
        self.env.ref("payment_dunning.dunning_template_default").channel_whatsapp = False
        self.env["ir.config_parameter"].sudo().set_param("payment_dunning.smtp_timeout", 1)
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        self.addCleanup(silent.close)
        self.mail_server.smtp_port = silent.getsockname()[1]
        order = self.create_order()
        started = time.monotonic()
        with mute_logger("odoo.addons.payment_dunning.models.payment_order_notification"):
            order.action_notify()
        self.assertLess(time.monotonic() - started, 5)
        line = order.notification_ids
        self.assertEqual((line.state, line.failure_type), ("queued", "smtp_unreachable"))

    def test_refused_recipient_is_final(self):
        self.env.ref("payment_dunning.dunning_template_default").channel_whatsapp = False
        self.sink.refuse.add("cobranzas@andina.example.com")
        order = self.create_order()
        with mute_logger("odoo.addons.mail.models.mail_mail"):
            order.action_notify()
        line = order.notification_ids
        self.assertEqual((line.state, line.failure_type), ("failed", "smtp_refused"))
        self.assertIn("refused the recipient", line.error)

    def test_digest_email_is_one_mail_linked_to_every_order(self):
        template = self.env.ref("payment_dunning.dunning_template_default")
        template.write({"channel_whatsapp": False, "body": "Hola @variable_nombre:\n@variable_detalle"})
        orders = self.create_order(100.0) | self.create_order(250.0, due_date="2026-12-15")
        line = self.env["payment.order.notification"]._queue(template, orders)
        line._send()
        self.assertEqual(line.state, "sent")
        self.assertEqual(line.mail_id.model, "res.partner")
        self.assertEqual(line.mail_id.res_id, self.customer.id)
        self.assertEqual(len(self.sink.messages), 1)
        body = self.sink.messages[0][1].get_body(("html",)).get_content()
        for order in orders:
            self.assertIn(order, line.order_ids)
            self.assertIn(order.name, body)
            self.assertTrue(any("Email reminder sent" in note for note in order.message_ids.mapped("body")))

    def test_statement_that_cannot_be_rendered_does_not_cost_the_message(self):
        template = self.env.ref("payment_dunning.dunning_template_default")
        template.write({"channel_email": False, "attach_statement": True})
        order = self.create_order()
        report = type(self.env["ir.actions.report"])
        with (
            patch.object(report, "_render_qweb_pdf", side_effect=OSError("wkhtmltopdf crashed")),
            mute_logger("odoo.addons.payment_dunning.models.payment_order_notification"),
        ):
            order.action_notify()
        line = order.notification_ids
        self.assertEqual(line.state, "sent")
        self.assertIn("account statement was not attached", line.error)
        self.assertIn("wkhtmltopdf crashed", line.error)
        self.assertEqual(len(self.gateway.requests), 1, "the text only")

    def test_statement_is_a_real_pdf(self):
        # wkhtmltopdf would fetch the styles from this very server, which waits on the test's transaction
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed_port = probe.getsockname()[1]
        self.env["ir.config_parameter"].sudo().set_param("report.url", f"http://127.0.0.1:{closed_port}")
        order = self.create_order()
        line = self.env["payment.order.notification"]._queue(
            self.env.ref("payment_dunning.dunning_template_default"), order
        )
        statement = line[0].with_context(force_report_rendering=True)._account_statement()
        self.assertNotIn("statement_error", statement)
        name, content = statement["statement"]
        self.assertTrue(name.endswith(".pdf"))
        self.assertTrue(content.startswith(b"%PDF"), "wkhtmltopdf renders the statement (./dev installs it)")

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
        self.assertEqual(set(order.notification_ids.mapped("failure_type")), {"no_contact"})

    def test_no_gateway_configured(self):
        self.connector.active = False
        self.env.ref("payment_dunning.dunning_template_default").channel_email = False
        order = self.create_order()
        order.action_notify()
        self.assertIn("No WhatsApp gateway is configured", order.notification_ids.error)
        self.assertEqual(order.notification_ids.failure_type, "no_gateway")
