from odoo import fields, models


class PaymentOrderCharge(models.Model):
    """One late fee or day of interest added to an order's Charges and Interest (README, "Late fees and
    interest")."""

    _name = "payment.order.charge"
    _description = "Payment Order Charge"
    _order = "date desc, id desc"

    order_id = fields.Many2one("payment.order", required=True, readonly=True, ondelete="cascade", index=True)
    partner_id = fields.Many2one(related="order_id.partner_id", store=True)
    company_id = fields.Many2one(related="order_id.company_id", store=True)
    currency_id = fields.Many2one(related="order_id.currency_id")
    date = fields.Date(required=True, readonly=True)
    kind = fields.Selection([("fee", "Late Fee"), ("interest", "Interest")], required=True, readonly=True)
    amount = fields.Monetary(required=True, readonly=True)
