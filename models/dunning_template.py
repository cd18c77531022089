import logging
import re
from datetime import timedelta

from markupsafe import Markup, escape

from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL, format_date, formatLang

from ..tools import collection

_logger = logging.getLogger(__name__)

VARIABLE_RE = re.compile(r"@variable_[A-Za-z0-9_]+")
BOLD_RE = re.compile(r"\*([^*\n]+)\*")

DEFAULT_BODY = (
    "Hola @variable_nombre\n"
    "Este es un recordatorio para informar que tiene un pago pendiente por sus servicios\n"
    "Plan *@variable_plan*\n"
    "- Monto: *@variable_precios*\n"
    "- Vence: *@variable_fecha_vencimiento*"
)


class DunningTemplate(models.Model):
    """A reminder message with ``@variable_…`` placeholders, sent by email and/or WhatsApp.

    Rendering is plain text substitution: the user's text is never evaluated as code or as a
    QWeb/Jinja template, so ``{{ }}``, ``${}`` or ``<script>`` in it stay inert text.
    """

    _name = "dunning.template"
    _description = "Dunning Template"
    _order = "is_default desc, sequence, id"

    name = fields.Char(required=True, translate=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one("res.company", index=True, help="Leave empty to use the template in every company.")
    usage = fields.Selection(
        [("reminder", "Reminder"), ("receipt", "Payment receipt")],
        default="reminder",
        required=True,
        help="A reminder chases what is owed (Notify, the dunning rules); a payment receipt thanks the customer for "
        'a payment, with its Constancia de pago attached (README, "Receipts").',
    )
    is_default = fields.Boolean(
        string="Default",
        help="Used by Notify, Create and notify, and the orders generated from service plans.",
    )
    channel_email = fields.Boolean(string="Email", default=True)
    channel_whatsapp = fields.Boolean(string="WhatsApp", default=True)
    subject = fields.Char(
        default="Recordatorio de pago @variable_orden",
        help="Subject of the email; variables are allowed.",
    )
    email_from = fields.Char(
        help="Sender address of the emails; empty uses the company's email.",
    )
    body = fields.Text(
        required=True,
        default=DEFAULT_BODY,
        help="Text of the message. Variables are replaced for each customer; *text between "
        "asterisks* is bold on WhatsApp and in the email.",
    )
    variables_help = fields.Text(compute="_compute_variables_help", string="Available Variables")
    auto_send = fields.Boolean(
        string="Send Automatically",
        help="A dunning rule: every day the automatic run sends this message for each open order whose "
        "days from the due date fall within the window, repeating at the chosen interval.",
    )
    days_from = fields.Integer(
        string="From (days)",
        default=1,
        help="Days from the due date when the message starts: negative before it (-3 = three days "
        "before), 0 on the due date, 5 five days after.",
    )
    days_to = fields.Integer(
        string="To (days)",
        default=30,
        help="Last day, counted from the due date, on which the message is sent.",
    )
    open_end = fields.Boolean(
        string="No End",
        help="Keep sending for as long as the order is unpaid, however late it is.",
    )
    interval_days = fields.Integer(
        string="Every (days)",
        default=7,
        help="Recurrence: days between two messages of this template for the same order (1 = daily).",
    )
    send_mode = fields.Selection(
        [("order", "One message per order"), ("customer", "One digest per customer")],
        default="order",
        required=True,
        help="A digest lists, in one message (@variable_detalle), every order of the customer that "
        "the rule selects that day.",
    )
    excluded_partner_ids = fields.Many2many(
        "res.partner",
        "dunning_template_excluded_partner_rel",
        "template_id",
        "partner_id",
        string="Excluded Customers",
        help="Customers who never receive this message.",
    )
    attach_statement = fields.Boolean(
        string="Attach Account Statement",
        default=True,
        help="The customer's account statement (PDF of the open orders) goes with the email and as a "
        "document on WhatsApp. Every dunning message carries it unless you untick this.",
    )

    pay_link = fields.Boolean(
        string="Add the Pay-Now Link",
        default=True,
        help="When the company has an online payment provider, the reminder ends with the customer's pay-now link "
        "(unless the text already places @variable_link_pago).",
    )

    whatsapp_template_name = fields.Char(
        string="Approved WhatsApp Template",
        help="WhatsApp Cloud API: the name of the template Meta approved for this message. Outside the 24 hours "
        "after the customer last wrote, Meta delivers approved templates only.",
    )
    whatsapp_template_lang = fields.Char(string="Template Language", default="es", help="e.g. es, es_PE, en_US.")
    whatsapp_template_params = fields.Char(
        string="Template Parameters",
        help="The variables that fill the template's {{1}}, {{2}}... in order, comma-separated, e.g. "
        "@variable_nombre, @variable_saldo, @variable_fecha_vencimiento.",
    )

    _sql_constraints = [
        (
            "receipt_not_a_rule",
            "CHECK(usage = 'reminder' OR (NOT auto_send AND NOT is_default))",
            "A payment receipt template is sent for each payment: "
            "it is neither a dunning rule nor the default reminder.",
        ),
        (
            "channel_required",
            "CHECK(channel_email OR channel_whatsapp)",
            "A template sends by email, by WhatsApp or both: choose at least one channel.",
        ),
    ]

    # ------------------------------------------------------------------ variables

    def _variables(self):
        """Variable name -> (description, value for the orders of one customer)."""
        labels = {
            "@variable_nombre": self.env._("Customer name"),
            "@variable_plan": self.env._("Plans or services billed"),
            "@variable_precios": self.env._("Amount of the order(s)"),
            "@variable_fecha_vencimiento": self.env._("Due date"),
            "@variable_concepto": self.env._("Concept of the order(s)"),
            "@variable_orden": self.env._("Order reference(s)"),
            "@variable_saldo": self.env._("Outstanding balance"),
            "@variable_dias_vencido": self.env._("Days past the due date"),
            "@variable_empresa": self.env._("Your company's name"),
            "@variable_detalle": self.env._("One line per order: reference, concept, due date, balance"),
            "@variable_monto_pagado": self.env._("Amount paid (payment receipts)"),
            "@variable_fecha_pago": self.env._("Date of the payment (payment receipts)"),
            "@variable_recibo": self.env._("Receipt number (payment receipts)"),
            "@variable_link_pago": self.env._("Pay-now link (empty while no online payment provider is enabled)"),
        }
        return {name: (labels[name], getter) for name, getter in self._variable_getters().items()}

    def _variable_getters(self):
        """Variable name -> value for the orders of one customer (what rendering needs: no labels)."""
        return {
            "@variable_nombre": self._value_customer_name,
            "@variable_plan": self._value_plans,
            "@variable_precios": self._value_amount,
            "@variable_fecha_vencimiento": self._value_due_date,
            "@variable_concepto": self._value_concept,
            "@variable_orden": self._value_references,
            "@variable_saldo": self._value_balance,
            "@variable_dias_vencido": self._value_days_overdue,
            "@variable_empresa": self._value_company,
            "@variable_detalle": self._value_detail,
            # a reminder has no payment: these are a receipt's (``_receipt_getters``)
            "@variable_monto_pagado": lambda orders: "",
            "@variable_fecha_pago": lambda orders: "",
            "@variable_recibo": lambda orders: "",
            "@variable_link_pago": self._value_pay_link,
        }

    @api.depends_context("lang")
    def _compute_variables_help(self):
        text = "\n".join(f"{name}: {label}" for name, (label, _getter) in self._variables().items())
        for template in self:
            template.variables_help = text

    @api.constrains("body", "subject", "whatsapp_template_params")
    def _check_variables(self):
        known = self._variables()
        for template in self:
            used = (
                set(VARIABLE_RE.findall(template.body or ""))
                | set(VARIABLE_RE.findall(template.subject or ""))
                | set(template._whatsapp_template_variables())
            )
            unknown = sorted(used - set(known))
            if unknown:
                raise ValidationError(
                    self.env._(
                        "Unknown variable(s) in template %(template)s: %(unknown)s. Valid variables: %(valid)s.",
                        template=template.name,
                        unknown=", ".join(unknown),
                        valid=", ".join(known),
                    )
                )

    @api.constrains("auto_send", "days_from", "days_to", "open_end", "interval_days")
    def _check_rule(self):
        for template in self.filtered("auto_send"):
            if template.interval_days < 1:
                raise ValidationError(
                    self.env._("Template %s repeats every day at most: the interval is at least 1.", template.name)
                )
            if not template.open_end and template.days_to < template.days_from:
                raise ValidationError(
                    self.env._(
                        "In template %(template)s the window ends (day %(to)s) before it starts (day %(from)s).",
                        template=template.name,
                        to=template.days_to,
                        **{"from": template.days_from},
                    )
                )

    @api.constrains("is_default", "company_id", "active")
    def _check_single_default(self):
        for template in self.filtered(lambda t: t.is_default and t.active):
            others = self.search_count(
                [
                    ("id", "!=", template.id),
                    ("is_default", "=", True),
                    ("company_id", "=", template.company_id.id),
                ]
            )
            if others:
                raise ValidationError(
                    self.env._("Only one template can be the default one; %s already is.", template.name)
                )

    def _channels(self):
        self.ensure_one()
        return [
            channel
            for channel, enabled in (("email", self.channel_email), ("whatsapp", self.channel_whatsapp))
            if enabled
        ]

    @api.model
    def _get_default(self, company=None):
        company = company or self.env.company
        return self.search(
            [("is_default", "=", True), ("usage", "=", "reminder"), ("company_id", "in", [company.id, False])],
            order="company_id",
            limit=1,
        )

    @api.model
    def _get_receipt_template(self, company):
        """The payment receipt template of ``company`` (its own before a shared one)."""
        return self.search(
            [("usage", "=", "receipt"), ("company_id", "in", [company.id, False])],
            order="company_id, sequence, id",
            limit=1,
        )

    # ------------------------------------------------------------------ rendering

    def _render_text(self, text, orders, payment=None):
        """Replace the variables of ``text`` with the values of ``orders`` (one customer's); a receipt's
        with those of its ``payment``."""
        self.ensure_one()
        if not text:
            return ""
        partner = orders.partner_id[:1]
        lang = partner.lang or self.env.lang or "en_US"
        env_orders = orders.with_context(lang=lang)
        getters = self._variable_getters()
        if payment:
            getters.update(self._receipt_getters(payment.with_context(lang=lang)))
        cache = {}

        def replace(match):
            name = match.group(0)
            if name not in getters:
                return name
            if name not in cache:
                cache[name] = getters[name](env_orders)
            return cache[name]

        return VARIABLE_RE.sub(replace, text)

    def _render_body(self, orders, payment=None):
        text = self._render_text(self.body, orders, payment)
        if self.usage == "reminder" and self.pay_link and "@variable_link_pago" not in (self.body or ""):
            link = self._value_pay_link(orders)
            if link:
                label = self.with_context(lang=orders.partner_id[:1].lang or self.env.lang)._pay_link_label()
                text = f"{text}\n\n{label} {link}"
        return text

    def _whatsapp_template_variables(self):
        return [name.strip() for name in (self.whatsapp_template_params or "").split(",") if name.strip()]

    def _whatsapp_template_values(self, orders, payment=None):
        """The texts of the approved template's parameters for ``orders``, in order."""
        return [self._render_text(name, orders, payment) for name in self._whatsapp_template_variables()]

    def _pay_link_label(self):
        return self.env._("Pay online:")

    def _render_subject(self, orders, payment=None):
        return self._render_text(self.subject, orders, payment).replace("\n", " ").strip()

    @api.model
    def _text_to_html(self, text):
        """Escaped text with WhatsApp's ``*bold*`` as ``<b>`` and line breaks kept."""
        escaped = str(escape(text))
        bold = BOLD_RE.sub(r"<b>\1</b>", escaped)
        return Markup(bold.replace("\n", "<br/>\n"))

    # ------------------------------------------------------------------ variable values

    def _money(self, orders, amount):
        currency = orders.currency_id[:1] or self.env.company.currency_id
        return formatLang(orders.env, amount, currency_obj=currency)

    def _value_customer_name(self, orders):
        return orders.partner_id[:1].commercial_partner_id.name or ""

    def _value_plans(self, orders):
        # the lines' labels in the customer's language (``orders`` carry it), not as their creator wrote them
        return ", ".join(dict.fromkeys(orders.line_ids.mapped("label")))

    def _value_amount(self, orders):
        return self._money(orders, sum(orders.mapped("amount_total")))

    def _value_balance(self, orders):
        return self._money(orders, sum(orders.mapped("balance")))

    def _value_due_date(self, orders):
        dates = [date for date in orders.mapped("due_date") if date]
        return format_date(orders.env, min(dates), lang_code=orders.env.lang) if dates else ""

    def _value_concept(self, orders):
        concepts = [order.concept or ", ".join(order.line_ids.mapped("label")) for order in orders]
        return ", ".join(dict.fromkeys(concepts))

    def _value_references(self, orders):
        return ", ".join(orders.mapped("name"))

    def _value_days_overdue(self, orders):
        return str(max(orders.mapped("days_overdue") or [0]))

    def _value_company(self, orders):
        return (orders.company_id[:1] or self.env.company).name

    def _value_pay_link(self, orders):
        partner = orders.partner_id[:1].commercial_partner_id
        return partner.sudo()._collection_pay_url(orders.company_id[:1]) if partner else ""

    def _receipt_getters(self, payment):
        """The variables of a payment receipt: the payment's, and the balance it left."""
        return {
            "@variable_monto_pagado": lambda orders: self._money(orders, payment.amount),
            "@variable_fecha_pago": lambda orders: format_date(orders.env, payment.date, lang_code=orders.env.lang),
            "@variable_recibo": lambda orders: payment.name or "",
            "@variable_saldo": lambda orders: self._money(orders, payment.balance_after),
        }

    def _value_detail(self, orders):
        lines = []
        for order in orders.sorted("due_date"):
            concept = order.concept or ", ".join(order.line_ids.mapped("label"))
            due = format_date(orders.env, order.due_date, lang_code=orders.env.lang)
            lines.append(f"- {order.name} · {concept} · {due} · {self._money(order, order.balance)}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ dunning run

    @api.model
    def _cron_dunning_run(self):
        """Scheduled job: queue the messages of every automatic template (README, "Dunning rules")."""
        params = self.env["ir.config_parameter"].sudo()
        if not (
            params.get_param("payment_dunning.automatic_tasks")
            and params.get_param("payment_dunning.notifications_enabled")
        ):
            _logger.info("Automatic tasks or notifications are off: no dunning run")
            return 0
        return self.sudo()._dunning_run(commit=not collection.testing())

    @api.model
    def _dunning_run(self, commit=False, chunk_size=5000):
        """Queue today's messages of every active automatic template; return how many were queued.

        Which orders get a message is decided in SQL, one pass over the orders per template into a
        temporary table; the messages are then inserted from it a chunk of customers at a time,
        each chunk committed when ``commit``. Every message carries a key (template, day, channel,
        order or customer) that is unique in the queue, so a second run the same day, or a second
        worker at the same time, adds nothing.
        """
        templates = self.search([("auto_send", "=", True)])
        if not templates:
            return 0
        companies = self.env["res.company"].search([])  # pylint: disable=no-search-all
        today = collection.company_days(companies)
        self.env.flush_all()  # the SQL below reads orders, customers and the queue
        queued = 0
        for template in templates:
            partner_ids = template._collect_eligible(today)
            if commit:
                self.env.cr.commit()  # pylint: disable=invalid-commit
            for start in range(0, len(partner_ids), chunk_size):
                queued += template._queue_chunk(partner_ids[start : start + chunk_size], commit)
                if commit:
                    self.env.cr.commit()  # pylint: disable=invalid-commit
        self.env.cr.execute("DROP TABLE IF EXISTS payment_dunning_eligible")
        self.env["payment.order.notification"].invalidate_model()
        self.env["payment.order"].invalidate_model(["notification_ids"])
        _logger.info("Dunning run queued %d messages", queued)
        return queued

    def _collect_eligible(self, today):
        """Fill the session's temporary table with the orders this template messages today;
        return their customers."""
        self.env.cr.execute("DROP TABLE IF EXISTS payment_dunning_eligible")
        self.env.cr.execute(SQL("CREATE TEMP TABLE payment_dunning_eligible AS %s", self._eligible_sql(today)))
        self.env.cr.execute("CREATE INDEX ON payment_dunning_eligible (partner_id)")
        self.env.cr.execute("ANALYZE payment_dunning_eligible")
        self.env.cr.execute("SELECT DISTINCT partner_id FROM payment_dunning_eligible ORDER BY partner_id")
        return [row[0] for row in self.env.cr.fetchall()]

    def _queue_chunk(self, partner_ids, commit):
        # another worker may queue some of these messages after our snapshot began: a fresh
        # snapshot sees them, and their keys keep them out
        return collection.retry_serialization(self.env.cr, lambda: self._queue_dunning(partner_ids), retry=commit)

    def _eligible_sql(self, today):
        """Open orders, with a balance, of customers not excluded, whose day from the due date is in
        the window and that had no message of this template within the interval."""
        self.ensure_one()
        conditions = [
            collection.open_state_sql("o"),
            SQL("o.balance > 0"),
            SQL("NOT COALESCE(p.dunning_excluded, false)"),
            SQL("c.today - o.due_date >= %s", self.days_from),
            SQL(
                """NOT EXISTS (SELECT 1 FROM dunning_template_excluded_partner_rel x
                                WHERE x.template_id = %(template)s AND x.partner_id = o.partner_id)""",
                template=self.id,
            ),
            SQL(
                """NOT EXISTS (SELECT 1 FROM payment_order_notification_rel r
                                 JOIN payment_order_notification n ON n.id = r.notification_id
                                WHERE r.order_id = o.id AND n.template_id = %(template)s
                                  AND n.state != 'cancelled' AND n.run_date > c.today - %(interval)s)""",
                template=self.id,
                interval=self.interval_days,
            ),
            # a promise to pay pauses the reminders of its orders until its date (README, "Promises to pay")
            SQL(
                """NOT EXISTS (SELECT 1 FROM payment_order_promise_order_rel pr
                                 JOIN payment_order_promise pp ON pp.id = pr.promise_id
                                WHERE pr.order_id = o.id AND pp.state = 'open' AND pp.promised_date >= c.today)"""
            ),
        ]
        if not self.open_end:
            conditions.append(SQL("c.today - o.due_date <= %s", self.days_to))
        if self.company_id:
            conditions.append(SQL("o.company_id = %s", self.company_id.id))
        return SQL(
            """
            SELECT o.id AS order_id, o.partner_id, o.company_id, c.today,
                   COALESCE(NULLIF(p.collection_email, ''), NULLIF(p.email, '')) IS NOT NULL AS has_email,
                   COALESCE(p.collection_whatsapp, '') != '' AS has_whatsapp
              FROM payment_order o
              JOIN (VALUES %s) AS c(company_id, today) ON c.company_id = o.company_id
              JOIN res_partner p ON p.id = o.partner_id
             WHERE %s
            """,
            collection.company_days_values(today),
            SQL(" AND ").join(conditions),
        )

    def _queue_dunning(self, partner_ids):
        """Queue this template's messages for the eligible orders of ``partner_ids``; return the count."""
        self.ensure_one()
        now = SQL("(now() AT TIME ZONE 'UTC')")
        self.env.cr.execute(
            SQL(
                """
            WITH %(allowed)s,
            inserted AS (
                INSERT INTO payment_order_notification
                       (partner_id, company_id, template_id, channel, state, attempts, run_date, dedupe_key,
                        recipient, fixed_recipient, create_uid, create_date, write_uid, write_date)
                SELECT %(distinct)s partner_id, company_id, %(template)s, channel, 'queued', 0,
                       today, dedupe_key, fixed_recipient, fixed_recipient, %(uid)s, %(now)s, %(uid)s, %(now)s
                  FROM allowed
                    ON CONFLICT (dedupe_key) DO NOTHING
                RETURNING id, dedupe_key
            ),
            linked AS (
                INSERT INTO payment_order_notification_rel (notification_id, order_id)
                SELECT i.id, k.order_id FROM inserted i JOIN allowed k ON k.dedupe_key = i.dedupe_key
            )
            SELECT count(*) FROM inserted
                """,
                allowed=self._allowed_messages_sql(partner_ids),
                template=self.id,
                uid=self.env.uid,
                now=now,
                # a digest is one message for several orders; per order, the keys are unique already
                distinct=SQL("DISTINCT ON (dedupe_key)") if self.send_mode == "customer" else SQL(""),
            )
        )
        return self.env.cr.fetchone()[0]

    def _allowed_messages_sql(self, partner_ids=None):
        """The CTEs ``keyed`` (every message of the eligible orders, with its key) and ``allowed``
        (those not queued yet that stay within each customer's weekly cap per channel, README "Opt-out
        and caps"), read from the session's eligible table."""
        self.ensure_one()
        # one message per order, or per customer (and company) for a digest
        recipient = (
            SQL("'o' || e.order_id") if self.send_mode == "order" else SQL("'p' || e.partner_id || '-' || e.company_id")
        )
        return SQL(
            """
            keyed AS (
                SELECT e.*, ch.channel, cp.value AS fixed_recipient, message_key,
                       message_key || COALESCE(':' || cp.value, '') AS dedupe_key
                  FROM payment_dunning_eligible e
                  JOIN (VALUES %(channels)s) AS ch(channel)
                    ON (ch.channel = 'email' AND e.has_email) OR (ch.channel = 'whatsapp' AND e.has_whatsapp)
                 CROSS JOIN LATERAL (SELECT 'dunning:' || %(template)s || ':' || e.today || ':' || ch.channel
                                            || ':' || %(recipient)s AS message_key) mk
                  -- with the contact mode "all", one message per contact of the channel
                  LEFT JOIN res_partner_collection_contact cp
                    ON %(all_contacts)s AND cp.partner_id = e.partner_id
                   AND cp.kind = CASE ch.channel WHEN 'email' THEN 'email' ELSE 'mobile' END
                 WHERE %(partners)s
            )%(capped)s
            """,
            channels=SQL(", ").join(SQL("(%s)", channel) for channel in self._channels()),
            template=self.id,
            recipient=recipient,
            all_contacts=self._all_contacts(),
            partners=SQL("e.partner_id = ANY(%s)", partner_ids) if partner_ids is not None else SQL("TRUE"),
            capped=self._capped_messages_sql(partner_ids),
        )

    @api.model
    def _capped_messages_sql(self, partner_ids):
        """The CTEs ``ranked`` (the messages of ``keyed`` not queued yet, numbered per customer and
        channel) and ``allowed`` (those within the weekly cap, counting the week's automatic messages)."""
        cap = self.env["payment.order.notification"]._weekly_cap()
        if not cap:
            # no cap: the queue's unique key alone keeps a message from being queued twice
            return SQL(
                """,
                ranked AS (SELECT k.*, 0 AS slot FROM keyed k),
                allowed AS (SELECT * FROM ranked)"""
            )
        return SQL(
            """,
            ranked AS (
                SELECT k.*, dense_rank() OVER (PARTITION BY k.partner_id, k.channel ORDER BY k.message_key) AS slot
                  FROM keyed k
                 WHERE NOT EXISTS (SELECT 1 FROM payment_order_notification q WHERE q.dedupe_key = k.dedupe_key)
            ),
            used AS (
                SELECT n.partner_id, n.channel, count(DISTINCT %(message)s) AS used
                  FROM payment_order_notification n
                 WHERE %(used_partners)s AND n.dedupe_key LIKE %(automatic)s
                   AND n.state IN ('queued', 'sending', 'sent')
                   AND COALESCE(n.sent_at, n.create_date) > %(since)s
                 GROUP BY n.partner_id, n.channel
            ),
            allowed AS (
                SELECT r.* FROM ranked r LEFT JOIN used u ON u.partner_id = r.partner_id AND u.channel = r.channel
                 WHERE COALESCE(u.used, 0) + r.slot <= %(cap)s
            )""",
            # the customers' own rows through their index (a join with a CTE could be planned as a
            # loop over it per message line)
            used_partners=SQL("n.partner_id = ANY(%s)", partner_ids)
            if partner_ids is not None
            else SQL("n.partner_id IN (SELECT partner_id FROM payment_dunning_eligible)"),
            message=collection.automatic_message_key(SQL("n.dedupe_key")),
            automatic="dunning:%",
            since=fields.Datetime.now() - timedelta(days=7),
            cap=cap,
        )

    def _all_contacts(self):
        """Whether reminders go to every contact of the customer (Settings), not only the first."""
        mode = self.env["ir.config_parameter"].sudo().get_param("payment_dunning.contact_mode")
        return mode == "all"

    def action_preview_run(self):
        """The orders this template would message today, without queueing anything; the title says
        how many messages the customers' weekly cap holds back."""
        self.ensure_one()
        today = collection.company_days(self.env.companies)
        self.env.flush_all()
        self._collect_eligible(today)
        self.env.cr.execute(
            SQL(
                """WITH %s
                   SELECT array_agg(DISTINCT a.order_id) FILTER (WHERE a.order_id IS NOT NULL),
                          (SELECT count(DISTINCT message_key) FROM ranked)
                          - (SELECT count(DISTINCT message_key) FROM allowed)
                     FROM allowed a""",
                self._allowed_messages_sql(),
            )
        )
        order_ids, held = self.env.cr.fetchone()
        self.env.cr.execute("DROP TABLE IF EXISTS payment_dunning_eligible")
        action = self.env["ir.actions.act_window"]._for_xml_id("payment_dunning.action_payment_order")
        name = self.env._("Today's run of %s", self.name)
        if held:
            name = self.env._("%(name)s (%(held)s held by the weekly cap)", name=name, held=held)
        action.update(
            {
                "name": name,
                "display_name": name,
                "domain": [("id", "in", order_ids or [])],
                "context": {"create": False, "search_default_group_partner": self.send_mode == "customer"},
            }
        )
        return action
