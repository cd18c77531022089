import logging
from collections import defaultdict

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL, float_round, formatLang

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
    "total_amount",
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


def in_window(plan, created_on):
    """Start and end dates win over the payment mode (README, "Service plans"): an order created
    (generated) before the start date or after the end date does not bill the plan, whatever the
    due date of the period it is for."""
    return (not plan["start_date"] or created_on >= plan["start_date"]) and (
        not plan["end_date"] or created_on <= plan["end_date"]
    )


def is_billing_done(plan, days_before_due=0):
    """No order will bill the plan again: every installment billed, or the next period's order can
    only be created after the end date (it is generated ``days_before_due`` days before its due date)."""
    limit = installment_limit(plan)
    return bool(limit and plan["installments_billed"] >= limit) or bool(
        plan["end_date"]
        and plan["next_due_date"]
        and plan["next_due_date"] - relativedelta(days=days_before_due) > plan["end_date"]
    )


def split_installments(total, count, rounding):
    """``(regular installment, last installment)`` of ``total`` paid in ``count`` installments.

    Every installment but the last is the total divided and rounded down to the currency's unit;
    the last one takes the cents left over: 400.00 in 3 is 133.33, 133.33 and 133.34.
    """
    count = max(count or 1, 1)
    units = round((total or 0.0) / rounding)
    regular_units = units // count
    last_units = units - regular_units * (count - 1)
    return (
        float_round(regular_units * rounding, precision_rounding=rounding),
        float_round(last_units * rounding, precision_rounding=rounding),
    )


def plan_total(plan):
    """What an installments plan collects in all (a plan stored before the total was asked for
    has only its amount per installment)."""
    return plan["total_amount"] or plan["amount"] * installment_limit(plan)


def plan_billing(plan, horizon, today):
    """What one run does with a plan: ``(due date to bill or None, next due date)``.

    ``plan`` is a mapping of PLAN_COLUMNS; ``today`` is the day the run creates its orders (the
    company's today). A plan left behind (next due date long past) bills only its latest period
    that falls before ``horizon``, never every missed month. A period whose order is created
    outside the start and end dates is passed over, not billed later.
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
    if not in_window(plan, today):
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
        compute="_compute_amount",
        store=True,
        readonly=False,
        precompute=True,
        copy=True,
        help="Charged on every order the plan bills: each period of a recurring plan, the one payment. "
        "Paid in installments, it is the total divided by the installments (the last one takes the "
        "cents left over).",
    )
    total_amount = fields.Monetary(
        string="Total to Collect",
        tracking=True,
        help="Paid in installments: what the customer pays in all, split into the installments. Every "
        "installment is the total divided and rounded down to the cent; the last one takes the cents "
        "left over (400.00 in 3: 133.33, 133.33 and 133.34).",
    )
    installment_note = fields.Char(string="Installments of", compute="_compute_installment_note")
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
        help="Only orders created on or after this date bill the plan, whatever the payment mode. The "
        "date that counts is the day the order is created (generated, the configured days before its "
        "due date), not its due date: a period whose order is created before it is not billed.",
    )
    end_date = fields.Date(
        tracking=True,
        help="Only orders created on or before this date bill the plan, even if installments are left. "
        "The date that counts is the day the order is created (generated, the configured days before "
        "its due date), not its due date.",
    )
    state = fields.Selection(
        [("active", "Active (recurring)"), ("to_collect", "To Collect"), ("paid", "Fully Paid")],
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
    window_warning = fields.Char(compute="_compute_window_warning")

    @api.constrains(
        "amount",
        "total_amount",
        "period_months",
        "billing_day",
        "start_date",
        "end_date",
        "payment_mode",
        "installments",
    )
    def _check_plan_values(self):
        for plan in self:
            if plan.payment_mode == "installments":
                plan._check_installment_total()
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

    def _check_installment_total(self):
        if self.installments < 1:
            return  # said by the check of the installments
        currency = self.currency_id
        if currency.compare_amounts(self.total_amount, 0.0) <= 0:
            raise ValidationError(self.env._("The total to collect of plan %s must be greater than zero.", self.name))
        regular, _last = split_installments(self.total_amount, self.installments, currency.rounding)
        if currency.compare_amounts(regular, 0.0) <= 0:
            raise ValidationError(
                self.env._(
                    "The total of plan %(plan)s is too small to split into %(count)s installments.",
                    plan=self.name,
                    count=self.installments,
                )
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
        days = self._days_before_due()
        for plan in self:
            plan.billing_done = is_billing_done(plan, days)

    @api.depends("payment_mode", "installments", "total_amount", "currency_id")
    def _compute_amount(self):
        """Paid in installments, the amount per period is the regular installment of the total; in
        the other modes it is what the user enters."""
        for plan in self:
            if plan.payment_mode == "installments" and plan.total_amount:
                rounding = (plan.currency_id or self.env.company.currency_id).rounding
                plan.amount = split_installments(plan.total_amount, plan.installments, rounding)[0]
            else:
                plan.amount = plan.amount

    @api.depends("payment_mode", "installments", "total_amount", "amount", "currency_id")
    @api.depends_context("lang")
    def _compute_installment_note(self):
        for plan in self:
            plan.installment_note = plan._installment_note() if plan.payment_mode == "installments" else False

    def _installment_note(self):
        """What each installment bills, and which one takes the cents of the split."""
        currency = self.currency_id or self.env.company.currency_id
        count = max(self.installments, 1)
        regular, last = split_installments(self.total_amount or self.amount * count, count, currency.rounding)
        regular_text = formatLang(self.env, regular, currency_obj=currency)
        if count == 1:
            return self.env._("One installment of %s", regular_text)
        if currency.compare_amounts(regular, last) == 0:
            return self.env._("%(count)s installments of %(amount)s", count=count, amount=regular_text)
        return self.env._(
            "%(count)s installments of %(amount)s, then installment %(last_number)s of %(last)s "
            "(the last one takes the cents of the split)",
            count=count - 1,
            amount=regular_text,
            last_number=count,
            last=formatLang(self.env, last, currency_obj=currency),
        )

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

    @api.depends(
        "payment_mode",
        "installments",
        "installments_billed",
        "next_due_date",
        "billing_day",
        "period_months",
        "start_date",
        "end_date",
    )
    def _compute_window_warning(self):
        for plan in self:
            plan.window_warning = plan._window_shortfall_message()

    def _window_shortfall_message(self):
        """Say so when the end date comes before every installment is billed (README, "Service plans")."""
        limit = installment_limit(self)
        if not (limit and self.end_date and self.next_due_date):
            return False
        remaining = limit - self.installments_billed
        fitting = 0
        for created_on in self._upcoming_order_dates():
            if fitting >= remaining or created_on > self.end_date:
                break
            if not self.start_date or created_on >= self.start_date:
                fitting += 1
        if fitting >= remaining:
            return False
        return self.env._(
            "Orders created between %(start)s and %(end)s bill only %(fitting)s of the %(remaining)s remaining "
            "installments: the dates win, so the rest will never be billed.",
            start=self.start_date or self.next_due_date,
            end=self.end_date,
            fitting=fitting,
            remaining=remaining,
        )

    def _upcoming_order_dates(self):
        """The days on which the next orders of the plan will be created, one per period, as the
        generation runs them: the configured days before each due date, or today for a period
        already within reach (only the latest such period is billed)."""
        days = relativedelta(days=self._days_before_due())
        today = collection.company_today(self.company_id or self.env.company)
        months, day = self.period_months or 1, self.billing_day or self.next_due_date.day
        due = self.next_due_date
        while advance_due_date(due, months, day) - days <= today:
            due = advance_due_date(due, months, day)
        while True:
            yield max(due - days, today)
            due = advance_due_date(due, months, day)

    @api.onchange("product_id")
    def _onchange_product_id(self):
        if self.product_id:
            self.name = self.product_id.display_name
            if self.payment_mode == "installments":
                self.total_amount = self.product_id.lst_price
            else:
                self.amount = self.product_id.lst_price

    @api.onchange("payment_mode")
    def _onchange_payment_mode(self):
        if self.payment_mode == "single":
            self.installments = 1
        if self.payment_mode == "installments" and not self.total_amount and self.amount:
            # the amount entered so far is kept as the installment
            self.total_amount = self.amount * max(self.installments, 1)

    # ------------------------------------------------------------------ create / write

    def init(self):
        # Plans paid in installments were given their amount per installment before the total was
        # asked for: their total is that amount times the installments (the split gives it back).
        self.env.cr.execute(
            """
            UPDATE service_plan SET total_amount = amount * GREATEST(installments, 1)
             WHERE payment_mode = 'installments' AND total_amount IS NULL
            """
        )

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._check_billing_untouched(vals)
            self._set_billing_day(vals)
            self._set_installment_total(vals)
        return super().create(vals_list)

    def write(self, vals):
        self._check_billing_untouched(vals)
        self._set_billing_day(vals)
        result = super().write(vals)
        if "amount" in vals and "total_amount" not in vals:
            self._total_from_installment()
        return result

    @api.model
    def _set_installment_total(self, vals):
        """An installments plan created with its amount per installment only (as before the total
        was asked for, over RPC or an import) collects that amount times the installments; given
        the total, the amount is the split's."""
        defaults = self.default_get([fname for fname in ("payment_mode", "installments") if fname not in vals])
        mode = vals.get("payment_mode", defaults.get("payment_mode"))
        if mode != "installments":
            return
        if vals.get("total_amount"):
            vals.pop("amount", None)
        elif vals.get("amount"):
            vals["total_amount"] = vals["amount"] * max(vals.get("installments", defaults.get("installments")) or 1, 1)

    def _total_from_installment(self):
        """The amount per installment written directly (not the total): the total follows it."""
        for plan in self.filtered(lambda plan: plan.payment_mode == "installments"):
            total = plan.amount * max(plan.installments, 1)
            if plan.currency_id.compare_amounts(total, plan.total_amount or 0.0):
                plan.total_amount = total

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
    def _days_before_due(self):
        """How many days before its due date an order is generated (Settings)."""
        try:
            return int(self.env["ir.config_parameter"].sudo().get_param("payment_dunning.days_before_due", 3) or 0)
        except ValueError:
            return 3

    @api.model
    def _generation_horizons(self, companies, todays=None):
        """Last due date each company bills today: its own today plus the days before due date."""
        todays = todays or collection.company_days(companies)
        days = relativedelta(days=self._days_before_due())
        return {company_id: today + days for company_id, today in todays.items()}

    @api.model
    def _generate_orders(self, companies, commit=False, batch_size=None):
        """Create the orders of every plan due within each company's horizon; return them.

        One order per customer and due date, one line per plan. Customers are taken in batches;
        a worker holds a customer through an advisory lock and its plans through row locks, so
        two workers at once never bill a plan twice, and each batch is committed (when ``commit``)
        so that a crash loses at most the batch under way, which the next run bills.
        """
        batch_size = batch_size or collection.batch_size(self.env)
        # the day the orders are created, which the plans' start and end dates are measured against
        todays = collection.company_days(companies)
        horizons = self._generation_horizons(companies, todays)
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
            orders, failed = plans._bill(horizons, todays)
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

    def _bill(self, horizons, todays=None):
        """Bill the plans of ``self`` (all of one batch of customers), creating their orders on
        ``todays`` (each company's today); return (orders, failed partners)."""
        todays = todays or collection.company_days(self.company_id)
        days = self._days_before_due()
        rows = self._read_plan_rows()
        already_billed = self._billed_due_dates()
        billed_amounts = self._billed_amounts(rows)
        groups = defaultdict(list)
        updates = {}
        broken = {}
        for row in rows:
            try:
                due, following = plan_billing(row, horizons[row["company_id"]], todays[row["company_id"]])
                billed = bool(due) and (row["id"], due) not in already_billed
                if billed:
                    line = self._line_values(row, due, billed_amounts.get(row["id"], 0.0))
                    groups[(row["partner_id"], row["company_id"], due)].append((row, line))
            except Exception as error:  # one plan's bad data never stops the others' billing
                _logger.warning("Service plan %s could not be billed", row["id"], exc_info=True)
                broken[row["partner_id"]] = (row["id"], error)
                continue
            after = dict(row, next_due_date=following, installments_billed=row["installments_billed"] + billed)
            updates[row["id"]] = dict(after, billing_done=is_billing_done(after, days))
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
        """``groups``: {(partner id, company id, due date): [(plan row, line values)]}."""
        specs = [
            {
                "partner_id": partner_id,
                "company_id": company_id,
                "due_date": due,
                "concept": ", ".join(row["name"] for row, _line in plans)[:250],
                "lines": [line for _row, line in plans],
            }
            for (partner_id, company_id, due), plans in groups.items()
        ]
        return self.env["payment.order"]._insert_bulk(specs, "plan")

    @api.model
    def _line_values(self, row, due, billed_amount):
        """The line that bills the plan of ``row`` for ``due``; ``billed_amount`` is what its
        orders (not cancelled) already bill."""
        line = {"name": row["name"], "amount": row["amount"], "plan_id": row["id"], "plan_due_date": due}
        limit = installment_limit(row)
        if row["payment_mode"] != "installments" or limit <= 1:
            return line
        number = row["installments_billed"] + 1
        if number >= limit:
            # the last installment takes what the split left: the orders add up to the total
            currency = self.env["res.company"].browse(row["company_id"]).currency_id
            line["amount"] = currency.round(plan_total(row) - billed_amount)
        line.update(
            name=self.env["payment.order.line"]._installment_label(row["name"], number, limit),
            label_kind="installment",
            installment_number=number,
            installment_count=limit,
        )
        return line

    def _billed_amounts(self, rows):
        """{plan id: amount its orders (not cancelled) bill} for the plans of ``rows`` at their last installment."""
        last = [
            row["id"]
            for row in rows
            if row["payment_mode"] == "installments" and row["installments_billed"] + 1 >= installment_limit(row)
        ]
        if not last:
            return {}
        self.env.cr.execute(
            SQL(
                """
            SELECT l.plan_id, SUM(l.amount)
              FROM payment_order_line l
              JOIN payment_order o ON o.id = l.order_id
             WHERE l.plan_id = ANY(%s) AND o.state != 'cancelled'
             GROUP BY l.plan_id
                """,
                last,
            )
        )
        return dict(self.env.cr.fetchall())

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
        todays = collection.company_days(companies)
        horizons = self._generation_horizons(companies, todays)
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
            due, _following = plan_billing(row, horizons[row["company_id"]], todays[row["company_id"]])
            if due and (row["id"], due) not in billed:
                plans += 1
                orders.add((row["partner_id"], row["company_id"], due))
        return {"plans": plans, "orders": len(orders), "customers": len({key[0] for key in orders})}
