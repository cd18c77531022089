import base64
import collections
import logging
import time
from datetime import timedelta

import psycopg2.errors
from markupsafe import Markup, escape

from odoo import api, fields, models, tools
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import SQL, email_normalize
from odoo.tools.mail import generate_tracking_message_id

from ..tools import MAX_TIMEOUT, DeliveryError, SmtpSessions, collection
from ..tools.collection import OPEN_STATES, company_today

_logger = logging.getLogger(__name__)

MAX_ATTEMPTS_DEFAULT = 3
# a message still to go out (the Communications' "Active" filter, with those of open orders)
ACTIVE_STATES = ("queued", "sending")
# advisory lock classes: "a worker is sending this message" (session lock, gone with the worker)
# and "a worker is counting this gateway's rate" (transaction lock)
SENDING_LOCK = 746021
RATE_LOCK = 746022
# "a worker is counting this customer's automatic messages of the week" (transaction lock)
CAP_LOCK = 746023
WEEKLY_CAP_PARAM = "payment_dunning.weekly_cap"
WEEKLY_CAP_DEFAULT = 3
SMTP_TIMEOUT_DEFAULT = 20
# without a cron time limit, a call stops starting new messages after this many seconds
DEFAULT_TIME_BUDGET = 60
MAX_CLAIM_CONFLICTS = 10
USER_GROUP = "payment_dunning.group_payment_dunning_user"
# messages claimed, then rendered, together (each still goes out and is recorded on its own)
CLAIM_CHUNK = 50
# chatter entries of sent messages are written in batches of this many messages
CHATTER_BATCH = 100
# a line still waiting for its chatter entries after this long lost its worker: another writes them
CHATTER_ORPHAN_MINUTES = 15

FAILURE_TYPES = [
    ("no_contact", "No contact"),
    ("no_gateway", "No gateway"),
    ("key_rejected", "API key rejected"),
    ("gateway_unreachable", "Gateway unreachable"),
    ("gateway_error", "Gateway error"),
    ("destination_refused", "Destination refused"),
    ("smtp_unreachable", "SMTP unreachable"),
    ("smtp_refused", "SMTP refused recipient"),
    ("render", "Rendering error"),
    ("unknown", "Outcome unknown"),
    ("bounced", "Bounced"),
    ("not_delivered", "Not delivered"),
]


class _SendRun:
    """What one call of the send loop shares between its messages."""

    def __init__(self, env, batch_size, budget, ids=None):
        self.batch_size = batch_size
        self.stop_at = time.monotonic() + budget
        # a user's send now (Notify, Retry): these lines, at once, each claimed once in this call
        self.ids = list(ids) if ids is not None else None
        self.closed_company_ids = set()  # outside their sending window: their messages wait
        self.done = 0
        self.handled_ids = []
        self.gateways = {}  # company id -> qrapi.connector (sudo), as chosen for WhatsApp
        self.blocked_company_ids = set()  # their gateway is at its rate limit for this call
        self.wake_at = None  # when a rate-limited gateway takes messages again
        self.smtp = SmtpSessions(env, env["payment.order.notification"]._smtp_timeout())
        self.unlogged_ids = []  # sent lines whose chatter entries are written by the batch
        self._apis = {}  # gateway id -> transport, its settings read once per call
        self._documents = {}  # ("receipt", payment id) or ("statement", partner id, company id) -> rendered

    @property
    def manual(self):
        return self.ids is not None

    def document(self, key, render):
        """The PDF of ``key``, rendered once per call: a customer's email and WhatsApp carry the same one."""
        if key not in self._documents:
            self._documents[key] = render()
        return self._documents[key]

    def wants_more(self):
        return self.done < self.batch_size and time.monotonic() < self.stop_at

    def block_rate_limited(self, company_ids, wait):
        self.blocked_company_ids |= set(company_ids)
        wake_at = fields.Datetime.now() + timedelta(seconds=wait)
        self.wake_at = min(self.wake_at or wake_at, wake_at)

    def api(self, gateway):
        if gateway.id not in self._apis:
            self._apis[gateway.id] = gateway._api()
        return self._apis[gateway.id]

    def close(self):
        self.smtp.close()


class PaymentOrderNotification(models.Model):
    """One message to one customer by one channel: the communication log and the send queue.

    A message is *queued*, then *sending* (committed before anything leaves), then *sent*,
    *failed* (with a type and the reason) or *cancelled*. A message found *sending* whose worker
    is gone is never sent again by itself: its outcome is unknown.
    """

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
        [
            ("queued", "Queued"),
            ("sending", "Sending"),
            ("sent", "Sent"),
            ("failed", "Failed"),
            ("cancelled", "Cancelled"),
        ],
        default="queued",
        required=True,
        index=True,
        readonly=True,
    )
    failure_type = fields.Selection(
        FAILURE_TYPES,
        readonly=True,
        help="Why the last attempt failed; a queued message with a failure type waits for its next attempt.",
    )
    recipient = fields.Char(readonly=True, help="Email address or WhatsApp number the message went to.")
    fixed_recipient = fields.Char(
        readonly=True,
        help="The contact this message is for when the customer's reminders go to all of their contacts "
        "(Settings); otherwise empty, and the customer's first contact at sending time is used.",
    )
    subject = fields.Char(readonly=True)
    body = fields.Text(readonly=True, help="The text as the customer received it.")
    attempts = fields.Integer(readonly=True, default=0)
    attempted_at = fields.Datetime(string="Last Attempt", readonly=True, help="When the last attempt started.")
    next_attempt_at = fields.Datetime(readonly=True, help="A failed attempt waits until then.")
    gateway_id = fields.Many2one(
        "qrapi.connector", string="Gateway", readonly=True, ondelete="set null", help="The WhatsApp gateway used."
    )
    error = fields.Text(string="Last Error", readonly=True)
    provider_message_id = fields.Char(string="Provider Reply", readonly=True, index="btree_not_null")
    delivery_status = fields.Selection(
        [("delivered", "Delivered"), ("read", "Read")],
        readonly=True,
        help="What the WhatsApp gateway reported after sending: delivered to the phone, then read.",
    )
    delivered_at = fields.Datetime(readonly=True)
    read_at = fields.Datetime(readonly=True)
    mail_id = fields.Many2one("mail.mail", string="Email", readonly=True, ondelete="set null")
    sent_at = fields.Datetime(readonly=True)
    run_date = fields.Date(
        string="Queued On",
        readonly=True,
        help="The company's day on which the message was queued; dunning intervals count from it.",
    )
    subject_override = fields.Char(
        string="Subject as Written",
        readonly=True,
        help="The subject written in the composer, sent instead of the template's.",
    )
    body_override = fields.Text(
        string="Text as Written",
        readonly=True,
        help="The text written in the composer, sent instead of the template's (its variables are filled in).",
    )
    is_active = fields.Boolean(
        string="Active",
        compute="_compute_is_active",
        search="_search_is_active",
        help="Still in progress: waiting in the queue, or about an order that is still pending or overdue.",
    )
    dedupe_key = fields.Char(readonly=True, copy=False, help="Makes a dunning run queue each message once.")
    payment_id = fields.Many2one(
        "payment.order.payment",
        string="Payment",
        readonly=True,
        index="btree_not_null",
        ondelete="set null",
        help='The payment this message is the receipt of (README, "Receipts").',
    )
    is_reply = fields.Boolean(
        string="Reply",
        readonly=True,
        help="A collector's answer to the customer's WhatsApp message (Reply by WhatsApp): it goes whatever the "
        "state of the orders, without the statement.",
    )
    chatter_pending = fields.Boolean(
        readonly=True,
        copy=False,
        help="Sent; its notes in the chatter of the orders and the customer are not written yet.",
    )

    _sql_constraints = [
        ("dedupe_key_uniq", "UNIQUE(dedupe_key)", "This dunning message is already in the queue."),
    ]

    def init(self):
        # the queue is walked in id order among queued rows only, however long the log grows
        self.env.cr.execute(
            "CREATE INDEX IF NOT EXISTS payment_order_notification_queued_idx "
            "ON payment_order_notification (id) WHERE state = 'queued'"
        )
        self.env.cr.execute(
            "CREATE INDEX IF NOT EXISTS payment_order_notification_chatter_pending_idx "
            "ON payment_order_notification (id) WHERE chatter_pending"
        )
        # the per-minute rate of a gateway is counted over its last attempts
        self.env.cr.execute(
            "CREATE INDEX IF NOT EXISTS payment_order_notification_gateway_attempt_idx "
            "ON payment_order_notification (gateway_id, attempted_at) WHERE gateway_id IS NOT NULL"
        )

    # ------------------------------------------------------------------ queueing

    @api.model
    def _queue(self, template, orders, channels=None, subject=None, body=None, payment=None, again=False, reply=False):
        """One queued message per customer and channel of ``template`` for ``orders``.

        ``channels`` ("email", "whatsapp"), when given, are the channels chosen instead of the
        template's; ``subject`` and ``body``, when given, are sent instead of the template's (the
        composer's text for one customer; the template still decides the statement attachment).
        With a ``payment``, the messages are its receipt: queued once per contact (``again``: a
        deliberate resend), with the receipt attached instead of the statement. A ``reply`` (the
        collector answering the customer's message) goes whatever the state of the orders.
        """
        chosen = template._channels() if channels is None else [c for c in ("email", "whatsapp") if c in channels]
        vals_list = []
        groups = collections.defaultdict(lambda: orders.browse())
        for order in orders:
            groups[order.partner_id, order.company_id] |= order
        for (partner, company), partner_orders in groups.items():
            for channel in chosen:
                for recipient in self._queued_recipients(partner, channel):
                    vals_list.append(
                        {
                            "subject_override": subject or False,
                            "body_override": body or False,
                            "order_ids": [fields.Command.set(partner_orders.ids)],
                            "partner_id": partner.id,
                            "company_id": company.id,
                            "template_id": template.id,
                            "channel": channel,
                            "recipient": recipient,
                            "fixed_recipient": recipient,
                            "run_date": company_today(company),
                            "is_reply": reply,
                            **self._receipt_values(payment, channel, recipient, again),
                        }
                    )
        if payment and not again:
            vals_list = self._not_queued_yet(vals_list)
        return self.create(vals_list)

    @api.model
    def _receipt_values(self, payment, channel, recipient, again):
        if not payment:
            return {}
        key = f"receipt:{payment.id}:{channel}:{recipient or ''}"
        return {"payment_id": payment.id, "dedupe_key": False if again else key}

    @api.model
    def _not_queued_yet(self, vals_list):
        """The receipts not queued before (a payment's receipt goes once per contact)."""
        keys = [vals["dedupe_key"] for vals in vals_list]
        existing = set(self.sudo().search([("dedupe_key", "in", keys)]).mapped("dedupe_key"))
        return [vals for vals in vals_list if vals["dedupe_key"] not in existing]

    @api.model
    def _queued_recipients(self, partner, channel):
        """The recipients a message is queued for, one line each: with the contact mode "all", every
        contact of the channel; otherwise one line whose recipient the send resolves (False), so that a
        contact corrected meanwhile is the one used."""
        recipients = partner._collection_recipients(channel)
        if len(recipients) > 1:
            return recipients
        return [False]

    @api.depends("state", "order_ids.state")
    def _compute_is_active(self):
        for line in self:
            line.is_active = line.state in ACTIVE_STATES or any(order.state in OPEN_STATES for order in line.order_ids)

    def _search_is_active(self, operator, value):
        """Active: queued (or sending), or about an order still open; found in one query."""
        if operator not in ("=", "!=") or not isinstance(value, bool):
            raise UserError(self.env._("Search active communications with = or != and True or False."))
        self.flush_model(["state"])
        self.env["payment.order"].flush_model(["state"])
        active = SQL(
            """
            (SELECT line.id FROM payment_order_notification line WHERE line.state IN %s
             UNION
             SELECT rel.notification_id FROM payment_order_notification_rel rel
               JOIN payment_order o ON o.id = rel.order_id
              WHERE %s)
            """,
            ACTIVE_STATES,
            collection.open_state_sql("o"),
        )
        return [("id", "in" if (operator == "=") == value else "not in", active)]

    @api.constrains("order_ids", "partner_id", "company_id")
    def _check_orders_match(self):
        """A message speaks of its own customer's orders, in its own company, nobody else's."""
        for line in self:
            strangers = line.order_ids.browse(
                order.id
                for order in line.order_ids
                if order.company_id != line.company_id
                or order.partner_id.commercial_partner_id != line.partner_id.commercial_partner_id
            )
            if strangers:
                raise ValidationError(
                    self.env._(
                        "A message to %(customer)s can only be about their orders in %(company)s, not %(orders)s.",
                        customer=line.partner_id.display_name,
                        company=line.company_id.name,
                        orders=", ".join(strangers.mapped("name")),
                    )
                )

    # ------------------------------------------------------------------ the send loop

    @api.model
    def _cron_send_queue(self, batch_size=None):
        """Send one batch of due messages; ``ir.cron`` calls again while some remain.

        Messages are picked (``SKIP LOCKED``) and marked *sending* in chunks, rendered together,
        then each one is marked attempted and committed before it leaves, and its outcome is
        committed: a crash or a second worker never sends it twice, and one bad message never holds
        the others back. A call stops starting messages before the cron worker's time limit.
        Each company's messages go out only inside its sending window (Settings), in its collections
        timezone; outside, they stay queued and the job is called again when the window opens.
        """
        self._recover_interrupted()
        self._log_orphan_chatter()
        run = self._send_loop(batch_size=batch_size or collection.batch_size(self.env), budget=self._time_budget())
        self.env["ir.cron"]._notify_progress(done=run.done, remaining=self._due_count(run))
        return run.done

    def _send_now(self):
        """Send the queued messages of ``self`` at once: a user's deliberate act (Notify, Retry, the composer).

        Neither the sending window nor a pending retry delay holds them, and the automatic tasks
        need not be on. Each line is claimed as the send queue claims it, so a cron running at the
        same time never sends it twice. Returns the lines handled (sent, failed, or waiting again).
        """
        self._check_send_access()
        lines = self.sudo()
        if not lines:
            return lines
        run = lines._send_loop(batch_size=len(lines), budget=lines._time_budget(), ids=lines.ids)
        return lines.browse(run.handled_ids)

    def _send(self):
        """Kept for the callers of before ``_send_now``."""
        return self._send_now()

    def _check_send_access(self):
        """Only Collections users send, and only the lines their companies let them read."""
        if self.env.su:
            return
        if not self.env.user.has_group(USER_GROUP):
            raise AccessError(self.env._("Only Collections users can send reminders."))
        self.check_access("read")

    @api.model
    def _send_loop(self, batch_size, budget, ids=None):
        run = _SendRun(self.env, batch_size, budget, ids=ids)
        if not run.manual:
            self._hold_closed_windows(run)
        try:
            while run.wants_more():
                claimed = self._claim(run, min(CLAIM_CHUNK, run.batch_size - run.done))
                if not claimed:
                    break
                self._send_claimed(claimed, run)
            if run.unlogged_ids:
                self._log_chatter_of(run.unlogged_ids)
        finally:
            run.close()
        self.env["payment.order"].invalidate_model(["notification_count", "last_notification_date"])
        if run.wake_at:
            # a gateway at its rate limit takes messages again then
            self.env.ref("payment_dunning.cron_payment_order_send_queue").sudo()._trigger(run.wake_at)
        return run

    def _send_claimed(self, claimed, run):
        """Render the claimed lines together, then send them one at a time."""
        prepared = claimed._render_all(run)
        remaining = list(claimed)
        try:
            while remaining:
                notification = remaining[0]
                if not run.wants_more():
                    break
                remaining.pop(0)
                if notification._process(prepared[notification.id], run):
                    run.done += 1
                    run.handled_ids.append(notification.id)
                if len(run.unlogged_ids) >= CHATTER_BATCH:
                    self._log_chatter_of(run.unlogged_ids)
                    run.unlogged_ids = []
        finally:
            # the time ran out (or an error stops the call): what was not attempted is queued again
            unattempted = self.browse([n.id for n in remaining])
            unattempted._unclaim()
            unattempted._release()

    # pick -> mark --------------------------------------------------------------------

    @api.model
    def _claim(self, run, limit):
        """Up to ``limit`` due messages nobody else holds, marked *sending* and committed.

        Each stays locked (a session advisory lock) by this worker until its outcome is recorded:
        a line still *sending* whose lock is free belongs to a worker that is gone.
        """

        def claim():
            self.env.cr.execute(
                SQL(
                    """
                    UPDATE payment_order_notification SET state = 'sending', attempted_at = NULL
                     WHERE id IN (SELECT id FROM payment_order_notification WHERE %s
                                   ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)
                    RETURNING id
                    """,
                    self._due_condition(run),
                    limit,
                )
            )
            ids = sorted(row[0] for row in self.env.cr.fetchall())
            # taken once the rows are ours (a failed UPDATE leaves no session lock behind),
            # before the commit makes them visible as "sending"
            self.env.cr.execute(SQL("SELECT pg_advisory_lock(%s, id) FROM unnest(%s::int[]) AS id", SENDING_LOCK, ids))
            return ids

        # another worker may commit a row after our snapshot began: pick again
        ids = collection.retry_serialization(self.env.cr, claim, attempts=MAX_CLAIM_CONFLICTS)
        if run.manual:
            # each line of a send now is attempted once: one that fails and waits is not taken again
            run.ids = [line_id for line_id in run.ids if line_id not in set(ids)]
        self._commit()
        self.invalidate_model(["state", "attempted_at"])
        return self.browse(ids)

    @api.model
    def _due_condition(self, run):
        self.flush_model()
        if run.manual:
            # sent now: whatever their retry delay or their company's sending window
            conditions = [SQL("state = 'queued' AND id = ANY(%s)", list(run.ids))]
        else:
            conditions = [
                SQL("state = 'queued' AND (next_attempt_at IS NULL OR next_attempt_at <= %s)", fields.Datetime.now())
            ]
        if run.closed_company_ids:
            conditions.append(SQL("NOT (company_id = ANY(%s))", sorted(run.closed_company_ids)))
        if run.blocked_company_ids:
            conditions.append(
                SQL("NOT (channel = 'whatsapp' AND company_id = ANY(%s))", sorted(run.blocked_company_ids))
            )
        return SQL(" AND ").join(conditions)

    @api.model
    def _hold_closed_windows(self, run):
        """The companies outside their sending window keep their messages queued (no attempt counted);
        the send queue is called again when the first of their windows opens."""
        self.flush_model(["state", "company_id"])
        self.env.cr.execute("SELECT DISTINCT company_id FROM payment_order_notification WHERE state = 'queued'")
        companies = self.env["res.company"].sudo().browse([row[0] for row in self.env.cr.fetchall()])
        if not companies:
            return
        now = fields.Datetime.now()
        openings = companies._dunning_window_openings(now)
        run.closed_company_ids = {company_id for company_id, opening in openings.items() if opening != now}
        next_opening = min((openings[company_id] or now for company_id in run.closed_company_ids), default=now)
        if next_opening > now:
            self._trigger_send_queue_at(next_opening)

    @api.model
    def _trigger_send_queue_at(self, when):
        """Call the send queue at ``when`` (once: every call of a closed window asks for the same time)."""
        cron = self.env.ref("payment_dunning.cron_payment_order_send_queue").sudo()
        if not self.env["ir.cron.trigger"].sudo().search_count([("cron_id", "=", cron.id), ("call_at", "=", when)]):
            cron._trigger(when)

    def _unclaim(self):
        """Claimed but never attempted: back to the queue, as they were."""
        if not self:
            return
        self.env.cr.execute(
            SQL(
                "UPDATE payment_order_notification SET state = 'queued' WHERE id = ANY(%s) AND state = 'sending' "
                "AND attempted_at IS NULL",
                self.ids,
            )
        )
        self._commit()
        self.invalidate_model(["state"])

    def _release(self):
        self.env.cr.execute(
            SQL("SELECT pg_advisory_unlock(%s, id) FROM unnest(%s::int[]) AS id", SENDING_LOCK, self.ids)
        )

    def _mark_attempt(self, gateway):
        """The point of no return: committed before the message leaves."""
        self.env.cr.execute(
            SQL(
                "UPDATE payment_order_notification SET attempts = attempts + 1, attempted_at = %s, gateway_id = %s "
                "WHERE id = %s RETURNING attempts",
                fields.Datetime.now(),
                gateway.id if gateway else None,
                self.id,
            )
        )
        attempts = self.env.cr.fetchone()[0]
        self.invalidate_recordset(["attempts", "attempted_at", "gateway_id"])
        self._commit()
        return attempts

    def _within_rate(self, message, run):
        """False (and the rest of this gateway's messages wait) when the gateway is at its rate limit."""
        gateway = message.get("gateway")
        if not gateway or not message["rate_limit"]:
            return True
        if message["company_id"] in run.blocked_company_ids:
            return False
        self.env.cr.execute(SQL("SELECT pg_advisory_xact_lock(%s, %s)", RATE_LOCK, gateway.id))
        wait = gateway._rate_wait(fields.Datetime.now(), message["rate_limit"])
        if wait:
            self._commit()
            run.block_rate_limited([cid for cid, chosen in run.gateways.items() if chosen == gateway], wait)
        return not wait

    def _within_weekly_cap(self):
        """False (the line waits until the week frees a place) when this automatic message would be
        one more than the customer's weekly cap of its channel (Settings). Counted under a lock per
        customer, so two workers never both take the last place."""
        cap = self._weekly_cap()
        if not cap or not self._is_automatic():
            return True
        self.env.cr.execute(SQL("SELECT pg_advisory_xact_lock(%s, %s)", CAP_LOCK, self.partner_id.id))
        self.env.cr.execute(
            SQL(
                """
                SELECT count(DISTINCT %(message)s), min(COALESCE(sent_at, attempted_at))
                  FROM payment_order_notification
                 WHERE partner_id = %(partner)s AND channel = %(channel)s AND dedupe_key LIKE %(automatic)s
                   AND state IN ('sending', 'sent') AND attempted_at IS NOT NULL AND id != %(id)s
                   AND COALESCE(sent_at, attempted_at) > %(since)s
                   AND %(message)s != %(own)s
                """,
                message=collection.automatic_message_key(SQL("dedupe_key")),
                own=collection.automatic_message_key(self.dedupe_key),
                partner=self.partner_id.id,
                channel=self.channel,
                automatic="dunning:%",
                id=self.id,
                since=fields.Datetime.now() - timedelta(days=7),
            )
        )
        count, oldest = self.env.cr.fetchone()
        if count < cap:
            return True
        wait_until = oldest + timedelta(days=7)
        self._write_outcome(
            {
                "state": "queued",
                "next_attempt_at": wait_until,
                "error": self.env._(
                    "Weekly cap: %(count)s automatic messages by this channel in 7 days; waits until %(date)s.",
                    count=count,
                    date=fields.Datetime.to_string(wait_until),
                ),
            }
        )
        return False

    def _is_automatic(self):
        return bool(self.dedupe_key) and self.dedupe_key.startswith("dunning:")

    @api.model
    def _weekly_cap(self):
        """Automatic messages per customer and channel in 7 days (Settings; 0: no cap)."""
        value = self.env["ir.config_parameter"].sudo().get_param(WEEKLY_CAP_PARAM, WEEKLY_CAP_DEFAULT)
        try:
            return max(int(value), 0)
        except (TypeError, ValueError):
            return WEEKLY_CAP_DEFAULT

    @api.model
    def _cancel_automatic_of(self, partner, reason):
        """Cancel the automatic messages still queued for ``partner`` (an opt-out)."""
        self.env.cr.execute(
            SQL(
                "UPDATE payment_order_notification SET state = 'cancelled', error = %s, write_date = %s "
                "WHERE partner_id = %s AND state = 'queued' AND dedupe_key LIKE %s",
                reason,
                fields.Datetime.now(),
                partner.id,
                "dunning:%",
            )
        )
        self.invalidate_model(["state", "error"])

    # render -> deliver -> record -------------------------------------------------------

    def _render_all(self, run):
        """{id: what goes out, or the failure preparing it} for the claimed lines, read in one go."""
        prepared = {}
        for notification in self:
            try:
                prepared[notification.id] = notification._render(run)
            except DeliveryError as error:
                prepared[notification.id] = error
            except Exception as error:  # one bad message never stops the others
                if isinstance(error, psycopg2.Error):
                    self._rollback()  # reading only: nothing of ours is lost
                _logger.warning("Reminder %s could not be prepared", notification.id, exc_info=True)
                prepared[notification.id] = DeliveryError(
                    self.env._("The message could not be prepared: %s", error), "render"
                )
        return prepared

    def _process(self, message, run):
        """Deliver and record one claimed, rendered message; commit its outcome. False: it waits."""
        self.ensure_one()
        try:
            if not isinstance(message, dict):
                self._record_unsendable(message)
                return True
            if not self._within_weekly_cap():
                return True
            if not self._within_rate(message, run):
                self._unclaim()
                return False
            self._deliver_and_record(message, run)
            return True
        finally:
            self._release()

    def _record_unsendable(self, message):
        """A message that failed to render (``DeliveryError``) or has nothing left to chase (None)."""
        if message is None:
            self._record_cancelled()
        else:
            self._record_failure(message, attempts=self._mark_attempt(None))

    def _deliver_and_record(self, message, run):
        attempts = self._mark_attempt(message.get("gateway"))
        try:
            values = self._deliver(message, run)
        except DeliveryError as error:
            self._record_failure(error, message, attempts)
            return
        except Exception as error:  # it may have left: never send it again by itself
            _logger.warning("Reminder %s: unexpected error while sending", self.id, exc_info=True)
            self._rollback()
            reason = self._unknown_outcome_reason(str(error) or error.__class__.__name__)
            self._record_failure(DeliveryError(reason, "unknown"), attempts=attempts)
            return
        self._record_sent(message, values)
        run.unlogged_ids.append(self.id)

    def _render(self, run):
        """What goes out, prepared without writing or sending anything; None when there is nothing to chase."""
        payment = self.payment_id
        if payment:
            # a receipt goes although its payment closed the order; not once the payment is cancelled
            orders = self.order_ids if payment.state == "posted" else self.order_ids.browse()
        elif self.is_reply:
            orders = self.order_ids
        else:
            orders = self.order_ids.filtered(lambda order: order.state in OPEN_STATES)
        if not orders:
            return None
        template = self.template_id or self.env["dunning.template"]._get_default(self.company_id)
        if not template:
            raise DeliveryError(
                self.env._("There is no dunning template to write the message with (the rule was deleted)."),
                "render",
            )
        message = {
            "orders": orders,
            "template": template,
            "text": template._render_text(self.body_override, orders, payment)
            if self.body_override
            else template._render_body(orders, payment),
            "company_id": self.company_id.id,
            "channel": self.channel,
        }
        if payment:
            message.update(run.document(("receipt", payment.id), self._payment_receipt))
        elif template.attach_statement and not self.is_reply:
            statement = ("statement", self.partner_id.id, self.company_id.id)
            message.update(run.document(statement, self._account_statement))
        if self.channel == "email":
            partner = self.partner_id
            recipient = self.fixed_recipient or email_normalize(partner.collection_email or partner.email or "")
            if not recipient:
                raise DeliveryError(
                    self.env._("%s has neither a collection email nor an email address.", partner.display_name),
                    "no_contact",
                )
            message.update(recipient=recipient, subject=self._render_subject(template, orders))
            return message
        number = self.fixed_recipient or self.partner_id.collection_whatsapp
        if not number:
            raise DeliveryError(self.env._("%s has no WhatsApp number.", self.partner_id.display_name), "no_contact")
        gateway = self._gateway(run)
        if not gateway:
            raise DeliveryError(
                self.env._("No WhatsApp gateway is configured (Collections > Configuration)."), "no_gateway"
            )
        message.update(recipient=number, gateway=gateway, rate_limit=gateway.rate_limit, api=run.api(gateway))
        return message

    def _render_subject(self, template, orders):
        if not self.subject_override:
            return template._render_subject(orders, self.payment_id)
        return template._render_text(self.subject_override, orders, self.payment_id).replace("\n", " ").strip()

    def _payment_receipt(self):
        """The payment's Constancia de pago, sent as the statement is; when it cannot be rendered, why."""
        try:
            with self.env.cr.savepoint():
                name, content = self.payment_id.sudo()._receipt_pdf()
        except Exception as error:  # the receipt's PDF never costs the message
            _logger.warning("Receipt of payment %s not rendered", self.payment_id.id, exc_info=True)
            return {"statement_error": self.env._("The payment receipt was not attached: %s", error)}
        return {"statement": (name, content)}

    def _statement_report(self):
        """The statement report as the send job renders it: of this message's company only."""
        return (
            self.env.ref("payment_dunning.action_report_account_statement")
            .sudo()
            .with_company(self.company_id)
            .with_context(allowed_company_ids=self.company_id.ids)
        )

    def _account_statement(self):
        """The customer's account statement; when it cannot be rendered, why (the text goes anyway)."""
        try:
            with self.env.cr.savepoint():
                report = self._statement_report()
                content, _format = report._render_qweb_pdf(report, self.partner_id.ids)
        except Exception as error:  # the statement never costs the message
            _logger.warning("Account statement of %s not rendered", self.partner_id.id, exc_info=True)
            return {"statement_error": self.env._("The account statement was not attached: %s", error)}
        name = self.env._("Account statement - %s.pdf", self.partner_id.name)
        return {"statement": (name, content)}

    def _email(self, message):
        """The ``mail.mail`` of this message (one per message, kept for every attempt), ready to go."""
        mail = self.mail_id.sudo()
        if not mail:
            mail = self._create_mail(message)
        # "outgoing" only inside this transaction: Odoo's own mail queue never sees it waiting
        mail.write({"state": "outgoing", "failure_reason": False, "failure_type": False})
        return mail

    def _create_mail(self, message):
        template, orders = message["template"], message["orders"]
        mail_template = self.env.ref("payment_dunning.mail_template_payment_order").sudo()
        # one order: its chatter; a digest: the customer's, with every order linked through this line
        record = orders if len(orders) == 1 else self.partner_id
        email_values = {
            "email_to": message["recipient"],
            "recipient_ids": [],
            "subject": message["subject"],
            "email_from": template.email_from or orders[0].company_id.email_formatted or self.env.user.email_formatted,
            "model": record._name,
            "res_id": record.id,
        }
        mail_server = self._collection_mail_server()
        if mail_server:
            email_values["mail_server_id"] = mail_server.id
        if message.get("statement"):
            name, content = message["statement"]
            email_values["attachments"] = [(name, base64.b64encode(content))]
        mail_id = mail_template.with_context(
            dunning_body_html=template._text_to_html(message["text"]), lang=self.partner_id.lang
        ).send_mail(orders[0].id, email_values=email_values, email_layout_xmlid="mail.mail_notification_light")
        mail = self.env["mail.mail"].sudo().browse(mail_id)
        self.mail_id = mail
        return mail

    def _deliver(self, message, run):
        """Hand the message to its channel; return the values to record. Raises ``DeliveryError``."""
        if message["channel"] == "email":
            mail = self._email(message)
            run.smtp.send(mail)
            return {"provider_message_id": mail.message_id}
        api = message["api"]
        values = {"provider_message_id": self._send_whatsapp_text(message, api)}
        if message.get("statement"):
            try:
                api.send_document(message["recipient"], *message["statement"])
            except DeliveryError as error:
                # the text went out: retrying the message would send it twice
                message["statement_error"] = self.env._("The account statement was not delivered: %s", error)
        return values

    def _send_whatsapp_text(self, message, api):
        """The text; through the Cloud API outside the customer's 24-hour window, the rule's approved
        template instead (Meta refuses free text there)."""
        if api.preset != "cloud" or message["gateway"]._in_service_window(message["recipient"]):
            return api.send_text(message["recipient"], message["text"])
        template = message["template"]
        if not template.whatsapp_template_name:
            raise DeliveryError(
                self.env._(
                    "The customer has not written in the last 24 hours, so the WhatsApp Cloud API takes approved "
                    "templates only: set the approved template of %s (WhatsApp Cloud API tab).",
                    template.name,
                ),
                "render",
            )
        return api.send_template(
            message["recipient"],
            template.whatsapp_template_name,
            template.whatsapp_template_lang or "es",
            template._whatsapp_template_values(message["orders"], self.payment_id or None),
        )

    def _record_sent(self, message, values):
        self._write_outcome(
            {
                "state": "sent",
                "sent_at": fields.Datetime.now(),
                "body": message["text"],
                "recipient": message["recipient"],
                "subject": message.get("subject"),
                "error": message.get("statement_error"),
                "failure_type": None,
                "next_attempt_at": None,
                "chatter_pending": True,
                **values,
            }
        )

    def _record_cancelled(self):
        self._write_outcome(
            {"state": "cancelled", "error": self.env._("The orders were paid or cancelled before sending.")}
        )

    def _record_failure(self, error, message=None, attempts=None):
        """A retriable failure waits (5, 10, 20... minutes) while attempts remain; else the line fails."""
        attempts = attempts or self.attempts
        values = {"error": str(error.args[0]), "failure_type": error.failure_type}
        if message:
            values.update(recipient=message.get("recipient"), subject=message.get("subject"))
        if error.retriable and attempts < self._max_attempts():
            delay = timedelta(minutes=5 * 2 ** (attempts - 1))
            self._write_outcome({**values, "state": "queued", "next_attempt_at": fields.Datetime.now() + delay})
        else:
            self._write_outcome({**values, "state": "failed", "next_attempt_at": None})
            self.order_ids._log_reminder_failed(self)
            self._commit()

    def _write_outcome(self, values):
        """``_write_columns``, committed: the outcome of an attempt is durable before the next one."""
        self._write_columns(values)
        self._commit()

    def _record_delivery(self, status, when):
        """The gateway reports ``status`` ("delivered" or "read") at ``when``: the line only moves
        forward (a late "delivered" after "read" changes nothing)."""
        self.ensure_one()
        rank = {False: 0, "delivered": 1, "read": 2}
        if self.state not in ("sent", "sending") or rank[status] <= rank[self.delivery_status or False]:
            return
        values = {"delivery_status": status, f"{status}_at": when}
        if status == "read" and not self.delivered_at:
            values["delivered_at"] = when
        self._write_columns(values)

    def _record_provider_failure(self, reason):
        """The provider could not deliver a message it had accepted: the line fails with its reason."""
        self.ensure_one()
        if self.state == "failed" or self.delivery_status == "read":
            return
        error = self.env._("WhatsApp did not deliver the message: %s", reason or self.env._("no reason given"))
        self._write_columns({"state": "failed", "failure_type": "not_delivered", "error": error})
        self.order_ids._log_reminder_failed(self)

    def _write_columns(self, values):
        """One UPDATE of this line's own columns, in the caller's transaction (the ORM's write would
        read the whole line first)."""
        self.flush_recordset()
        self.env.cr.execute(
            SQL(
                "UPDATE payment_order_notification SET %s, write_date = %s, write_uid = %s WHERE id = %s",
                SQL(", ").join(SQL("%s = %s", SQL.identifier(name), value) for name, value in values.items()),
                fields.Datetime.now(),
                self.env.uid,
                self.id,
            )
        )
        self.invalidate_recordset(list(values))

    def _unknown_outcome_reason(self, detail):
        return self.env._(
            "Outcome unknown (%s): the message may have reached the customer. Check with the customer " "before Retry.",
            detail,
        )

    # ------------------------------------------------------------------ chatter

    @api.model
    def _log_chatter_of(self, ids=None, sent_before=None):
        """Write the chatter entries of sent lines (README, "the reminders history"), many at once.

        Each line is taken by one UPDATE: two workers never write the same entries twice. A
        failure here costs the notes, never the lines (they say sent already).
        """
        condition = SQL("id = ANY(%s)", list(ids)) if ids is not None else SQL("sent_at < %s", sent_before)
        self.flush_model(["chatter_pending", "state", "sent_at"])
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(
                    SQL(
                        "UPDATE payment_order_notification SET chatter_pending = false "
                        "WHERE chatter_pending AND state = 'sent' AND %s RETURNING id",
                        condition,
                    )
                )
                lines = self.browse([row[0] for row in self.env.cr.fetchall()])
                lines.invalidate_recordset(["chatter_pending"])
                lines._write_chatter()
        except psycopg2.errors.SerializationFailure:
            self._rollback()  # another worker is writing them
            return
        except Exception:  # notes are worth less than the queue moving on
            _logger.warning("Chatter entries of %d reminder(s) not written", len(ids or []), exc_info=True)
        self._commit()

    @api.model
    def _log_orphan_chatter(self):
        """Chatter entries of lines sent by a worker that stopped before writing them."""
        self._log_chatter_of(sent_before=fields.Datetime.now() - timedelta(minutes=CHATTER_ORPHAN_MINUTES))

    def _write_chatter(self):
        order_notes = collections.defaultdict(list)
        customer_notes = collections.defaultdict(list)
        for line in self:
            order_body, customer_body = line._chatter_bodies()
            for order in line.order_ids:
                order_notes[order.id].append(order_body)
            customer_notes[line.partner_id.id].append(customer_body)
        self._log_notes(self.env["payment.order"], order_notes)
        self._log_notes(self.env["res.partner"], customer_notes)

    def _chatter_bodies(self):
        channel = self._channel_label()
        order_body = Markup("<p>%s</p><p>%s</p>") % (
            self.env._("%(channel)s reminder sent to %(recipient)s", channel=channel, recipient=self.recipient),
            self.env["dunning.template"]._text_to_html(self.body or ""),
        )
        if self.is_reply:
            customer_body = Markup("<p>%s</p><p>%s</p>") % (
                self.env._("WhatsApp reply sent to %(recipient)s", recipient=self.recipient),
                self.env["dunning.template"]._text_to_html(self.body or ""),
            )
            return order_body, customer_body
        customer_body = self.env._(
            "%(template)s sent by %(channel)s to %(recipient)s for %(orders)s",
            template=self.template_id.name or "",
            channel=channel,
            recipient=self.recipient,
            orders=", ".join(self.order_ids.mapped("name")),
        )
        return order_body, customer_body

    @api.model
    def _log_notes(self, records, notes):
        """``notes``: {record id: [bodies]}: internal log notes, inserted in one statement.

        The rows are what ``_message_log_batch`` stores (``test_chatter_notes_match_a_logged_note``
        holds them to it), without its record-by-record ORM create: a busy queue writes two notes
        per message.
        """
        author = self.env.user.partner_id
        email_from = author.email_formatted
        reply_to = self.env["mail.thread"]._notify_get_reply_to(default=email_from)[False]
        subtype_id = self.env["ir.model.data"]._xmlid_to_res_id("mail.mt_note")
        message_id = generate_tracking_message_id("message-notify")
        now = fields.Datetime.now()
        rows = [
            SQL(
                "(%s, %s, %s, 'notification', %s, %s, %s, %s, %s, true, false, %s, %s, %s, %s, %s)",
                records._name,
                res_id,
                str(escape(body)),
                subtype_id,
                author.id,
                email_from,
                message_id,
                reply_to,
                now,
                self.env.uid,
                now,
                self.env.uid,
                now,
            )
            for res_id, bodies in notes.items()
            for body in bodies
        ]
        if rows:
            self.env["mail.message"].flush_model()
            self.env.cr.execute(
                SQL(
                    """
                    INSERT INTO mail_message (model, res_id, body, message_type, subtype_id, author_id, email_from,
                                              message_id, reply_to, is_internal, email_add_signature, date,
                                              create_uid, create_date, write_uid, write_date)
                    VALUES %s
                    """,
                    SQL(", ").join(rows),
                )
            )
            records.browse(list(notes)).invalidate_recordset(["message_ids"])

    # ------------------------------------------------------------------ crash recovery

    @api.model
    def _recover_interrupted(self):
        """Lines left *sending* by a worker that is gone fail as "outcome unknown"; none is re-sent.

        A worker holds its line's advisory lock from the moment it marks it until its outcome is
        committed. We take the locks of the lines we find *sending* first, and only then look at
        them again in a new transaction: a line whose worker finished in between shows its outcome.
        """
        self.flush_model()
        self.env.cr.execute(
            SQL(
                """
                SELECT id FROM (SELECT id FROM payment_order_notification WHERE state = 'sending' OFFSET 0) sending
                 WHERE pg_try_advisory_lock(%s, id)
                """,
                SENDING_LOCK,
            )
        )
        locked = [row[0] for row in self.env.cr.fetchall()]
        if not locked:
            return self.browse()
        try:
            self._commit()
            stranded = self.search([("id", "in", locked), ("state", "=", "sending")])
            # claimed, never attempted: it never left, it goes back to the queue
            stranded.filtered(lambda line: not line.attempted_at).write({"state": "queued"})
            interrupted = stranded.filtered("attempted_at")
            if interrupted:
                _logger.warning("%d reminder(s) interrupted while sending: outcome unknown", len(interrupted))
                interrupted.write(
                    {
                        "state": "failed",
                        "failure_type": "unknown",
                        "error": self._unknown_outcome_reason(self.env._("worker stopped while sending")),
                    }
                )
                for notification in interrupted:
                    notification.order_ids._log_reminder_failed(notification)
            self._commit()
        finally:
            self.env.cr.execute(
                SQL("SELECT pg_advisory_unlock(%s, id) FROM unnest(%s::int[]) AS id", SENDING_LOCK, locked)
            )
        return interrupted

    # ------------------------------------------------------------------ helpers

    def _gateway(self, run):
        """The WhatsApp gateway of this message's company (cached for the run)."""
        if self.company_id.id not in run.gateways:
            run.gateways[self.company_id.id] = self._find_whatsapp_connector()
        return run.gateways[self.company_id.id]

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

    def _max_attempts(self):
        connector = self.gateway_id or self._find_whatsapp_connector()
        return (connector.retries + 1) if connector else MAX_ATTEMPTS_DEFAULT

    def _channel_label(self):
        return dict(self._fields["channel"]._description_selection(self.env))[self.channel]

    @api.model
    def _smtp_timeout(self):
        """Seconds an SMTP server may stay silent (Odoo's own default is 60)."""
        value = self.env["ir.config_parameter"].sudo().get_param("payment_dunning.smtp_timeout")
        try:
            return min(max(int(value), 1), MAX_TIMEOUT) if value else SMTP_TIMEOUT_DEFAULT
        except ValueError:
            return SMTP_TIMEOUT_DEFAULT

    @api.model
    def _time_budget(self):
        """Seconds a call may start new messages: half the cron worker's real-time limit.

        The message in flight when the budget runs out still ends by its own deadline (at most
        two gateway requests of ``MAX_TIMEOUT`` seconds), well inside the limit.
        """
        limit = tools.config.get("limit_time_real_cron") or 0
        if limit <= 0:
            limit = tools.config.get("limit_time_real") or 0
        return max(limit / 2, 5) if limit > 0 else DEFAULT_TIME_BUDGET

    def _due_count(self, run=None):
        domain = [
            ("state", "=", "queued"),
            "|",
            ("next_attempt_at", "=", False),
            ("next_attempt_at", "<=", fields.Datetime.now()),
        ]
        if run and run.closed_company_ids:
            domain.append(("company_id", "not in", list(run.closed_company_ids)))
        if run and run.blocked_company_ids:
            domain += ["!", "&", ("channel", "=", "whatsapp"), ("company_id", "in", list(run.blocked_company_ids))]
        return self.search_count(domain)

    def _commit(self):
        collection.commit(self.env.cr)

    def _rollback(self):
        collection.rollback(self.env.cr)

    # ------------------------------------------------------------------ actions

    def action_retry(self):
        """Send the selected failed (or waiting) messages again now, whatever the automatic tasks and
        the sending window: a user's deliberate act."""
        self._check_send_access()
        retry = self.filtered(lambda n: n.state == "failed" or (n.state == "queued" and n.failure_type))
        if not retry:
            raise UserError(
                self.env._("Only failed messages, or messages waiting for another attempt, can be retried.")
            )
        retry.sudo().write({"state": "queued", "next_attempt_at": False, "attempts": 0})
        self._commit()
        retry._send_now()
        return self.env["payment.order"]._notify_result_action(retry.sudo())
