from odoo import api, fields, models
from odoo.exceptions import UserError

from ..tools import collection


class PaymentOrderPromiseWizard(models.TransientModel):
    """Record a customer's promise to pay, from an order or from the customer."""

    _name = "payment.order.promise.wizard"
    _description = "Promise to Pay"

    partner_id = fields.Many2one("res.partner", string="Customer", required=True, readonly=True)
    company_id = fields.Many2one("res.company", required=True, readonly=True, default=lambda self: self.env.company)
    currency_id = fields.Many2one(related="company_id.currency_id")
    order_ids = fields.Many2many(
        "payment.order",
        string="Payment Orders",
        required=True,
        domain="[('partner_id', '=', partner_id), ('company_id', '=', company_id), "
        "('state', 'in', ('pending', 'overdue'))]",
    )
    total_balance = fields.Monetary(compute="_compute_total_balance", string="Outstanding Balance")
    promised_date = fields.Date(required=True)
    promised_amount = fields.Monetary(required=True)
    user_id = fields.Many2one("res.users", string="Collector", default=lambda self: self.env.user)
    note = fields.Text()

    @api.depends("order_ids")
    def _compute_total_balance(self):
        for wizard in self:
            wizard.total_balance = sum(wizard.order_ids.mapped("balance"))

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        orders = self._orders_from_context()
        if orders:
            values.setdefault("partner_id", orders[0].partner_id.commercial_partner_id.id)
            values.setdefault("company_id", orders[0].company_id.id)
            values.setdefault("order_ids", [fields.Command.set(orders.ids)])
            values.setdefault("promised_amount", sum(orders.mapped("balance")))
        company = self.env["res.company"].browse(values.get("company_id")) or self.env.company
        values.setdefault("promised_date", collection.company_today(company))
        return values

    def _orders_from_context(self):
        context = self.env.context
        orders = self.env["payment.order"]
        if context.get("active_model") == "payment.order":
            orders = orders.browse(context.get("active_ids") or context.get("active_id") or [])
        elif context.get("active_model") == "res.partner" and context.get("active_id"):
            partner = self.env["res.partner"].browse(context["active_id"]).commercial_partner_id
            orders = orders.search(
                [
                    ("partner_id", "=", partner.id),
                    ("company_id", "=", self.env.company.id),
                    ("state", "in", collection.OPEN_STATES),
                    ("balance", ">", 0),
                ]
            )
            if not orders:
                raise UserError(self.env._("%s has no open payment orders to promise for.", partner.name))
        return orders.filtered(lambda o: o.state in collection.OPEN_STATES)

    def action_confirm(self):
        self.ensure_one()
        promise = self.env["payment.order.promise"].create(
            {
                "partner_id": self.partner_id.id,
                "company_id": self.company_id.id,
                "order_ids": [fields.Command.set(self.order_ids.ids)],
                "promised_date": self.promised_date,
                "promised_amount": self.promised_amount,
                "user_id": self.user_id.id,
                "note": self.note,
            }
        )
        return {
            "type": "ir.actions.act_window",
            "res_model": "payment.order.promise",
            "res_id": promise.id,
            "view_mode": "form",
            "target": "current",
        }
