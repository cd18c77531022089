import socket
from unittest.mock import patch

from psycopg2 import IntegrityError

import odoo
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import mute_logger

from .common import LocalGatewayMixin, PaymentDunningCase


@tagged("post_install", "-at_install")
class TestPaymentReceipts(LocalGatewayMixin, PaymentDunningCase):
    """Each registered payment gets a numbered Constancia de pago, sent to the customer by their channels.

    (Not under frozen time: the local SMTP server's event loop needs the clock to move.)"""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.start_local_channels("sk-receipts")
        cls.company.email = "cobranzas@lima.example.com"
        cls.yape = cls.env.ref("payment_dunning.payment_method_yape")

    def setUp(self):
        super().setUp()
        self.gateway.requests.clear()
        self.sink.messages.clear()
        # Odoo skips the SMTP conversation in test mode; these tests check what a real server receives
        patcher = patch.object(odoo.modules.module, "current_test", None)
        patcher.start()
        self.addCleanup(patcher.stop)

    def register(self, order, amount, user=None):
        wizard = (
            self.env["payment.order.register.payment"]
            .with_user(user or self.user)
            .with_context(active_model="payment.order", active_ids=order.ids)
            .create({"amount": amount, "method_id": self.yape.id, "reference": "OP-778812"})
        )
        result = wizard.action_register()
        return order.payment_ids.sorted("id")[-1:], result

    def test_partial_payment_sends_the_receipt_by_email_and_whatsapp(self):
        order = self.create_order(100.0)
        payment, result = self.register(order, 40.0)
        self.assertEqual(order.balance, 60.0)
        self.assertTrue(payment.name.startswith(f"REC/{payment.date.year}/"))
        self.assertEqual(payment.balance_after, 60.0)
        self.assertEqual(result["params"]["title"], "Payment registered")
        self.assertIn("Email sent to cobranzas@andina.example.com", result["params"]["message"])
        # the email, with the receipt's PDF
        [(recipients, message)] = self.sink.messages
        self.assertEqual(recipients, ["cobranzas@andina.example.com"])
        self.assertIn(payment.name, message["Subject"])
        attachments = list(message.iter_attachments())
        self.assertEqual(len(attachments), 1)
        self.assertIn(payment.name.replace("/", "_"), attachments[0].get_filename().replace("/", "_"))
        # (Odoo's tests render reports as HTML unless told otherwise: the PDF itself is checked below)
        self.assertIn(payment.name.encode(), attachments[0].get_content())
        # WhatsApp: the text with what was paid and what is left, then the PDF
        [text] = self.whatsapp_texts()
        self.assertIn("40.00", text)
        self.assertIn("60.00", text)
        self.assertIn(payment.name, text)
        self.assertEqual(len(self.gateway.requests), 2, "the text and the receipt document")
        self.assertEqual(set(payment.receipt_notification_ids.mapped("state")), {"sent"})
        self.assertEqual(payment.receipt_notification_ids.order_ids, order)

    def test_email_and_whatsapp_carry_one_rendering_of_the_receipt(self):
        """Rendering a PDF takes about a second: the clerk waits for one, not one per channel."""
        report_model = type(self.env["ir.actions.report"])
        with patch.object(
            report_model, "_render_qweb_pdf", autospec=True, side_effect=report_model._render_qweb_pdf
        ) as render:
            payment, _result = self.register(self.create_order(100.0), 40.0)
        self.assertEqual(render.call_count, 1)
        self.assertEqual(len(self.sink.messages), 1)
        self.assertEqual(len(self.gateway.requests), 2, "the text and the receipt document")
        self.assertEqual(set(payment.receipt_notification_ids.mapped("channel")), {"email", "whatsapp"})

    def test_receipt_of_a_full_payment_goes_although_the_order_is_paid(self):
        order = self.create_order(100.0)
        payment, _result = self.register(order, 100.0)
        self.assertEqual(order.state, "paid")
        self.assertEqual(set(payment.receipt_notification_ids.mapped("state")), {"sent"})
        [text] = self.whatsapp_texts()
        self.assertIn("100.00", text)

    def test_numbers_are_per_company(self):
        first, _result = self.register(self.create_order(50.0), 10.0)
        second, _result = self.register(self.create_order(50.0), 10.0)
        other_order = self.create_order(50.0, company=self.company_2, partner=self.customer_2)
        other = other_order.sudo()._register_payment(10.0, "2026-11-20")
        year = first.date.year
        self.assertEqual(first.name, f"REC/{year}/00001")
        self.assertEqual(second.name, f"REC/{year}/00002")
        self.assertEqual(other.name, "REC/2026/00001", "the other company numbers its own receipts")

    def test_pdf_shows_the_payment(self):
        payment, _result = self.register(self.create_order(100.0, concept="Fiber link"), 25.0)
        report = self.env.ref("payment_dunning.action_report_payment_receipt")
        html, _format = report._render_qweb_html(report, payment.ids)
        html = html.decode()
        for expected in (payment.name, "Fiber link", "Andina Telecom", "Yape", "OP-778812", "75.00"):
            self.assertIn(expected, html)
        # wkhtmltopdf would fetch the styles from this very server, which waits on the test's transaction
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed_port = probe.getsockname()[1]
        self.env["ir.config_parameter"].sudo().set_param("report.url", f"http://127.0.0.1:{closed_port}")
        name, content = payment.with_context(force_report_rendering=True)._receipt_pdf()
        self.assertTrue(content.startswith(b"%PDF"))
        self.assertIn(payment.name, name)

    def test_setting_off_sends_nothing(self):
        self.company.payment_receipt_notify = False
        payment, result = self.register(self.create_order(100.0), 40.0)
        self.assertFalse(payment.receipt_notification_ids)
        self.assertFalse(self.sink.messages)
        self.assertFalse(self.gateway.requests)
        self.assertNotIn("Receipt:", result["params"]["message"])

    def test_a_payment_is_receipted_once_unless_sent_again(self):
        order = self.create_order(100.0)
        payment = order._register_payment(30.0, "2026-11-20")
        first = payment._queue_receipts()
        self.assertEqual(len(first), 2, "email and WhatsApp")
        self.assertFalse(payment._queue_receipts(), "queued already")
        payment.with_user(self.user).action_send_receipt()
        self.assertEqual(len(payment.receipt_notification_ids), 4, "Send Receipt sends it again, deliberately")

    def test_cancelled_payment_cancels_its_waiting_receipt(self):
        order = self.create_order(100.0)
        payment = order._register_payment(30.0, "2026-11-20")
        queued = payment._queue_receipts()
        payment.with_user(self.manager).action_cancel_payment("bounced")
        self.assertEqual(set(queued.mapped("state")), {"cancelled"})
        queued._send_now()
        self.assertFalse(self.gateway.requests)
        self.assertFalse(self.sink.messages)

    def test_receipt_template_is_not_a_rule_nor_the_default(self):
        receipt = self.env.ref("payment_dunning.dunning_template_payment_receipt")
        self.assertEqual(self.env["dunning.template"]._get_receipt_template(self.company), receipt)
        self.assertNotEqual(self.env["dunning.template"]._get_default(self.company), receipt)
        with self.assertRaises(IntegrityError), mute_logger("odoo.sql_db"), self.env.cr.savepoint():
            receipt.write({"auto_send": True})
            receipt.flush_recordset()

    def test_reminders_end_with_the_pay_link_only_when_there_is_one(self):
        order = self.create_order(100.0)
        template = self.env.ref("payment_dunning.dunning_template_default")
        self.assertNotIn("Pay online", template._render_body(order))
        partner_class = type(self.env["res.partner"])
        with patch.object(partner_class, "_collection_pay_url", return_value="https://pay.example.com/p/1?t=x"):
            body = template._render_body(order)
            self.assertTrue(body.endswith("Pay online: https://pay.example.com/p/1?t=x"))
            template.pay_link = False
            self.assertNotIn("Pay online", template._render_body(order))


@tagged("post_install", "-at_install")
class TestPaymentReceiptUi(LocalGatewayMixin, HttpCase):
    """In the browser: a clerk registers a partial payment and the customer receives the receipt."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.start_local_channels()
        cls.env.company.email = "cobranzas@yourcompany.example.com"
        new_test_user(cls.env, "cajera", groups="base.group_user,payment_dunning.group_payment_dunning_user")
        customer = cls.env["res.partner"].create(
            {
                "name": "Cliente Constancia",
                "is_company": True,
                "country_id": cls.env.ref("base.pe").id,
                "collection_email": "pagos@constancia.example.com",
                "collection_whatsapp": "995955977",
            }
        )
        cls.order = cls.env["payment.order"].create(
            {"partner_id": customer.id, "due_date": "2026-12-01", "amount": 100.0, "concept": "Internet"}
        )

    def test_clerk_registers_a_partial_payment_and_the_customer_gets_the_receipt(self):
        # Odoo skips the SMTP conversation in test mode; here a real local server receives it.
        with patch.object(odoo.modules.module, "current_test", None):
            self.start_tour(
                f"/odoo/action-payment_dunning.action_payment_order/{self.order.id}",
                "payment_dunning_receipt_tour",
                login="cajera",
            )
        payment = self.order.payment_ids
        self.assertEqual((payment.amount, payment.method_id.name, payment.reference), (40.0, "Yape", "OP-552211"))
        self.assertEqual(self.order.balance, 60.0)
        [(recipients, message)] = self.sink.messages
        self.assertEqual(recipients, ["pagos@constancia.example.com"])
        self.assertIn(payment.name, message["Subject"])
        self.assertEqual(len(list(message.iter_attachments())), 1, "the Constancia de pago")
        texts = self.whatsapp_texts()
        self.assertEqual(len(texts), 1)
        self.assertIn("40.00", texts[0])
        self.assertIn("60.00", texts[0])
        self.assertEqual(len(self.gateway.requests), 2, "the text and the receipt document")
