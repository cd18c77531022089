from odoo import api, fields, models
from odoo.exceptions import UserError


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
        for order in self.order_ids:
            amount = self.amount if len(self.order_ids) == 1 else order.balance
            order._register_payment(amount, self.date, self.method_id, self.reference, self.note)
        return {"type": "ir.actions.act_window_close"}
