from odoo import fields, models, tools
from odoo.tools import SQL

from ..tools import collection

BUCKETS = [
    ("0", "Not yet due"),
    ("1_30", "1-30 days"),
    ("31_60", "31-60 days"),
    ("61_90", "61-90 days"),
    ("90_plus", "Over 90 days"),
]


class PaymentDunningAging(models.Model):
    """Open balances by customer and days past due (read-only, a SQL view)."""

    _name = "payment.dunning.aging"
    _description = "Collections Aging"
    _auto = False
    _order = "partner_id, due_date"

    order_id = fields.Many2one("payment.order", string="Payment Order", readonly=True)
    partner_id = fields.Many2one("res.partner", string="Customer", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    currency_id = fields.Many2one("res.currency", readonly=True)
    due_date = fields.Date(readonly=True)
    days_overdue = fields.Integer(readonly=True, aggregator="max")
    bucket = fields.Selection(BUCKETS, string="Days Past Due", readonly=True)
    balance = fields.Monetary(string="Outstanding Balance", readonly=True)
    order_count = fields.Integer(string="Orders", readonly=True)

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(
            SQL(
                """
            CREATE OR REPLACE VIEW %s AS (
                SELECT o.id, o.id AS order_id, o.partner_id, o.company_id, o.currency_id, o.due_date,
                       GREATEST(late.days, 0) AS days_overdue,
                       CASE WHEN late.days <= 0 THEN '0'
                            WHEN late.days <= 30 THEN '1_30'
                            WHEN late.days <= 60 THEN '31_60'
                            WHEN late.days <= 90 THEN '61_90'
                            ELSE '90_plus' END AS bucket,
                       o.balance, 1 AS order_count
                  FROM payment_order o
                  JOIN res_company c ON c.id = o.company_id
                  JOIN res_partner cp ON cp.id = c.partner_id
                 CROSS JOIN LATERAL (
                       -- "today" in the company's timezone, like the overdue job
                       SELECT (now() AT TIME ZONE COALESCE(cp.tz, 'UTC'))::date - o.due_date AS days
                 ) AS late
                 WHERE %s AND o.balance > 0
            )
                """,
                SQL.identifier(self._table),
                collection.open_state_sql("o"),
            )
        )
