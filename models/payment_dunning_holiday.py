from odoo import fields, models


class PaymentDunningHoliday(models.Model):
    """A day on which the company sends no automatic reminder (its sending window stays closed)."""

    _name = "payment.dunning.holiday"
    _description = "Collections Holiday"
    _order = "date"

    name = fields.Char(string="Holiday")
    date = fields.Date(required=True)
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company, ondelete="cascade"
    )

    _sql_constraints = [
        ("company_date_uniq", "UNIQUE(company_id, date)", "This day is already a holiday of the company."),
    ]
