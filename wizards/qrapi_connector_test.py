from odoo import api, fields, models
from odoo.exceptions import UserError

from ..models.qrapi_connector import result_notification


class QrapiConnectorTest(models.TransientModel):
    """Test connection of a gateway without a status endpoint: a real message to the user's number,
    which the user then confirms received."""

    _name = "qrapi.connector.test"
    _description = "WhatsApp Gateway Test Message"

    connector_id = fields.Many2one("qrapi.connector", string="Gateway", required=True, ondelete="cascade")
    number = fields.Char(
        string="Your WhatsApp Number",
        help="A number you can look at now, with its country code (e.g. the company's own): a real test message "
        "is sent there with the gateway's API key.",
    )
    state = fields.Selection([("draft", "To Send"), ("sent", "Sent")], default="draft", required=True)
    provider_message_id = fields.Char(string="Gateway Reply", readonly=True)

    @api.model
    def _open_for(self, connector):
        company = connector.company_id or self.env.company
        wizard = self.create({"connector_id": connector.id, "number": company.partner_id.mobile or company.phone})
        return wizard._reopen()

    def _reopen(self):
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Test Connection"),
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "new",
        }

    def action_send(self):
        """Send the test message with the key; the gateway's refusal says why (e.g. key rejected)."""
        self.ensure_one()
        self.connector_id.check_access("write")
        if not (self.number or "").strip():
            raise UserError(self.env._("Type the WhatsApp number the test message goes to."))
        text = self.env._(
            "Test message from Odoo Collections: the WhatsApp gateway %s sends reminders with its API key.",
            self.connector_id.name,
        )
        reply = self.connector_id.send_text(self.number, text)
        self.write({"state": "sent", "provider_message_id": reply or False})
        return self._reopen()

    def action_confirm_received(self):
        self.ensure_one()
        return result_notification(
            "success",
            self.env._("Connection OK"),
            self.env._(
                "Proof: a real message sent with the API key reached %(number)s (gateway reply: %(reply)s).",
                number=self.number,
                reply=self.provider_message_id or "-",
            ),
        )

    def action_not_received(self):
        self.ensure_one()
        return result_notification(
            "warning",
            self.env._("Message not received"),
            self.env._(
                "The gateway accepted the API key and the message, but it did not reach %s: check the number "
                "(with its country code) and that your WhatsApp number is connected in QRAPI.",
                self.number,
            ),
            sticky=True,
        )
