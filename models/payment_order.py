import logging
import operator
import time

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import SQL, format_datetime

from ..tools import chatter, collection, order_summary
from ..tools.collection import CLOSED_STATES, OPEN_STATES, company_today

_logger = logging.getLogger(__name__)

COMPARISONS = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
# The key of the context under which the addon's own paths (create, pay, cancel, balance updates)
# change what no user may write. Its value must be this very object, which no JSON-RPC or XML-RPC
# call can carry: a client sending the key gets nothing (README, "Security").
EDIT_KEY = "payment_order_edit"
EDIT_SENTINEL = object()
# with the same sentinel: the invoice path moving an order's due date with its invoice's
DUE_DATE_KEY = "payment_order_follow_due_date"
# state changes the addon's paths may make
TRANSITIONS = {
    "pending": {"overdue", "paid", "cancelled"},
    "overdue": {"paid", "cancelled"},
    "paid": set(),
    "cancelled": set(),
}
# what only an invoice's new due date may do besides: an overdue order no longer past due owes on time again
DUE_DATE_TRANSITIONS = {"overdue": {"pending"}}
# what only a cancelled payment may do besides: the order it had paid owes again
REOPEN_KEY = "payment_order_reopen"
REOPEN_TRANSITIONS = {"paid": {"pending", "overdue"}}
MANAGER_GROUP = "payment_dunning.group_payment_dunning_manager"
COMPANY_RULE = "payment_dunning.rule_payment_order_company"
# the dashboard's "Which rule works" figures, per worker process: (database, company ids, days, window) ->
# (computed at, rows); reused for the seconds of RULES_CACHE_PARAM
RULES_CACHE = {}
RULES_CACHE_PARAM = "payment_dunning.dashboard_rules_cache_seconds"
RULES_CACHE_SECONDS = 300


class PaymentOrder(models.Model):
    _name = "payment.order"
    _description = "Payment Order"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "due_date desc, id desc"
    _check_company_auto = True

    # Once created, an order only moves through its states: what it charges never changes
    # (README, "Payment orders": cancel the order and create a new one).
    _IMMUTABLE_FIELDS = (
        "partner_id",
        "company_id",
        "due_date",
        "concept",
        "line_ids",
        "payment_code",
        "installment",
        "origin",
    )
    # what only the addon's own paths change: the workflow (Pay, Cancel, the overdue job) and the
    # money still owed (payments, imports, invoice sync, charges with a reason)
    _WORKFLOW_FIELDS = (
        "name",
        "state",
        "balance",
        "charges_amount",
        "paid_date",
        "invoice_id",
        "written_off_amount",
        "late_fee_applied",
        "interest_until",
    )

    name = fields.Char(string="Reference", required=True, readonly=True, copy=False, default="/", index="trigram")
    partner_id = fields.Many2one(
        "res.partner",
        string="Customer",
        required=True,
        index=True,
        tracking=True,
        check_company=True,
        domain="[('parent_id', '=', False)]",
    )
    company_id = fields.Many2one("res.company", required=True, index=True, default=lambda self: self.env.company)
    currency_id = fields.Many2one(related="company_id.currency_id", store=True, string="Currency", readonly=True)
    concept = fields.Char(help="What the customer is paying for; shown in the reminders.")
    line_ids = fields.One2many("payment.order.line", "order_id", string="Lines", copy=True)
    payment_ids = fields.One2many("payment.order.payment", "order_id", string="Payments", readonly=True)
    payment_count = fields.Integer(compute="_compute_payment_count")
    charge_ids = fields.One2many("payment.order.charge", "order_id", string="Charges History", readonly=True)
    # where the late-fee job left this order (README, "Late fees and interest"): read instead of its history
    late_fee_applied = fields.Boolean(readonly=True, copy=False)
    interest_until = fields.Date(string="Interest Charged Until", readonly=True, copy=False)
    amount = fields.Monetary(compute="_compute_amount", store=True, help="Sum of the order lines.")
    charges_amount = fields.Monetary(
        string="Charges and Interest",
        default=0.0,
        tracking=True,
        help="Late fees and interest added to the amount of the order.",
    )
    amount_total = fields.Monetary(
        string="Total", compute="_compute_amount", store=True, help="Amount plus charges and interest."
    )
    balance = fields.Monetary(
        string="Outstanding Balance",
        readonly=True,
        copy=False,
        tracking=True,
        help="What the customer still owes on this order. When it reaches zero the order is paid "
        "and no more reminders are sent.",
    )
    due_date = fields.Date(required=True, index=True, tracking=True)
    days_overdue = fields.Integer(
        compute="_compute_days_overdue", help="Days since the due date, in the company's timezone."
    )
    state = fields.Selection(
        [
            ("pending", "Pending"),
            ("overdue", "Overdue"),
            ("paid", "Paid"),
            ("cancelled", "Cancelled"),
        ],
        default="pending",
        required=True,
        readonly=True,
        copy=False,
        index=True,
        tracking=True,
    )
    paid_date = fields.Date(readonly=True, copy=False, tracking=True)
    written_off_amount = fields.Monetary(
        string="Written Off",
        readonly=True,
        copy=False,
        default=0.0,
        tracking=True,
        help="Debt forgiven by a Collections Manager (Write Off): no longer owed, never paid.",
    )
    payment_code = fields.Char(
        index=True,
        copy=False,
        help="Identifies what is being collected: an account, loan, contract or invoice number.",
    )
    installment = fields.Integer(default=1, copy=False, help="Installment number of this payment code.")
    origin = fields.Selection(
        [
            ("manual", "Manual"),
            ("plan", "Service plan"),
            ("invoice", "Invoice"),
            ("import", "Import"),
        ],
        default="manual",
        required=True,
        readonly=True,
        copy=False,
    )
    invoice_id = fields.Many2one(
        "account.move",
        readonly=True,
        copy=False,
        index="btree_not_null",
        check_company=True,
    )
    notification_ids = fields.Many2many(
        "payment.order.notification",
        "payment_order_notification_rel",
        "order_id",
        "notification_id",
        string="Communications",
        readonly=True,
        copy=False,
    )
    # read from the communication log: two messages of one order sent at once never write the order
    notification_count = fields.Integer(
        string="Notifications",
        compute="_compute_notification_stats",
        search="_search_notification_count",
        help="How many reminders were sent for this order.",
    )
    last_notification_date = fields.Datetime(string="Last Notification", compute="_compute_notification_stats")
    is_open = fields.Boolean(
        compute="_compute_is_open",
        search="_search_is_open",
        help="Pending or overdue: the customer still has to pay it.",
    )

    _sql_constraints = [
        (
            "payment_code_installment_uniq",
            "UNIQUE(company_id, payment_code, installment)",
            "This payment code already has an order for that installment in this company.",
        ),
        ("name_company_uniq", "UNIQUE(company_id, name)", "Payment order references are unique per company."),
        ("installment_positive", "CHECK(installment >= 1)", "The installment number starts at 1."),
        ("invoice_uniq", "UNIQUE(invoice_id)", "An invoice has one payment order at most."),
        ("balance_not_negative", "CHECK(balance >= 0)", "The outstanding balance cannot be negative."),
        (
            "balance_within_total",
            "CHECK(balance <= amount_total)",
            "The outstanding balance cannot be larger than the order's total.",
        ),
        (
            "charges_not_negative",
            "CHECK(charges_amount >= 0)",
            "Charges and interest cannot be negative.",
        ),
    ]

    @api.depends("line_ids.amount", "charges_amount")
    def _compute_amount(self):
        for order in self:
            order.amount = sum(order.line_ids.mapped("amount"))
            order.amount_total = order.amount + order.charges_amount

    @api.depends("notification_ids.state", "notification_ids.sent_at")
    def _compute_notification_stats(self):
        stats = {}
        order_ids = [order_id for order_id in self.ids if isinstance(order_id, int)]
        if order_ids:
            self.env["payment.order.notification"].flush_model(["state", "sent_at", "order_ids"])
            self.env.cr.execute(
                SQL(
                    """
                    SELECT rel.order_id, count(*), max(n.sent_at)
                      FROM payment_order_notification_rel rel
                      JOIN payment_order_notification n ON n.id = rel.notification_id AND n.state = 'sent'
                     WHERE rel.order_id = ANY(%s)
                     GROUP BY rel.order_id
                    """,
                    order_ids,
                )
            )
            stats = {order_id: (count, last) for order_id, count, last in self.env.cr.fetchall()}
        for order in self:
            order.notification_count, order.last_notification_date = stats.get(order._origin.id, (0, False))

    def _search_notification_count(self, op, value):
        if op not in COMPARISONS or isinstance(value, bool) or not isinstance(value, int):
            raise UserError(self.env._("Notifications can only be compared with a whole number."))
        self.env["payment.order.notification"].flush_model(["state", "order_ids"])

        def orders_sent(having):
            return SQL(
                """(
                SELECT rel.order_id FROM payment_order_notification_rel rel
                  JOIN payment_order_notification n ON n.id = rel.notification_id AND n.state = 'sent'
                 GROUP BY rel.order_id HAVING %s
                )""",
                having,
            )

        sql_op = SQL(op if op != "!=" else "<>")
        if COMPARISONS[op](0, value):
            # orders never notified match too. An anti-join, not NOT IN (SELECT …): NOT IN becomes a
            # per-row subplan once its list does not fit in work_mem (README, "Scale")
            return [
                (
                    "id",
                    "in",
                    SQL(
                        """(
                SELECT o.id FROM payment_order o
                  LEFT JOIN (
                       SELECT rel.order_id, count(*) AS sent
                         FROM payment_order_notification_rel rel
                         JOIN payment_order_notification n ON n.id = rel.notification_id AND n.state = 'sent'
                        GROUP BY rel.order_id
                  ) s ON s.order_id = o.id
                 WHERE COALESCE(s.sent, 0) %s %s
                )""",
                        sql_op,
                        value,
                    ),
                )
            ]
        return [("id", "in", orders_sent(SQL("count(*) %s %s", sql_op, value)))]

    @api.depends("due_date", "state", "company_id")
    def _compute_days_overdue(self):
        today_by_company = {}
        for order in self:
            if order.state not in OPEN_STATES or not order.due_date:
                order.days_overdue = 0
                continue
            company = order.company_id or self.env.company
            if company not in today_by_company:
                today_by_company[company] = company_today(company)
            order.days_overdue = max((today_by_company[company] - order.due_date).days, 0)

    @api.depends("state")
    def _compute_is_open(self):
        for order in self:
            order.is_open = order.state in OPEN_STATES

    def _search_is_open(self, operator, value):
        if operator not in ("=", "!="):
            raise UserError(self.env._("Unsupported search on 'open': %s", operator))
        positive = (operator == "=") == bool(value)
        return [("state", "in" if positive else "not in", OPEN_STATES)]

    @api.constrains("line_ids")
    def _check_has_lines(self):
        for order in self:
            if not order.line_ids:
                raise ValidationError(
                    self.env._("Payment order %s needs at least one line with the amount to collect.", order.name)
                )

    @api.constrains("amount")
    def _check_amount_positive(self):
        for order in self:
            if order.currency_id.compare_amounts(order.amount, 0.0) <= 0:
                raise ValidationError(
                    self.env._("The amount of payment order %s must be greater than zero.", order.name)
                )

    # ------------------------------------------------------------------ create / write

    @api.model_create_multi
    def create(self, vals_list):
        internal = self._is_internal_edit()
        unnamed = {}
        for vals in vals_list:
            self._convert_single_amount(vals)
            if not internal:
                self._check_new_order_values(vals)
            if vals.get("name", "/") == "/":
                company = self.env["res.company"].browse(vals.get("company_id")) or self.env.company
                unnamed.setdefault(company, []).append(vals)
        for company, company_vals in unnamed.items():
            for vals, name in zip(company_vals, self._reference_names(company, len(company_vals)), strict=True):
                vals["name"] = name
        orders = super(PaymentOrder, self._internal_edit()).create(vals_list)
        orders.browse(
            order.id for order, vals in zip(orders, vals_list, strict=True) if "balance" not in vals
        )._init_balance()
        return orders.with_env(self.env)

    @api.model
    def _check_new_order_values(self, vals):
        """A new order is pending, named by its company's sequence and owes its whole total; it
        comes from an invoice or an import only through those paths."""
        forced = {
            "state": vals.get("state", "pending") != "pending",
            "name": vals.get("name", "/") != "/",
            "origin": vals.get("origin", "manual") != "manual",
        }
        forced.update((fname, bool(vals.get(fname))) for fname in ("balance", "paid_date", "invoice_id"))
        refused = [fname for fname, is_forced in forced.items() if is_forced]
        if refused:
            raise UserError(
                self.env._(
                    "A new payment order cannot be given %(fields)s: it is created pending, numbered by "
                    "its company's sequence and owing its whole total. Pay or cancel it afterwards.",
                    fields=self._field_labels(refused),
                )
            )

    def _internal_edit(self, follow_due_date=False):
        """These records, as the addon's own paths see them: allowed to move the workflow fields;
        with ``follow_due_date``, an invoice order's due date too (its invoice's changed).

        Only for code that has checked the caller's rights and the change itself."""
        context = {EDIT_KEY: EDIT_SENTINEL}
        if follow_due_date:
            context[DUE_DATE_KEY] = EDIT_SENTINEL
        return self.with_context(**context)

    def _is_internal_edit(self):
        return self.env.context.get(EDIT_KEY) is EDIT_SENTINEL

    def _follows_due_date(self):
        return self._is_internal_edit() and self.env.context.get(DUE_DATE_KEY) is EDIT_SENTINEL

    def _field_labels(self, fnames):
        return ", ".join(self._fields[fname].get_description(self.env)["string"] for fname in fnames)

    @api.model
    def _reference_names(self, company, count):
        """``count`` new references of ``company``'s orders, drawn from its sequence in one query."""
        sequence = self._reference_sequence(company)
        if sequence.implementation != "standard" or sequence.use_date_range:
            return [sequence.next_by_id() for _index in range(count)]
        self.env.cr.execute(
            SQL("SELECT nextval(%s) FROM generate_series(1, %s)", f"ir_sequence_{sequence.id:03d}", count)
        )
        prefix, suffix = sequence._get_prefix_suffix()
        return [f"{prefix}{number:0{sequence.padding}d}{suffix}" for (number,) in self.env.cr.fetchall()]

    @api.model
    def _prepare_order_values(self, spec):
        """The values of a new order described by ``spec``: what ``create()`` receives from the
        invoice path and what the bulk insert stores. Extend it to add your own fields.

        ``spec``: partner_id, company_id, due_date, concept, lines (dicts with name, amount and
        optionally plan_id, plan_due_date), and optionally payment_code, installment,
        charges_amount, balance (default: the total), origin and invoice_id.
        """
        values = {
            "partner_id": spec["partner_id"],
            "company_id": spec["company_id"],
            "due_date": spec["due_date"],
            "concept": spec.get("concept") or False,
            "payment_code": spec.get("payment_code") or False,
            "installment": spec.get("installment") or 1,
            "charges_amount": spec.get("charges_amount") or 0.0,
            "origin": spec.get("origin") or "manual",
            "line_ids": [fields.Command.create(dict(line)) for line in spec["lines"]],
        }
        if spec.get("invoice_id"):
            values["invoice_id"] = spec["invoice_id"]
        if spec.get("balance") is not None:
            values["balance"] = spec["balance"]
        return values

    @api.model
    def _insert_bulk(self, specs, origin):
        """Insert many orders (see ``_prepare_order_values`` for ``specs``) with two statements;
        return them.

        The rows are what ``create()`` stores for the same values: fields of other modules take
        their defaults, and their stored computed fields are computed (``test_generated_order_
        matches_a_created_one`` and ``test_imported_order_matches_a_created_one`` hold it to
        that). The ORM's create would not bill 100,000 customers in the morning's time.
        """
        if not specs:
            return self.browse()
        vals_list = [self._prepare_order_values(dict(spec, origin=origin)) for spec in specs]
        companies = self.env["res.company"].browse({vals["company_id"] for vals in vals_list})
        names = {
            company.id: iter(self._reference_names(company, sum(v["company_id"] == company.id for v in vals_list)))
            for company in companies
        }
        rows, lines = [], []
        for vals in vals_list:
            currency = companies.browse(vals["company_id"]).currency_id
            order_lines = [command[2] for command in vals.pop("line_ids")]
            amount = currency.round(sum(line["amount"] for line in order_lines))
            charges = currency.round(vals["charges_amount"])
            balance = vals.get("balance")
            vals.update(
                name=next(names[vals["company_id"]]),
                currency_id=currency.id,
                amount=amount,
                charges_amount=charges,
                amount_total=amount + charges,
                balance=currency.round(balance) if balance is not None else amount + charges,
                state="pending",
            )
            rows.append(vals)
            lines.append([dict(line, company_id=vals["company_id"], currency_id=currency.id) for line in order_lines])
        orders = self.browse(self._insert_rows(self, rows))
        line_rows = [
            dict(line, order_id=order_id)
            for order_id, order_lines in zip(orders.ids, lines, strict=True)
            for line in order_lines
        ]
        order_lines = self.env["payment.order.line"].browse(
            self._insert_rows(self.env["payment.order.line"], line_rows)
        )
        self._compute_unfilled(orders, rows)
        self._compute_unfilled(order_lines, line_rows)
        self._log_bulk_creation(orders, origin, lines)
        return orders

    @api.model
    def _log_bulk_creation(self, orders, origin, lines):
        """The creation entry ``create()`` logs, on orders inserted in bulk; ``lines``: each order's
        line values (a plan's orders say which plans bill them)."""
        plan_ids = {line["plan_id"] for order_lines in lines for line in order_lines if line.get("plan_id")}
        plan_names = dict(self.env["service.plan"].sudo().browse(plan_ids).mapped(lambda plan: (plan.id, plan.name)))
        bodies = {
            order_id: self._creation_note(
                origin, [plan_names[line["plan_id"]] for line in order_lines if line.get("plan_id")]
            )
            for order_id, order_lines in zip(orders.ids, lines, strict=True)
        }
        chatter.log_note_sql(self.env, self._name, orders.ids, bodies, author=self.env.user.partner_id)

    def _creation_message(self):
        self.ensure_one()
        return self._creation_note(self.origin, self.line_ids.plan_id.mapped("name"), self.invoice_id.name)

    @api.model
    def _creation_note(self, origin, plan_names=(), invoice_name=None):
        """The first entry of an order's history: where it comes from."""
        plan_names = list(dict.fromkeys(plan_names))
        if origin == "plan" and plan_names:
            return self.env._("Payment order created from service plan %s", ", ".join(plan_names))
        if origin == "invoice" and invoice_name:
            return self.env._("Payment order created from invoice %s", invoice_name)
        if origin == "import":
            return self.env._("Payment order created by an import")
        return self.env._("Payment order created")

    @api.model
    def _insert_rows(self, model, rows):
        """INSERT ``rows`` (dicts of stored values) into ``model``'s table in one statement, with the
        defaults of the stored fields they leave out, as ``create()`` would; return the new ids."""
        # a client's default_* keys never reach rows that the addon writes for itself: the context
        # is replaced, not extended
        model = model.with_context(  # pylint: disable=context-overridden
            {key: value for key, value in self.env.context.items() if not key.startswith("default_")}
        )
        columns = {name: field for name, field in model._fields.items() if field.store and field.column_type}
        given = set().union(*rows)
        missing = [name for name in columns if name not in given and name not in models.MAGIC_COLUMNS]
        defaults = model.default_get(missing)
        fixed = {
            name: columns[name].convert_to_column_insert(value, model, defaults)
            for name, value in defaults.items()
            if name in columns
        }
        now = self.env.cr.now()
        fixed.update(create_uid=self.env.uid, create_date=now, write_uid=self.env.uid, write_date=now)
        names = sorted(given | set(fixed))
        # False is how the ORM says "empty": NULL, except in a boolean column
        empty_is_null = {name for name in given if columns[name].type != "boolean"}

        def column_value(row, name):
            if name not in given:
                return fixed[name]
            value = row.get(name)
            return None if value is False and name in empty_is_null else value

        # one placeholder list for every row: composing an SQL object per row costs more than the insert
        placeholders = ", ".join([f"({', '.join(['%s'] * len(names))})"] * len(rows))
        self.env.cr.execute(
            SQL(
                "INSERT INTO %s (%s) VALUES %s RETURNING id",
                SQL.identifier(model._table),
                SQL(", ").join(SQL.identifier(name) for name in names),
                SQL(placeholders, *(column_value(row, name) for row in rows for name in names)),
            )
        )
        return [row[0] for row in self.env.cr.fetchall()]

    @api.model
    def _compute_unfilled(self, records, rows):
        """Stored computed fields that the bulk insert left out (another module's) are computed as
        ``create()`` computes them."""
        given = set().union(*rows)
        unfilled = [
            field
            for name, field in records._fields.items()
            if field.store and field.compute and name not in given and name not in models.MAGIC_COLUMNS
        ]
        for field in unfilled:
            self.env.add_to_compute(field, records)
        if unfilled:
            records.flush_recordset([field.name for field in unfilled])

    def _init_balance(self):
        """A new order owes its whole total; set in one statement for bulk creations."""
        if not self:
            return
        self.flush_recordset(["amount_total"])
        self.env.cr.execute(SQL("UPDATE payment_order SET balance = amount_total WHERE id IN %s", tuple(self.ids)))
        self.invalidate_recordset(["balance"])

    @api.model
    def _convert_single_amount(self, vals):
        """Accept ``amount`` on create for the common one-line order (README, "Payment orders")."""
        if "amount" not in vals:
            return
        amount = vals.pop("amount")
        if vals.get("line_ids"):
            raise UserError(self.env._("Give either an amount or order lines, not both."))
        line = {"name": vals.get("concept") or self.env._("Amount due"), "amount": amount}
        if not vals.get("concept"):
            line["label_kind"] = "amount_due"  # said in the customer's language by the reminders
        vals["line_ids"] = [fields.Command.create(line)]

    @api.model
    def _reference_sequence(self, company):
        """Each company numbers its own orders; its sequence is made on its first order."""
        name = self.env._("Payment orders of %s", company.name)
        return collection.company_sequence(self.env, company, "payment.order", name, "OP/%(year)s/")

    def write(self, vals):
        self._check_immutable(vals)
        if self._is_internal_edit():
            self._check_internal_change(vals)
        else:
            self._check_workflow_untouched(vals)
        result = super().write(vals)
        if vals.get("state") in CLOSED_STATES:
            self._cancel_queued_notifications()
        return result

    def _changed_fields(self, vals, fnames):
        """{order: the fields of ``fnames`` that ``vals`` would change on it} (saving a form with
        the values an order already has changes nothing)."""
        changes = {}
        for order in self:
            changed = [fname for fname in fnames if fname in vals and order._differs(fname, vals[fname])]
            if changed:
                changes[order] = changed
        return changes

    def _check_immutable(self, vals):
        for order, changes in self._changed_fields(vals, self._IMMUTABLE_FIELDS).items():
            # an invoice order's due date is its invoice's: it moves with it (README, "Invoices")
            follows = order.invoice_id and self._follows_due_date()
            changed = [fname for fname in changes if not (follows and fname == "due_date")]
            if not changed:
                continue
            raise UserError(
                self.env._(
                    "Payment order %(order)s cannot be edited (%(fields)s). "
                    "Cancel it and create a new order with the correct information.",
                    order=order.name,
                    fields=self._field_labels(changed),
                )
            )

    def _check_workflow_untouched(self, vals):
        for order, changed in self._changed_fields(vals, self._WORKFLOW_FIELDS).items():
            raise UserError(
                self.env._(
                    "%(fields)s of payment order %(order)s change only through its own actions: Pay, "
                    "Cancel, the overdue check, an import or the invoice it comes from.",
                    order=order.name,
                    fields=self._field_labels(changed),
                )
            )

    def _check_internal_change(self, vals):
        """What even the addon's paths may not do: reopen or change a closed order, or owe more
        than the order's total (that last one the database refuses too)."""
        for order in self:
            new_state = vals.get("state", order.state)
            allowed = TRANSITIONS[order.state]
            if self._follows_due_date():
                allowed = allowed | DUE_DATE_TRANSITIONS.get(order.state, set())
            reopening = self._is_internal_edit() and self.env.context.get(REOPEN_KEY) is EDIT_SENTINEL
            if reopening:
                allowed = allowed | REOPEN_TRANSITIONS.get(order.state, set())
            if new_state != order.state and new_state not in allowed:
                order._raise_closed(new_state)
            money = {"balance", "charges_amount"} & set(vals)
            changes_money = any(order._differs(fname, vals[fname]) for fname in money)
            if order.state in CLOSED_STATES and not reopening and changes_money:
                order._raise_closed(new_state)

    def _raise_closed(self, new_state):
        if self.state == "cancelled":
            raise UserError(
                self.env._("Payment order %s is cancelled, which is final. Create a new order instead.", self.name)
            )
        if self.state == "paid":
            raise UserError(self.env._("Payment order %s is already paid.", self.name))
        raise UserError(
            self.env._(
                "Payment order %(order)s cannot go from %(old)s back to %(new)s.",
                order=self.name,
                old=self._state_label(),
                new=dict(self._fields["state"]._description_selection(self.env))[new_state],
            )
        )

    def _raise_lines_locked(self):
        if self:
            raise UserError(
                self.env._(
                    "The lines of payment order %s cannot be changed. "
                    "Cancel it and create a new order with the correct information.",
                    self[0].name,
                )
            )

    def _differs(self, fname, value):
        field = self._fields[fname]
        if field.type in ("one2many", "many2many"):
            return bool(value)
        new = field.convert_to_record(field.convert_to_cache(value, self), self)
        return new != self[fname]

    def _set_balance(self, balance, reason=None):
        """What the customer still owes, as a payment, an import or the invoice says.

        Only open orders; never more than the total; zero pays the order (a zero balance stops the
        reminders). The change is tracked in the chatter, with ``reason`` when given.
        """
        for order in self:
            currency = order.currency_id
            new_balance = currency.round(balance)
            if order.state not in OPEN_STATES:
                order._raise_closed(order.state)
            if (
                currency.compare_amounts(new_balance, order.amount_total) > 0
                or currency.compare_amounts(new_balance, 0) < 0
            ):
                raise UserError(
                    self.env._(
                        "The balance of payment order %(order)s must be between 0 and its total, %(total)s.",
                        order=order.name,
                        total=currency.format(order.amount_total),
                    )
                )
            if not currency.compare_amounts(new_balance, order.balance):
                continue
            if currency.is_zero(new_balance):
                order._pay()
            else:
                order._internal_edit().write({"balance": new_balance})
            if reason:
                order._message_log(body=reason)
        return True

    def _set_charges(self, charges, reason=None):
        """Charges and interest of an open order, as a late fee or an import says; the balance
        follows the difference. Tracked in the chatter, with ``reason`` when given."""
        for order in self:
            currency = order.currency_id
            new_charges = currency.round(charges)
            if order.state not in OPEN_STATES:
                order._raise_closed(order.state)
            if currency.compare_amounts(new_charges, 0) < 0:
                raise UserError(self.env._("Charges and interest cannot be negative."))
            difference = new_charges - order.charges_amount
            if currency.is_zero(difference):
                continue
            new_balance = max(order.balance + difference, 0.0)
            order._internal_edit().write({"charges_amount": new_charges, "balance": new_balance})
            if currency.is_zero(new_balance):
                order._pay()
            if reason:
                order._message_log(body=reason)
        return True

    def _follow_due_date(self, due_date):
        """Open invoice orders take their invoice's new due date; tracked in the chatter. An
        overdue order no longer past due (in its company's today) is pending again; one now past
        due is overdue at once."""
        for order in self.filtered(lambda order: order.state in OPEN_STATES):
            if not order.invoice_id:
                raise UserError(
                    self.env._("Only an order that comes from an invoice follows its due date: %s.", order.name)
                )
            if order.due_date == due_date:
                continue
            vals = {"due_date": due_date}
            past_due = due_date < company_today(order.company_id)
            if order.state == "overdue" and not past_due:
                vals["state"] = "pending"
            elif order.state == "pending" and past_due:
                vals["state"] = "overdue"
            order._track_set_log_message(
                Markup("<p>%s</p>") % self.env._("The due date of invoice %s changed.", order.invoice_id.display_name)
            )
            order._internal_edit(follow_due_date=True).write(vals)
        return True

    def _write_off(self, amount, reason):
        """Forgive ``amount`` of the balance (cents left over, a debt not worth chasing), for
        ``reason``: a Collections Manager's decision. At zero the order is closed as paid."""
        self.ensure_one()
        self._check_can_write_off()
        currency = self.currency_id
        amount = currency.round(amount or 0.0)
        reason = (reason or "").strip()
        if not reason:
            raise UserError(self.env._("Say why the amount is written off."))
        if currency.compare_amounts(amount, 0) <= 0 or currency.compare_amounts(amount, self.balance) > 0:
            raise UserError(
                self.env._(
                    "The amount written off must be more than zero and at most the balance of %(order)s, %(balance)s.",
                    order=self.name,
                    balance=currency.format(self.balance),
                )
            )
        new_balance = currency.round(self.balance - amount)
        note = self.env._("Written off %(amount)s: %(reason)s", amount=currency.format(amount), reason=reason)
        if currency.is_zero(new_balance):
            note = self.env._(
                "%(note)s. Nothing is left to pay: the order is closed, written off (no payment received).",
                note=note,
            )
        self._internal_edit().write({"written_off_amount": self.written_off_amount + amount})
        self._set_balance(new_balance, reason=note)
        return True

    def _check_can_write_off(self):
        if not self.env.user.has_group(MANAGER_GROUP):
            raise AccessError(self.env._("Only Collections Managers can write off a debt."))
        self.check_access("write")
        for order in self:
            if order.state not in OPEN_STATES:
                raise UserError(
                    self.env._(
                        "Only pending or overdue orders can be written off; %(order)s is %(state)s.",
                        order=order.name,
                        state=order._state_label(),
                    )
                )

    # ------------------------------------------------------------------ actions

    def action_write_off(self):
        """The Write Off dialog of this order (Collections Managers)."""
        self.ensure_one()
        self._check_can_write_off()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Write Off"),
            "res_model": "payment.order.write.off",
            "view_mode": "form",
            "target": "new",
            "context": {"default_order_id": self.id},
        }

    def action_pay(self):
        """Register the payment of the whole outstanding balance of each order, dated today (README,
        "Payments"): a payment record like any other, and an invoice order's invoice is paid too."""
        closed = self._closed_orders_text()
        if closed:
            raise UserError(self.env._("Only pending or overdue orders can be paid: %s.", closed))
        for order in self:
            order._register_payment(order.balance, company_today(order.company_id))
        return True

    def _pay(self, paid_date=None):
        for company, orders in self.grouped("company_id").items():
            orders._internal_edit().write(
                {"state": "paid", "paid_date": paid_date or company_today(company), "balance": 0.0}
            )

    @api.depends("payment_ids")
    def _compute_payment_count(self):
        for order in self:
            order.payment_count = len(order.payment_ids)

    def _register_payment(self, amount, date, method=None, reference=None, note=None, transaction=None):
        """Record a payment received for this open order (README, "Payments"): at most its balance; an
        invoice order is paid on its invoice, whose residual the order then follows.

        An online ``transaction`` (README, "Pay now") was already reconciled with the invoices by
        Odoo's own post-processing, and is registered by the customer, not a user."""
        self.ensure_one()
        if not transaction:
            self.check_access("write")
        currency = self.currency_id
        if self.state not in OPEN_STATES:
            self._raise_closed(self.state)
        if currency.compare_amounts(amount, 0) <= 0 or currency.compare_amounts(amount, self.balance) > 0:
            raise UserError(
                self.env._(
                    "The payment for order %(order)s must be more than zero and at most its balance, %(balance)s.",
                    order=self.name,
                    balance=currency.format(self.balance),
                )
            )
        account_payment = self._pay_invoice(amount, date, reference) if self.invoice_id and not transaction else False
        payment = (
            self.env["payment.order.payment"]
            .sudo()
            .create(
                {
                    "account_payment_id": account_payment,
                    "order_id": self.id,
                    "amount": amount,
                    "date": date,
                    "method_id": method.id if method else False,
                    "reference": reference,
                    "note": note,
                    "transaction_id": transaction.id if transaction else False,
                }
            )
        )
        if self.invoice_id:
            self.invoice_id.sudo()._sync_payment_orders()
            if self.state == "paid":
                self._internal_edit().write({"paid_date": date})
        elif currency.compare_amounts(amount, self.balance) == 0:
            self.sudo()._pay(paid_date=date)
        else:
            self.sudo()._set_balance(self.balance - amount)
        payment._write_internal({"balance_after": self.balance})
        return payment

    def _pay_invoice(self, amount, date, reference):
        """Odoo's own register-payment flow, so the invoice and the order never disagree."""
        invoice = self.invoice_id.sudo()
        journal = (
            self.env["account.journal"]
            .sudo()
            .search([("company_id", "=", self.company_id.id), ("type", "in", ("bank", "cash"))], limit=1)
        )
        wizard = (
            self.env["account.payment.register"]
            .sudo()
            .with_context(active_model="account.move", active_ids=invoice.ids)
            .create(
                {
                    "amount": amount,
                    "payment_date": date,
                    "journal_id": journal.id,
                    "communication": reference or invoice.name,
                }
            )
        )
        return wizard._create_payments()[:1].id

    def _restore_balance(self, balance):
        """A cancelled payment: the order owes it again; one it had paid reopens."""
        for order in self:
            if order.state == "paid":
                past_due = order.due_date < company_today(order.company_id)
                order._internal_edit().with_context(**{REOPEN_KEY: EDIT_SENTINEL}).write(
                    {"state": "overdue" if past_due else "pending", "paid_date": False, "balance": balance}
                )
            else:
                order._set_balance(balance)

    def action_cancel(self):
        """Cancel for good: a cancelled order never comes back (README, "Payment orders")."""
        closed = self._closed_orders_text()
        if closed:
            raise UserError(self.env._("Only pending or overdue orders can be cancelled: %s.", closed))
        self._internal_edit().write({"state": "cancelled"})
        return True

    def _closed_orders_text(self):
        """The paid or cancelled orders among these, named with their state, for a refusal that
        lists all of them (a bulk action is refused as a whole)."""
        closed = self.filtered(lambda order: order.state not in OPEN_STATES)
        return ", ".join(f"{order.name} ({order._state_label()})" for order in closed)

    def action_print_statement(self):
        """The account statement of the order's customer (all of the customer's open orders)."""
        return self.env.ref("payment_dunning.action_report_account_statement").report_action(self.partner_id)

    def action_notify(self):
        """Send the default template now by each of its channels; say what happened.

        An API entry (scripts, tests): the form's Notify button opens the composer instead."""
        closed = self.filtered(lambda order: order.state not in OPEN_STATES)
        if closed:
            raise UserError(
                self.env._("Only pending or overdue orders can be notified: %s.", ", ".join(closed.mapped("name")))
            )
        self.check_access("write")
        # the communication log is written by the addon only (users read it)
        notifications = self.env["payment.order.notification"].sudo()
        for company, orders in self.grouped("company_id").items():
            template = self.env["dunning.template"]._get_default(company)
            if not template:
                raise UserError(self.env._("There is no default dunning template for %s.", company.name))
            for order in orders:
                notifications |= notifications._queue(template, order)
        # queued lines are committed before anything leaves (the send loop commits each step)
        notifications.sudo()._send()
        return self._notify_result_action(notifications)

    def _notify_generated(self):
        """Queue the default template for orders generated from service plans, when Settings say so."""
        params = self.env["ir.config_parameter"].sudo()
        notifications = self.env["payment.order.notification"].sudo()
        if not self or not params.get_param("payment_dunning.notifications_enabled"):
            return notifications
        for company, orders in self.grouped("company_id").items():
            template = self.env["dunning.template"]._get_default(company)
            if not template:
                _logger.warning("No default dunning template in %s: generated orders not notified", company.name)
                continue
            reachable = orders.filtered(lambda order: not order.partner_id.dunning_excluded)
            notifications |= notifications._queue(template, reachable)
        return notifications

    @api.model
    def _notify_result_action(self, notifications):
        """A notification telling, message by message, what happened."""
        notifications = notifications.sudo()
        notifications.invalidate_recordset()
        queue_active = self._send_queue_active()
        lines = [self._notify_outcome_text(notification, queue_active) for notification in notifications]
        failed = notifications.filtered(lambda n: n.state != "sent")
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "danger" if failed else "success",
                "title": self.env._("Notification failed") if failed else self.env._("Notification sent"),
                "message": "\n".join(lines),
                "sticky": bool(failed),
                "next": {"type": "ir.actions.act_window_close"},
            },
        }

    @api.model
    def _send_queue_active(self):
        """Whether the send queue job runs: a message left queued is only retried when it does."""
        cron = self.env.ref("payment_dunning.cron_payment_order_send_queue", raise_if_not_found=False)
        return bool(cron and cron.sudo().active)

    @api.model
    def _notify_outcome_text(self, notification, queue_active):
        """What happened to one message, as the user should read it: sent, queued (and when it is
        retried), or failed (and what to do)."""
        channel = notification._channel_label()
        recipient = notification.recipient or ""
        if notification.state == "sent":
            return self.env._("%(channel)s sent to %(recipient)s", channel=channel, recipient=recipient)
        reason = notification.error or notification._fields["state"].convert_to_export(notification.state, notification)
        reason = reason.rstrip(". ")  # the texts below end their own sentence
        if notification.state == "queued" and not notification.failure_type and not notification.next_attempt_at:
            reason = self.env._("the gateway is at its rate limit")
        if notification.state == "queued" and queue_active:
            if notification.next_attempt_at:
                return self.env._(
                    "%(channel)s to %(recipient)s: %(reason)s; queued, retried at %(when)s",
                    channel=channel,
                    recipient=recipient,
                    reason=reason,
                    when=format_datetime(self.env, notification.next_attempt_at, dt_format="HH:mm"),
                )
            return self.env._(
                "%(channel)s to %(recipient)s: %(reason)s; queued, sent by the send queue in a few minutes",
                channel=channel,
                recipient=recipient,
                reason=reason,
            )
        if notification.state == "queued":
            # nothing will send it by itself: the user has to
            return self.env._(
                "%(channel)s to %(recipient)s failed: %(reason)s. Use Retry in Communications",
                channel=channel,
                recipient=recipient,
                reason=reason,
            )
        return self.env._(
            "%(channel)s to %(recipient)s failed: %(reason)s", channel=channel, recipient=recipient, reason=reason
        )

    def _log_reminder_failed(self, notification):
        body = Markup("<p>%s</p>") % self.env._(
            "%(channel)s reminder failed: %(reason)s", channel=notification._channel_label(), reason=notification.error
        )
        self.sudo()._message_log_batch({order.id: body for order in self})

    def _cancel_queued_notifications(self):
        """A paid or cancelled order is never chased again, not even by messages already queued."""
        queued = self.sudo().notification_ids.filtered(lambda n: n.state == "queued")
        for notification in queued:
            if all(order.state not in OPEN_STATES for order in notification.order_ids):
                notification.write(
                    {"state": "cancelled", "error": self.env._("The orders were paid or cancelled before sending.")}
                )

    def _state_label(self):
        return dict(self._fields["state"]._description_selection(self.env))[self.state]

    @api.ondelete(at_uninstall=False)
    def _unlink_only_cancelled(self):
        for order in self:
            if order.state != "cancelled":
                raise UserError(
                    self.env._(
                        "Payment order %s cannot be deleted: cancel it instead, so its history is kept.",
                        order.name,
                    )
                )

    def copy_data(self, default=None):
        # a copy of a closed order starts over as a new pending order
        vals_list = super().copy_data(default=default)
        for vals in vals_list:
            vals.pop("state", None)
        return vals_list

    # ------------------------------------------------------------------ scheduled jobs

    @api.model
    def _cron_mark_overdue(self):
        """Pending orders whose due date has passed, in their company's timezone, become overdue.

        One set-based statement for every company at once: the UPDATE, and each flipped order's
        tracking entry in its chatter (as the ORM's tracking of ``state`` writes it), inserted from
        the rows the UPDATE returns. The ORM's per-record write and tracking would not hold at
        hundreds of thousands of orders. Rows a concurrent run already holds are skipped; it marks
        them itself.
        """
        companies = self.env["res.company"].sudo().search([])  # pylint: disable=no-search-all
        if not companies:
            return 0
        self.env["payment.order"].flush_model(["state", "due_date", "company_id"])
        # the rows are picked and locked once, by a join (a hash join at any size): a correlated
        # IN (SELECT … FOR UPDATE) becomes a per-row subplan once PostgreSQL expects its list not to
        # fit in work_mem (README, "Scale"). Each flipped order gets its tracking entry in the same
        # statement: the history never shows a change that did not happen, nor misses one
        flip = SQL(
            """
            due AS (
                SELECT o.id
                  FROM payment_order o
                  JOIN (VALUES %(today)s) AS c(company_id, today) ON c.company_id = o.company_id
                 WHERE o.state = 'pending' AND o.due_date < c.today
                   FOR UPDATE OF o SKIP LOCKED
            ),
            flipped AS (
                UPDATE payment_order o
                   SET state = 'overdue', write_date = (now() AT TIME ZONE 'UTC'), write_uid = %(uid)s
                  FROM due
                 WHERE o.id = due.id
             RETURNING o.id
            )
            """,
            uid=self.env.uid,
            today=collection.company_days_values(collection.company_days(companies)),
        )
        count = chatter.log_tracking_sql(
            self.env,
            self._name,
            SQL("SELECT id FROM flipped"),
            "state",
            "pending",
            "overdue",
            author=self.env.ref("base.partner_root"),
            with_=flip,
        )
        self.env["payment.order"].invalidate_model(["state", "write_date", "write_uid"])
        _logger.info("Marked %d payment orders overdue", count)
        return count

    @api.model
    def _cron_orders_from_invoices(self, batch_size=None):
        """Scheduled job: a payment order for every posted, unpaid customer invoice that has none."""
        params = self.env["ir.config_parameter"].sudo()
        if not (
            params.get_param("payment_dunning.automatic_tasks") and params.get_param("payment_dunning.invoice_orders")
        ):
            return self.browse()
        batch_size = batch_size or collection.batch_size(self.env)
        moves = self.env["account.move"].sudo()
        created = self.browse()
        last_id = 0
        while True:
            domain = [*moves._payment_order_candidates_domain(), ("id", ">", last_id)]
            invoices = moves.search(domain, limit=batch_size, order="id")
            if not invoices:
                return created
            last_id = invoices[-1].id
            created |= self._create_from_invoices(invoices)
            collection.commit(self.env.cr)

    @api.model
    def _create_from_invoices(self, invoices):
        """One order per invoice: code = invoice number, amount = total, balance = residual, due
        date = the invoice's. An order already carrying the invoice number as payment code is
        linked to the invoice instead of duplicated."""
        orders = self.sudo()
        unlinked = orders.search(
            [
                ("company_id", "in", invoices.company_id.ids),
                ("payment_code", "in", invoices.mapped("name")),
                ("installment", "=", 1),
                ("invoice_id", "=", False),
            ]
        )
        by_code = {(order.company_id.id, order.payment_code): order for order in unlinked}
        vals_list = []
        for invoice in invoices:
            existing = by_code.get((invoice.company_id.id, invoice.name))
            if existing:
                existing._internal_edit().invoice_id = invoice
                continue
            total = invoice.company_currency_id.round(abs(invoice.amount_total_signed))
            residual = invoice.company_currency_id.round(abs(invoice.amount_residual_signed))
            vals_list.append(
                self._prepare_order_values(
                    {
                        "partner_id": invoice.commercial_partner_id.id,
                        "company_id": invoice.company_id.id,
                        "due_date": invoice.invoice_date_due or invoice.invoice_date,
                        "concept": invoice.ref or invoice.name,
                        "payment_code": invoice.name,
                        "installment": 1,
                        "origin": "invoice",
                        "invoice_id": invoice.id,
                        "lines": [{"name": invoice.name, "amount": total}],
                        "balance": min(total, residual),
                    }
                )
            )
        return orders._internal_edit().create(vals_list).with_env(orders.env)

    # ------------------------------------------------------------------ statistics

    @api.model
    def _install_running_totals(self):
        """Create (again) the running totals and count every order: on each install and update of the
        module (data/payment_order_totals_data.xml), once every table they read has its columns."""
        order_summary.install(self.env.cr)

    @api.model
    def _cron_compact_totals(self):
        """Scheduled job: fold the rows the running totals appended into one per key (tools/order_summary.py).
        A worker whose snapshot predates another's compaction starts again on a fresh one."""
        cr = self.env.cr
        collection.retry_serialization(cr, lambda: order_summary.compact(cr))
        collection.commit(cr)

    @api.model
    def get_panel_data(self, domain=None):
        """What the panel above the orders list shows: totals, and whether the jobs are on."""
        params = self.env["ir.config_parameter"].sudo()
        return {
            "totals": self.get_state_totals(domain),
            "automatic_tasks": bool(params.get_param("payment_dunning.automatic_tasks")),
            "can_configure": self.env.user.has_group("payment_dunning.group_payment_dunning_manager"),
            "settings_action": self._settings_action(),
        }

    @api.model
    def _settings_action(self):
        """Odoo's Settings for administrators; the Collections Managers' own settings screen otherwise."""
        if self.env.user.has_group("base.group_system"):
            return "payment_dunning.action_collections_settings"
        return "payment_dunning.action_payment_dunning_settings"

    @api.model
    def get_dashboard_data(self):
        """Every figure of the Collections dashboard, from grouped queries: states, aging, messages
        of the last 30 days, orders due this week. Each comes with the domain of its list."""
        today = company_today(self.env.company)
        in_companies = [("company_id", "in", self.env.companies.ids)]
        week_end = fields.Date.add(today, days=7)
        since = fields.Datetime.subtract(fields.Datetime.now(), days=30)
        aging_model = self.env["payment.dunning.aging"]
        buckets = dict(aging_model._fields["bucket"]._description_selection(self.env))
        aging = {
            bucket: {"bucket": bucket, "label": label, "count": 0, "amount": 0.0} for bucket, label in buckets.items()
        }
        for bucket, count, amount in aging_model._read_group(in_companies, ["bucket"], ["__count", "balance:sum"]):
            aging[bucket].update(count=count, amount=amount)
        currency = self.env.company.currency_id
        for entry in aging.values():
            entry["formatted"] = currency.format(entry["amount"])
            entry["domain"] = [("bucket", "=", entry["bucket"]), *in_companies]
        messages = dict(
            self.env["payment.order.notification"]._read_group(
                [("create_date", ">=", since), ("state", "in", ["sent", "failed"]), *in_companies],
                ["state"],
                ["__count"],
            )
        )
        due_count, due_amount, due_domain = self._open_due_between(in_companies, today, week_end)
        return {
            "totals": self.get_state_totals(in_companies),
            "aging": list(aging.values()),
            "messages": {
                "sent": messages.get("sent", 0),
                "failed": messages.get("failed", 0),
                "since": fields.Datetime.to_string(since),
            },
            "due_this_week": {
                "count": due_count,
                "formatted": currency.format(due_amount or 0.0),
                "domain": due_domain,
            },
            "automatic_tasks": bool(
                self.env["ir.config_parameter"].sudo().get_param("payment_dunning.automatic_tasks")
            ),
            "can_configure": self.env.user.has_group("payment_dunning.group_payment_dunning_manager"),
            "settings_action": self._settings_action(),
            "collected": self._dashboard_collected(today, currency),
            "promises": self._dashboard_promises(today, currency),
            "days_to_pay": self._dashboard_days_to_pay(today),
            "rules": self._dashboard_rules(currency),
        }

    @api.model
    def _dashboard_collected(self, today, currency):
        """Payments of this month (the company's month), by method, and last month's total."""
        payments = self.env["payment.order.payment"]
        month_start = today.replace(day=1)
        last_month_start = fields.Date.subtract(month_start, months=1)
        domain = [
            ("state", "=", "posted"),
            ("date", ">=", month_start),
            ("date", "<=", today),
            ("company_id", "in", self.env.companies.ids),
        ]
        methods = []
        for method, count, amount in payments._read_group(domain, ["method_id"], ["__count", "amount:sum"]):
            methods.append(
                {
                    "name": method.name or self.env._("No method"),
                    "count": count,
                    "formatted": currency.format(amount),
                    "amount": amount,
                    "domain": [*domain, ("method_id", "=", method.id)],
                }
            )
        methods.sort(key=lambda method: -method["amount"])
        [(count, amount)] = payments._read_group(domain, [], ["__count", "amount:sum"])
        last_domain = [*domain[:1], ("date", ">=", last_month_start), ("date", "<", month_start), *domain[3:]]
        [(_last_count, last_amount)] = payments._read_group(last_domain, [], ["__count", "amount:sum"])
        return {
            "count": count,
            "formatted": currency.format(amount or 0.0),
            "last_month": currency.format(last_amount or 0.0),
            "domain": domain,
            "methods": methods,
        }

    @api.model
    def _dashboard_promises(self, today, currency):
        """Open promises due this week, and promises broken in the last 30 days."""
        promises = self.env["payment.order.promise"]
        in_companies = [("company_id", "in", self.env.companies.ids)]
        due_domain = [
            ("state", "=", "open"),
            ("promised_date", ">=", today),
            ("promised_date", "<=", fields.Date.add(today, days=7)),
            *in_companies,
        ]
        broken_domain = [
            ("state", "=", "broken"),
            ("promised_date", ">=", fields.Date.subtract(today, days=30)),
            *in_companies,
        ]
        figures = {}
        for key, domain in (("due_this_week", due_domain), ("broken", broken_domain)):
            [(count, amount)] = promises._read_group(domain, [], ["__count", "promised_amount:sum"])
            figures[key] = {"count": count, "formatted": currency.format(amount or 0.0), "domain": domain}
        return figures

    @api.model
    def _dashboard_days_to_pay(self, today):
        """Average days from the due date to the payment of the orders paid in the last 90 days (written-off
        ones aside: they were not paid)."""
        self.flush_model()
        self.env["res.company"].flush_model(["collection_tz"])
        count, after_due, after_creation = order_summary.days_to_pay(
            self.env.cr, self.env.companies.ids, fields.Date.subtract(today, days=90)
        )
        return {
            "count": count,
            "after_due": round(after_due, 1) if after_due is not None else None,
            "after_creation": round(after_creation, 1) if after_creation is not None else None,
        }

    @api.model
    def _dashboard_rules(self, currency, days=30, window=7):
        """Which rule works: for each template, over the last ``days``, the reminders sent (and the share of
        its WhatsApp messages read), the orders they reached, and what was paid on those orders within
        ``window`` days after one of its messages (a payment counts once per template; an order reached
        by two templates counts for each)."""
        rows = self._dashboard_rule_rows(days, window)
        templates = self.env["dunning.template"].with_context(active_test=False)
        rules = []
        for template_id, messages, orders, paid_orders, amount, whatsapp, whatsapp_read in rows:
            template = templates.browse(template_id).exists() if template_id else templates
            rules.append(
                {
                    "id": template_id or 0,
                    "name": template.name or self.env._("Deleted rule"),
                    "automatic": bool(template.auto_send),
                    "messages": messages,
                    "orders": orders,
                    "paid_orders": paid_orders,
                    "rate": round(100.0 * paid_orders / orders) if orders else 0,
                    "collected": currency.format(amount),
                    # of the WhatsApp messages, those the gateway reported read (README, "WhatsApp both ways")
                    "whatsapp": whatsapp,
                    "read_rate": round(100.0 * whatsapp_read / whatsapp) if whatsapp else None,
                }
            )
        return {"days": days, "window": window, "rules": rules}

    @api.model
    def _state_totals_from_summary(self, domain):
        """get_state_totals' groups from the running totals (tools/order_summary.py), or None when the
        domain or the user's record rules need a search."""
        scope = order_summary.scope(self, domain, ("state", "currency_id"), COMPANY_RULE)
        if scope is None:
            return None
        companies, values = scope
        rows = order_summary.state_totals(self.env.cr, companies, values.get("state"), values.get("currency_id"))
        currencies = self.env["res.currency"]
        return [
            (state, currencies.browse(currency_id), float(amount), int(count))
            for state, currency_id, count, amount in rows
        ]

    @api.model
    def _open_due_between(self, in_companies, start, end):
        """(orders, balance, domain) of the open orders due from ``start`` to ``end``."""
        domain = [("state", "in", list(OPEN_STATES)), ("due_date", ">=", start), ("due_date", "<=", end), *in_companies]
        scope = order_summary.scope(self, in_companies, (), COMPANY_RULE)
        if scope is not None:
            return *order_summary.due_between(self.env.cr, scope[0], start, end), domain
        [(count, balance)] = self._read_group(domain, [], ["__count", "balance:sum"])
        return count, balance, domain

    @api.model
    def _dashboard_rule_rows(self, days, window):
        """The figures of _dashboard_rules, one row per template. They read every message of ``days`` days,
        too many to read again each time someone opens the dashboard of a big book: a worker reuses them
        for the seconds of the system parameter payment_dunning.dashboard_rules_cache_seconds (300 by
        default; 0 reads them each time)."""
        try:
            seconds = int(self.env["ir.config_parameter"].sudo().get_param(RULES_CACHE_PARAM, RULES_CACHE_SECONDS))
        except ValueError:
            seconds = RULES_CACHE_SECONDS
        key = (self.env.cr.dbname, tuple(sorted(self.env.companies.ids)), days, window)
        now = time.time()
        cached = RULES_CACHE.get(key)
        if cached and 0 <= now - cached[0] < seconds:
            return cached[1]
        notifications = self.env["payment.order.notification"]
        notifications.flush_model()
        self.env["payment.order.payment"].flush_model()
        since = fields.Datetime.subtract(fields.Datetime.now(), days=days)
        self.env.cr.execute(
            SQL(
                """
                WITH reached AS (
                    SELECT n.template_id, rel.order_id, n.sent_at::date AS day
                      FROM payment_order_notification n
                      JOIN payment_order_notification_rel rel ON rel.notification_id = n.id
                     WHERE n.state = 'sent' AND n.sent_at >= %(since)s AND n.payment_id IS NULL
                       AND n.company_id IN %(companies)s
                ),
                paid AS (
                    SELECT DISTINCT r.template_id, p.id, p.order_id, p.amount
                      FROM reached r
                      JOIN payment_order_payment p
                        ON p.order_id = r.order_id AND p.state = 'posted'
                       AND p.date BETWEEN r.day AND r.day + %(window)s
                ),
                sent AS (
                    SELECT template_id, count(*) AS messages,
                           count(*) FILTER (WHERE channel = 'whatsapp') AS whatsapp,
                           count(*) FILTER (WHERE channel = 'whatsapp' AND delivery_status = 'read') AS whatsapp_read
                      FROM payment_order_notification
                     WHERE state = 'sent' AND sent_at >= %(since)s AND payment_id IS NULL
                       AND company_id IN %(companies)s
                     GROUP BY template_id
                )
                SELECT s.template_id, s.messages,
                       (SELECT count(DISTINCT order_id) FROM reached r
                         WHERE r.template_id IS NOT DISTINCT FROM s.template_id),
                       (SELECT count(DISTINCT order_id) FROM paid x
                         WHERE x.template_id IS NOT DISTINCT FROM s.template_id),
                       (SELECT coalesce(sum(amount), 0) FROM paid x
                         WHERE x.template_id IS NOT DISTINCT FROM s.template_id),
                       s.whatsapp, s.whatsapp_read
                  FROM sent s
                 ORDER BY 5 DESC, 2 DESC
                """,
                since=since,
                companies=tuple(self.env.companies.ids),
                window=window,
            )
        )
        rows = self.env.cr.fetchall()
        if seconds > 0:
            if len(RULES_CACHE) > 256:
                RULES_CACHE.clear()
            RULES_CACHE[key] = (now, rows)
        return rows

    @api.model
    def get_state_totals(self, domain=None):
        """Totals per state and currency for the panel above the orders list (README, "Payment orders")."""
        groups = self._state_totals_from_summary(domain or [])
        if groups is None:
            groups = self._read_group(list(domain or []), ["state", "currency_id"], ["amount_total:sum", "__count"])
        selection = dict(self._fields["state"]._description_selection(self.env))
        totals = {
            state: {"state": state, "label": label, "count": 0, "amounts": []} for state, label in selection.items()
        }
        for state, currency, amount, count in groups:
            totals[state]["count"] += count
            totals[state]["amounts"].append(
                {"currency_id": currency.id, "amount": amount, "formatted": currency.format(amount)}
            )
        zero_currency = self.env.company.currency_id
        for total in totals.values():
            if not total["amounts"]:
                total["amounts"].append(
                    {"currency_id": zero_currency.id, "amount": 0.0, "formatted": zero_currency.format(0.0)}
                )
        return list(totals.values())
