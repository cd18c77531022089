from odoo import api, fields, models


class PaymentOrderWriteOff(models.TransientModel):
    """Forgive what is left of an order's debt, or part of it (README, "Payment orders": cents left
    over after a payment are written off rather than chased)."""

    _name = "payment.order.write.off"
    _description = "Write Off a Payment Order's Balance"

    order_id = fields.Many2one("payment.order", string="Payment Order", required=True, readonly=True)
    currency_id = fields.Many2one(related="order_id.currency_id")
    balance = fields.Monetary(related="order_id.balance", string="Outstanding Balance")
    amount = fields.Monetary(
        string="Amount to Write Off",
        required=True,
        help="At most the outstanding balance. Writing off the whole balance closes the order.",
    )
    reason = fields.Text(required=True, help="Why this debt is forgiven; kept in the order's history.")

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        context = self.env.context
        if not values.get("order_id") and context.get("active_model") == "payment.order":
            values["order_id"] = context.get("active_id")
        if "amount" in fields_list and not values.get("amount") and values.get("order_id"):
            values["amount"] = self.env["payment.order"].browse(values["order_id"]).balance
        return values

    def action_write_off(self):
        self.ensure_one()
        # the order checks who may write off what: this dialog is only one way to call it
        self.order_id._write_off(self.amount, self.reason)
        return {"type": "ir.actions.act_window_close"}
