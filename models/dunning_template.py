import re

from markupsafe import Markup, escape

from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import format_date, formatLang

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

    _sql_constraints = [
        (
            "channel_required",
            "CHECK(channel_email OR channel_whatsapp)",
            "A template sends by email, by WhatsApp or both: choose at least one channel.",
        ),
    ]

    # ------------------------------------------------------------------ variables

    def _variables(self):
        """Variable name -> (description, value for the orders of one customer)."""
        return {
            "@variable_nombre": (self.env._("Customer name"), self._value_customer_name),
            "@variable_plan": (self.env._("Plans or services billed"), self._value_plans),
            "@variable_precios": (self.env._("Amount of the order(s)"), self._value_amount),
            "@variable_fecha_vencimiento": (self.env._("Due date"), self._value_due_date),
            "@variable_concepto": (self.env._("Concept of the order(s)"), self._value_concept),
            "@variable_orden": (self.env._("Order reference(s)"), self._value_references),
            "@variable_saldo": (self.env._("Outstanding balance"), self._value_balance),
            "@variable_dias_vencido": (self.env._("Days past the due date"), self._value_days_overdue),
            "@variable_empresa": (self.env._("Your company's name"), self._value_company),
            "@variable_detalle": (
                self.env._("One line per order: reference, concept, due date, balance"),
                self._value_detail,
            ),
        }

    @api.depends_context("lang")
    def _compute_variables_help(self):
        text = "\n".join(f"{name}: {label}" for name, (label, _getter) in self._variables().items())
        for template in self:
            template.variables_help = text

    @api.constrains("body", "subject")
    def _check_variables(self):
        known = self._variables()
        for template in self:
            used = set(VARIABLE_RE.findall(template.body or "")) | set(VARIABLE_RE.findall(template.subject or ""))
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
            [("is_default", "=", True), ("company_id", "in", [company.id, False])],
            order="company_id",
            limit=1,
        )

    # ------------------------------------------------------------------ rendering

    def _render_text(self, text, orders):
        """Replace the variables of ``text`` with the values of ``orders`` (one customer's)."""
        self.ensure_one()
        if not text:
            return ""
        partner = orders.partner_id[:1]
        lang = partner.lang or self.env.lang or "en_US"
        env_orders = orders.with_context(lang=lang)
        getters = self._variables()
        cache = {}

        def replace(match):
            name = match.group(0)
            if name not in getters:
                return name
            if name not in cache:
                cache[name] = getters[name][1](env_orders)
            return cache[name]

        return VARIABLE_RE.sub(replace, text)

    def _render_body(self, orders):
        return self._render_text(self.body, orders)

    def _render_subject(self, orders):
        return self._render_text(self.subject, orders).replace("\n", " ").strip()

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
        return ", ".join(dict.fromkeys(orders.line_ids.mapped("name")))

    def _value_amount(self, orders):
        return self._money(orders, sum(orders.mapped("amount_total")))

    def _value_balance(self, orders):
        return self._money(orders, sum(orders.mapped("balance")))

    def _value_due_date(self, orders):
        dates = [date for date in orders.mapped("due_date") if date]
        return format_date(orders.env, min(dates), lang_code=orders.env.lang) if dates else ""

    def _value_concept(self, orders):
        concepts = [order.concept or ", ".join(order.line_ids.mapped("name")) for order in orders]
        return ", ".join(dict.fromkeys(concepts))

    def _value_references(self, orders):
        return ", ".join(orders.mapped("name"))

    def _value_days_overdue(self, orders):
        return str(max(orders.mapped("days_overdue") or [0]))

    def _value_company(self, orders):
        return (orders.company_id[:1] or self.env.company).name

    def _value_detail(self, orders):
        lines = []
        for order in orders.sorted("due_date"):
            concept = order.concept or ", ".join(order.line_ids.mapped("name"))
            due = format_date(orders.env, order.due_date, lang_code=orders.env.lang)
            lines.append(f"- {order.name} · {concept} · {due} · {self._money(order, order.balance)}")
        return "\n".join(lines)
