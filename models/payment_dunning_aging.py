from odoo import api, fields, models, tools
from odoo.tools import SQL

from ..tools import collection, order_summary

BUCKETS = [
    ("0", "Not yet due"),
    ("1_30", "1-30 days"),
    ("31_60", "31-60 days"),
    ("61_90", "61-90 days"),
    ("90_plus", "Over 90 days"),
]
# what the running totals know of each bucket, for _read_group
SUMMARY_AGGREGATES = {"__count": 0, "order_count:sum": 0, "balance:sum": 1, "days_overdue:max": 2}


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

    @api.model
    def _read_group(self, domain, groupby=(), aggregates=(), having=(), offset=0, limit=None, order=None):
        # the report and the dashboard group the whole book by bucket: read the running totals
        # instead of every open order (tools/order_summary.py)
        rows = self._read_group_buckets(domain, groupby, aggregates, having, offset, limit, order)
        if rows is not None:
            return rows
        return super()._read_group(domain, groupby, aggregates, having, offset, limit, order)

    @api.model
    def _read_group_buckets(self, domain, groupby, aggregates, having, offset, limit, order):
        """The groups by bucket from the running totals, or None when only a search can answer."""
        if (
            tuple(groupby) != ("bucket",)
            or not set(aggregates) <= set(SUMMARY_AGGREGATES)
            or having
            or offset
            or limit
            or (order or "bucket").lower() not in ("bucket", "bucket asc")
        ):
            return None
        scope = order_summary.scope(self, domain, ("bucket",), "payment_dunning.rule_payment_dunning_aging_company")
        if scope is None:
            return None
        companies, values = scope
        figures = order_summary.aging(self.env.cr, companies)
        buckets = values.get("bucket")
        return [
            (bucket, *(figures[bucket][SUMMARY_AGGREGATES[aggregate]] for aggregate in aggregates))
            for bucket, _label in BUCKETS
            if bucket in figures and (buckets is None or bucket in buckets)
        ]
