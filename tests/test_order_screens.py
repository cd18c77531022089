from unittest.mock import patch

from freezegun import freeze_time

import odoo
from odoo import fields
from odoo.addons.account.tests.common import AccountTestInvoicingCommon
from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, tagged

from .common import LocalGatewayMixin, PaymentDunningCase, start_smtp_sink


@tagged("post_install", "-at_install")
class TestNewOrderDialog(PaymentDunningCase):
    """The "+ New Order" dialog: customer, due date, amount and concept make a one-line order."""

    def dialog(self, user=None, companies=None, **values):
        wizard = self.env["payment.order.new"].with_user(user or self.user)
        if companies:
            wizard = wizard.with_context(allowed_company_ids=companies.ids)
        return wizard.create({"partner_id": self.customer.id, "amount": 150.0, **values})

    @freeze_time("2026-11-20 15:00:00")
    def test_create_order_makes_a_pending_one_line_order(self):
        wizard = self.dialog(due_date="2026-12-10", concept="Internet 200 Mbps")
        self.assertEqual(
            self.env["payment.order.new"].with_user(self.user).create({}).due_date,
            fields.Date.to_date("2026-11-20"),
            "the due date starts at today",
        )
        result = wizard.action_create()
        order = self.env["payment.order"].search([("partner_id", "=", self.customer.id)])
        self.assertEqual(len(order), 1)
        self.assertIn(order.name, result["params"]["message"])
        self.assertEqual(result["params"]["next"], {"type": "ir.actions.act_window_close"})
        self.assertEqual((order.state, order.amount, order.balance), ("pending", 150.0, 150.0))
        self.assertEqual(order.due_date, fields.Date.to_date("2026-12-10"))
        self.assertEqual(order.line_ids.mapped("name"), ["Internet 200 Mbps"])
        self.assertEqual((order.company_id, order.origin, order.create_uid), (self.company, "manual", self.user))

    def test_concept_is_optional(self):
        self.dialog(due_date="2026-12-10").action_create()
        order = self.env["payment.order"].search([("partner_id", "=", self.customer.id)])
        self.assertFalse(order.concept)
        self.assertEqual(order.amount, 150.0)

    def test_missing_customer_or_amount_is_refused_clearly(self):
        with self.assertRaisesRegex(UserError, "Choose the customer"):
            self.dialog(partner_id=False).action_create()
        for amount in (0.0, -10.0):
            with self.assertRaisesRegex(UserError, "must be greater than zero"):
                self.dialog(amount=amount).action_create()
        with self.assertRaisesRegex(UserError, "Give the due date"):
            self.dialog(due_date=False).action_create()
        self.assertFalse(self.env["payment.order"].search([("partner_id", "=", self.customer.id)]))

    def test_customer_of_another_company_is_refused(self):
        stranger = self.env["res.partner"].create(
            {"name": "Cliente de Madrid", "is_company": True, "company_id": self.company_2.id}
        )
        with self.assertRaisesRegex(UserError, "Cliente de Madrid is a customer of Collections Madrid"):
            # both companies active, Lima current: the order would be Lima's
            self.dialog(
                user=self.manager, companies=self.company | self.company_2, partner_id=stranger.id
            ).action_create()
        self.assertFalse(self.env["payment.order"].sudo().search([("partner_id", "=", stranger.id)]))

    def test_a_user_without_collections_rights_cannot_create(self):
        with self.assertRaises(AccessError):
            self.dialog(user=self.internal_user).action_create()

    def test_create_and_notify_opens_the_composer_on_the_new_order(self):
        action = self.dialog(due_date="2026-12-10").action_create_and_notify()
        order = self.env["payment.order"].search([("partner_id", "=", self.customer.id)])
        self.assertEqual((action["res_model"], action["target"]), ("payment.order.notify", "new"))
        composer = self.env["payment.order.notify"].with_user(self.user).with_context(**action["context"]).create({})
        self.assertEqual(composer.order_ids, order)
        self.assertFalse(order.notification_ids, "nothing is sent before the composer's Send")

    def test_full_form_keeps_what_the_dialog_holds(self):
        action = self.dialog(due_date="2026-12-10", concept="Dos servicios").action_open_full_form()
        self.assertEqual((action["res_model"], action["views"]), ("payment.order", [(False, "form")]))
        self.assertEqual(
            action["context"],
            {
                "default_partner_id": self.customer.id,
                "default_due_date": "2026-12-10",
                "default_concept": "Dos servicios",
            },
        )


@tagged("post_install", "-at_install")
class TestNewOrderFromInvoice(AccountTestInvoicingCommon):
    """The dialog's optional invoice: the order is the invoice's, made as every invoice order is."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.user.groups_id += cls.env.ref("payment_dunning.group_payment_dunning_manager")

    def invoice(self, amount=1000.0, post=True):
        return self.init_invoice("out_invoice", amounts=[amount], invoice_date="2026-11-01", post=post)

    def test_picking_an_invoice_fills_the_dialog_and_links_the_order(self):
        invoice = self.invoice(1000.0)
        with Form(self.env["payment.order.new"]) as dialog:
            dialog.partner_id = invoice.commercial_partner_id
            dialog.invoice_id = invoice
            self.assertEqual(dialog.amount, invoice.amount_residual)
            self.assertEqual(dialog.due_date, invoice.invoice_date_due)
            wizard = dialog.save()
        wizard.action_create()
        order = invoice.payment_order_ids
        self.assertEqual(len(order), 1)
        self.assertEqual((order.origin, order.payment_code, order.invoice_id), ("invoice", invoice.name, invoice))
        self.assertEqual(order.balance, invoice.amount_residual)
        self.assertEqual(order.due_date, invoice.invoice_date_due)

    def test_an_invoice_with_an_order_or_of_another_customer_is_refused(self):
        invoice = self.invoice(300.0)
        invoice.action_create_payment_orders()
        wizard = self.env["payment.order.new"].create(
            {"partner_id": invoice.commercial_partner_id.id, "invoice_id": invoice.id, "amount": 1.0}
        )
        with self.assertRaisesRegex(UserError, "already has its payment order"):
            wizard.action_create()
        other = self.invoice(200.0)
        wizard = self.env["payment.order.new"].create(
            {"partner_id": self.partner_b.id, "invoice_id": other.id, "amount": 1.0}
        )
        with self.assertRaisesRegex(UserError, "cannot have a payment order here"):
            wizard.action_create()
        draft = self.invoice(50.0, post=False)
        wizard = self.env["payment.order.new"].create(
            {"partner_id": draft.commercial_partner_id.id, "invoice_id": draft.id, "amount": 1.0}
        )
        with self.assertRaisesRegex(UserError, "cannot have a payment order here"):
            wizard.action_create()
        self.assertFalse((other | draft).payment_order_ids)


@tagged("post_install", "-at_install")
class TestNotifyComposer(LocalGatewayMixin, PaymentDunningCase):
    """The reminder composer: the template rendered for the orders, editable for one customer,
    sent now by the chosen channels, never twice within the hour without saying so."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.start_gateway()
        cls.sink, _server = start_smtp_sink(cls)
        cls.env["qrapi.connector"].create(
            {"name": "Local gateway", "url": cls.gateway.url, "api_key": "k", "rate_limit": 0}
        )
        cls.company.email = "cobranzas@lima.example.com"
        cls.customer_2.write({"collection_whatsapp": "996111222", "collection_email": "pagos@sanmartin.example.com"})
        cls.template = cls.env["dunning.template"]._get_default(cls.company)

    def setUp(self):
        super().setUp()
        self.gateway.requests.clear()
        self.sink.messages.clear()
        # Odoo skips the SMTP conversation in test mode; these tests check what a real server receives.
        patcher = patch.object(odoo.modules.module, "current_test", None)
        patcher.start()
        self.addCleanup(patcher.stop)

    def composer(self, orders, user=None, **values):
        model = self.env["payment.order.notify"].with_user(user or self.user)
        return model.with_context(active_model="payment.order", active_ids=orders.ids).create(values)

    def test_composer_shows_the_template_rendered_for_the_order(self):
        order = self.create_order(250.0, concept="Internet 300 Mbps")
        composer = self.composer(order)
        self.assertEqual(composer.order_ids, order)
        self.assertEqual(composer.template_id, self.template)
        self.assertEqual(
            (composer.channel_email, composer.channel_whatsapp),
            (self.template.channel_email, self.template.channel_whatsapp),
        )
        self.assertIn("Hola Andina Telecom", composer.body)
        self.assertIn("Plan *Internet 300 Mbps*", composer.body)
        self.assertNotIn("@variable_", composer.body + composer.subject)
        self.assertIn(order.name, composer.subject)
        self.assertEqual(composer.partner_count, 1)
        self.assertFalse(composer.recent_warning)

    def test_edited_text_is_what_the_customer_receives(self):
        order = self.create_order(90.0, concept="Hosting")
        composer = self.composer(order)
        composer.write({"subject": "Su pago de Hosting", "body": "Estimado cliente, *recuerde* pagar Hosting."})
        result = composer.action_send()
        self.assertEqual(result["params"]["type"], "success", result["params"]["message"])
        notifications = order.notification_ids
        self.assertEqual(sorted(notifications.mapped("channel")), ["email", "whatsapp"])
        self.assertEqual(set(notifications.mapped("body")), {"Estimado cliente, *recuerde* pagar Hosting."})
        self.assertEqual(self.gateway.json()["body"], "Estimado cliente, *recuerde* pagar Hosting.")
        [(recipients, message)] = self.sink.messages
        self.assertEqual(recipients, ["cobranzas@andina.example.com"])
        self.assertEqual(message["Subject"], "Su pago de Hosting")
        self.assertIn("<b>recuerde</b>", message.get_body(("html",)).get_content())

    def test_only_the_chosen_channels_are_used(self):
        order = self.create_order()
        composer = self.composer(order, channel_email=False)
        composer.action_send()
        self.assertEqual(order.notification_ids.mapped("channel"), ["whatsapp"])
        self.assertFalse(self.sink.messages)
        with self.assertRaisesRegex(UserError, "at least one channel"):
            self.composer(order, channel_email=False, channel_whatsapp=False, send_again=True).action_send()

    def test_several_customers_each_get_their_own_rendering(self):
        first = self.create_order(100.0, concept="Fibra")
        second = self.create_order(200.0, concept="Pensión", partner=self.customer_2)
        composer = self.composer(first | second, channel_email=False)
        self.assertEqual(composer.partner_count, 2)
        composer.action_send()
        texts = {line.partner_id: line.body for line in (first | second).notification_ids}
        self.assertIn("Hola Andina Telecom", texts[self.customer])
        self.assertIn("Plan *Fibra*", texts[self.customer])
        self.assertIn("Hola Colegio San Martín", texts[self.customer_2])
        self.assertIn("Plan *Pensión*", texts[self.customer_2])
        self.assertEqual(len(self.gateway.requests), 2)

    def test_a_second_reminder_within_the_hour_needs_confirmation(self):
        order = self.create_order()
        with freeze_time("2026-11-20 15:00:00"):
            self.composer(order, channel_email=False).action_send()
        with freeze_time("2026-11-20 15:40:00"):
            composer = self.composer(order, channel_email=False)
            self.assertIn(order.name, composer.recent_warning)
            with self.assertRaisesRegex(UserError, "less than an hour ago"):
                composer.action_send()
            self.assertEqual(len(self.gateway.requests), 1)
            composer.send_again = True
            composer.action_send()
            self.assertEqual(len(self.gateway.requests), 2)
        with freeze_time("2026-11-20 17:00:00"):
            composer = self.composer(order, channel_email=False)
            self.assertFalse(composer.recent_warning, "an hour later it is an ordinary reminder")
            composer.action_send()
        self.assertEqual(order.notification_count, 3)

    def test_closed_orders_are_refused(self):
        paid = self.create_order()
        paid.action_pay()
        open_order = self.create_order()
        with self.assertRaisesRegex(UserError, f"Only pending or overdue orders can be notified: {paid.name}"):
            self.composer(paid | open_order).action_send()
        self.assertFalse(open_order.notification_ids)
        self.assertFalse(self.gateway.requests)

    def test_a_user_who_cannot_write_the_orders_cannot_send(self):
        order = self.create_order()
        with self.assertRaises(AccessError):
            self.composer(order, user=self.user_company_2).action_send()
        with self.assertRaises(AccessError):
            self.composer(order, user=self.internal_user).action_send()
        self.assertFalse(order.notification_ids)
        self.assertFalse(self.gateway.requests)

    def test_template_of_another_company_is_refused(self):
        order = self.create_order()
        foreign = self.template.copy({"name": "Plantilla Madrid", "company_id": self.company_2.id, "is_default": False})
        both = {"allowed_company_ids": (self.company | self.company_2).ids}
        composer = self.composer(order, user=self.manager).with_context(**both)
        composer.template_id = foreign
        with self.assertRaisesRegex(UserError, "Plantilla Madrid belongs to Collections Madrid"):
            composer.action_send()


@tagged("post_install", "-at_install")
class TestOrderListActions(PaymentDunningCase):
    """The Actions column and the bulk buttons of the orders list call Pay and Cancel on the
    selected orders: all of them, or none when one is closed."""

    def test_bulk_pay_and_cancel(self):
        orders = self.create_order(10.0) | self.create_order(20.0)
        orders.with_user(self.user).action_pay()
        self.assertEqual(orders.mapped("state"), ["paid", "paid"])
        others = self.create_order(30.0) | self.create_order(40.0)
        others.with_user(self.user).action_cancel()
        self.assertEqual(others.mapped("state"), ["cancelled", "cancelled"])

    def test_bulk_actions_refuse_a_selection_with_closed_orders(self):
        paid = self.create_order(10.0)
        paid.action_pay()
        pending = self.create_order(20.0)
        for action in ("action_pay", "action_cancel"):
            with self.assertRaisesRegex(UserError, paid.name):
                getattr((pending | paid).with_user(self.user), action)()
            self.assertEqual(pending.state, "pending", "nothing of the selection changes")

    def test_list_view_offers_the_actions_on_open_orders_only(self):
        arch = self.env["payment.order"].get_view(self.env.ref("payment_dunning.view_payment_order_list").id)["arch"]
        notify = f"{self.env.ref('payment_dunning.action_payment_order_notify').id}"
        for name in (notify, "action_pay", "action_cancel"):
            self.assertIn(f'name="{name}"', arch)
        self.assertGreaterEqual(arch.count("invisible=\"state not in ('pending', 'overdue')\""), 3)
        self.assertIn("<header>", arch)

    def test_row_notify_opens_the_composer_on_that_order(self):
        order = self.create_order()
        self.create_order()
        action = self.env.ref("payment_dunning.action_payment_order_notify")
        context = {"active_model": "payment.order", "active_id": order.id, "active_ids": order.ids}
        composer = self.env[action.res_model].with_user(self.user).with_context(**context).create({})
        self.assertEqual(composer.order_ids, order)
