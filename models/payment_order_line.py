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
    plan_id = fields.Many2one(
        "service.plan",
        string="Service Plan",
        index="btree_not_null",
        ondelete="restrict",
        readonly=True,
        help="The plan this line bills, when the order was generated from service plans.",
    )
    plan_due_date = fields.Date(
        string="Billed Period",
        readonly=True,
        help="Due date of the plan's period that this line bills.",
    )

    _sql_constraints = [
        (
            "plan_period_uniq",
            "UNIQUE(plan_id, plan_due_date)",
            "A service plan is billed only once for each due date.",
        ),
    ]

    @api.model_create_multi
    def create(self, vals_list):
        # lines are written only while their order is created (README, "Security")
        if not self.env["payment.order"]._is_internal_edit():
            order_ids = {vals["order_id"] for vals in vals_list if vals.get("order_id")}
            self.env["payment.order"].browse(order_ids)._raise_lines_locked()
        return super().create(vals_list)

    def write(self, vals):
        if not self.env["payment.order"]._is_internal_edit():
            self.order_id._raise_lines_locked()
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_locked(self):
        self.order_id._raise_lines_locked()
