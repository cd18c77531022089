from datetime import date, timedelta
from unittest.mock import patch

from freezegun import freeze_time

import odoo
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .common import LocalGatewayMixin, PaymentDunningCase, start_smtp_sink

# Mid-afternoon UTC is morning in Lima: the company's day and the server's are the same.
MORNING = "15:00:00"


class DunningCase(PaymentDunningCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.params = cls.env["ir.config_parameter"].sudo()
        cls.params.set_param("payment_dunning.automatic_tasks", True)
        cls.params.set_param("payment_dunning.notifications_enabled", True)
        # these tests count the days a rule messages; the weekly cap has its own (test_whatsapp_webhook)
        cls.params.set_param("payment_dunning.weekly_cap", 0)
        # the rule shipped with the module would add its own messages to the counts of these tests
        # (it is tested in test_plans_and_rules)
        cls.env.ref("payment_dunning.dunning_template_before_due").active = False
        # these tests send at whatever hour they run: the sending window open all week
        cls.company.write({"dunning_window_start": 0.0, "dunning_window_end": 24.0, "dunning_send_sun": True})

    def rule(self, name="Recordatorio", days_from=1, days_to=30, interval=1, **values):
        return self.env["dunning.template"].create(
            {
                "name": name,
                "auto_send": True,
                "days_from": days_from,
                "days_to": days_to,
                "interval_days": interval,
                "channel_email": True,
                "channel_whatsapp": False,
                "body": "Hola @variable_nombre, debe @variable_saldo (@variable_orden)",
                # the demo data's orders, in the main company, stay out of these runs
                "company_id": self.company.id,
                **values,
            }
        )

    def run_on(self, day):
        with freeze_time(f"{day} {MORNING}"):
            return self.env["dunning.template"]._dunning_run()

    def days_with_messages(self, template, order, first, last):
        """The days from ``first`` to ``last`` on which the run queued ``template`` for ``order``."""
        days = []
        day = first
        while day <= last:
            before = len(order.notification_ids.filtered(lambda n: n.template_id == template))
            self.run_on(day)
            order.invalidate_recordset(["notification_ids"])
            if len(order.notification_ids.filtered(lambda n: n.template_id == template)) > before:
                days.append((day - order.due_date).days)
            day += timedelta(days=1)
        return days


@tagged("post_install", "-at_install")
class TestDunningRules(DunningCase):
    def test_window_from_and_to_days_after_the_due_date(self):
        template = self.rule(days_from=1, days_to=5)
        order = self.create_order(100.0, due_date="2026-03-10")
        self.assertEqual(self.days_with_messages(template, order, date(2026, 3, 8), date(2026, 3, 18)), [1, 2, 3, 4, 5])

    def test_negative_days_remind_before_the_due_date(self):
        template = self.rule("Antes del vencimiento", days_from=-3, days_to=0)
        order = self.create_order(100.0, due_date="2026-03-10")
        self.assertEqual(self.days_with_messages(template, order, date(2026, 3, 1), date(2026, 3, 14)), [-3, -2, -1, 0])

    def test_open_end_keeps_chasing(self):
        template = self.rule("Mora", days_from=30, open_end=True, interval=10)
        order = self.create_order(100.0, due_date="2026-01-01")
        self.assertEqual(self.run_on("2026-01-30"), 0)
        self.assertEqual(self.run_on("2026-01-31"), 1, "day 30")
        self.assertEqual(self.run_on("2027-02-05"), 1, "more than a year later, still unpaid")
        self.assertEqual(len(order.notification_ids.filtered(lambda n: n.template_id == template)), 2)

    def test_interval_sends_on_day_0_then_again_on_day_n(self):
        template = self.rule(days_from=0, open_end=True, interval=7)
        order = self.create_order(100.0, due_date="2026-03-10")
        self.assertEqual(self.days_with_messages(template, order, date(2026, 3, 10), date(2026, 3, 25)), [0, 7, 14])

    def test_several_templates_on_one_order(self):
        first = self.rule("Amable", days_from=1, days_to=10)
        second = self.rule("Firme", days_from=5, days_to=30)
        order = self.create_order(100.0, due_date="2026-03-10")
        self.assertEqual(self.run_on("2026-03-12"), 1)
        self.assertEqual(self.run_on("2026-03-16"), 2, "both windows hold day 6")
        self.assertEqual(order.notification_ids.template_id, first | second)

    def test_digest_groups_a_customers_orders_in_one_message(self):
        self.rule("Estado de cuenta", days_from=1, open_end=True, send_mode="customer", channel_whatsapp=True)
        orders = (
            self.create_order(100.0, due_date="2026-03-01")
            | self.create_order(50.0, due_date="2026-03-05")
            | self.create_order(25.0, due_date="2026-03-09")
        )
        not_yet = self.create_order(10.0, due_date="2026-03-30")
        other = self.create_order(70.0, due_date="2026-03-01", partner=self.customer_2)
        self.customer_2.collection_email = "tesoreria@colegio.example.com"
        self.assertEqual(self.run_on("2026-03-10"), 3, "customer 1 by email and WhatsApp, customer 2 by email")
        digests = orders.notification_ids
        self.assertEqual(sorted(digests.mapped("channel")), ["email", "whatsapp"])
        for digest in digests:
            self.assertEqual(digest.order_ids, orders)
            self.assertEqual(digest.state, "queued")
        self.assertFalse(not_yet.notification_ids)
        self.assertEqual(other.notification_ids.order_ids, other)
        text = digests[0].template_id._render_text("@variable_detalle", digests[0].order_ids)
        self.assertEqual(len(text.splitlines()), 3)

    def test_template_exclusions_and_customer_flag(self):
        self.rule(excluded_partner_ids=[(4, self.customer.id)])
        self.customer_2.collection_email = "tesoreria@colegio.example.com"
        excluded = self.create_order(100.0, due_date="2026-03-01")
        chased = self.create_order(100.0, due_date="2026-03-01", partner=self.customer_2)
        self.assertEqual(self.run_on("2026-03-05"), 1)
        self.assertFalse(excluded.notification_ids)
        self.assertTrue(chased.notification_ids)
        self.customer_2.dunning_excluded = True
        self.assertEqual(self.run_on("2026-03-06"), 0, "a customer excluded from reminders gets none")

    def test_cents_are_still_chased_and_zero_is_not(self):
        self.rule()
        order = self.create_order(100.0, due_date="2026-03-01")
        order._set_balance(0.01)
        self.assertEqual(self.run_on("2026-03-05"), 1, "cents are still a debt")
        order._set_balance(0.0)
        self.assertEqual(order.state, "paid")
        self.assertEqual(self.run_on("2026-03-06"), 0)

    def test_cancelled_orders_are_not_chased(self):
        self.rule()
        self.create_order(100.0, due_date="2026-03-01").action_cancel()
        self.assertEqual(self.run_on("2026-03-05"), 0)

    def test_second_run_the_same_day_queues_nothing(self):
        self.rule(channel_whatsapp=True)
        order = self.create_order(100.0, due_date="2026-03-01")
        self.assertEqual(self.run_on("2026-03-05"), 2)
        self.assertEqual(self.run_on("2026-03-05"), 0)
        self.assertEqual(len(order.notification_ids), 2)
        self.assertEqual(set(order.notification_ids.mapped("run_date")), {date(2026, 3, 5)})

    def test_all_contacts_setting_queues_one_message_per_contact_once(self):
        self.rule(channel_whatsapp=True)
        contacts = self.env["res.partner.collection.contact"]
        contacts.create({"partner_id": self.customer.id, "kind": "email", "value": "pagos@andina.example.com"})
        contacts.create({"partner_id": self.customer.id, "kind": "mobile", "value": "987654321"})
        self.params.set_param("payment_dunning.contact_mode", "all")
        order = self.create_order(100.0, due_date="2026-03-01")
        self.assertEqual(self.run_on("2026-03-05"), 4)
        self.assertEqual(self.run_on("2026-03-05"), 0, "a second run the same day queues nothing")
        self.assertEqual(
            sorted(order.notification_ids.mapped("fixed_recipient")),
            ["+51987654321", "+51995955955", "cobranzas@andina.example.com", "pagos@andina.example.com"],
        )

    def test_first_contact_setting_queues_one_message_per_channel(self):
        self.rule(channel_whatsapp=True)
        self.env["res.partner.collection.contact"].create(
            {"partner_id": self.customer.id, "kind": "email", "value": "pagos@andina.example.com"}
        )
        order = self.create_order(100.0, due_date="2026-03-01")
        self.assertEqual(self.run_on("2026-03-05"), 2)
        self.assertEqual(order.notification_ids.mapped("fixed_recipient"), [False, False])

    def test_customer_without_whatsapp_gets_the_email_only(self):
        self.rule(channel_whatsapp=True)
        self.customer.collection_whatsapp = False
        order = self.create_order(100.0, due_date="2026-03-01")
        self.run_on("2026-03-05")
        self.assertEqual(order.notification_ids.mapped("channel"), ["email"])

    def test_rule_company_limits_the_orders(self):
        self.rule(company_id=self.company_2.id)
        self.create_order(100.0, due_date="2026-03-01")
        self.assertEqual(self.run_on("2026-03-05"), 0)

    def test_run_needs_automatic_tasks_and_notifications(self):
        self.rule()
        self.create_order(100.0, due_date="2026-03-01")
        self.params.set_param("payment_dunning.notifications_enabled", False)
        with freeze_time(f"2026-03-05 {MORNING}"):
            self.assertEqual(self.env["dunning.template"]._cron_dunning_run(), 0)
        self.params.set_param("payment_dunning.notifications_enabled", True)
        self.params.set_param("payment_dunning.automatic_tasks", False)
        with freeze_time(f"2026-03-05 {MORNING}"):
            self.assertEqual(self.env["dunning.template"]._cron_dunning_run(), 0)
        self.params.set_param("payment_dunning.automatic_tasks", True)
        with freeze_time(f"2026-03-05 {MORNING}"):
            self.assertEqual(self.env["dunning.template"]._cron_dunning_run(), 1)

    def test_preview_lists_the_orders_without_queueing(self):
        template = self.rule(days_from=1, days_to=10)
        due = self.create_order(100.0, due_date="2026-03-01")
        self.create_order(100.0, due_date="2026-02-01")  # day 32: outside the window
        with freeze_time(f"2026-03-05 {MORNING}"):
            action = template.action_preview_run()
        self.assertEqual(self.env["payment.order"].search(action["domain"]), due)
        self.assertFalse(self.env["payment.order.notification"].search([("template_id", "=", template.id)]))

    def test_window_and_interval_are_validated(self):
        with self.assertRaisesRegex(ValidationError, "ends"):
            self.rule(days_from=10, days_to=5)
        with self.assertRaisesRegex(ValidationError, "at least 1"):
            self.rule(interval=0)
        self.rule(days_from=10, days_to=5, open_end=True)  # no end: "to" does not count

    def test_customers_are_found_by_document_number(self):
        found = self.env["res.partner"].name_search("20100000001")
        self.assertEqual([partner_id for partner_id, _name in found], [self.customer.id])


@tagged("post_install", "-at_install")
class TestDunningDelivery(LocalGatewayMixin, DunningCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.start_gateway()
        cls.sink, _server = start_smtp_sink(cls)
        cls.env["qrapi.connector"].create(
            {"name": "Local gateway", "url": cls.gateway.url, "api_key": "k", "rate_limit": 0}
        )
        cls.company.email = "cobranzas@lima.example.com"

    def setUp(self):
        super().setUp()
        self.gateway.requests.clear()
        self.sink.messages.clear()
        # Odoo skips the SMTP conversation in test mode; these tests check what a real server receives.
        patcher = patch.object(odoo.modules.module, "current_test", None)
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_statement_lists_the_open_orders_and_totals(self):
        overdue = self.create_order(100.0, due_date="2026-02-01")
        pending = self.create_order(250.5, due_date="2026-12-31")
        self.create_order(40.0, due_date="2026-02-01").action_pay()
        with freeze_time(f"2026-03-05 {MORNING}"):
            self.env["payment.order"]._cron_mark_overdue()
            html, _format = self.env["ir.actions.report"]._render_qweb_html(
                "payment_dunning.action_report_account_statement", self.customer.ids
            )
        html = html.decode()
        self.assertIn(overdue.name, html)
        self.assertIn(pending.name, html)
        self.assertEqual(html.count("OP/2026/"), 2, "the paid order is not on the statement")
        currency = self.company.currency_id
        self.assertIn(currency.format(350.5).replace(" ", "\xa0"), html.replace("&nbsp;", "\xa0"))
        self.assertIn(currency.format(100.0).replace(" ", "\xa0"), html.replace("&nbsp;", "\xa0"))
        self.assertIn("Andina Telecom", html)

    def test_statement_is_attached_to_the_email_and_sent_on_whatsapp(self):
        self.rule(attach_statement=True, channel_whatsapp=True)
        order = self.create_order(100.0, due_date="2026-03-01")
        self.run_on("2026-03-05")
        self.env["payment.order.notification"]._cron_send_queue()
        self.assertEqual(set(order.notification_ids.mapped("state")), {"sent"})
        _recipients, message = self.sink.messages[0]
        attachments = list(message.iter_attachments())
        self.assertEqual([part.get_filename() for part in attachments], ["Account statement - Andina Telecom.pdf"])
        self.assertIn(order.name, attachments[0].get_content().decode())
        paths = [request["path"] for request in self.gateway.requests]
        self.assertEqual(len(paths), 2, "the text, then the statement as a document")
        self.assertIn(b"Account statement - Andina Telecom.pdf", self.gateway.requests[1]["body"])

    def test_statement_failure_on_whatsapp_keeps_the_text_sent_once(self):
        self.rule(attach_statement=True, channel_email=False, channel_whatsapp=True)
        order = self.create_order(100.0, due_date="2026-03-01")
        self.run_on("2026-03-05")
        self.gateway.script.extend([(200, {"id": "wamid.text"}), (500, {"error": "media down"})])
        self.env["payment.order.notification"]._cron_send_queue()
        notification = order.notification_ids
        self.assertEqual(notification.state, "sent")
        self.assertIn("account statement was not delivered", notification.error)
        self.env["payment.order.notification"]._cron_send_queue()
        self.assertEqual(len(self.gateway.requests), 2, "the text is not sent again")

    def test_paying_cancels_the_queued_messages_at_once(self):
        self.rule(channel_whatsapp=True)
        order = self.create_order(100.0, due_date="2026-03-01")
        self.run_on("2026-03-05")
        self.assertEqual(set(order.notification_ids.mapped("state")), {"queued"})
        order.action_pay()
        self.assertEqual(set(order.notification_ids.mapped("state")), {"cancelled"})
        self.env["payment.order.notification"]._cron_send_queue()
        self.assertFalse(self.gateway.requests)
        self.assertFalse(self.sink.messages)

    def test_history_on_the_customer_and_the_order(self):
        template = self.rule("Primer aviso")
        order = self.create_order(100.0, due_date="2026-03-01")
        self.run_on("2026-03-05")
        self.assertTrue(self.customer.collection_next_message, "the queued reminder shows on the customer")
        self.assertFalse(self.customer.collection_last_message)
        self.env["payment.order.notification"]._cron_send_queue()
        self.customer.invalidate_recordset(["collection_last_message", "collection_next_message"])
        notification = order.notification_ids
        self.assertEqual(self.customer.collection_last_message, notification.sent_at)
        self.assertFalse(self.customer.collection_next_message)
        self.assertEqual(notification.template_id, template)
        self.assertEqual((notification.channel, notification.state), ("email", "sent"))
        partner_notes = self.customer.message_ids.mapped("body")
        self.assertTrue(any("Primer aviso" in body and order.name in body for body in partner_notes))
        action = self.customer.action_view_communications()
        self.assertIn(notification, self.env["payment.order.notification"].search(action["domain"]))
