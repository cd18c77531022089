import logging

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import SQL

from ..tools import collection

_logger = logging.getLogger(__name__)

# Only the promise's own methods move its state and amounts: a context key no RPC call can carry.
PROMISE_EDIT_KEY = "payment_order_promise_edit"
PROMISE_EDIT_SENTINEL = object()
MANAGER_GROUP = "payment_dunning.group_payment_dunning_manager"


class PaymentOrderPromise(models.Model):
    """A date and an amount the customer committed to pay (README, "Promises to pay"): the automatic reminders of
    its orders pause until the date; the day after, the promise is kept or broken."""

    _name = "payment.order.promise"
    _description = "Promise to Pay"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "promised_date desc, id desc"
    _check_company_auto = True

    # what the collector may still change; the rest is the promise as agreed, or its outcome
    _EDITABLE_FIELDS = ("note", "user_id")

    partner_id = fields.Many2one(
        "res.partner",
        string="Customer",
        required=True,
        index=True,
        readonly=True,
        domain="[('parent_id', '=', False)]",
    )
    company_id = fields.Many2one(
        "res.company", required=True, index=True, readonly=True, default=lambda self: self.env.company
    )
    currency_id = fields.Many2one(related="company_id.currency_id", string="Currency")
    order_ids = fields.Many2many(
        "payment.order",
        "payment_order_promise_order_rel",
        "promise_id",
        "order_id",
        string="Payment Orders",
        required=True,
        readonly=True,
        check_company=True,
    )
    promised_date = fields.Date(required=True, index=True, readonly=True, tracking=True)
    promised_amount = fields.Monetary(required=True, readonly=True, tracking=True)
    balance_at_promise = fields.Monetary(
        readonly=True, help="What the orders owed, together, when the customer made the promise."
    )
    current_balance = fields.Monetary(compute="_compute_current_balance", string="Current Balance")
    state = fields.Selection(
        [("open", "Open"), ("kept", "Kept"), ("broken", "Broken"), ("cancelled", "Cancelled")],
        default="open",
        required=True,
        readonly=True,
        index=True,
        tracking=True,
    )
    user_id = fields.Many2one(
        "res.users", string="Collector", default=lambda self: self.env.user, tracking=True, index=True
    )
    note = fields.Text()

    @api.depends("order_ids.balance", "order_ids.state")
    def _compute_current_balance(self):
        for promise in self:
            open_orders = promise.order_ids.filtered(lambda o: o.state in collection.OPEN_STATES)
            promise.current_balance = sum(open_orders.mapped("balance"))

    @api.depends("partner_id", "promised_date", "promised_amount", "currency_id")
    def _compute_display_name(self):
        for promise in self:
            amount = promise.currency_id.format(promise.promised_amount) if promise.currency_id else ""
            promise.display_name = f"{promise.partner_id.name or ''} - {amount} - {promise.promised_date or ''}"

    # ------------------------------------------------------------------ integrity

    def _edit(self):
        return self.with_context(**{PROMISE_EDIT_KEY: PROMISE_EDIT_SENTINEL})

    def _is_edit(self):
        return self.env.context.get(PROMISE_EDIT_KEY) is PROMISE_EDIT_SENTINEL

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            # the outcome and the balance of reference are the addon's, never the caller's
            vals.pop("state", None)
            vals.pop("balance_at_promise", None)
        promises = super().create(vals_list)
        for promise in promises:
            promise._check_new_promise()
            promise._edit().write({"balance_at_promise": promise.current_balance})
        return promises

    def write(self, vals):
        if not self._is_edit():
            refused = set(vals) - set(self._EDITABLE_FIELDS)
            if refused:
                raise UserError(
                    self.env._(
                        "A promise to pay cannot be changed once made (%s). Cancel it and record a new one.",
                        ", ".join(self._fields[f].get_description(self.env)["string"] for f in sorted(refused)),
                    )
                )
        return super().write(vals)

    def _check_new_promise(self):
        """What a promise must be when it is made: open orders of one customer, a date from the
        company's today on, an amount the orders owe."""
        self.ensure_one()
        orders = self.order_ids
        if not orders:
            raise ValidationError(self.env._("A promise to pay needs at least one payment order."))
        if orders.filtered(lambda o: o.state not in collection.OPEN_STATES):
            raise ValidationError(self.env._("A promise to pay can only cover open payment orders."))
        if self.promised_date < collection.company_today(self.company_id):
            raise ValidationError(self.env._("The promised date cannot be in the past."))
        currency = self.currency_id
        if currency.compare_amounts(self.promised_amount, 0) <= 0:
            raise ValidationError(self.env._("The promised amount must be greater than zero."))
        if currency.compare_amounts(self.promised_amount, self.current_balance) > 0:
            raise ValidationError(
                self.env._(
                    "The promised amount cannot exceed what the orders owe, %s.",
                    currency.format(self.current_balance),
                )
            )

    @api.constrains("order_ids", "partner_id", "company_id")
    def _check_orders_of_the_customer(self):
        for promise in self:
            if promise.partner_id.parent_id:
                raise ValidationError(
                    self.env._("A promise to pay is made by the customer, not by one of its contacts.")
                )
            others = promise.order_ids.filtered(
                lambda o, p=promise: o.partner_id.commercial_partner_id != p.partner_id or o.company_id != p.company_id
            )
            if others:
                raise ValidationError(
                    self.env._("All the payment orders of a promise must be of its customer and company.")
                )

    # ------------------------------------------------------------------ actions

    def action_cancel(self):
        """Withdraw an open promise: its orders' reminders resume. A manager's or its creator's."""
        self.check_access("write")
        is_manager = self.env.user.has_group(MANAGER_GROUP)
        for promise in self:
            if not is_manager and promise.create_uid != self.env.user:
                raise AccessError(self.env._("Only a Collections Manager or its creator can cancel a promise to pay."))
            if promise.state != "open":
                raise UserError(self.env._("Only an open promise to pay can be cancelled."))
        self._edit().write({"state": "cancelled"})
        return True

    # ------------------------------------------------------------------ scheduled job

    @api.model
    def _cron_check_promises(self, batch_size=None):
        """The day after its date, each open promise is kept, if the orders' balance went down by the
        amount promised (or they are all closed), or broken: its collector gets an activity and the
        reminders resume. Batched and committed per batch; a decided promise is never seen again."""
        batch_size = batch_size or collection.batch_size(self.env)
        companies = self.env["res.company"].sudo().search([])  # pylint: disable=no-search-all
        promises_model = self.sudo()
        decided = 0
        for company_id, today in collection.company_days(companies).items():
            due = promises_model.search(
                [("state", "=", "open"), ("company_id", "=", company_id), ("promised_date", "<", today)],
                order="id",
            )
            for start in range(0, len(due), batch_size):
                batch = due[start : start + batch_size]
                decided += batch._decide()
                collection.commit(self.env.cr)
        return decided

    def _decide(self):
        # another run may have decided some of them since the search
        self.env.cr.execute(
            SQL(
                "SELECT id FROM payment_order_promise WHERE id IN %s AND state = 'open' FOR UPDATE SKIP LOCKED",
                tuple(self.ids),
            )
        )
        promises = self.browse([row[0] for row in self.env.cr.fetchall()])
        for promise in promises:
            if promise._is_kept():
                promise._edit().write({"state": "kept"})
            else:
                promise._break()
        return len(promises)

    def _is_kept(self):
        self.ensure_one()
        open_orders = self.order_ids.filtered(lambda o: o.state in collection.OPEN_STATES)
        if not open_orders:
            return True
        target = self.balance_at_promise - self.promised_amount
        return self.currency_id.compare_amounts(sum(open_orders.mapped("balance")), target) <= 0

    def _break(self):
        self.ensure_one()
        self._edit().write({"state": "broken"})
        collector = self.user_id if self.user_id.active else self.create_uid
        self.activity_schedule(
            "mail.mail_activity_data_todo",
            user_id=collector.id,
            summary=self.env._("Broken promise to pay: %s", self.partner_id.name),
            note=self.env._(
                "The customer promised %(amount)s by %(date)s and did not pay it. Reminders resumed.",
                amount=self.currency_id.format(self.promised_amount),
                date=self.promised_date,
            ),
        )
