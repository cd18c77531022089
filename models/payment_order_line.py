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
    # What the label is made of, so that a reminder says it in the customer's language rather than in
    # the language of whoever created the line (``name`` keeps the creator's wording for display).
    label_kind = fields.Selection(
        [("text", "Text"), ("installment", "Installment"), ("amount_due", "Amount Due")],
        readonly=True,
        help="Text (or empty): the description as written. Installment: the plan's service and the "
        "installment number. Amount due: the generic label of a one-amount order.",
    )
    installment_number = fields.Integer(readonly=True)
    installment_count = fields.Integer(readonly=True)
    label = fields.Char(
        compute="_compute_label",
        help="The description in the language of the context (the customer's, when a reminder is rendered).",
    )

    _sql_constraints = [
        (
            "plan_period_uniq",
            "UNIQUE(plan_id, plan_due_date)",
            "A service plan is billed only once for each due date.",
        ),
    ]

    @api.depends("name", "label_kind", "installment_number", "installment_count", "plan_id.name")
    @api.depends_context("lang")
    def _compute_label(self):
        for line in self:
            line.label = line._render_label()

    def _render_label(self):
        self.ensure_one()
        if self.label_kind == "installment" and self.plan_id:
            return self._installment_label(self.plan_id.name, self.installment_number, self.installment_count)
        if self.label_kind == "amount_due":
            return self._amount_due_label()
        # text, or a line made before the label was stored: its description as written
        return self.name or ""

    @api.model
    def _installment_label(self, service, number, count):
        return self.env._(
            "%(service)s (installment %(number)s of %(count)s)", service=service, number=number, count=count
        )

    @api.model
    def _amount_due_label(self):
        return self.env._("Amount due")

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
