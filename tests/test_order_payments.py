from datetime import date

from freezegun import freeze_time

from odoo.addons.account.tests.common import AccountTestInvoicingCommon
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from .common import PaymentDunningCase


@tagged("post_install", "-at_install")
@freeze_time("2026-11-20")
class TestOrderPayments(PaymentDunningCase):
    """Payments registered on an order lower its balance; a manager's cancel gives it back."""

    def register(self, orders, amount=None, user=None, **values):
        env = self.env(user=user or self.user)
        wizard = (
            env["payment.order.register.payment"]
            .with_context(active_model="payment.order", active_ids=orders.ids)
            .create(
                {"date": "2026-11-15", "method_id": self.env.ref("payment_dunning.payment_method_yape").id, **values}
            )
        )
        if amount is not None:
            wizard.amount = amount
        wizard.action_register()
        return orders.payment_ids

    def test_partial_then_full_payment(self):
        order = self.create_order(100.0)
        self.register(order, 30.0)
        self.assertEqual(order.balance, 70.0)
        self.assertEqual(order.state, "pending")
        self.assertEqual(order.payment_count, 1)
        self.register(order, 70.0, date="2026-11-18")
        self.assertEqual(order.state, "paid")
        self.assertEqual(order.balance, 0.0)
        self.assertEqual(order.paid_date, date(2026, 11, 18))
        self.assertEqual(sorted(order.payment_ids.mapped("amount")), [30.0, 70.0])
        self.assertEqual(order.payment_ids.partner_id, self.customer)

    def test_more_than_balance_and_closed_orders_refused(self):
        order = self.create_order(100.0)
        with self.assertRaises(UserError):
            self.register(order, 100.01)
        with self.assertRaises(UserError):
            order._register_payment(0.0, "2026-11-15")
        order.action_pay()
        with self.assertRaises(UserError):
            self.register(order, 10.0)
        self.assertEqual(order.payment_ids.mapped("amount"), [100.0], "Pay registers the whole balance, once")

    def test_bulk_pays_each_its_balance(self):
        first, second = self.create_order(100.0), self.create_order(40.0)
        self.register(first | second, amount=5.0)
        self.assertEqual((first | second).mapped("state"), ["paid", "paid"])
        self.assertEqual(first.payment_ids.amount, 100.0)
        self.assertEqual(second.payment_ids.amount, 40.0)

    def test_manager_cancel_restores_balance_and_reopens(self):
        order = self.create_order(100.0, due_date="2026-11-10")
        payment = self.register(order, 100.0)
        self.assertEqual(order.state, "paid")
        with self.assertRaises(AccessError):
            payment.with_user(self.user).action_cancel_payment("typo")
        payment.with_user(self.manager).action_cancel_payment("wrong customer")
        self.assertEqual(payment.state, "cancelled")
        self.assertEqual(order.balance, 100.0)
        self.assertEqual(order.state, "overdue", "its due date is past")
        self.assertFalse(order.paid_date)

    def test_customer_lists_its_payments(self):
        order = self.create_order(100.0)
        self.register(order, 30.0)
        self.register(order, 20.0)
        partner = self.customer.with_user(self.user)
        self.assertEqual(partner.collection_payment_count, 2)
        action = partner.action_view_collection_payments()
        self.assertEqual(self.env["payment.order.payment"].search(action["domain"]), order.payment_ids)

    def test_manager_cancels_from_the_dialog(self):
        order = self.create_order(100.0)
        payment = self.register(order, 30.0)
        context = {"active_model": "payment.order.payment", "active_id": payment.id}
        dialog = self.env["payment.order.payment.cancel"].with_context(**context)
        with self.assertRaises(AccessError):
            dialog.with_user(self.user).create({"reason": "typo"})
        dialog.with_user(self.manager).create({"reason": "The transfer bounced"}).action_cancel_payment()
        self.assertEqual(payment.state, "cancelled")
        self.assertEqual(payment.cancel_reason, "The transfer bounced")
        self.assertEqual(order.balance, 100.0)

    def test_user_cannot_rewrite_a_payment(self):
        payment = self.register(self.create_order(100.0), 30.0)
        with self.assertRaises(UserError):
            payment.with_user(self.user).write({"amount": 1.0})
        with self.assertRaises(UserError):
            payment.with_user(self.user).write({"state": "cancelled"})
        self.assertEqual(payment.amount, 30.0)


@tagged("post_install", "-at_install")
class TestOrderPaymentsInvoice(AccountTestInvoicingCommon):
    """An invoice order's payment is registered on the invoice, which the order then follows."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.user.groups_id += cls.env.ref("payment_dunning.group_payment_dunning_manager")

    def test_invoice_payment_reconciles(self):
        invoice = self.init_invoice("out_invoice", amounts=[1000.0], invoice_date="2026-11-01", post=True)
        invoice.action_create_payment_orders()
        order = invoice.payment_order_ids
        total = invoice.amount_total
        payment = order._register_payment(400.0, date(2026, 11, 10))
        self.env.cr.precommit.run()
        self.assertTrue(payment.account_payment_id)
        self.assertEqual(invoice.payment_state, "partial")
        self.assertEqual(order.balance, invoice.amount_residual)
        self.assertEqual(order.balance, total - 400.0)
        order._register_payment(total - 400.0, date(2026, 11, 12))
        self.env.cr.precommit.run()
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertEqual(order.state, "paid")
        self.assertEqual(order.paid_date, date(2026, 11, 12))
        payment.action_cancel_payment("bounced")
        self.env.cr.precommit.run()
        self.assertEqual(invoice.amount_residual, 400.0)
        self.assertEqual(order.state, "overdue", "the order owes again what its invoice owes again")
        self.assertEqual(order.balance, 400.0)
        self.assertFalse(order.paid_date)

    def test_pay_button_pays_the_invoice(self):
        invoice = self.init_invoice("out_invoice", amounts=[300.0], invoice_date="2026-11-01", post=True)
        invoice.action_create_payment_orders()
        order = invoice.payment_order_ids
        order.action_pay()
        self.env.cr.precommit.run()
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertEqual(order.state, "paid")
        self.assertTrue(order.payment_ids.account_payment_id)
        self.assertEqual(order.payment_ids.amount, invoice.amount_total)
