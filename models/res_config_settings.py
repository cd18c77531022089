from datetime import datetime, time, timedelta

import pytz

from odoo import api, fields, models
from odoo.exceptions import ValidationError

GENERATION_CRON = "payment_dunning.cron_service_plan_generate_orders"
INVOICE_CRON = "payment_dunning.cron_payment_order_from_invoices"
AUTOMATIC_CRONS = (
    GENERATION_CRON,
    "payment_dunning.cron_payment_order_mark_overdue",
    "payment_dunning.cron_dunning_run",
    "payment_dunning.cron_payment_order_send_queue",
)


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    dunning_automatic_tasks = fields.Boolean(
        string="Automatic Tasks",
        config_parameter="payment_dunning.automatic_tasks",
        help="Runs the scheduled jobs of Collections: overdue marking and the sending of queued reminders.",
    )
    dunning_days_before_due = fields.Integer(
        string="Days Before Due Date",
        config_parameter="payment_dunning.days_before_due",
        default=3,
        help="How many days before the due date the orders of service plans are generated.",
    )
    dunning_generation_hour = fields.Float(
        string="Generation Hour",
        config_parameter="payment_dunning.generation_hour",
        default=9.0,
        help="Hour of the day (company time) at which orders are generated.",
    )
    dunning_notifications = fields.Boolean(
        string="Automatic Notifications",
        config_parameter="payment_dunning.notifications_enabled",
        help="Generated orders and dunning rules send reminders automatically.",
    )
    dunning_invoice_orders = fields.Boolean(
        string="Payment Orders from Invoices",
        config_parameter="payment_dunning.invoice_orders",
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
        config_parameter="payment_dunning.connector_id",
        help="Empty: the first active gateway of the company.",
    )
    dunning_mail_server_id = fields.Many2one(
        "ir.mail_server",
        string="Collections Mail Server",
        config_parameter="payment_dunning.mail_server_id",
        help="Outgoing mail server of the reminders; empty uses Odoo's default.",
    )
    dunning_batch_size = fields.Integer(
        string="Batch Size",
        config_parameter="payment_dunning.batch_size",
        default=200,
        help="Records handled per committed batch by the scheduled jobs.",
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

    @api.constrains("dunning_generation_hour", "dunning_days_before_due")
    def _check_generation_schedule(self):
        for settings in self:
            if not 0 <= settings.dunning_generation_hour < 24:
                raise ValidationError(self.env._("The generation hour must be between 00:00 and 23:59."))
            if settings.dunning_days_before_due < 0:
                raise ValidationError(self.env._("The days before the due date cannot be negative."))

    def set_values(self):
        params = self.env["ir.config_parameter"].sudo()
        old_hour = float(params.get_param("payment_dunning.generation_hour", 9.0) or 0.0)
        was_on = bool(params.get_param("payment_dunning.automatic_tasks"))
        result = super().set_values()
        for xmlid in AUTOMATIC_CRONS:
            cron = self.env.ref(xmlid, raise_if_not_found=False)
            if cron and cron.active != self.dunning_automatic_tasks:
                cron.sudo().active = self.dunning_automatic_tasks
        invoice_cron = self.env.ref(INVOICE_CRON, raise_if_not_found=False)
        if invoice_cron:
            invoice_cron.sudo().active = self.dunning_automatic_tasks and self.dunning_invoice_orders
        if self.dunning_automatic_tasks and (not was_on or old_hour != self.dunning_generation_hour):
            self._reschedule_generation()
        return result

    def _reschedule_generation(self):
        """Next run of the generation job at the configured hour of the company's day."""
        cron = self.env.ref(GENERATION_CRON, raise_if_not_found=False)
        if cron:
            cron.sudo().nextcall = self._next_generation_time(fields.Datetime.now())

    def _next_generation_time(self, now):
        """The first moment after ``now`` (naive UTC) at the generation hour in the company's timezone."""
        tz = pytz.timezone(self.company_id.partner_id.tz or "UTC")
        hours, minutes = divmod(min(round(self.dunning_generation_hour * 60), 24 * 60 - 1), 60)
        local_now = pytz.utc.localize(now).astimezone(tz)
        run_date = local_now.date()
        while True:
            local_run = tz.localize(datetime.combine(run_date, time(hours, minutes)))
            if local_run > local_now:
                return local_run.astimezone(pytz.utc).replace(tzinfo=None)
            run_date += timedelta(days=1)
