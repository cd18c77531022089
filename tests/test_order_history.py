import base64
from datetime import date, datetime

import psycopg2.errors
from freezegun import freeze_time

from odoo import Command
from odoo.addons.account.tests.common import AccountTestInvoicingCommon
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import PaymentDunningCase, stored_values

# mail.message columns that differ between any two messages, however they were written
MESSAGE_SKIP = {"message_id", "date", "create_date", "write_date", "preview", "notification_ids", "tracking_value_ids"}
TRACKING_SKIP = {"mail_message_id", "create_date", "write_date"}
TRACKED = {"tracking_disable": False, "mail_notrack": False, "mail_create_nolog": False}


def flush_tracking(env):
    """Run what Odoo runs before a commit: the tracking of the changes made so far. Odoo does not
    track the changes of a record in the transaction that created it: call it after creating too."""
    env.flush_all()
    env.cr.flush()


def tracking_of(order, fname):
    flush_tracking(order.env)
    order.invalidate_recordset(["message_ids"])
    return order.message_ids.tracking_value_ids.filtered(lambda value: value.field_id.name == fname)


class HistoryCase(PaymentDunningCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # the chatter is what these tests look at: Odoo's tracking on, as in production
        cls.env = cls.env(context=dict(cls.env.context, **TRACKED))

    def chatter_bodies(self, order):
        order.invalidate_recordset(["message_ids"])
        return [str(message.body) for message in order.message_ids]


@tagged("post_install", "-at_install")
class TestOverdueHistory(HistoryCase):
    def test_overdue_flip_is_in_the_history_as_the_orm_tracks_it(self):
        with freeze_time("2026-12-02 15:00:00"):
            order = self.create_order(due_date="2026-11-30")
            reference = self.create_order(due_date="2026-11-30")
            flush_tracking(self.env)
            # what Odoo itself logs when the state changes through the ORM
            reference._internal_edit().write({"state": "overdue"})
            flush_tracking(self.env)
            self.env["payment.order"]._cron_mark_overdue()
        self.assertEqual(order.state, "overdue")
        tracking = tracking_of(order, "state")
        self.assertEqual(len(tracking), 1)
        self.assertEqual((tracking.old_value_char, tracking.new_value_char), ("Pending", "Overdue"))
        message = tracking.mail_message_id
        self.assertEqual(message.author_id, self.env.ref("base.partner_root"))
        self.assertEqual(message.message_type, "notification")
        self.assertEqual(message.subtype_id, self.env.ref("mail.mt_note"))
        expected = tracking_of(reference, "state")
        self.assertEqual(stored_values(tracking, TRACKING_SKIP), stored_values(expected, TRACKING_SKIP))
        skip = MESSAGE_SKIP | {"res_id"}
        self.assertEqual(stored_values(message, skip), stored_values(expected.mail_message_id, skip))
        # the chatter renders it as it renders the ORM's
        rendered = tracking._tracking_value_format()
        self.assertEqual(
            [(value["changedField"], value["oldValue"]["value"], value["newValue"]["value"]) for value in rendered],
            [("State", "Pending", "Overdue")],
        )
        self.assertEqual(
            [{k: v for k, v in value.items() if k != "id"} for value in rendered],
            [{k: v for k, v in value.items() if k != "id"} for value in expected._tracking_value_format()],
        )

    def test_only_flipped_orders_get_an_entry_once(self):
        with freeze_time("2026-12-02 15:00:00"):
            due = self.create_order(due_date="2026-11-30")
            not_yet = self.create_order(due_date="2026-12-02")
            paid = self.create_order(due_date="2026-11-01")
            flush_tracking(self.env)
            paid.action_pay()
            self.assertGreaterEqual(self.env["payment.order"]._cron_mark_overdue(), 1, "demo orders flip too")
            self.assertEqual(self.env["payment.order"]._cron_mark_overdue(), 0, "nothing flips twice")
        self.assertEqual(len(tracking_of(due, "state")), 1)
        self.assertFalse(tracking_of(not_yet, "state"))
        self.assertEqual(tracking_of(paid, "state").mapped("new_value_char"), ["Paid"])

    def test_flip_and_history_are_one_statement(self):
        """A failure writing the history leaves the orders pending: never one without the other."""
        with freeze_time("2026-12-02 15:00:00"):
            order = self.create_order(due_date="2026-11-30")
            self.env.flush_all()
            self.env.cr.execute(
                """
                CREATE FUNCTION pg_temp.refuse_tracking() RETURNS trigger LANGUAGE plpgsql AS
                $$ BEGIN RAISE EXCEPTION 'tracking refused'; END $$;
                CREATE TRIGGER refuse_tracking BEFORE INSERT ON mail_tracking_value
                   FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse_tracking();
                """
            )
            with self.assertRaises(psycopg2.errors.RaiseException), self.env.cr.savepoint(), mute_logger("odoo.sql_db"):
                self.env["payment.order"]._cron_mark_overdue()
            self.env.cr.execute("DROP TRIGGER refuse_tracking ON mail_tracking_value")
            order.invalidate_recordset()
            self.assertEqual(order.state, "pending")
            self.assertFalse(tracking_of(order, "state"))


@tagged("post_install", "-at_install")
class TestBulkCreationHistory(HistoryCase):
    def creation_messages(self, orders):
        return self.env["mail.message"].search(
            [("model", "=", "payment.order"), ("res_id", "in", orders.ids)], order="res_id"
        )

    def test_orders_generated_from_plans_say_so(self):
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("payment_dunning.automatic_tasks", True)
        params.set_param("payment_dunning.days_before_due", 3)
        params.set_param("payment_dunning.notifications_enabled", False)
        self.env["service.plan"].create(
            {"partner_id": self.customer.id, "name": "Internet 100 Mbps", "amount": 89.9, "next_due_date": "2026-01-10"}
        )
        with freeze_time("2026-01-07 15:00:00"):
            orders = self.env["service.plan"]._cron_generate_orders()
        self.assertEqual(len(orders), 1)
        [message] = self.creation_messages(orders)
        self.assertEqual(str(message.body), "<p>Payment order created from service plan Internet 100 Mbps</p>")
        # the entry is what create() logs, but for the text
        created = self.orm_created_order({"partner_id": self.customer.id, "due_date": "2026-01-10", "amount": 89.9})
        [expected] = self.creation_messages(created)
        self.assertEqual(str(expected.body), "<p>Payment order created</p>")
        skip = MESSAGE_SKIP | {"res_id", "body"}
        self.assertEqual(stored_values(message, skip), stored_values(expected, skip))

    def test_imported_orders_say_so(self):
        content = (
            "Tipo de documento,Número de documento,Código de pago,Cuota,Monto (OP),Cargos e Intereses (OP),"
            "Fecha de vencimiento,Saldo,Concepto\n"
            "RUC,20100000001,F-1,1,250.00,,2026-12-15,,Fibra\n"
            "RUC,20100000001,F-2,1,80.00,,2026-12-15,,Fibra\n"
        )
        record = self.env["payment.dunning.import"].create(
            {
                "kind": "orders",
                "file": base64.b64encode(content.encode()),
                "filename": "orders.csv",
                "mode": "all",
                "company_id": self.company.id,
            }
        )
        record.action_import()
        orders = self.env["payment.order"].search([("origin", "=", "import")])
        self.assertEqual(len(orders), 2)
        messages = self.creation_messages(orders)
        self.assertEqual(messages.mapped("res_id"), sorted(orders.ids))
        self.assertEqual(set(messages.mapped(lambda m: str(m.body))), {"<p>Payment order created by an import</p>"})


@tagged("post_install", "-at_install")
class TestWriteOff(HistoryCase):
    def test_only_managers_write_off(self):
        order = self.create_order(100.0)
        with self.assertRaises(AccessError):
            order.with_user(self.user)._write_off(10.0, "Goodwill")
        with self.assertRaises(AccessError):
            order.with_user(self.user).action_write_off()
        with self.assertRaises(AccessError):
            self.env["payment.order.write.off"].with_user(self.user).create(
                {"order_id": order.id, "amount": 10.0, "reason": "Goodwill"}
            )
        self.assertEqual(order.balance, 100.0)
        # nobody writes the amount written off by hand
        with self.assertRaises(UserError):
            order.with_user(self.manager).write({"written_off_amount": 100.0})

    def test_bounds_and_reason(self):
        order = self.create_order(100.0).with_user(self.manager)
        for amount in (0.0, -1.0, 100.01):
            with self.assertRaises(UserError):
                order._write_off(amount, "Goodwill")
        with self.assertRaises(UserError):
            order._write_off(10.0, "   ")
        order.action_cancel()
        with self.assertRaises(UserError):
            order._write_off(10.0, "Goodwill")
        self.assertEqual((order.balance, order.written_off_amount), (100.0, 0.0))

    def test_partial_write_off_reduces_the_balance_with_its_reason(self):
        order = self.create_order(100.0)
        flush_tracking(self.env)
        action = order.with_user(self.manager).action_write_off()
        wizards = self.env[action["res_model"]].with_user(self.manager).with_context(**action["context"])
        wizard = wizards.create({"reason": "x"})
        self.assertEqual((wizard.order_id, wizard.amount), (order, 100.0), "the whole balance by default")
        wizard.write({"amount": 30.0, "reason": "Disputed installation fee"})
        wizard.action_write_off()
        self.assertEqual((order.balance, order.written_off_amount, order.state), (70.0, 30.0, "pending"))
        self.assertEqual(tracking_of(order, "written_off_amount").new_value_float, 30.0)
        self.assertEqual(tracking_of(order, "balance").new_value_float, 70.0)
        self.assertTrue(any("Disputed installation fee" in body for body in self.chatter_bodies(order)))

    def test_writing_off_the_cents_left_closes_the_order(self):
        order = self.create_order(100.0)
        order._set_balance(0.04)
        flush_tracking(self.env)
        order.with_user(self.manager)._write_off(0.04, "Cents left after the transfer")
        self.assertEqual((order.state, order.balance, order.written_off_amount), ("paid", 0.0, 0.04))
        self.assertEqual(tracking_of(order, "state").mapped("new_value_char"), ["Paid"])
        bodies = " ".join(self.chatter_bodies(order))
        self.assertIn("Cents left after the transfer", bodies)
        self.assertIn("written off", bodies)
        self.assertNotIn("payment received.", bodies.replace("no payment received", ""))
        with self.assertRaises(UserError):
            order.with_user(self.manager)._write_off(0.01, "Again")


@tagged("post_install", "-at_install")
class TestNotifyOutcome(HistoryCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager.tz = "America/Lima"
        cls.queue_cron = cls.env.ref("payment_dunning.cron_payment_order_send_queue")

    def outcome(self, **values):
        order = self.create_order()
        notification = (
            self.env["payment.order.notification"]
            .sudo()
            .create(
                {
                    "order_ids": [Command.set(order.ids)],
                    "partner_id": self.customer.id,
                    "company_id": self.company.id,
                    "channel": "whatsapp",
                    "recipient": "+51995955955",
                    **values,
                }
            )
        )
        return self.env["payment.order"].with_user(self.manager)._notify_result_action(notification)["params"]

    def test_sent(self):
        params = self.outcome(state="sent")
        self.assertEqual(params["message"], "WhatsApp sent to +51995955955")
        self.assertEqual(params["type"], "success")

    def test_retry_time_only_when_the_queue_runs(self):
        retry = {
            "state": "queued",
            "failure_type": "gateway_error",
            "error": "Gateway error (HTTP 503)",
            "next_attempt_at": datetime(2026, 11, 22, 15, 35),
        }
        self.queue_cron.active = True
        self.assertEqual(
            self.outcome(**retry)["message"],
            "WhatsApp to +51995955955: Gateway error (HTTP 503); queued, retried at 10:35",
        )
        self.queue_cron.active = False
        params = self.outcome(**retry)
        self.assertEqual(
            params["message"],
            "WhatsApp to +51995955955 failed: Gateway error (HTTP 503). Use Retry in Communications",
        )
        self.assertEqual(params["type"], "danger")

    def test_failure_says_why(self):
        params = self.outcome(state="failed", failure_type="key_rejected", error="API key rejected")
        self.assertEqual(params["message"], "WhatsApp to +51995955955 failed: API key rejected")
        self.assertEqual(params["type"], "danger")


@tagged("post_install", "-at_install")
class TestInvoiceDueDateHistory(AccountTestInvoicingCommon):
    """An invoice's order follows the invoice's due date."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(context=dict(cls.env.context, **TRACKED))
        cls.env.user.groups_id += cls.env.ref("payment_dunning.group_payment_dunning_manager")
        cls.env.company.partner_id.tz = "America/Lima"

    def invoice_order(self):
        invoice = self.init_invoice("out_invoice", amounts=[500.0], invoice_date="2026-11-01", post=True)
        invoice.invoice_date_due = date(2026, 11, 10)
        invoice.action_create_payment_orders()
        flush_tracking(self.env)
        return invoice, invoice.payment_order_ids

    def test_overdue_order_moved_to_a_later_date_is_pending_again(self):
        with freeze_time("2026-11-20 15:00:00"):
            invoice, order = self.invoice_order()
            self.assertEqual(order.due_date, date(2026, 11, 10))
            self.env["payment.order"]._cron_mark_overdue()
            self.assertEqual(order.state, "overdue")
            flush_tracking(self.env)
            invoice.invoice_date_due = date(2026, 12, 15)
            self.assertEqual((order.due_date, order.state), (date(2026, 12, 15), "pending"))
            due = tracking_of(order, "due_date")
            self.assertEqual(len(due), 1)
            self.assertEqual(
                (due.old_value_datetime.date(), due.new_value_datetime.date()), (date(2026, 11, 10), date(2026, 12, 15))
            )
            self.assertEqual(tracking_of(order, "state").mapped("new_value_char"), ["Pending", "Overdue"])
            self.assertIn(invoice.name, str(due.mail_message_id.body))
            # moved back into the past: overdue at once
            invoice.invoice_date_due = date(2026, 11, 19)
            self.assertEqual((order.due_date, order.state), (date(2026, 11, 19), "overdue"))
            # the company's today: in Lima, 20 November is not yet past due on the 20th
            invoice.invoice_date_due = date(2026, 11, 20)
            self.assertEqual(order.state, "pending")

    def test_invoice_posted_again_with_another_due_date(self):
        with freeze_time("2026-11-05 15:00:00"):
            invoice, order = self.invoice_order()
            invoice.button_draft()
            invoice.invoice_date_due = date(2026, 11, 25)
            self.assertEqual(order.due_date, date(2026, 11, 10), "a draft invoice is not the customer's debt yet")
            invoice.action_post()
            # posting computes the due date again (here: no payment terms, the invoice date)
            self.assertNotEqual(invoice.invoice_date_due, date(2026, 11, 10))
            self.assertEqual(order.due_date, invoice.invoice_date_due)
            self.assertEqual(order.state, "overdue" if invoice.invoice_date_due < date(2026, 11, 5) else "pending")
            self.assertEqual(len(tracking_of(order, "due_date")), 1)

    def test_closed_orders_keep_their_date(self):
        with freeze_time("2026-11-20 15:00:00"):
            invoice, order = self.invoice_order()
            order.action_cancel()
            invoice.invoice_date_due = date(2026, 12, 15)
            self.assertEqual(order.due_date, date(2026, 11, 10))

    def test_users_cannot_write_the_due_date(self):
        invoice, order = self.invoice_order()
        user = self.env.user
        for context in ({}, {"payment_order_follow_due_date": True, "payment_order_edit": True}):
            with self.assertRaises(UserError):
                order.with_user(user).with_context(**context).write({"due_date": "2026-12-31"})
        manual = self.env["payment.order"].create(
            {"partner_id": invoice.commercial_partner_id.id, "due_date": "2026-11-30", "amount": 10.0}
        )
        with self.assertRaises(UserError):
            manual._follow_due_date(date(2026, 12, 31))
        self.assertEqual(order.due_date, date(2026, 11, 10))
