from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..tools.collection import OPEN_STATES

# a customer reminded this recently is not reminded again without saying so (README: "avoid spam")
RECENT_NOTIFICATION = timedelta(hours=1)


class PaymentOrderNotify(models.TransientModel):
    """The reminder composer, like Odoo's Send: the template rendered for the orders, editable for
    one customer, sent now by the chosen channels."""

    _name = "payment.order.notify"
    _description = "Notify Payment Orders"

    order_ids = fields.Many2many(
        "payment.order",
        "payment_order_notify_order_rel",
        "wizard_id",
        "order_id",
        string="Payment Orders",
        required=True,
    )
    company_id = fields.Many2one("res.company", compute="_compute_company_id")
    partner_count = fields.Integer(string="Customers", compute="_compute_partner_count")
    template_id = fields.Many2one(
        "dunning.template",
        string="Template",
        compute="_compute_template_id",
        store=True,
        readonly=False,
        domain="[('company_id', 'in', [company_id, False]), ('usage', '=', 'reminder')]",
    )
    # one compute each: a channel given on create must not keep the other from its template default
    channel_email = fields.Boolean(string="Email", compute="_compute_channel_email", store=True, readonly=False)
    channel_whatsapp = fields.Boolean(
        string="WhatsApp", compute="_compute_channel_whatsapp", store=True, readonly=False
    )
    subject = fields.Char(compute="_compute_subject", store=True, readonly=False)
    body = fields.Text(compute="_compute_body", store=True, readonly=False)
    recent_warning = fields.Text(compute="_compute_recent_warning")
    send_again = fields.Boolean(
        string="Send again anyway",
        help="Some of these orders were notified less than an hour ago: tick to remind them again.",
    )

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        context = self.env.context
        # the row and bulk actions of the orders list pass the orders as active_ids
        if (
            "order_ids" in fields_list
            and not values.get("order_ids")
            and context.get("active_model") == "payment.order"
        ):
            values["order_ids"] = [fields.Command.set(context.get("active_ids") or [])]
        return values

    @api.depends("order_ids")
    def _compute_company_id(self):
        for wizard in self:
            wizard.company_id = wizard.order_ids.company_id[:1] or self.env.company

    @api.depends("order_ids")
    def _compute_partner_count(self):
        for wizard in self:
            wizard.partner_count = len(wizard.order_ids.partner_id)

    @api.depends("order_ids")
    def _compute_template_id(self):
        for wizard in self:
            if not wizard.template_id:
                wizard.template_id = self.env["dunning.template"]._get_default(wizard.company_id)

    @api.depends("template_id")
    def _compute_channel_email(self):
        for wizard in self:
            wizard.channel_email = wizard.template_id.channel_email

    @api.depends("template_id")
    def _compute_channel_whatsapp(self):
        for wizard in self:
            wizard.channel_whatsapp = wizard.template_id.channel_whatsapp

    # The template as the customer receives it. For several customers, the first one's: each
    # customer gets it rendered for their own orders.
    @api.depends("template_id", "order_ids")
    def _compute_subject(self):
        for wizard in self:
            orders = wizard._first_customer_orders()
            wizard.subject = wizard.template_id._render_subject(orders) if wizard.template_id and orders else False

    @api.depends("template_id", "order_ids")
    def _compute_body(self):
        for wizard in self:
            orders = wizard._first_customer_orders()
            wizard.body = wizard.template_id._render_body(orders) if wizard.template_id and orders else False

    @api.depends("order_ids")
    def _compute_recent_warning(self):
        since = fields.Datetime.now() - RECENT_NOTIFICATION
        for wizard in self:
            recent = wizard._recently_notified(since)
            wizard.recent_warning = (
                self.env._(
                    "Notified less than an hour ago: %s. Sending again so soon may be taken for spam.",
                    ", ".join(recent.mapped("name")),
                )
                if recent
                else False
            )

    def _first_customer_orders(self):
        partner = self.order_ids.partner_id[:1]
        return self.order_ids.filtered(lambda order: order.partner_id == partner)

    def _recently_notified(self, since):
        return self.order_ids.filtered(
            lambda order: order.last_notification_date and order.last_notification_date >= since
        )

    # ------------------------------------------------------------------ opening

    @api.model
    def _composer_action(self, orders):
        """The composer, opened in a dialog on ``orders``."""
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Notify"),
            "res_model": self._name,
            "view_mode": "form",
            "views": [(self.env.ref("payment_dunning.view_payment_order_notify_form").id, "form")],
            "target": "new",
            "context": {"default_order_ids": [fields.Command.set(orders.ids)]},
        }

    # ------------------------------------------------------------------ sending

    def action_send(self):
        """Queue the message for each customer and channel, send it now, say what happened."""
        self.ensure_one()
        orders = self.order_ids
        self._check_can_send(orders)
        channels = self._channels()
        # one customer: the text as edited here; several: each their own rendering of the template
        single = len(orders.partner_id) == 1
        notifications = (
            self.env["payment.order.notification"]
            .sudo()
            ._queue(
                self.template_id,
                orders,
                channels=channels,
                subject=self.subject if single else None,
                body=self.body if single else None,
            )
        )
        notifications._send_now()
        return self.env["payment.order"]._notify_result_action(notifications)

    def _check_can_send(self, orders):
        if not orders:
            raise UserError(self.env._("Choose the payment orders to notify."))
        closed = orders.filtered(lambda order: order.state not in OPEN_STATES)
        if closed:
            raise UserError(
                self.env._("Only pending or overdue orders can be notified: %s.", ", ".join(closed.mapped("name")))
            )
        orders.check_access("write")
        template = self.template_id
        if not template:
            raise UserError(self.env._("Choose the template of the reminder."))
        foreign = orders.filtered(lambda order: template.company_id and order.company_id != template.company_id)
        if foreign:
            raise UserError(
                self.env._(
                    "Template %(template)s belongs to %(company)s; it cannot remind %(orders)s.",
                    template=template.name,
                    company=template.company_id.name,
                    orders=", ".join(foreign.mapped("name")),
                )
            )
        if self._recently_notified(fields.Datetime.now() - RECENT_NOTIFICATION) and not self.send_again:
            raise UserError(
                self.env._(
                    'Some of these orders were notified less than an hour ago. Tick "Send again anyway" '
                    "to remind them again now."
                )
            )

    def _channels(self):
        channels = [
            channel
            for channel, chosen in (("email", self.channel_email), ("whatsapp", self.channel_whatsapp))
            if chosen
        ]
        if not channels:
            raise UserError(self.env._("Choose at least one channel: email, WhatsApp or both."))
        return channels
