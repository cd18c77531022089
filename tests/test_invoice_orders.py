from datetime import date

from odoo.addons.account.tests.common import AccountTestInvoicingCommon
from odoo.tests import tagged


@tagged("post_install", "-at_install")
class TestInvoiceOrders(AccountTestInvoicingCommon):
    """Posted customer invoices become payment orders whose balance follows the invoice."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.user.groups_id += cls.env.ref("payment_dunning.group_payment_dunning_manager")
        cls.params = cls.env["ir.config_parameter"].sudo()

    def invoice(self, amount=1000.0, post=True):
        return self.init_invoice("out_invoice", amounts=[amount], invoice_date="2026-11-01", post=post)

    def pay(self, invoice, amount):
        self.env["account.payment.register"].with_context(active_model="account.move", active_ids=invoice.ids).create(
            {"amount": amount, "payment_date": "2026-11-10"}
        )._create_payments()
        self.env.cr.precommit.run()  # the orders follow their invoices before the commit

    def test_posted_invoice_becomes_an_order(self):
        invoice = self.invoice(1000.0)
        invoice.action_create_payment_orders()
        order = invoice.payment_order_ids
        self.assertEqual(len(order), 1)
        self.assertEqual(order.origin, "invoice")
        self.assertEqual(order.payment_code, invoice.name)
        self.assertEqual(order.amount_total, invoice.amount_total_signed)
        self.assertEqual(order.balance, invoice.amount_residual)
        self.assertEqual(order.due_date, invoice.invoice_date_due)
        self.assertEqual(order.partner_id, invoice.commercial_partner_id)
        self.assertEqual(order.state, "pending")

    def test_draft_and_paid_invoices_get_no_order(self):
        draft = self.invoice(100.0, post=False)
        paid = self.invoice(100.0)
        self.pay(paid, paid.amount_total)
        (draft | paid).action_create_payment_orders()
        self.assertFalse((draft | paid).payment_order_ids)

    def test_partial_then_full_payment(self):
        invoice = self.invoice(1000.0)
        invoice.action_create_payment_orders()
        order = invoice.payment_order_ids
        total = invoice.amount_total
        self.pay(invoice, 400.0)
        self.assertEqual(order.balance, total - 400.0)
        self.assertEqual(order.state, "pending")
        self.pay(invoice, total - 400.0)
        self.assertEqual(order.state, "paid")
        self.assertEqual(order.balance, 0.0)

    def test_credit_note_reversal_cancels_the_order(self):
        invoice = self.invoice(500.0)
        invoice.action_create_payment_orders()
        order = invoice.payment_order_ids
        invoice._reverse_moves([{"date": date(2026, 11, 15), "ref": "Devolución"}], cancel=True)
        self.env.cr.precommit.run()
        self.assertEqual(invoice.payment_state, "reversed")
        self.assertEqual(order.state, "cancelled")

    def test_rerun_creates_nothing_new_and_job_follows_settings(self):
        first = self.invoice(100.0)
        second = self.invoice(200.0)
        self.params.set_param("payment_dunning.automatic_tasks", True)
        self.params.set_param("payment_dunning.invoice_orders", False)
        self.assertFalse(self.env["payment.order"]._cron_orders_from_invoices())
        self.params.set_param("payment_dunning.invoice_orders", True)
        created = self.env["payment.order"]._cron_orders_from_invoices()
        self.assertLessEqual(first | second, created.invoice_id, "demo invoices may be billed too")
        self.assertEqual(len(created), len(created.invoice_id))
        self.assertFalse(self.env["payment.order"]._cron_orders_from_invoices(), "a rerun creates nothing")
        (first | second).action_create_payment_orders()
        self.assertEqual(len((first | second).payment_order_ids), 2, "never two orders for one invoice")

    def test_imported_order_with_the_invoice_number_is_linked_not_duplicated(self):
        invoice = self.invoice(300.0)
        order = self.env["payment.order"]._insert_bulk(
            [
                {
                    "partner_id": invoice.commercial_partner_id.id,
                    "company_id": invoice.company_id.id,
                    "due_date": "2026-12-01",
                    "payment_code": invoice.name,
                    "lines": [{"name": invoice.name, "amount": invoice.amount_total_signed}],
                }
            ],
            "import",
        )
        invoice.action_create_payment_orders()
        self.assertEqual(invoice.payment_order_ids, order)
