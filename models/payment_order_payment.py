from odoo import fields, models
from odoo.exceptions import AccessError, UserError

from ..tools.collection import OPEN_STATES

MANAGER_GROUP = "payment_dunning.group_payment_dunning_manager"
# what nobody changes after a payment is registered: a mistake is cancelled and registered again
FROZEN_FIELDS = {"order_id", "amount", "date", "method_id", "account_payment_id", "state", "cancel_reason"}
CANCEL_KEY = "payment_order_payment_cancel"
CANCEL_SENTINEL = object()


class PaymentOrderPayment(models.Model):
    """One payment received for a payment order (README, "Payments"): lowers its balance; cancelled by a
    manager with a reason, the balance comes back."""

    _name = "payment.order.payment"
    _description = "Payment Order Payment"
    _inherit = ["mail.thread"]
    _order = "date desc, id desc"

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
        if self.account_payment_id:
            # the invoice's residual comes back and the order follows it (account_move._sync_payment_orders)
            self.account_payment_id.sudo().action_draft()
            self.account_payment_id.sudo().action_cancel()
        else:
            order._restore_balance(order.balance + self.amount)
        self.sudo().with_context(**{CANCEL_KEY: CANCEL_SENTINEL}).write({"state": "cancelled", "cancel_reason": reason})
        self.message_post(body=self.env._("Payment cancelled: %s", reason))

    def _queue_receipts(self):
        """Queue the receipt of each of these payments to its customer (README, "Receipts"); returns the
        queued notifications (none when the company does not send receipts)."""
        return self.env["payment.order.notification"]

    def _send_receipts(self):
        """Queue the receipts and send them at once, as Notify does."""
        notifications = self._queue_receipts()
        if notifications:
            notifications._send_now()
        return notifications

    @staticmethod
    def _is_open(order):
        return order.state in OPEN_STATES
