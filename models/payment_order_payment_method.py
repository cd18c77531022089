from odoo import fields, models


class PaymentOrderPaymentMethod(models.Model):
    """How a customer paid an order: cash, bank transfer, card, a wallet (Yape, Plin)... (README, "Payments")."""

    _name = "payment.order.payment.method"
    _description = "Payment Order Payment Method"
    _order = "sequence, id"

    name = fields.Char(required=True, translate=True)
    code = fields.Char()
    active = fields.Boolean(default=True)
    sequence = fields.Integer(default=10)
    company_id = fields.Many2one("res.company", help="Leave empty to offer it in every company.")
