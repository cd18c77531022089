from unittest.mock import patch

import odoo
from odoo.tests import tagged
from odoo.tools import SQL, mute_logger

from .common import PaymentDunningCase, start_smtp_sink

RECIPIENT = "cobranzas@andina.example.com"

# A delivery status notification as Postfix writes it (RFC 3464), the returned message attached.
DSN = """\
Return-Path: <>
From: MAILER-DAEMON@mx.andina.example.com (Mail Delivery System)
To: {to}
Subject: Undelivered Mail Returned to Sender
Date: Mon, 23 Nov 2026 10:00:00 -0500
Message-Id: <{bounce_id}@mx.andina.example.com>
In-Reply-To: {message_id}
References: {message_id}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
    boundary="B0UNDARY.1763910000/mx.andina.example.com"

This is a MIME-encapsulated message.

--B0UNDARY.1763910000/mx.andina.example.com
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.andina.example.com.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

<{recipient}>: host mx.andina.example.com said: 550 5.1.1 User unknown
    (in reply to RCPT TO command)

--B0UNDARY.1763910000/mx.andina.example.com
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.andina.example.com
Arrival-Date: Mon, 23 Nov 2026 09:59:58 -0500

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.andina.example.com
Diagnostic-Code: smtp; 550 5.1.1 User unknown

--B0UNDARY.1763910000/mx.andina.example.com
Content-Description: Undelivered Message
Content-Type: message/rfc822

{original}
--B0UNDARY.1763910000/mx.andina.example.com--
"""

# A bounce without a report or the returned message: only its In-Reply-To tells what bounced.
PLAIN_BOUNCE = """\
From: Mail Delivery Subsystem <mailer-daemon@mx.andina.example.com>
To: {to}
Subject: Delivery Status Notification (Failure)
Date: Mon, 23 Nov 2026 10:00:00 -0500
Message-Id: <{bounce_id}@mx.andina.example.com>
In-Reply-To: {message_id}
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Your message wasn't delivered to {recipient} because the address couldn't be found.
"""


@tagged("post_install", "-at_install")
class TestEmailBounce(PaymentDunningCase):
    """A bounce of a collection email, as Odoo's mail gateway receives it, fails its communication line."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sink, _server = start_smtp_sink(cls)
        cls.env.ref("payment_dunning.dunning_template_default").channel_whatsapp = False
        cls.company.email = "cobranzas@lima.example.com"
        # the company's alias domain: its bounce address is the Return-Path of the reminders
        cls.alias_domain = cls.env["mail.alias.domain"].create({"name": "lima-bounces.example.com"})
        cls.company.alias_domain_id = cls.alias_domain

    def setUp(self):
        super().setUp()
        self.sink.messages.clear()
        # Odoo skips the SMTP conversation in test mode; the reminder really goes to the local server
        patcher = patch.object(odoo.modules.module, "current_test", None)
        patcher.start()
        self.addCleanup(patcher.stop)

    def send_reminder(self):
        order = self.create_order(180.0, concept="Internet 200 Mbps")
        order.action_notify()
        line = order.notification_ids
        self.assertEqual((line.channel, line.state), ("email", "sent"))
        self.assertEqual(len(self.sink.messages), 1)
        return order, line, self.sink.messages[0][1]

    def receive(self, template, message_id, original="", bounce_id="dsn-1"):
        bounce = template.format(
            to=self.alias_domain.bounce_email,
            bounce_id=bounce_id,
            message_id=message_id,
            recipient=RECIPIENT,
            original=original,
        )
        with mute_logger("odoo.addons.mail.models.mail_thread"):
            self.env["mail.thread"].message_process(None, bounce)

    def failure_notes(self, order):
        return [body for body in order.message_ids.mapped("body") if "reminder failed" in body]

    def test_bounce_fails_the_line_with_the_server_answer(self):
        order, line, sent = self.send_reminder()
        self.assertEqual(sent["Message-Id"], line.provider_message_id, "the Message-Id the bounce refers to")
        self.receive(DSN, sent["Message-Id"], original=sent.as_string())
        self.assertEqual(line.state, "failed")
        self.assertEqual(line.failure_type, "bounced")
        self.assertEqual(line.error, f"The email to {RECIPIENT} bounced: 550 5.1.1 User unknown")
        notes = self.failure_notes(order)
        self.assertEqual(len(notes), 1)
        self.assertIn("550 5.1.1 User unknown", notes[0])
        self.assertEqual(order.notification_count, 0, "a bounced reminder is not a sent one")

        # the same bounce again (a mailbox read twice): nothing changes, nothing more is posted
        write_date = line.write_date
        self.receive(DSN, sent["Message-Id"], original=sent.as_string())
        line.invalidate_recordset()
        self.assertEqual((line.state, line.failure_type), ("failed", "bounced"))
        self.assertEqual(line.write_date, write_date)
        self.assertEqual(len(self.failure_notes(order)), 1)

    def test_bounce_of_another_message_leaves_the_lines_alone(self):
        order, line, sent = self.send_reminder()
        other = sent.as_string().replace(sent["Message-Id"], "<unrelated.42@elsewhere.example.com>")
        self.receive(DSN, "<unrelated.42@elsewhere.example.com>", original=other)
        self.assertEqual(line.state, "sent")
        self.assertFalse(line.failure_type)
        self.assertFalse(self.failure_notes(order))

    def test_bounce_without_report_answers_in_reply_to(self):
        """No report, no returned message: the In-Reply-To finds the line, the subject is the reason."""
        order, line, sent = self.send_reminder()
        self.receive(PLAIN_BOUNCE, sent["Message-Id"])
        self.assertEqual((line.state, line.failure_type), ("failed", "bounced"))
        self.assertEqual(line.error, f"The email to {RECIPIENT} bounced: Delivery Status Notification (Failure)")
        self.assertEqual(len(self.failure_notes(order)), 1)

    def test_message_id_stored_without_angle_brackets_matches(self):
        _order, line, sent = self.send_reminder()
        bare = sent["Message-Id"].strip("<>")
        self.env.cr.execute(
            SQL("UPDATE payment_order_notification SET provider_message_id = %s WHERE id = %s", bare, line.id)
        )
        line.invalidate_recordset()
        self.receive(DSN, sent["Message-Id"], original=sent.as_string())
        self.assertEqual((line.state, line.failure_type), ("failed", "bounced"))

    def test_a_whatsapp_line_is_never_bounced(self):
        """Only email lines are matched, whatever a gateway answered as its message id."""
        _order, line, sent = self.send_reminder()
        whatsapp = line.copy({"channel": "whatsapp", "provider_message_id": sent["Message-Id"]})
        whatsapp.state = "sent"
        self.receive(DSN, sent["Message-Id"], original=sent.as_string())
        self.assertEqual(line.state, "failed")
        self.assertEqual(whatsapp.state, "sent")
