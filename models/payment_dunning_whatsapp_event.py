import base64
import binascii
import json
import logging
import re
import time
import unicodedata
from datetime import datetime, timedelta, timezone

import psycopg2.errors
from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL, mute_logger

from ..tools import DeliveryError, collection
from ..tools.collection import OPEN_STATES

_logger = logging.getLogger(__name__)

# a status may arrive before the gateway's answer to our send is committed: it waits this long
STATUS_WAIT_MINUTES = 10
STATUS_RETRY_SECONDS = 60
# an event whose line or customer another worker was writing is taken again after this
RETRY_DELAY = timedelta(seconds=5)
MAX_MEDIA_BYTES = 10 * 1024 * 1024
DEFAULT_OPT_OUT_KEYWORDS = "BAJA, STOP, NO MOLESTAR"
OPT_OUT_PARAM = "payment_dunning.opt_out_keywords"
DEFAULT_TIME_BUDGET = 60
REVIEW_ACTIVITY = "payment_dunning.mail_activity_whatsapp_reply"
PROCESS_CRON = "payment_dunning.cron_whatsapp_event_process"


def normalized_words(text):
    """Upper case, without accents or punctuation, words separated by one space: how a keyword is
    compared with a reply ("¡Baja!" is "BAJA")."""
    text = unicodedata.normalize("NFKD", text or "")
    text = "".join(char for char in text if not unicodedata.combining(char))
    return " ".join(re.sub(r"[^\w]+", " ", text.upper()).split())


class PaymentDunningWhatsappEvent(models.Model):
    """What a WhatsApp gateway told us by webhook: a delivery status of one of our messages, or a
    customer's message. Stored by the webhook as it arrives (once per provider event), processed by
    a job (README, "WhatsApp both ways")."""

    _name = "payment.dunning.whatsapp.event"
    _description = "WhatsApp Event"
    _order = "id desc"
    _rec_name = "number"

    gateway_id = fields.Many2one("qrapi.connector", required=True, readonly=True, index=True, ondelete="cascade")
    company_id = fields.Many2one("res.company", readonly=True, index=True)
    event_key = fields.Char(required=True, readonly=True, help="The provider's event id: stored once.")
    kind = fields.Selection(
        [("status", "Delivery Status"), ("message", "Customer Message")], required=True, readonly=True
    )
    provider_message_id = fields.Char(string="Provider Message ID", readonly=True)
    status = fields.Selection([("delivered", "Delivered"), ("read", "Read"), ("failed", "Failed")], readonly=True)
    reason = fields.Char(readonly=True, help="Why the provider could not deliver the message.")
    number = fields.Char(string="WhatsApp Number", readonly=True, index="btree_not_null")
    sender_name = fields.Char(string="Name on WhatsApp", readonly=True)
    text = fields.Text(readonly=True)
    media = fields.Json(
        string="Media as Described",
        readonly=True,
        help="The media as the gateway described it, until it is kept as an attachment.",
    )
    event_at = fields.Datetime(string="Provider Time", readonly=True)
    state = fields.Selection(
        [
            ("new", "To Process"),
            ("done", "Processed"),
            ("ignored", "Ignored"),
            ("error", "Error"),
        ],
        default="new",
        required=True,
        readonly=True,
    )
    attempts = fields.Integer(readonly=True)
    next_attempt_at = fields.Datetime(readonly=True)
    error = fields.Text(readonly=True)
    notification_id = fields.Many2one(
        "payment.order.notification", string="Communication", readonly=True, index="btree_not_null", ondelete="set null"
    )
    partner_ids = fields.Many2many(
        "res.partner",
        "payment_dunning_whatsapp_event_partner_rel",
        "event_id",
        "partner_id",
        string="Customers",
        readonly=True,
    )
    attachment_ids = fields.Many2many("ir.attachment", string="Media", readonly=True)
    opt_out = fields.Boolean(string="Opt-out", readonly=True, help="The message asked for no more reminders.")
    review_state = fields.Selection(
        [("to_review", "To Review"), ("reviewed", "Reviewed")],
        readonly=True,
        index="btree_not_null",
        help="A message from a number no customer has waits here until a collector links it to a customer or "
        "dismisses it.",
    )
    review_partner_id = fields.Many2one(
        "res.partner", string="Customer to Link", help="The customer this message is from; Link posts it to them."
    )

    _sql_constraints = [
        ("event_key_uniq", "UNIQUE(gateway_id, event_key)", "This gateway event is stored already."),
    ]

    def init(self):
        self.env.cr.execute(
            "CREATE INDEX IF NOT EXISTS payment_dunning_whatsapp_event_new_idx "
            "ON payment_dunning_whatsapp_event (id) WHERE state = 'new'"
        )
        # the Cloud API's 24-hour window: when did this number last write to this gateway
        self.env.cr.execute(
            "CREATE INDEX IF NOT EXISTS payment_dunning_whatsapp_event_inbound_idx "
            "ON payment_dunning_whatsapp_event (gateway_id, number, create_date) WHERE kind = 'message'"
        )

    # ------------------------------------------------------------------ storing (the webhook)

    @api.model
    def _store(self, gateway, events):
        """Insert the parsed ``events`` of ``gateway`` (an event stored before is skipped); return
        how many are new. One statement: the webhook answers fast and never holds a lock for long."""
        if not events:
            return 0
        now = fields.Datetime.now()
        rows = [
            SQL(
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, 'new', 0, %s, %s, %s, %s)",
                gateway.id,
                gateway.company_id.id or None,
                event["key"],
                event["kind"],
                event.get("message_id") or None,
                event.get("status") or None,
                event.get("reason") or None,
                event.get("number") or None,
                event.get("name") or None,
                event.get("text") or None,
                self._event_time(event.get("at")),
                json.dumps(event["media"]) if event.get("media") else None,
                False,
                self.env.uid,
                now,
                self.env.uid,
                now,
            )
            for event in events
        ]
        self.env.cr.execute(
            SQL(
                """
                INSERT INTO payment_dunning_whatsapp_event
                       (gateway_id, company_id, event_key, kind, provider_message_id, status, reason, number,
                        sender_name, text, event_at, media, opt_out, state, attempts,
                        create_uid, create_date, write_uid, write_date)
                VALUES %s
                ON CONFLICT (gateway_id, event_key) DO NOTHING
                """,
                SQL(", ").join(rows),
            )
        )
        stored = self.env.cr.rowcount
        if stored:
            self._trigger_processing()
        return stored

    @staticmethod
    def _event_time(timestamp):
        if not timestamp:
            return None
        try:
            return datetime.fromtimestamp(timestamp, timezone.utc).replace(tzinfo=None)
        except (OverflowError, OSError, ValueError):
            return None

    @api.model
    def _trigger_processing(self):
        """Wake the processing job, unless a wake-up is already pending (a burst of events asks once).

        One statement, as ``ir.cron._trigger`` would write it: the webhook runs it for every request.
        """
        now = fields.Datetime.now()
        self.env.cr.execute(
            SQL(
                """
                INSERT INTO ir_cron_trigger (cron_id, call_at, create_uid, create_date, write_uid, write_date)
                SELECT c.id, %(now)s, %(uid)s, %(now)s, %(uid)s, %(now)s
                  FROM ir_model_data d JOIN ir_cron c ON c.id = d.res_id AND c.active
                 WHERE d.module = 'payment_dunning' AND d.name = %(xmlid)s AND d.model = 'ir.cron'
                   AND NOT EXISTS (SELECT 1 FROM ir_cron_trigger t WHERE t.cron_id = c.id AND t.call_at <= %(now)s)
                """,
                now=now,
                uid=self.env.uid,
                xmlid=PROCESS_CRON.split(".")[1],
            )
        )
        if self.env.cr.rowcount:
            self.env.cr.postcommit.add(self.env["ir.cron"]._notifydb)

    # ------------------------------------------------------------------ processing (the job)

    @api.model
    def _cron_process_events(self, batch_size=None):
        """Process the stored events a batch at a time, each batch committed; ``ir.cron`` calls
        again while some remain. Two workers never take the same event (``SKIP LOCKED``), and an
        event that fails is kept with its error without holding the others back."""
        self = self.sudo()  # noqa: PLW0642 the gateway's word is written whoever runs the job
        batch_size = batch_size or collection.batch_size(self.env)
        stop_at = time.monotonic() + DEFAULT_TIME_BUDGET
        done = 0
        while time.monotonic() < stop_at:
            events = self._claim(batch_size)
            if not events:
                break
            events._process_batch()
            done += len(events)
            collection.commit(self.env.cr)
            if collection.testing():
                break
        self.env["ir.cron"]._notify_progress(done=done, remaining=self._due_count())
        return done

    @api.model
    def _due_condition(self):
        return SQL("state = 'new' AND (next_attempt_at IS NULL OR next_attempt_at <= %s)", fields.Datetime.now())

    @api.model
    def _claim(self, limit):
        self.flush_model()
        self.env.cr.execute(
            SQL(
                "SELECT id FROM payment_dunning_whatsapp_event WHERE %s ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                self._due_condition(),
                limit,
            )
        )
        return self.browse([row[0] for row in self.env.cr.fetchall()])

    @api.model
    def _due_count(self):
        self.env.cr.execute(SQL("SELECT count(*) FROM payment_dunning_whatsapp_event WHERE %s", self._due_condition()))
        return self.env.cr.fetchone()[0]

    def _process_batch(self):
        """Delivered and read statuses in one statement (most of what gateways send), the rest one by one."""
        progress = self.filtered(lambda event: event.kind == "status" and event.status in ("delivered", "read"))
        try:
            with self.env.cr.savepoint(), mute_logger("odoo.sql_db"):
                progress._apply_progress_in_bulk()
        except psycopg2.errors.SerializationFailure:
            # another worker moved one of these lines meanwhile: one at a time, the conflicting ones later
            progress = progress.browse()
        for event in self - progress:
            event._process_one()

    def _process_one(self):
        self.ensure_one()
        try:
            with self.env.cr.savepoint(), mute_logger("odoo.sql_db"):
                if self.kind == "status":
                    self._apply_status()
                else:
                    self._receive_message()
        except psycopg2.errors.SerializationFailure:
            # another worker wrote the same line or customer: again in a later batch
            self.write({"attempts": self.attempts + 1, "next_attempt_at": fields.Datetime.now() + RETRY_DELAY})
        except Exception as error:  # one bad event never blocks the others
            _logger.warning("WhatsApp event %s not processed", self.id, exc_info=True)
            self.write({"state": "error", "error": str(error)[:2000], "attempts": self.attempts + 1})

    def _apply_progress_in_bulk(self):
        """``_apply_status`` of many "delivered" and "read" events at once: each line takes the
        furthest status of the batch, only forward; an event whose line is not found yet waits."""
        if not self:
            return
        self.env["payment.order.notification"].flush_model()
        self.flush_recordset()
        now = fields.Datetime.now()
        self.env.cr.execute(
            SQL(
                """
                WITH matched AS (
                    SELECT e.id AS event_id, n.id AS line_id, e.status,
                           CASE e.status WHEN 'read' THEN 2 ELSE 1 END AS rank, COALESCE(e.event_at, %(now)s) AS at
                      FROM payment_dunning_whatsapp_event e
                      JOIN payment_order_notification n
                        ON n.provider_message_id = e.provider_message_id AND n.gateway_id = e.gateway_id
                       AND n.channel = 'whatsapp'
                     WHERE e.id = ANY(%(ids)s)
                ),
                best AS (
                    SELECT DISTINCT ON (line_id) line_id, status, rank, at FROM matched ORDER BY line_id, rank DESC, at
                ),
                moved AS (
                    UPDATE payment_order_notification n
                       SET delivery_status = b.status, delivered_at = COALESCE(n.delivered_at, b.at),
                           read_at = CASE WHEN b.status = 'read' THEN b.at ELSE n.read_at END, write_date = %(now)s
                      FROM best b
                     WHERE n.id = b.line_id AND n.state IN ('sent', 'sending')
                       AND b.rank > CASE n.delivery_status WHEN 'read' THEN 2 WHEN 'delivered' THEN 1 ELSE 0 END
                    RETURNING n.id
                )
                UPDATE payment_dunning_whatsapp_event e
                   SET state = 'done', notification_id = m.line_id, error = NULL, write_date = %(now)s
                  FROM matched m
                 WHERE e.id = m.event_id
                RETURNING e.id
                """,
                ids=self.ids,
                now=now,
            )
        )
        done = self.browse(row[0] for row in self.env.cr.fetchall())
        self.env["payment.order.notification"].invalidate_model(["delivery_status", "delivered_at", "read_at"])
        self.invalidate_recordset(["state", "notification_id", "error"])
        for event in self - done:
            event._wait_for_line()

    # ------------------------------------------------------------------ delivery status

    def _apply_status(self):
        """Move the communication line forward (sent → delivered → read), or fail it with the
        provider's reason; a status older than what the line shows changes nothing."""
        line = (
            self.env["payment.order.notification"]
            .sudo()
            .search(
                [
                    ("channel", "=", "whatsapp"),
                    ("gateway_id", "=", self.gateway_id.id),
                    ("provider_message_id", "=", self.provider_message_id),
                ],
                limit=1,
            )
        )
        if not line:
            self._wait_for_line()
            return
        if self.status == "failed":
            line._record_provider_failure(self.reason)
        else:
            line._record_delivery(self.status, self.event_at or fields.Datetime.now())
        self.write({"state": "done", "notification_id": line.id, "error": False})

    def _wait_for_line(self):
        if fields.Datetime.now() - self.create_date > timedelta(minutes=STATUS_WAIT_MINUTES):
            self.write({"state": "ignored", "error": self.env._("No message of ours has this id.")})
            return
        self.write(
            {
                "attempts": self.attempts + 1,
                "next_attempt_at": fields.Datetime.now() + timedelta(seconds=STATUS_RETRY_SECONDS),
            }
        )

    # ------------------------------------------------------------------ customer messages

    def _receive_message(self):
        """Post the customer's message where the collector works: the customer's chatter and their
        open orders', with its media; an activity to review it; an opt-out keyword stops reminders.
        A number no customer has goes to the review list."""
        partners = self._find_partners()
        attachments = self._keep_media(partners[:1] or self)
        values = {"state": "done", "attachment_ids": [fields.Command.set(attachments.ids)], "media": False}
        if not partners:
            self.write({**values, "review_state": "to_review"})
            return
        opt_out = self._is_opt_out()
        for partner in partners:
            self._post_to(partner, attachments)
            if opt_out:
                partner._collection_opt_out(self)
            else:
                self._schedule_review(partner)
        self.write({**values, "partner_ids": [fields.Command.set(partners.ids)], "opt_out": opt_out})

    def _find_partners(self):
        """The customers (companies, not their contacts, who share the collection fields) whose
        collection WhatsApp or one of their collection contacts is the sender's number, in the
        gateway's company when it has one."""
        self.env.cr.execute(
            SQL(
                """
                SELECT COALESCE(p.commercial_partner_id, p.id) FROM res_partner p
                 WHERE p.active AND p.collection_whatsapp = %(number)s AND %(company)s
                 UNION
                SELECT COALESCE(p.commercial_partner_id, p.id)
                  FROM res_partner_collection_contact c JOIN res_partner p ON p.id = c.partner_id
                 WHERE p.active AND c.kind = 'mobile' AND c.value = %(number)s AND %(company)s
                 ORDER BY 1
                """,
                number=self.number,
                company=SQL("(p.company_id IS NULL OR p.company_id = %s)", self.company_id.id)
                if self.company_id
                else SQL("TRUE"),
            )
        )
        return self.env["res.partner"].sudo().browse([row[0] for row in self.env.cr.fetchall()])

    def _keep_media(self, owner):
        """The message's media as an attachment of ``owner`` (the customer, or the event when the
        number is unknown); a media that cannot be fetched is noted, the text still posted."""
        media = self.media
        if not isinstance(media, dict) or not any(media.get(key) for key in ("data", "url", "id")):
            return self.env["ir.attachment"]
        try:
            content = self._media_content(media)
        except (DeliveryError, ValueError, binascii.Error) as error:
            self.error = self.env._("The media was not kept: %s", error)
            return self.env["ir.attachment"]
        mimetype = media.get("mimetype") or "application/octet-stream"
        extension = mimetype.split("/")[-1].split(";")[0][:10]
        name = media.get("filename") or self.env._("WhatsApp %(number)s.%(ext)s", number=self.number, ext=extension)
        return (
            self.env["ir.attachment"]
            .sudo()
            .create(
                {
                    "name": name,
                    "raw": content,
                    "mimetype": mimetype,
                    "res_model": owner._name,
                    "res_id": owner.id,
                }
            )
        )

    def _media_content(self, media):
        if media.get("data"):
            data = media["data"].split(",", 1)[-1] if media["data"].startswith("data:") else media["data"]
            if len(data) > MAX_MEDIA_BYTES * 4 // 3 + 4:
                raise ValueError(self.env._("The media is larger than %s MB.", MAX_MEDIA_BYTES // (1024 * 1024)))
            return base64.b64decode(data, validate=True)
        return self.gateway_id._api().download_media(media, MAX_MEDIA_BYTES)

    def _is_opt_out(self):
        text = normalized_words(self.text)
        return bool(text) and text in self._opt_out_keywords()

    @api.model
    def _opt_out_keywords(self):
        value = self.env["ir.config_parameter"].sudo().get_param(OPT_OUT_PARAM, DEFAULT_OPT_OUT_KEYWORDS)
        return {normalized_words(keyword) for keyword in (value or "").split(",") if normalized_words(keyword)}

    def _post_to(self, partner, attachments):
        """The message in the customer's chatter and their open orders', written by the customer."""
        orders = (
            self.env["payment.order"]
            .sudo()
            .search(
                [("partner_id", "=", partner.id), ("state", "in", OPEN_STATES)]
                + ([("company_id", "=", self.company_id.id)] if self.company_id else [])
            )
        )
        body = self._chatter_body()
        for record in [partner, *orders]:
            record.message_post(
                body=body,
                author_id=partner.id,
                message_type="comment",
                subtype_xmlid="mail.mt_note",
                attachment_ids=attachments.ids,
            )

    def _chatter_body(self):
        return Markup("<p><strong>%s</strong></p><p>%s</p>") % (
            self.env._("WhatsApp from %s", self.number),
            self.text or self.env._("(media without text)"),
        )

    def _schedule_review(self, partner):
        """One open "reply to review" activity per customer, for their collector (the salesperson)."""
        activity_type = self.env.ref(REVIEW_ACTIVITY, raise_if_not_found=False)
        if not activity_type:
            return
        existing = (
            self.env["mail.activity"]
            .sudo()
            .search_count(
                [
                    ("res_model", "=", "res.partner"),
                    ("res_id", "=", partner.id),
                    ("activity_type_id", "=", activity_type.id),
                ],
                limit=1,
            )
        )
        if existing:
            return
        user = partner.user_id or self.env.ref("base.user_admin", raise_if_not_found=False) or self.env.user
        partner.activity_schedule(
            act_type_xmlid=REVIEW_ACTIVITY,
            summary=self.env._("WhatsApp reply to review"),
            note=self.text or "",
            user_id=user.id,
        )

    # ------------------------------------------------------------------ review list

    def action_link_customer(self):
        """Post a message of an unknown number to the customer the collector chose."""
        for event in self:
            if event.kind != "message" or event.review_state != "to_review":
                raise UserError(self.env._("Only a customer message waiting for review can be linked."))
            partner = event.review_partner_id
            if not partner:
                raise UserError(self.env._("Choose the customer this message is from first."))
            partner.check_access("read")
            event.sudo()._link_to(partner.sudo())
        return True

    def _link_to(self, partner):
        attachments = self.attachment_ids
        attachments.write({"res_model": "res.partner", "res_id": partner.id})
        self._post_to(partner, attachments)
        self.write({"review_state": "reviewed", "partner_ids": [fields.Command.link(partner.id)]})

    def action_dismiss(self):
        self.filtered(lambda event: event.review_state == "to_review").sudo().write({"review_state": "reviewed"})
        return True

    def write(self, vals):
        """Users may only choose the customer to link (the rest is the gateway's word)."""
        if not self.env.su and set(vals) - {"review_partner_id"}:
            raise UserError(self.env._("WhatsApp events are written by the gateway only."))
        return super().write(vals)
