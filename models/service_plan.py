import logging
from collections import defaultdict

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL

from ..tools import collection

_logger = logging.getLogger(__name__)

# First key of the advisory locks that give one generation worker a customer at a time
# (the second key is the partner id).
BILLING_FIELDS = ("installments_billed", "billing_done", "generation_error", "generation_error_date")
GENERATION_LOCK_KEY = 0x50444E47
MAX_PERIOD_MONTHS = 120

PLAN_COLUMNS = (
    "id",
    "partner_id",
    "company_id",
    "name",
    "amount",
    "payment_mode",
    "installments",
    "installments_billed",
    "next_due_date",
    "billing_day",
    "period_months",
    "start_date",
    "end_date",
)


def advance_due_date(due_date, months, billing_day):
    """The due date ``months`` later, on the plan's own day of the month.

    31 January + 1 month is 28 February, and the month after that is 31 March again:
    the day is kept by the plan, so month ends do not drift.
    """
    return due_date + relativedelta(months=months, day=billing_day or due_date.day)


def installment_limit(plan):
    """How many periods a plan bills in all; 0 means no limit (recurring)."""
    if plan["payment_mode"] == "single":
        return 1
    if plan["payment_mode"] == "installments":
        return max(plan["installments"] or 1, 1)
    return 0


def in_window(plan, due_date):
    """Start and end dates win over the payment mode (README, "Service plans"): nothing is billed outside them."""
    return (not plan["start_date"] or due_date >= plan["start_date"]) and (
        not plan["end_date"] or due_date <= plan["end_date"]
    )


def is_billing_done(plan):
    """No order will bill the plan again: every installment billed, or its end date passed."""
    limit = installment_limit(plan)
    return bool(limit and plan["installments_billed"] >= limit) or bool(
        plan["end_date"] and plan["next_due_date"] and plan["next_due_date"] > plan["end_date"]
    )


def plan_billing(plan, horizon):
    """What one run does with a plan: ``(due date to bill or None, next due date)``.

    ``plan`` is a mapping of PLAN_COLUMNS. A plan left behind (next due date long past) bills only
    its latest period that falls before ``horizon``, never every missed month.
    """
    due = plan["next_due_date"]
    if due > horizon:
        return None, due
    months, day = plan["period_months"] or 1, plan["billing_day"]
    following = advance_due_date(due, months, day)
    while following <= horizon:
        due, following = following, advance_due_date(following, months, day)
    limit = installment_limit(plan)
    if limit and plan["installments_billed"] >= limit:
        return None, due
    if not in_window(plan, due):
        return None, following
    return due, following


class ServicePlan(models.Model):
    """What a customer is billed for every period (README, "Service plans"): the source of generated orders."""

    _name = "service.plan"
    _description = "Service Plan"
    _inherit = ["mail.thread"]
    _order = "partner_id, sequence, id"
    _check_company_auto = True

    name = fields.Char(string="Service", required=True, tracking=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True, tracking=True)
    partner_id = fields.Many2one(
        "res.partner",
        string="Customer",
        required=True,
        index=True,
        tracking=True,
        check_company=True,
        domain="[('parent_id', '=', False)]",
    )
    product_id = fields.Many2one(
        "product.product",
        check_company=True,
        help="Optional: fills the service name and amount from a product.",
    )
    company_id = fields.Many2one("res.company", required=True, index=True, default=lambda self: self.env.company)
    currency_id = fields.Many2one(related="company_id.currency_id", string="Currency", readonly=True)
    amount = fields.Monetary(
        string="Amount per Period",
        required=True,
        tracking=True,
        help="Charged on every order the plan bills: each month of a recurring plan, each installment.",
    )
    payment_mode = fields.Selection(
        [
            ("recurring", "Recurring"),
            ("single", "One payment"),
            ("installments", "Installments"),
        ],
        default="recurring",
        required=True,
        tracking=True,
        help="Recurring: billed on every order with no end. One payment: only on the next order. "
        "Installments: on the next orders, as many as there are installments.",
    )
    installments = fields.Integer(
        string="Number of Installments",
        default=2,
        tracking=True,
        help="How many orders bill this plan when it is paid in installments.",
    )
    installments_billed = fields.Integer(
        string="Periods Billed",
        compute="_compute_installments_billed",
        store=True,
        help="Orders (not cancelled) that bill this plan. Cancelling one of them gives its installment back.",
    )
    next_due_date = fields.Date(
        required=True,
        index=True,
        tracking=True,
        default=fields.Date.context_today,
        help="Due date of the next period to bill. The order is generated the configured number of days "
        "before it. If it is already past, the next run bills only the current period, "
        "not every missed one.",
    )
    billing_day = fields.Integer(
        readonly=True,
        help="Day of the month of the due dates, kept when a month is shorter (31 January, 28 February, 31 March).",
    )
    period_months = fields.Integer(
        string="Period (Months)",
        default=1,
        required=True,
        tracking=True,
        help="Months between two due dates: 1 monthly, 3 quarterly, 12 yearly.",
    )
    start_date = fields.Date(
        tracking=True,
        help="No order bills this plan for a due date before this one, whatever the payment mode.",
    )
    end_date = fields.Date(
        tracking=True,
        help="No order bills this plan for a due date after this one, even if installments are left.",
    )
    state = fields.Selection(
        [("active", "Active (recurring)"), ("to_collect", "To Collect"), ("paid", "Paid")],
        compute="_compute_state",
        store=True,
        index=True,
        tracking=True,
        help="Active: recurring. To collect: one payment or installments not yet billed and paid. "
        "Paid: every installment billed and paid; the plan bills nothing more.",
    )
    billing_done = fields.Boolean(
        compute="_compute_billing_done",
        store=True,
        index=True,
        help="The plan will not bill any more orders: all installments billed or the end date passed.",
    )
    generation_error = fields.Text(
        string="Last Generation Error",
        readonly=True,
        copy=False,
        help="Why the order generation could not bill this plan on its last attempt. It tries again on "
        "every run and clears this once the plan is billed.",
    )
    generation_error_date = fields.Datetime(string="Generation Failed On", readonly=True, copy=False)
    line_ids = fields.One2many("payment.order.line", "plan_id", string="Billed Lines", readonly=True)
    order_count = fields.Integer(string="Orders", compute="_compute_order_count")
    total_amount = fields.Monetary(
        string="Total to Collect",
        compute="_compute_total_amount",
        help="Amount per period times the number of installments.",
    )
    window_warning = fields.Char(compute="_compute_window_warning")

    @api.constrains("amount", "period_months", "billing_day", "start_date", "end_date", "payment_mode", "installments")
    def _check_plan_values(self):
        for plan in self:
            if plan.currency_id.compare_amounts(plan.amount, 0.0) <= 0:
                raise ValidationError(self.env._("The amount of plan %s must be greater than zero.", plan.name))
            if not 1 <= plan.period_months <= MAX_PERIOD_MONTHS:
                raise ValidationError(
                    self.env._(
                        "The period of plan %(plan)s is between 1 and %(max)s months.",
                        plan=plan.name,
                        max=MAX_PERIOD_MONTHS,
                    )
                )
            if plan.billing_day and not 1 <= plan.billing_day <= 31:
                raise ValidationError(
                    self.env._("The billing day of plan %s is a day of the month, 1 to 31.", plan.name)
                )
            if plan.start_date and plan.end_date and plan.start_date > plan.end_date:
                raise ValidationError(self.env._("The start date of plan %s must come before its end date.", plan.name))
            if plan.payment_mode == "installments" and plan.installments < 1:
                raise ValidationError(
                    self.env._("Plan %s is paid in installments: give at least one installment.", plan.name)
                )

    @api.depends("line_ids", "line_ids.order_id.state")
    def _compute_installments_billed(self):
        counts = {}
        if self.ids:
            groups = self.env["payment.order.line"]._read_group(
                [("plan_id", "in", self.ids), ("order_id.state", "!=", "cancelled")], ["plan_id"], ["__count"]
            )
            counts = {plan.id: count for plan, count in groups}
        for plan in self:
            plan.installments_billed = counts.get(plan.id, 0)

    @api.depends("payment_mode", "installments", "installments_billed", "next_due_date", "end_date")
    def _compute_billing_done(self):
        for plan in self:
            plan.billing_done = is_billing_done(plan)

    @api.depends("payment_mode", "billing_done", "line_ids.order_id.state")
    def _compute_state(self):
        for plan in self:
            if plan.payment_mode == "recurring":
                plan.state = "active"
                continue
            billed_orders = plan.line_ids.order_id.filtered(lambda order: order.state != "cancelled")
            paid = plan.billing_done and all(order.state == "paid" for order in billed_orders)
            plan.state = "paid" if paid else "to_collect"

    def _compute_order_count(self):
        groups = self.env["payment.order.line"]._read_group(
            [("plan_id", "in", self.ids)], ["plan_id"], ["order_id:count_distinct"]
        )
        counts = {plan.id: count for plan, count in groups}
        for plan in self:
            plan.order_count = counts.get(plan.id, 0)

    @api.depends("amount", "payment_mode", "installments")
    def _compute_total_amount(self):
        for plan in self:
            plan.total_amount = plan.amount * installment_limit(plan)

    @api.depends("payment_mode", "installments", "installments_billed", "next_due_date", "start_date", "end_date")
    def _compute_window_warning(self):
        for plan in self:
            plan.window_warning = plan._window_shortfall_message()

    def _window_shortfall_message(self):
        """Say so when the end date comes before every installment is billed (README, "Service plans")."""
        limit = installment_limit(self)
        if not (limit and self.end_date and self.next_due_date):
            return False
        remaining = limit - self.installments_billed
        due, fitting = self.next_due_date, 0
        for _period in range(remaining):
            while self.start_date and due < self.start_date:
                due = advance_due_date(due, self.period_months or 1, self.billing_day or self.next_due_date.day)
            if due > self.end_date:
                break
            fitting += 1
            due = advance_due_date(due, self.period_months or 1, self.billing_day or self.next_due_date.day)
        if fitting >= remaining:
            return False
        return self.env._(
            "Between %(start)s and %(end)s only %(fitting)s of the %(remaining)s remaining installments "
            "fall due: the dates win, so the rest will never be billed.",
            start=self.start_date or self.next_due_date,
            end=self.end_date,
            fitting=fitting,
            remaining=remaining,
        )

    @api.onchange("product_id")
    def _onchange_product_id(self):
        if self.product_id:
            self.name = self.product_id.display_name
            self.amount = self.product_id.lst_price

    @api.onchange("payment_mode")
    def _onchange_payment_mode(self):
        if self.payment_mode == "single":
            self.installments = 1

    # ------------------------------------------------------------------ create / write

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._check_billing_untouched(vals)
            self._set_billing_day(vals)
        return super().create(vals_list)

    def write(self, vals):
        self._check_billing_untouched(vals)
        self._set_billing_day(vals)
        return super().write(vals)

    @api.model
    def _check_billing_untouched(self, vals):
        """What the generation job records (installments billed, its last error) is not written by
        users, over RPC or otherwise (README, "Security")."""
        forced = [fname for fname in BILLING_FIELDS if fname in vals]
        if forced and not self.env.su:
            raise UserError(
                self.env._(
                    "%s of a service plan are kept by the order generation; they cannot be written.",
                    ", ".join(self._fields[fname].get_description(self.env)["string"] for fname in forced),
                )
            )

    @api.model
    def _set_billing_day(self, vals):
        if vals.get("next_due_date") and "billing_day" not in vals:
            vals["billing_day"] = fields.Date.to_date(vals["next_due_date"]).day

    @api.ondelete(at_uninstall=False)
    def _unlink_except_billed(self):
        billed = self.filtered("line_ids")
        if billed:
            raise UserError(
                self.env._(
                    "Plan %s has already billed orders and cannot be deleted; archive it instead.",
                    billed[0].name,
                )
            )

    def action_view_orders(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("payment_dunning.action_payment_order")
        action["domain"] = [("line_ids.plan_id", "=", self.id)]
        action["context"] = {"create": False}
        return action

    # ------------------------------------------------------------------ generation

    @api.model
    def _cron_generate_orders(self):
        """Scheduled job: bill every plan due within the configured days, in every company."""
        params = self.env["ir.config_parameter"].sudo()
        if not params.get_param("payment_dunning.automatic_tasks"):
            _logger.info("Automatic tasks are off: no payment orders generated")
            return self.env["payment.order"]
        companies = self.env["res.company"].sudo().search([])  # pylint: disable=no-search-all
        return self._generate_orders(companies, commit=not collection.testing())

    @api.model
    def _generation_horizons(self, companies):
        """Last due date each company bills today: its own today plus the days before due date."""
        days = int(self.env["ir.config_parameter"].sudo().get_param("payment_dunning.days_before_due", 3) or 0)
        return collection.company_days(companies, shift=relativedelta(days=days))

    @api.model
    def _generate_orders(self, companies, commit=False, batch_size=None):
        """Create the orders of every plan due within each company's horizon; return them.

        One order per customer and due date, one line per plan. Customers are taken in batches;
        a worker holds a customer through an advisory lock and its plans through row locks, so
        two workers at once never bill a plan twice, and each batch is committed (when ``commit``)
        so that a crash loses at most the batch under way, which the next run bills.
        """
        batch_size = batch_size or collection.batch_size(self.env)
        horizons = self._generation_horizons(companies)
        if not horizons:
            return self.env["payment.order"]
        plans_model = self.sudo().with_context(tracking_disable=True)
        order_ids, failed_partners, last_partner = [], set(), 0

        def lock_batch():
            # customers in id order, each batch after the last one (a keyset: no batch walks again
            # over the customers billed before it; README, "Scale")
            partner_ids = plans_model._lock_due_partners(horizons, batch_size, failed_partners, after=last_partner)
            return partner_ids, plans_model._lock_due_plans(horizons, partner_ids)

        while True:
            # our snapshot may predate another worker's commit of these plans: the batch is then
            # taken again on a fresh one (what we billed so far is committed)
            partner_ids, plans = collection.retry_serialization(self.env.cr, lock_batch, retry=commit)
            if not partner_ids:
                break
            last_partner = max(partner_ids)
            orders, failed = plans._bill(horizons)
            failed_partners |= failed
            orders._notify_generated()
            order_ids += orders.ids
            self.env["ir.cron"]._notify_progress(done=len(order_ids), remaining=0)
            if commit:
                self.env.cr.commit()  # pylint: disable=invalid-commit
            self.env.invalidate_all()
        if failed_partners:
            _logger.warning("Payment order generation skipped %d customer(s) after errors", len(failed_partners))
        _logger.info("Generated %d payment orders from service plans", len(order_ids))
        return self.env["payment.order"].browse(order_ids)

    @api.model
    def _due_plans_sql(self, horizons):
        return SQL(
            """
            FROM service_plan p
            JOIN (VALUES %(horizons)s) AS h(company_id, horizon) ON h.company_id = p.company_id
           WHERE p.active AND NOT p.billing_done AND p.next_due_date <= h.horizon
            """,
            horizons=collection.company_days_values(horizons),
        )

    @api.model
    def _lock_due_partners(self, horizons, limit, excluded, after=0):
        """Up to ``limit`` customers with due plans that no other worker holds, now held by us
        until the end of the transaction; only customers whose id is above ``after``.

        The customers come in id order, read from the customer index until ``limit`` are held. A
        run that passes the last customer of its previous batch as ``after`` reads only the plans
        of each batch's own customers; from the first customer every time, each batch walks again
        over the plans of every customer billed before it (quadratic in the batches: README, "Scale").
        """
        self.flush_model()
        self.env.cr.execute(
            SQL(
                """
            SELECT c.partner_id
              FROM (SELECT DISTINCT p.partner_id %(due)s AND p.partner_id > %(after)s
                       AND p.partner_id != ALL(%(excluded)s)
                    ORDER BY p.partner_id) AS c
             WHERE pg_try_advisory_xact_lock(%(key)s, c.partner_id)
             LIMIT %(limit)s
                """,
                due=self._due_plans_sql(horizons),
                after=after or 0,
                excluded=list(excluded),
                key=GENERATION_LOCK_KEY,
                limit=limit,
            )
        )
        return [row[0] for row in self.env.cr.fetchall()]

    @api.model
    def _lock_due_plans(self, horizons, partner_ids):
        if not partner_ids:
            return self.browse()
        self.env.cr.execute(
            SQL(
                "SELECT p.id %s AND p.partner_id = ANY(%s) ORDER BY p.id FOR NO KEY UPDATE OF p",
                self._due_plans_sql(horizons),
                partner_ids,
            )
        )
        return self.browse([row[0] for row in self.env.cr.fetchall()])

    def _read_plan_rows(self):
        self.flush_recordset()
        self.env.cr.execute(
            SQL(
                "SELECT %s FROM service_plan WHERE id = ANY(%s)",
                SQL(", ").join(SQL.identifier(column) for column in PLAN_COLUMNS),
                self.ids,
            )
        )
        return [dict(zip(PLAN_COLUMNS, row, strict=True)) for row in self.env.cr.fetchall()]

    def _bill(self, horizons):
        """Bill the plans of ``self`` (all of one batch of customers); return (orders, failed partners)."""
        rows = self._read_plan_rows()
        already_billed = self._billed_due_dates()
        groups = defaultdict(list)
        updates = {}
        broken = {}
        for row in rows:
            try:
                due, following = plan_billing(row, horizons[row["company_id"]])
            except Exception as error:  # one plan's bad data never stops the others' billing
                _logger.warning("Service plan %s could not be billed", row["id"], exc_info=True)
                broken[row["partner_id"]] = (row["id"], error)
                continue
            billed = bool(due) and (row["id"], due) not in already_billed
            if billed:
                groups[(row["partner_id"], row["company_id"], due)].append(row)
            after = dict(row, next_due_date=following, installments_billed=row["installments_billed"] + billed)
            updates[row["id"]] = dict(after, billing_done=is_billing_done(after))
        # a customer with a plan that cannot be billed is billed next time, with all its plans
        for partner_id, (plan_id, error) in broken.items():
            groups = {key: plans for key, plans in groups.items() if key[0] != partner_id}
            updates = {key: values for key, values in updates.items() if values["partner_id"] != partner_id}
            self.browse(plan_id)._record_generation_error(error)
        try:
            with self.env.cr.savepoint():
                orders = self._create_orders(groups)
                self._advance(updates)
        except Exception:
            _logger.warning("Generation batch failed; billing its customers one by one", exc_info=True)
            orders, failed = self._bill_one_by_one(rows, groups, updates)
            return orders, failed | set(broken)
        return orders, set(broken)

    def _bill_one_by_one(self, rows, groups, updates):
        orders = self.env["payment.order"]
        failed = set()
        for partner_id in sorted({row["partner_id"] for row in rows}):
            partner_groups = {key: plans for key, plans in groups.items() if key[0] == partner_id}
            partner_updates = {key: values for key, values in updates.items() if values["partner_id"] == partner_id}
            if not partner_updates:
                continue
            try:
                with self.env.cr.savepoint():
                    orders |= self._create_orders(partner_groups)
                    self._advance(partner_updates)
            except Exception as error:
                _logger.exception("Could not generate the payment orders of customer %s; skipped", partner_id)
                failed.add(partner_id)
                self.browse(list(partner_updates))._record_generation_error(error)
        return orders, failed

    def _record_generation_error(self, error):
        """Say on the plans why they were not billed; the user sees it on the plan (and fixes it)."""
        message = str(error.args[0]) if isinstance(error, UserError | ValidationError) else repr(error)
        self.env.cr.execute(
            SQL(
                "UPDATE service_plan SET generation_error = %s, generation_error_date = (now() AT TIME ZONE 'UTC') "
                "WHERE id = ANY(%s)",
                message[:2000],
                self.ids,
            )
        )
        self.invalidate_recordset(["generation_error", "generation_error_date"])

    def _billed_due_dates(self):
        self.env.cr.execute(
            SQL(
                "SELECT plan_id, plan_due_date FROM payment_order_line WHERE plan_id = ANY(%s)",
                self.ids,
            )
        )
        return set(self.env.cr.fetchall())

    @api.model
    def _create_orders(self, groups):
        specs = [
            {
                "partner_id": partner_id,
                "company_id": company_id,
                "due_date": due,
                "concept": ", ".join(row["name"] for row in rows)[:250],
                "lines": [
                    {
                        "name": self._line_description(row),
                        "amount": row["amount"],
                        "plan_id": row["id"],
                        "plan_due_date": due,
                    }
                    for row in rows
                ],
            }
            for (partner_id, company_id, due), rows in groups.items()
        ]
        return self.env["payment.order"]._insert_bulk(specs, "plan")

    @api.model
    def _line_description(self, row):
        limit = installment_limit(row)
        if row["payment_mode"] != "installments" or limit <= 1:
            return row["name"]
        return self.env._(
            "%(service)s (installment %(number)s of %(count)s)",
            service=row["name"],
            number=row["installments_billed"] + 1,
            count=limit,
        )

    @api.model
    def _advance(self, updates):
        """Move each plan to its next period and count what it billed, in one statement per batch."""
        if not updates:
            return
        self.env.cr.execute(
            SQL(
                """
            UPDATE service_plan p
               SET next_due_date = v.next_due, installments_billed = v.billed, billing_done = v.done,
                   generation_error = NULL, generation_error_date = NULL, write_date = (now() AT TIME ZONE 'UTC')
              FROM (VALUES %s) AS v(id, next_due, billed, done)
             WHERE p.id = v.id
                """,
                SQL(", ").join(
                    SQL(
                        "(%s, %s::date, %s, %s)",
                        plan_id,
                        values["next_due_date"],
                        values["installments_billed"],
                        values["billing_done"],
                    )
                    for plan_id, values in updates.items()
                ),
            )
        )
        plans = self.browse(list(updates))
        plans.invalidate_recordset(["next_due_date", "installments_billed", "billing_done", "line_ids", "write_date"])
        # a plan whose billing ends with every billed order already paid is paid now
        finished = plans.browse(
            plan_id
            for plan_id, values in updates.items()
            if values["billing_done"] and values["payment_mode"] != "recurring"
        )
        finished.modified(["billing_done"])
        finished.flush_recordset(["state"])

    # ------------------------------------------------------------------ preview

    @api.model
    def _generation_preview(self, companies):
        """What a run would do now, without doing it: plans, orders and customers it would bill."""
        horizons = self._generation_horizons(companies)
        if not horizons:
            return {"plans": 0, "orders": 0, "customers": 0}
        self.flush_model()
        self.env.cr.execute(
            SQL(
                "SELECT %s %s",
                SQL(", ").join(SQL.identifier("p", column) for column in PLAN_COLUMNS),
                self._due_plans_sql(horizons),
            )
        )
        rows = [dict(zip(PLAN_COLUMNS, row, strict=True)) for row in self.env.cr.fetchall()]
        billed = self.browse([row["id"] for row in rows])._billed_due_dates()
        orders = set()
        plans = 0
        for row in rows:
            due, _following = plan_billing(row, horizons[row["company_id"]])
            if due and (row["id"], due) not in billed:
                plans += 1
                orders.add((row["partner_id"], row["company_id"], due))
        return {"plans": plans, "orders": len(orders), "customers": len({key[0] for key in orders})}
