from odoo import api, fields, models
from odoo.addons.base.models.res_partner import _tz_get
from odoo.exceptions import AccessError, ValidationError

from ..tools import collection
from ..tools.http_deadline import Allowlist, AllowlistError
from .qrapi_connector import ALLOWLIST_PARAM
from .res_company import WEEKDAY_FIELDS, check_sending_window

GENERATION_CRON = "payment_dunning.cron_service_plan_generate_orders"
DUNNING_RUN_CRON = "payment_dunning.cron_dunning_run"
INVOICE_CRON = "payment_dunning.cron_payment_order_from_invoices"
AUTOMATIC_CRONS = (
    GENERATION_CRON,
    "payment_dunning.cron_payment_order_mark_overdue",
    "payment_dunning.cron_dunning_run",
    "payment_dunning.cron_payment_order_send_queue",
    "payment_dunning.cron_payment_order_promise_check",
    "payment_dunning.cron_payment_order_late_fees",
)
MANAGER_GROUP = "payment_dunning.group_payment_dunning_manager"

# The module's own settings, which Collections Managers may change: field -> ir.config_parameter key.
# The field's default is the parameter's default. Administrators edit them in Settings
# (res.config.settings), managers in Collections > Configuration > Collections Settings
# (payment.dunning.settings); both read and store them here. The security-sensitive settings (the
# outbound allowlist, the mail server) are not among them: they stay in Settings, for administrators.
DUNNING_PARAMS = {
    "dunning_automatic_tasks": "payment_dunning.automatic_tasks",
    "dunning_days_before_due": "payment_dunning.days_before_due",
    "dunning_generation_hour": "payment_dunning.generation_hour",
    "dunning_notifications": "payment_dunning.notifications_enabled",
    "dunning_invoice_orders": "payment_dunning.invoice_orders",
    "dunning_connector_id": "payment_dunning.connector_id",
    "dunning_batch_size": "payment_dunning.batch_size",
    "dunning_run_hour": "payment_dunning.run_hour",
    "dunning_contact_mode": "payment_dunning.contact_mode",
    "dunning_weekly_cap": "payment_dunning.weekly_cap",
    "dunning_opt_out_keywords": "payment_dunning.opt_out_keywords",
}
# The settings of each company (its collections timezone and sending window): field -> res.company field.
DUNNING_COMPANY_FIELDS = {
    "dunning_collection_tz": "collection_tz",
    "dunning_window_start": "dunning_window_start",
    "dunning_window_end": "dunning_window_end",
    **{name: name for name in WEEKDAY_FIELDS},
    "dunning_receipt_notify": "payment_receipt_notify",
    "dunning_late_fee_active": "late_fee_active",
    "dunning_late_fee_grace_days": "late_fee_grace_days",
    "dunning_late_fee_fixed": "late_fee_fixed",
    "dunning_late_fee_monthly_rate": "late_fee_monthly_rate",
    "dunning_late_fee_cap_percent": "late_fee_cap_percent",
}
LATE_FEE_TERMS = {
    "dunning_late_fee_grace_days": "grace_days",
    "dunning_late_fee_fixed": "fixed",
    "dunning_late_fee_monthly_rate": "monthly_rate",
    "dunning_late_fee_cap_percent": "cap_percent",
}


class PaymentDunningSettingsMixin(models.AbstractModel):
    """The Collections settings a manager may change, shared by Settings and the managers' wizard.

    A model using it calls ``_dunning_get_params`` to load the values and ``_dunning_set_params`` to
    store them (after checking who may).
    """

    _name = "payment.dunning.settings.mixin"
    _description = "Collections Settings (shared)"

    # as res.config.settings's own (whose definition wins there)
    company_id = fields.Many2one("res.company", string="Company", required=True, default=lambda self: self.env.company)

    dunning_automatic_tasks = fields.Boolean(
        string="Automatic Tasks",
        help="Runs the scheduled jobs of Collections: overdue marking and the sending of queued reminders.",
    )
    dunning_days_before_due = fields.Integer(
        string="Days Before Due Date",
        default=3,
        help="How many days before the due date the orders of service plans are generated.",
    )
    dunning_generation_hour = fields.Float(
        string="Generation Hour",
        default=9.0,
        help="Hour of the day (collections timezone) at which orders are generated.",
    )
    dunning_run_hour = fields.Float(
        default=8.0,
        help="Hour of the day (collections timezone) at which the dunning rules queue their reminders.",
    )
    dunning_contact_mode = fields.Selection(
        [("first", "First contact only"), ("all", "All contacts")],
        string="Reminder Recipients",
        default="first",
        help="Whom of a customer's collection contacts each reminder goes to.",
    )
    # the company's (res.company), loaded and saved with the others
    dunning_collection_tz = fields.Selection(
        _tz_get,
        string="Collections Timezone",
        help="The company's day and hours for Collections: when an order is overdue, the hours of the daily "
        "jobs and the sending window.",
    )
    dunning_window_start = fields.Float(
        string="Send From",
        default=8.0,
        help="Automatic reminders go out from this hour to the end hour, on the chosen weekdays except "
        "holidays (collections timezone); outside, they wait in the queue. Notify and Retry send at once, "
        "whatever the hour.",
    )
    dunning_window_end = fields.Float(string="Send Until", default=20.0)
    dunning_send_mon = fields.Boolean(string="Monday", default=True)
    dunning_send_tue = fields.Boolean(string="Tuesday", default=True)
    dunning_send_wed = fields.Boolean(string="Wednesday", default=True)
    dunning_send_thu = fields.Boolean(string="Thursday", default=True)
    dunning_send_fri = fields.Boolean(string="Friday", default=True)
    dunning_send_sat = fields.Boolean(string="Saturday", default=True)
    dunning_send_sun = fields.Boolean(string="Sunday", default=False)
    dunning_receipt_notify = fields.Boolean(
        string="Send Payment Receipts",
        default=True,
        help="Each registered payment sends the customer its receipt (Constancia de pago) by their channels.",
    )
    dunning_late_fee_active = fields.Boolean(
        string="Late Fees and Interest",
        help="Every day, overdue orders past the grace period get the late fee and the interest, in their "
        "Charges and Interest.",
    )
    dunning_late_fee_grace_days = fields.Integer(string="Grace Period (days)", default=5)
    dunning_late_fee_fixed = fields.Float(string="Fixed Late Fee", digits="Account")
    dunning_late_fee_monthly_rate = fields.Float(string="Monthly Interest (%)", digits=(5, 2))
    dunning_late_fee_cap_percent = fields.Float(string="Cap (% of the amount)", digits=(5, 2), default=10.0)
    dunning_notifications = fields.Boolean(
        string="Automatic Notifications",
        help="Generated orders and dunning rules send reminders automatically.",
    )
    dunning_invoice_orders = fields.Boolean(
        string="Payment Orders from Invoices",
        help="Every day, a payment order for each posted, unpaid customer invoice that has none. "
        "The order's balance follows the invoice's payments.",
    )
    dunning_template_body = fields.Text(
        string="Message Template",
        compute="_compute_dunning_template_body",
        inverse="_inverse_dunning_template_body",
        readonly=False,
        help="The reminder text used for every customer, with its variables.",
    )
    dunning_connector_id = fields.Many2one(
        "qrapi.connector",
        string="WhatsApp Gateway",
        help="Empty: the first active gateway of the company.",
    )
    dunning_batch_size = fields.Integer(
        string="Batch Size",
        default=200,
        help="Records handled per committed batch by the scheduled jobs.",
    )
    dunning_weekly_cap = fields.Integer(
        string="Automatic Messages per Week",
        default=3,
        help="At most this many automatic reminders per customer and channel in 7 days; the dunning run queues "
        "no more and the send queue holds the rest. 0 for no cap. Notify, receipts and replies are not counted.",
    )
    dunning_opt_out_keywords = fields.Char(
        string="Opt-out Keywords",
        default="BAJA, STOP, NO MOLESTAR",
        help="A customer whose WhatsApp message is one of these (comma-separated; case, accents and punctuation "
        "aside) is excluded from automatic reminders. Empty: the default list.",
    )

    @api.depends("company_id")
    def _compute_dunning_template_body(self):
        for settings in self:
            template = self.env["dunning.template"]._get_default(settings.company_id)
            settings.dunning_template_body = template.body

    def _inverse_dunning_template_body(self):
        for settings in self:
            template = self.env["dunning.template"]._get_default(settings.company_id)
            if template and settings.dunning_template_body and template.body != settings.dunning_template_body:
                template.body = settings.dunning_template_body

    @api.constrains("dunning_generation_hour", "dunning_days_before_due", "dunning_run_hour", "dunning_weekly_cap")
    def _check_generation_schedule(self):
        for settings in self:
            if not 0 <= settings.dunning_generation_hour < 24:
                raise ValidationError(self.env._("The generation hour must be between 00:00 and 23:59."))
            if not 0 <= settings.dunning_run_hour < 24:
                raise ValidationError(self.env._("The dunning run hour must be between 00:00 and 23:59."))
            if settings.dunning_days_before_due < 0:
                raise ValidationError(self.env._("The days before the due date cannot be negative."))
            if settings.dunning_weekly_cap < 0:
                raise ValidationError(self.env._("The automatic messages per week cannot be negative."))

    @api.constrains("dunning_window_start", "dunning_window_end", *WEEKDAY_FIELDS)
    def _check_sending_window(self):
        for settings in self:
            check_sending_window(
                self.env,
                settings.dunning_window_start,
                settings.dunning_window_end,
                [settings[name] for name in WEEKDAY_FIELDS],
            )

    # ------------------------------------------------------------------ parameters

    def _dunning_get_params(self):
        """The stored settings ({field: value}), the field's default for those never stored."""
        params = self.env["ir.config_parameter"].sudo()
        values = {}
        for name, key in DUNNING_PARAMS.items():
            field = self._fields[name]
            default = field.default(self) if field.default else False
            raw = params.get_param(key)
            value = default
            if raw not in (None, False, ""):
                try:
                    if field.type == "boolean":
                        value = bool(raw)
                    elif field.type == "integer":
                        value = int(raw)
                    elif field.type == "float":
                        value = float(raw)
                    elif field.type == "many2one":
                        # a deleted record does not block the screen
                        value = self.env[field.comodel_name].browse(int(raw)).exists().id
                    elif field.type == "selection":
                        value = raw if raw in dict(field._description_selection(self.env)) else default
                except (TypeError, ValueError):
                    value = default
            values[name] = value
        return values

    def _dunning_get_company_values(self, company):
        """The settings of ``company`` ({field: value}): its collections timezone and sending window."""
        company = company.sudo()
        return {name: company[company_field] for name, company_field in DUNNING_COMPANY_FIELDS.items()}

    def _dunning_set_company_values(self):
        """Store the company's settings (as superuser: the caller checked who may); the changed ones only."""
        if not self.env.su and self.company_id not in self.env.user.company_ids:
            raise AccessError(self.env._("You can only change the Collections settings of your own companies."))
        company = self.company_id.sudo()
        changes = {
            company_field: self[name]
            for name, company_field in DUNNING_COMPANY_FIELDS.items()
            if self[name] != company[company_field]
        }
        if changes:
            company.write(changes)
        return changes

    def _dunning_param_text(self, name):
        """What ``ir.config_parameter`` stores for a field; None removes the parameter.

        Unlike Odoo's settings, a zero is stored: 0 days before the due date or a generation at
        00:00 are settings, not "back to the default".
        """
        field, value = self._fields[name], self[name]
        if field.type == "boolean":
            return "True" if value else None
        if field.type in ("integer", "float"):
            return repr(value)
        if field.type == "many2one":
            return str(value.id) if value else None
        return value or None

    def _dunning_set_params(self):
        """Store the settings as superuser (the caller checked who may) and switch the jobs to match."""
        self.ensure_one()
        params = self.env["ir.config_parameter"].sudo()
        was_on = bool(params.get_param("payment_dunning.automatic_tasks"))
        old = self._dunning_get_params()
        for name, key in DUNNING_PARAMS.items():
            text = self._dunning_param_text(name)
            if (params.get_param(key) or None) != text:
                params.set_param(key, text if text is not None else False)
        tz_changed = "collection_tz" in self._dunning_set_company_values()
        # the jobs are switched as superuser too: managers cannot read ir.cron
        for xmlid in AUTOMATIC_CRONS:
            cron = self.sudo().env.ref(xmlid, raise_if_not_found=False)
            if cron and cron.active != self.dunning_automatic_tasks:
                cron.active = self.dunning_automatic_tasks
        invoice_cron = self.sudo().env.ref(INVOICE_CRON, raise_if_not_found=False)
        if invoice_cron:
            invoice_cron.active = self.dunning_automatic_tasks and self.dunning_invoice_orders
        if self.dunning_automatic_tasks:
            moved = not was_on or tz_changed
            if moved or old["dunning_generation_hour"] != self.dunning_generation_hour:
                self._reschedule_generation()
            if moved or old["dunning_run_hour"] != self.dunning_run_hour:
                self._reschedule_dunning_run()

    def _late_fee_terms(self):
        """The late-fee terms as typed on this screen (saved or not): {term: value}."""
        self.ensure_one()
        return {term: self[name] for name, term in LATE_FEE_TERMS.items()}

    def action_preview_late_fees(self):
        """What the late fees would add today with the terms on the screen, before turning them on."""
        self.ensure_one()
        self._check_dunning_manager()
        return self.env["payment.order.late.fee.preview"]._open_for(self.company_id, self._late_fee_terms())

    def _reschedule_generation(self):
        """Next run of the generation job at the configured hour of the company's day."""
        self._reschedule(GENERATION_CRON, self.dunning_generation_hour)

    def _reschedule_dunning_run(self):
        """Next dunning run at the configured hour of the company's day."""
        self._reschedule(DUNNING_RUN_CRON, self.dunning_run_hour)

    def _reschedule(self, xmlid, hour):
        cron = self.sudo().env.ref(xmlid, raise_if_not_found=False)
        if cron:
            cron.nextcall = self._next_time_at(hour, fields.Datetime.now())

    def _next_generation_time(self, now):
        """The first moment after ``now`` (naive UTC) at the generation hour in the collections timezone."""
        return self._next_time_at(self.dunning_generation_hour, now)

    def _next_time_at(self, hour, now):
        """The first moment after ``now`` (naive UTC) at ``hour`` of the company's day (its collections
        timezone, as saved with these settings)."""
        return collection.next_local_time(self.company_id, min(hour, 24 - 1 / 60), now)

    def _check_dunning_manager(self):
        if not (self.env.su or self.env.user.has_group(MANAGER_GROUP)):
            raise AccessError(self.env._("Only Collections managers can change the Collections settings."))


# Settings, with the shared fields of the mixin (a list _inherit, which pylint-odoo mistakes for a wizard)
class ResConfigSettings(models.TransientModel):  # pylint: disable=no-wizard-in-models
    _name = "res.config.settings"
    _inherit = ["res.config.settings", "payment.dunning.settings.mixin"]

    dunning_mail_server_id = fields.Many2one(
        "ir.mail_server",
        string="Collections Mail Server",
        config_parameter="payment_dunning.mail_server_id",
        help="Outgoing mail server of the reminders; empty uses Odoo's default.",
    )
    dunning_outbound_allowlist = fields.Char(
        string="Outbound Allowlist",
        config_parameter=ALLOWLIST_PARAM,
        groups="base.group_system",
        help="Hosts and networks that WhatsApp gateways may be reached at although they are not on the public "
        "internet (a gateway on your own network): host names, IP addresses or networks such as "
        "192.168.1.0/24, separated by commas. Plain http is allowed only to the hosts listed here.",
    )

    def get_values(self):
        values = super().get_values()
        values.update(self._dunning_get_params())
        values.update(self._dunning_get_company_values(self.env.company))
        return values

    def set_values(self):
        result = super().set_values()
        self._dunning_set_params()
        return result

    @api.constrains("dunning_outbound_allowlist")
    def _check_outbound_allowlist(self):
        for settings in self:
            parse_outbound_allowlist(self.env, settings.dunning_outbound_allowlist)


def parse_outbound_allowlist(env, text):
    """The ``Allowlist`` written in ``text``; a ``ValidationError`` naming the first invalid entry."""
    try:
        return Allowlist.parse(text or "")
    except AllowlistError as error:
        if error.problem == "host_bits":
            message = env._(
                "The outbound allowlist entry %(entry)s is an address, not a network: write the network as "
                "%(network)s.",
                entry=error.entry,
                network=error.suggestion,
            )
        elif error.problem == "too_wide":
            message = env._(
                "The outbound allowlist entry %s is too wide a network: networks wider than /8 (IPv4) or /7 "
                "(IPv6) would let requests go anywhere.",
                error.entry,
            )
        else:
            message = env._(
                "The outbound allowlist entry %s is not a host name, an IP address or a network such as "
                "192.168.1.0/24 (write it without scheme, port or path).",
                error.entry,
            )
        raise ValidationError(message) from error
