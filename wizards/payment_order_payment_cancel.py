from odoo import api, fields, models


class PaymentOrderPaymentCancel(models.TransientModel):
    """A manager cancels a payment registered by mistake or bounced, with the reason (README, "Payments")."""

    _name = "payment.order.payment.cancel"
    _description = "Cancel a Payment Order Payment"

    payment_id = fields.Many2one("payment.order.payment", string="Payment", required=True, readonly=True)
    currency_id = fields.Many2one(related="payment_id.currency_id")
    amount = fields.Monetary(related="payment_id.amount")
    order_id = fields.Many2one(related="payment_id.order_id")
    reason = fields.Text(required=True, help="Why the payment is cancelled; kept with the payment and its order.")

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        context = self.env.context
        if not values.get("payment_id") and context.get("active_model") == "payment.order.payment":
            values["payment_id"] = context.get("active_id")
        return values

    def action_cancel_payment(self):
        self.ensure_one()
        # the payment checks who may cancel: this dialog is only one way to call it
        self.payment_id.action_cancel_payment(self.reason)
        return {"type": "ir.actions.act_window_close"}
