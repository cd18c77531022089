from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from ..tools.collection import OPEN_STATES

USER_GROUP = "payment_dunning.group_payment_dunning_user"
REVIEW_ACTIVITY = "payment_dunning.mail_activity_whatsapp_reply"


class PaymentDunningWhatsappReply(models.TransientModel):
    """Reply by WhatsApp: the collector answers the customer through the company's gateway; the
    answer is a communication line like any reminder, and lands in the chatter."""

    _name = "payment.dunning.whatsapp.reply"
    _description = "Reply by WhatsApp"

    partner_id = fields.Many2one("res.partner", string="Customer", required=True, readonly=True)
    number = fields.Char(related="partner_id.collection_whatsapp", string="WhatsApp Number")
    last_message = fields.Text(string="The Customer Wrote", compute="_compute_last_message")
    body = fields.Text(string="Reply", required=True)

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        context = self.env.context
        model, record_id = context.get("active_model"), context.get("active_id")
        if "partner_id" in fields_list and not values.get("partner_id") and record_id:
            if model == "res.partner":
                values["partner_id"] = self.env["res.partner"].browse(record_id).commercial_partner_id.id
            elif model == "payment.order":
                values["partner_id"] = self.env["payment.order"].browse(record_id).partner_id.id
            elif model == "payment.dunning.whatsapp.event":
                values["partner_id"] = self.env["payment.dunning.whatsapp.event"].browse(record_id).partner_ids[:1].id
        return values

    @api.depends("partner_id")
    def _compute_last_message(self):
        events = self.env["payment.dunning.whatsapp.event"]
        for wizard in self:
            last = events.search([("partner_ids", "in", wizard.partner_id.ids), ("kind", "=", "message")], limit=1)
            wizard.last_message = last.text or False

    def _reply_orders(self):
        """The orders the reply is about: the customer's open ones, else their latest."""
        orders = self.env["payment.order"].search(
            [("partner_id", "=", self.partner_id.id), ("state", "in", OPEN_STATES)], order="due_date, id"
        )
        orders = orders or self.env["payment.order"].search([("partner_id", "=", self.partner_id.id)], limit=1)
        if not orders:
            raise UserError(
                self.env._("%s has no payment order to reply about in Collections.", self.partner_id.display_name)
            )
        return orders.filtered(lambda order: order.company_id == orders[0].company_id)

    def action_send(self):
        self.ensure_one()
        if not self.env.user.has_group(USER_GROUP):
            raise AccessError(self.env._("Only Collections users can reply to customers."))
        if not self.partner_id.collection_whatsapp:
            raise UserError(self.env._("%s has no WhatsApp number.", self.partner_id.display_name))
        orders = self._reply_orders()
        orders.check_access("read")
        template = self.env["dunning.template"]._get_default(orders.company_id)
        # the communication log is written by the addon only (README, "Security")
        line = (
            self.env["payment.order.notification"]
            .sudo()
            ._queue(template, orders, channels=["whatsapp"], body=self.body, reply=True)
        )
        line = line._send_now()
        # the review activity is usually assigned to someone else (the salesperson): done for them
        self.partner_id.sudo().activity_feedback(
            [REVIEW_ACTIVITY], feedback=self.env._("Answered by WhatsApp by %s.", self.env.user.name)
        )
        if line.state != "sent":
            raise UserError(self.env._("The reply was not sent: %s", line.error or line.state))
        # the chatter notes are written in bulk, without a bus message: the form reloads to show them
        return {"type": "ir.actions.client", "tag": "soft_reload"}
