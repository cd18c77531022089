import base64
import logging
import threading
from datetime import timedelta

import psycopg2.errors
from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL, email_normalize

from .payment_order import OPEN_STATES, company_today
from .qrapi_connector import QrapiError

_logger = logging.getLogger(__name__)

MAX_ATTEMPTS_DEFAULT = 3


class PaymentOrderNotification(models.Model):
    """One message to one customer by one channel: the communication log and the send queue."""

    _name = "payment.order.notification"
    _description = "Payment Order Notification"
    _order = "id desc"
    _rec_name = "partner_id"

    order_ids = fields.Many2many(
        "payment.order",
        "payment_order_notification_rel",
        "notification_id",
        "order_id",
        string="Payment Orders",
        required=True,
        readonly=True,
    )
    partner_id = fields.Many2one("res.partner", string="Customer", required=True, index=True, readonly=True)
    company_id = fields.Many2one("res.company", required=True, index=True, readonly=True)
    template_id = fields.Many2one("dunning.template", readonly=True, ondelete="set null")
    channel = fields.Selection([("email", "Email"), ("whatsapp", "WhatsApp")], required=True, readonly=True)
    state = fields.Selection(
        [("queued", "Queued"), ("sent", "Sent"), ("failed", "Failed"), ("cancelled", "Cancelled")],
        default="queued",
        required=True,
        index=True,
        readonly=True,
    )
    recipient = fields.Char(readonly=True, help="Email address or WhatsApp number the message went to.")
    subject = fields.Char(readonly=True)
    body = fields.Text(readonly=True, help="The text as the customer received it.")
    attempts = fields.Integer(readonly=True, default=0)
    next_attempt_at = fields.Datetime(readonly=True, index=True, help="A failed attempt waits until then.")
    error = fields.Text(string="Last Error", readonly=True)
    provider_message_id = fields.Char(string="Provider Reply", readonly=True)
    mail_id = fields.Many2one("mail.mail", string="Email", readonly=True, ondelete="set null")
    sent_at = fields.Datetime(readonly=True)
    run_date = fields.Date(
        string="Queued On",
        readonly=True,
        help="The company's day on which the message was queued; dunning intervals count from it.",
    )
    dedupe_key = fields.Char(readonly=True, copy=False, help="Makes a dunning run queue each message once.")

    _sql_constraints = [
        ("dedupe_key_uniq", "UNIQUE(dedupe_key)", "This dunning message is already in the queue."),
    ]

    # ------------------------------------------------------------------ queueing

    @api.model
    def _queue(self, template, orders):
        """One queued message per customer and channel of ``template`` for ``orders``."""
        vals_list = []
        for partner, partner_orders in orders.grouped("partner_id").items():
            for channel in template._channels():
                vals_list.append(
                    {
                        "order_ids": [fields.Command.set(partner_orders.ids)],
                        "partner_id": partner.id,
                        "company_id": partner_orders.company_id[:1].id,
                        "template_id": template.id,
                        "channel": channel,
                        "run_date": company_today(partner_orders.company_id[:1]),
                    }
                )
        return self.create(vals_list)

    # ------------------------------------------------------------------ sending

    def _send(self):
        """Send the queued messages of ``self`` that no other worker holds; return those handled."""
        handled = self._lock_queued()
        for notification in handled:
            notification._send_one()
        return handled

    def _lock_queued(self):
        if not self:
            return self
        self.flush_model()
        self.env.cr.execute(
            SQL(
                "SELECT id FROM payment_order_notification WHERE id IN %s AND state = 'queued' "
                "ORDER BY id FOR UPDATE SKIP LOCKED",
                tuple(self.ids),
            )
        )
        return self.browse([row[0] for row in self.env.cr.fetchall()])

    def _send_one(self):
        self.ensure_one()
        orders = self.order_ids.filtered(lambda order: order.state in OPEN_STATES)
        if not orders:
            self.write({"state": "cancelled", "error": self.env._("The orders were paid or cancelled before sending.")})
            return
        template = self.template_id or self.env["dunning.template"]._get_default(self.company_id)
        text = template._render_body(orders)
        try:
            statement = self._account_statement() if template.attach_statement else None
            if self.channel == "email":
                values = self._send_email(template, orders, text, statement)
            else:
                values = self._send_whatsapp(orders, text, statement)
        except QrapiError as error:
            self._record_failure(str(error.args[0]), retriable=error.retriable)
            return
        except UserError as error:
            self._record_failure(str(error.args[0]), retriable=False)
            return
        self.write(
            {
                "state": "sent",
                "sent_at": fields.Datetime.now(),
                "attempts": self.attempts + 1,
                "body": text,
                "error": False,
                **values,
            }
        )
        orders._record_notification(self)

    def _account_statement(self):
        """(file name, PDF) of the customer's account statement."""
        report = self.env.ref("payment_dunning.action_report_account_statement").sudo()
        content, _format = report._render_qweb_pdf(report, self.partner_id.ids)
        return self.env._("Account statement - %s.pdf", self.partner_id.name), content

    def _send_email(self, template, orders, text, statement=None):
        partner = self.partner_id
        recipient = email_normalize(partner.collection_email or partner.email or "")
        if not recipient:
            raise UserError(self.env._("%s has neither a collection email nor an email address.", partner.display_name))
        subject = template._render_subject(orders)
        mail_template = self.env.ref("payment_dunning.mail_template_payment_order")
        order = orders[0]
        email_values = {
            "email_to": recipient,
            "recipient_ids": [],
            "subject": subject,
            "email_from": template.email_from or order.company_id.email_formatted or self.env.user.email_formatted,
        }
        mail_server = self._collection_mail_server()
        if mail_server:
            email_values["mail_server_id"] = mail_server.id
        if statement:
            email_values["attachments"] = [(statement[0], base64.b64encode(statement[1]))]
        mail_id = (
            mail_template.sudo()
            .with_context(dunning_body_html=template._text_to_html(text), lang=partner.lang)
            .send_mail(
                order.id, force_send=False, email_values=email_values, email_layout_xmlid="mail.mail_notification_light"
            )
        )
        mail = self.env["mail.mail"].sudo().browse(mail_id)
        mail.send(raise_exception=False)
        if mail.state == "exception":
            raise UserError(mail.failure_reason or self.env._("The email could not be sent."))
        return {"recipient": recipient, "subject": subject, "mail_id": mail.id, "provider_message_id": mail.message_id}

    def _send_whatsapp(self, orders, text, statement=None):
        number = self.partner_id.collection_whatsapp
        if not number:
            raise UserError(self.env._("%s has no WhatsApp number.", self.partner_id.display_name))
        # one attempt per run: the queue spaces the next ones out instead of blocking a worker
        connector = self._whatsapp_connector().with_context(qrapi_single_attempt=True)
        reply_id = connector.send_text(number, text)
        values = {"recipient": number, "provider_message_id": reply_id}
        if statement:
            try:
                connector.send_document(number, statement[0], statement[1])
            except QrapiError as error:
                # the text went out: retrying the message would send it twice
                values["error"] = self.env._("The account statement was not delivered: %s", error.args[0])
        return values

    def _whatsapp_connector(self):
        connector = self._find_whatsapp_connector()
        if not connector:
            raise UserError(self.env._("No WhatsApp gateway is configured (Collections > Configuration)."))
        return connector

    def _find_whatsapp_connector(self):
        """The gateway chosen in Settings, else the first active one of the company."""
        connectors = self.env["qrapi.connector"].sudo()
        chosen = self.env["ir.config_parameter"].sudo().get_param("payment_dunning.connector_id")
        connector = connectors.browse(int(chosen)).exists() if chosen else connectors
        if not connector.active:
            connector = connectors.search(
                [("company_id", "in", [self.company_id.id, False])], order="company_id", limit=1
            )
        return connector

    def _collection_mail_server(self):
        server_id = self.env["ir.config_parameter"].sudo().get_param("payment_dunning.mail_server_id")
        return self.env["ir.mail_server"].sudo().browse(int(server_id)).exists() if server_id else None

    def _record_failure(self, reason, retriable):
        attempts = self.attempts + 1
        max_attempts = self._max_attempts()
        if retriable and attempts < max_attempts:
            delay = timedelta(minutes=5 * 2 ** (attempts - 1))
            self.write({"attempts": attempts, "error": reason, "next_attempt_at": fields.Datetime.now() + delay})
            return
        self.write({"state": "failed", "attempts": attempts, "error": reason})
        for order in self.order_ids:
            order.message_post(
                body=Markup("<p>%s</p>")
                % self.env._("%(channel)s reminder failed: %(reason)s", channel=self._channel_label(), reason=reason),
                subtype_xmlid="mail.mt_note",
            )

    def _max_attempts(self):
        if self.channel == "whatsapp":
            connector = self._find_whatsapp_connector()
            return (connector.retries + 1) if connector else MAX_ATTEMPTS_DEFAULT
        return MAX_ATTEMPTS_DEFAULT

    def _channel_label(self):
        return dict(self._fields["channel"]._description_selection(self.env))[self.channel]

    def action_retry(self):
        self.filtered(lambda n: n.state == "failed").write({"state": "queued", "next_attempt_at": False})
        return True

    @api.model
    def _cron_send_queue(self, batch_size=None):
        """Send due queued messages in batches, committing each one.

        Each batch is picked and locked in one statement that skips rows another worker holds,
        so two workers share the queue and never send the same message.
        """
        batch_size = batch_size or int(
            self.env["ir.config_parameter"].sudo().get_param("payment_dunning.batch_size", 200)
        )
        done = 0
        testing = getattr(threading.current_thread(), "testing", False)
        conflicts = 0
        while True:
            try:
                batch = self._lock_due_batch(batch_size)
            except psycopg2.errors.SerializationFailure:
                # another worker committed rows of our snapshot: start a fresh transaction and
                # pick again (what we did so far is committed)
                conflicts += 1
                if testing or conflicts > 10:
                    raise
                self.env.cr.rollback()
                continue
            if not batch:
                return done
            conflicts = 0
            for notification in batch:
                notification._send_one()
            done += len(batch)
            self.env["ir.cron"]._notify_progress(done=done, remaining=self._due_count())
            if not testing:
                # progress survives a crash of a later batch, and the next pick starts a fresh
                # snapshot: sent messages are never sent again
                self.env.cr.commit()  # pylint: disable=invalid-commit
            # keep memory flat however long the queue is
            self.env.invalidate_all()

    def _due_count(self):
        now = fields.Datetime.now()
        return self.search_count(
            [("state", "=", "queued"), "|", ("next_attempt_at", "=", False), ("next_attempt_at", "<=", now)]
        )

    @api.model
    def _lock_due_batch(self, batch_size):
        self.flush_model()
        self.env.cr.execute(
            SQL(
                """
                SELECT id FROM payment_order_notification
                 WHERE state = 'queued' AND (next_attempt_at IS NULL OR next_attempt_at <= %s)
                 ORDER BY id LIMIT %s
                   FOR UPDATE SKIP LOCKED
                """,
                fields.Datetime.now(),
                batch_size,
            )
        )
        return self.browse([row[0] for row in self.env.cr.fetchall()])
