from odoo import api, fields, models
from odoo.exceptions import UserError

# receipts of this many payments go at once from the dialog; more are left to the send queue
SEND_RECEIPTS_AT_ONCE = 20


class PaymentOrderRegisterPayment(models.TransientModel):
    """Register a payment received for one order, or the whole balance of several (README, "Payments")."""

    _name = "payment.order.register.payment"
    _description = "Register a Payment on Payment Orders"

    order_ids = fields.Many2many("payment.order", string="Payment Orders", required=True)
    order_count = fields.Integer(compute="_compute_order_count")
    currency_id = fields.Many2one("res.currency", compute="_compute_order_count")
    amount = fields.Monetary(help="At most the outstanding balance. Several orders are each paid their whole balance.")
    date = fields.Date(required=True, default=fields.Date.context_today)
    method_id = fields.Many2one("payment.order.payment.method", string="Method")
    reference = fields.Char(help="Operation number of the transfer, card or wallet payment.")
    note = fields.Text()

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        context = self.env.context
        if not values.get("order_ids") and context.get("active_model") == "payment.order":
            values["order_ids"] = [(6, 0, context.get("active_ids") or [context.get("active_id")])]
        order_ids = values.get("order_ids") and values["order_ids"][0][2]
        if "amount" in fields_list and not values.get("amount") and order_ids and len(order_ids) == 1:
            values["amount"] = self.env["payment.order"].browse(order_ids).balance
        return values

    @api.depends("order_ids")
    def _compute_order_count(self):
        for wizard in self:
            wizard.order_count = len(wizard.order_ids)
            wizard.currency_id = wizard.order_ids[:1].currency_id

    def action_register(self):
        self.ensure_one()
        if not self.order_ids:
            raise UserError(self.env._("Choose the orders to register a payment for."))
        # the order checks the amount and who may pay it: this dialog is only one way to call it
        payments = self.env["payment.order.payment"]
        for order in self.order_ids:
            amount = self.amount if len(self.order_ids) == 1 else order.balance
            payments |= order._register_payment(amount, self.date, self.method_id, self.reference, self.note)
        if len(payments) <= SEND_RECEIPTS_AT_ONCE:
            receipts = payments._send_receipts()
        else:
            # many at once: the send queue sends them, the dialog does not wait
            receipts = payments._queue_receipts()
        return self._result_action(payments, receipts)

    def _result_action(self, payments, receipts):
        """What was registered, and what happened to each receipt."""
        orders = self.env["payment.order"]
        lines = [
            self.env._(
                "Payment %(receipt)s of %(amount)s registered on %(order)s.",
                receipt=payment.name,
                amount=payment.currency_id.format(payment.amount),
                order=payment.order_id.name,
            )
            for payment in payments[:SEND_RECEIPTS_AT_ONCE]
        ]
        if len(payments) > SEND_RECEIPTS_AT_ONCE:
            lines.append(self.env._("%s payments registered; their receipts are queued.", len(payments)))
        else:
            receipts = receipts.sudo()
            receipts.invalidate_recordset()
            queue_active = orders._send_queue_active()
            lines += [self.env._("Receipt: %s", orders._notify_outcome_text(line, queue_active)) for line in receipts]
        failed = receipts.filtered(lambda line: line.state not in ("sent", "queued"))
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "warning" if failed else "success",
                "title": self.env._("Payment registered"),
                "message": "\n".join(lines),
                "sticky": bool(failed),
                "next": {"type": "ir.actions.act_window_close"},
            },
        }
