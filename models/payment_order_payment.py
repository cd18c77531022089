from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from ..tools import collection
from ..tools.collection import OPEN_STATES

MANAGER_GROUP = "payment_dunning.group_payment_dunning_manager"
# what nobody changes after a payment is registered: a mistake is cancelled and registered again
FROZEN_FIELDS = {
    "name",
    "order_id",
    "amount",
    "date",
    "method_id",
    "account_payment_id",
    "transaction_id",
    "state",
    "cancel_reason",
    "balance_after",
}
CANCEL_KEY = "payment_order_payment_cancel"
CANCEL_SENTINEL = object()


class PaymentOrderPayment(models.Model):
    """One payment received for a payment order (README, "Payments"): lowers its balance; cancelled by a
    manager with a reason, the balance comes back."""

    _name = "payment.order.payment"
    _description = "Payment Order Payment"
    _inherit = ["mail.thread"]
    _order = "date desc, id desc"

    name = fields.Char(
        string="Receipt", readonly=True, copy=False, index=True, help="Number of its Constancia de pago."
    )
    order_id = fields.Many2one("payment.order", required=True, readonly=True, ondelete="restrict", index=True)
    partner_id = fields.Many2one(related="order_id.partner_id", store=True)
    company_id = fields.Many2one(related="order_id.company_id", store=True)
    currency_id = fields.Many2one(related="order_id.currency_id")
    amount = fields.Monetary(required=True, readonly=True, tracking=True)
    date = fields.Date(required=True, readonly=True, default=fields.Date.context_today)
    method_id = fields.Many2one("payment.order.payment.method", string="Method", readonly=True)
    reference = fields.Char(help="Operation number of the transfer, card or wallet payment.")
    note = fields.Text()
    state = fields.Selection(
        [("posted", "Posted"), ("cancelled", "Cancelled")], default="posted", readonly=True, tracking=True
    )
    cancel_reason = fields.Text(readonly=True)
    account_payment_id = fields.Many2one("account.payment", readonly=True, copy=False)
    transaction_id = fields.Many2one(
        "payment.transaction",
        string="Online Payment",
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="The customer paid on their pay-now page with this transaction.",
    )
    balance_after = fields.Monetary(
        string="Balance After", readonly=True, help="What the order still owed once this payment was registered."
    )
    receipt_notification_ids = fields.One2many(
        "payment.order.notification", "payment_id", string="Receipts Sent", readonly=True
    )

    _sql_constraints = [
        ("name_company_uniq", "UNIQUE(company_id, name)", "Receipt numbers are unique per company."),
    ]

    @api.model_create_multi
    def create(self, vals_list):
        payments = super().create(vals_list)
        for payment in payments:
            sequence = payment._receipt_sequence(payment.company_id)
            payment._write_internal({"name": sequence.next_by_id(payment.date)})
        return payments

    def _write_internal(self, vals):
        """The addon's own changes of what a user cannot change (number, balance after, cancel)."""
        return self.sudo().with_context(**{CANCEL_KEY: CANCEL_SENTINEL}).write(vals)

    def _receipt_sequence(self, company):
        """Each company numbers its own receipts; its sequence is made with its first payment."""
        name = self.env._("Payment receipts of %s", company.name)
        return collection.company_sequence(self.env, company, "payment.order.payment", name, "REC/%(year)s/")

    def write(self, vals):
        if FROZEN_FIELDS & set(vals) and self.env.context.get(CANCEL_KEY) is not CANCEL_SENTINEL:
            raise UserError(self.env._("A registered payment cannot be changed: cancel it and register it again."))
        return super().write(vals)

    def action_cancel_payment(self, reason):
        """Undo these payments: the order owes their amount again (a paid order reopens)."""
        if not self.env.user.has_group(MANAGER_GROUP):
            raise AccessError(self.env._("Only a Collections Manager can cancel a payment."))
        if not reason:
            raise UserError(self.env._("Say why the payment is cancelled."))
        self.check_access("write")
        for payment in self.filtered(lambda p: p.state == "posted"):
            payment._cancel(reason)
        return True

    def _cancel(self, reason):
        order = self.order_id.sudo()
        if self.transaction_id and order.invoice_id:
            raise UserError(
                self.env._(
                    "Payment %(payment)s was paid online (%(reference)s) and reconciled with invoice %(invoice)s: "
                    "undo it in Accounting (unreconcile or cancel its payment); the order follows its invoice.",
                    payment=self.name,
                    reference=self.transaction_id.reference,
                    invoice=order.invoice_id.name,
                )
            )
        if self.account_payment_id:
            # the invoice's residual comes back and the order follows it (account_move._sync_payment_orders)
            self.account_payment_id.sudo().action_draft()
            self.account_payment_id.sudo().action_cancel()
        else:
            order._restore_balance(order.balance + self.amount)
        self._write_internal({"state": "cancelled", "cancel_reason": reason})
        queued = self.sudo().receipt_notification_ids.filtered(lambda line: line.state == "queued")
        queued.write(
            {"state": "cancelled", "error": self.env._("The payment was cancelled before its receipt was sent.")}
        )
        self.message_post(body=self.env._("Payment cancelled: %s", reason))

    def _queue_receipts(self):
        """Queue the receipt of each of these payments to its customer, by the channels of the company's
        receipt template (README, "Receipts"); none when the company does not send receipts. A payment's
        receipt is queued once per contact, however often this is called."""
        notifications = self.env["payment.order.notification"].sudo()
        for payment in self.sudo().filtered(lambda p: p.state == "posted" and p.company_id.payment_receipt_notify):
            template = self.env["dunning.template"].sudo()._get_receipt_template(payment.company_id)
            if template:
                notifications |= notifications._queue(template, payment.order_id, payment=payment)
        return notifications

    def _send_receipts(self):
        """Queue the receipts and send them at once, as Notify does."""
        notifications = self._queue_receipts()
        if notifications:
            notifications._send_now()
        return notifications

    def _receipt_pdf(self):
        """(file name, PDF bytes) of this payment's Constancia de pago."""
        self.ensure_one()
        report = self.env.ref("payment_dunning.action_report_payment_receipt").sudo().with_company(self.company_id)
        content, _format = report._render_qweb_pdf(report, self.ids)
        return self.env._("Payment receipt %s.pdf", self.name), content

    def action_print_receipt(self):
        return self.env.ref("payment_dunning.action_report_payment_receipt").report_action(self)

    def action_send_receipt(self):
        """Send the receipt again, now, by the customer's channels."""
        self.check_access("write")
        notifications = self.env["payment.order.notification"].sudo()
        for payment in self.sudo().filtered(lambda p: p.state == "posted"):
            template = self.env["dunning.template"]._get_receipt_template(payment.company_id)
            if not template:
                raise UserError(self.env._("There is no payment receipt template (Collections > Dunning Templates)."))
            notifications |= notifications._queue(template, payment.order_id, payment=payment, again=True)
        notifications._send_now()
        return self.env["payment.order"]._notify_result_action(notifications)

    @staticmethod
    def _is_open(order):
        return order.state in OPEN_STATES
