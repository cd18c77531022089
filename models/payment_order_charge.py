import logging

from odoo import api, fields, models
from odoo.tools import SQL

from ..tools import chatter, collection

_logger = logging.getLogger(__name__)


class PaymentOrderCharge(models.Model):
    """One late fee or run of daily interest added to an order's Charges and Interest (README, "Late fees
    and interest").

    Each company sets a grace period, a fixed fee and a monthly rate (Settings). An open order more days
    past due than the grace period gets the fee once, and interest every day on what it owes of its amount
    (its balance less its charges), the monthly rate / 30 a day; days the job did not run are caught up
    on its next run. The order's charges never exceed the cap, a percentage of its amount. A promise to
    pay does not stop interest: the debt is still late.
    """

    _name = "payment.order.charge"
    _description = "Payment Order Charge"
    _order = "date desc, id desc"

    order_id = fields.Many2one("payment.order", required=True, readonly=True, ondelete="cascade", index=True)
    partner_id = fields.Many2one(related="order_id.partner_id", store=True)
    company_id = fields.Many2one(related="order_id.company_id", store=True)
    currency_id = fields.Many2one(related="order_id.currency_id")
    date = fields.Date(required=True, readonly=True)
    date_from = fields.Date(string="From", readonly=True, help="First day of interest this charge covers.")
    kind = fields.Selection([("fee", "Late Fee"), ("interest", "Interest")], required=True, readonly=True)
    amount = fields.Monetary(required=True, readonly=True)

    def init(self):
        # the job's keys: one fee per order, one interest charge per order and day (two workers, a re-run)
        self.env.cr.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS payment_order_charge_fee_uniq "
            "ON payment_order_charge (order_id) WHERE kind = 'fee'"
        )
        self.env.cr.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS payment_order_charge_day_uniq "
            "ON payment_order_charge (order_id, kind, date)"
        )

    # ------------------------------------------------------------------ the daily job

    @api.model
    def _cron_apply_late_fees(self):
        """Add today's late fees and interest in every company that has them on; committed per company."""
        companies = self.env["res.company"].sudo().search([("late_fee_active", "=", True)])
        added = 0
        for company in companies:
            added += self._apply_late_fees(company, company._late_fee_terms())
            collection.commit(self.env.cr)
        return added

    @api.model
    def _apply_late_fees(self, company, terms):
        """One statement picks and locks the orders due a charge, inserts the charges and raises the orders'
        charges, totals and balances; a second one, in the same transaction, tracks the charges in the
        chatter of the orders whose charges start today. Orders another worker holds are skipped (it
        charges them); the unique keys make a second run of the day add nothing."""
        today = collection.company_today(company)
        self.env["payment.order"].flush_model()
        self.flush_model()
        insert = SQL(
            """
            %(calc)s,
            inserted AS (
                INSERT INTO payment_order_charge (order_id, partner_id, company_id, date, date_from, kind, amount,
                                                  create_uid, create_date, write_uid, write_date)
                SELECT c.id, c.partner_id, c.company_id, %(today)s, NULL, 'fee', c.fee,
                       %(uid)s, now() AT TIME ZONE 'UTC', %(uid)s, now() AT TIME ZONE 'UTC'
                  FROM charged c WHERE c.fee > 0
                 UNION ALL
                SELECT c.id, c.partner_id, c.company_id, %(today)s, c.interest_from, 'interest', c.interest,
                       %(uid)s, now() AT TIME ZONE 'UTC', %(uid)s, now() AT TIME ZONE 'UTC'
                  FROM charged c WHERE c.interest > 0
                ON CONFLICT DO NOTHING
             RETURNING order_id, amount, kind, date
            ),
            added AS (
                SELECT order_id, sum(amount) AS amount, bool_or(kind = 'fee') AS fee,
                       max(date) FILTER (WHERE kind = 'interest') AS interest_until
                  FROM inserted GROUP BY order_id
            ),
            updated AS (
                UPDATE payment_order o
                   SET charges_amount = coalesce(o.charges_amount, 0) + a.amount,
                       amount_total = o.amount_total + a.amount,
                       balance = o.balance + a.amount,
                       late_fee_applied = coalesce(o.late_fee_applied, false) OR a.fee,
                       interest_until = coalesce(a.interest_until, o.interest_until),
                       write_date = now() AT TIME ZONE 'UTC', write_uid = %(uid)s
                  FROM added a
                 WHERE o.id = a.order_id
             RETURNING o.id, o.currency_id,
                       o.charges_amount - a.amount AS old_charges_amount, o.charges_amount AS new_charges_amount
            )
            """,
            calc=self._late_fee_sql(company, terms, today, lock=True),
            today=today,
            uid=self.env.uid,
        )
        # the orders charged, kept for their chatter entries (a temporary table of this transaction)
        self.env.cr.execute(
            "CREATE TEMP TABLE IF NOT EXISTS late_fee_charged "
            "(id int, currency_id int, old_charges_amount numeric, new_charges_amount numeric) ON COMMIT DROP"
        )
        self.env.cr.execute("TRUNCATE late_fee_charged")
        self.env.cr.execute(SQL("%s INSERT INTO late_fee_charged SELECT * FROM updated", SQL("WITH %s", insert)))
        count = self.env.cr.rowcount
        # the chatter tracks the charges when they start; each day's interest after that is a line of
        # the order's Charges and Interest (a note a day on every late order would bury its history)
        chatter.log_amount_tracking_sql(
            self.env,
            "payment.order",
            SQL("(SELECT * FROM late_fee_charged WHERE old_charges_amount = 0)"),
            ["charges_amount"],
            author=self.env.ref("base.partner_root"),
        )
        self.env["payment.order"].invalidate_model(
            ["charges_amount", "amount_total", "balance", "late_fee_applied", "interest_until", "write_date"]
        )
        self.invalidate_model()
        _logger.info("Late fees and interest added to %d payment orders of %s", count, company.name)
        return count

    @api.model
    def _late_fee_sql(self, company, terms, today, lock=False):
        """The CTEs ``candidates`` … ``charged`` (id, partner, company, fee, interest, interest_from) of the
        orders of ``company`` due a charge ``today`` under ``terms``: the job's and the preview's."""
        return SQL(
            """
            candidates AS (
                SELECT o.id, o.partner_id, o.company_id, o.amount, coalesce(o.charges_amount, 0) AS charges_amount,
                       o.balance, o.due_date, coalesce(o.late_fee_applied, false) AS has_fee, o.interest_until,
                       cur.decimal_places
                  FROM payment_order o
                  JOIN res_currency cur ON cur.id = o.currency_id
                 WHERE o.company_id = %(company)s AND o.state IN ('pending', 'overdue') AND o.balance > 0
                   AND o.due_date < %(today)s::date - %(grace)s
                   %(lock)s
            ),
            terms AS (
                SELECT c.*,
                       greatest(coalesce(c.interest_until + 1, c.due_date + %(grace)s + 1),
                                c.due_date + %(grace)s + 1) AS interest_from,
                       CASE WHEN %(cap)s > 0
                            THEN greatest(round(c.amount * %(cap)s / 100, c.decimal_places) - c.charges_amount, 0)
                            ELSE 'infinity'::numeric END AS room,
                       greatest(c.balance - c.charges_amount, 0) AS principal
                  FROM candidates c
            ),
            raw AS (
                SELECT t.*,
                       CASE WHEN %(fixed)s > 0 AND NOT t.has_fee THEN %(fixed)s::numeric ELSE 0 END AS fee_raw,
                       round(t.principal * %(rate)s / 100 / 30 * greatest(%(today)s::date - t.interest_from + 1, 0),
                             t.decimal_places) AS interest_raw
                  FROM terms t
            ),
            charged AS (
                SELECT r.id, r.partner_id, r.company_id, r.interest_from,
                       least(r.fee_raw, r.room) AS fee,
                       least(r.interest_raw, r.room - least(r.fee_raw, r.room)) AS interest
                  FROM raw r
                 WHERE r.room > 0 AND (r.fee_raw > 0 OR r.interest_raw > 0)
            )
            """,
            company=company.id,
            today=today,
            grace=max(int(terms["grace_days"] or 0), 0),
            cap=max(float(terms["cap_percent"] or 0.0), 0.0),
            fixed=max(float(terms["fixed"] or 0.0), 0.0),
            rate=max(float(terms["monthly_rate"] or 0.0), 0.0),
            lock=SQL("FOR UPDATE OF o SKIP LOCKED") if lock else SQL(""),
        )

    @api.model
    def _preview_late_fees(self, company, terms, limit=50):
        """What the job would add today under ``terms``, without writing: totals and the first orders."""
        today = collection.company_today(company)
        self.env["payment.order"].flush_model()
        self.flush_model()
        self.env.cr.execute(
            SQL(
                """
                WITH %s
                SELECT count(*) FILTER (WHERE fee + interest > 0), coalesce(sum(fee), 0), coalesce(sum(interest), 0)
                  FROM charged
                """,
                self._late_fee_sql(company, terms, today),
            )
        )
        count, fees, interest = self.env.cr.fetchone()
        self.env.cr.execute(
            SQL(
                """
                WITH %s
                SELECT id, fee, interest FROM charged WHERE fee + interest > 0
                 ORDER BY fee + interest DESC, id LIMIT %s
                """,
                self._late_fee_sql(company, terms, today),
                limit,
            )
        )
        rows = self.env.cr.fetchall()
        return {"today": today, "count": count, "fees": float(fees), "interest": float(interest), "rows": rows}
