from odoo import api, fields, models


class PaymentOrderLine(models.Model):
    _name = "payment.order.line"
    _description = "Payment Order Line"
    _order = "order_id, sequence, id"

    order_id = fields.Many2one("payment.order", string="Payment Order", required=True, ondelete="cascade", index=True)
    sequence = fields.Integer(default=10)
    name = fields.Char(string="Description", required=True)
    amount = fields.Monetary(required=True)
    company_id = fields.Many2one(related="order_id.company_id", store=True, index=True)
    currency_id = fields.Many2one(related="order_id.currency_id", store=True)

    @api.model_create_multi
    def create(self, vals_list):
        if not self.env.context.get("payment_order_creating"):
            order_ids = {vals["order_id"] for vals in vals_list if vals.get("order_id")}
            self.env["payment.order"].browse(order_ids)._raise_lines_locked()
        return super().create(vals_list)

    def write(self, vals):
        if not self.env.context.get("payment_order_creating"):
            self.order_id._raise_lines_locked()
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_locked(self):
        self.order_id._raise_lines_locked()
